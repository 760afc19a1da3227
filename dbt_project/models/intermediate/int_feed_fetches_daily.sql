{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['source_id', 'fetch_day'],
    )
}}
-- Fetch outcomes per source per day (UTC, by recorded_at), so source health never
-- rescans the whole fetch history. recorded_at is our own clock and grows with
-- event_seq, so new fetch events can only land on the latest day already built or
-- later: an incremental run recomputes from that day on (a filter that reaches the
-- scan of raw.events).
with scoped as (
    select *, recorded_at::date as fetch_day
    from {{ ref('stg_newsroom__feed_events') }}
    {% if is_incremental() %}
    where recorded_at >= (select coalesce(max(fetch_day), date '1970-01-01') from {{ this }})
    {% endif %}
)

select
    source_id,
    fetch_day,
    count(*) as fetches,
    count(*) filter (where is_failure) as failures,
    count(*) filter (where was_not_modified) as not_modified,
    sum(items_new)::bigint as items_new,
    sum(items_revised)::bigint as items_revised,
    sum(items_withdrawn)::bigint as items_withdrawn,
    sum(items_rejected)::bigint as items_rejected,
    max(recorded_at) filter (where not is_failure) as last_success_at,
    max(recorded_at) filter (where is_failure) as last_failure_at,
    max(event_seq) as last_event_seq
from scoped
group by source_id, fetch_day
