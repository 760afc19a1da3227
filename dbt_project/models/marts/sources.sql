-- Health of each source: how often it is fetched and fails, how fast it answers,
-- how much it publishes and revises. Times are measured against the log's last
-- event (as_of), not the wall clock, so a rebuild gives the same table.
{% set window_days = var('source_health_window_days') %}

with daily as (
    select * from {{ ref('int_feed_fetches_daily') }}
),

as_of as (
    select max(recorded_at) as as_of from {{ source('newsroom', 'events') }}
),

totals as (
    select
        source_id,
        sum(fetches)::bigint as fetch_count,
        sum(failures)::bigint as failure_count,
        max(last_success_at) as last_success_at,
        max(last_failure_at) as last_failure_at
    from daily
    group by source_id
),

recent_fetches as (
    select f.*
    from {{ ref('stg_newsroom__feed_events') }} as f, as_of
    where f.recorded_at > as_of.as_of - interval {{ window_days }} day
),

recent as (
    select
        source_id,
        median(elapsed_ms) filter (where not is_failure) as median_fetch_ms,
        count(*) filter (where is_failure) / count(*) as recent_failure_rate,
        arg_max(error_class || ': ' || error_message, event_seq) filter (where is_failure)
            as last_failure_reason,
        arg_max(permanent_redirect, event_seq) as permanent_redirect,
        arg_max(url, event_seq) as url
    from recent_fetches
    group by source_id
),

articles as (
    select
        source_id,
        count(*) as article_count,
        sum(revision_count)::bigint as revision_count,
        count(*) filter (where status = 'withdrawn') as withdrawn_count,
        count(*) filter (where first_seen_at > (select as_of from as_of) - interval {{ window_days }} day)
            as recent_articles,
        max(first_seen_at) as last_new_item_at
    from {{ ref('articles') }}
    group by source_id
),

all_sources as (
    select source_id from totals
    union
    select source_id from articles
)

select
    s.source_id,
    r.url,
    coalesce(t.fetch_count, 0) as fetch_count,
    coalesce(t.failure_count, 0) as failure_count,
    coalesce(t.failure_count / nullif(t.fetch_count, 0), 0)::double as failure_rate,
    r.recent_failure_rate::double as recent_failure_rate,
    t.last_success_at,
    t.last_failure_at,
    r.last_failure_reason,
    r.median_fetch_ms::double as median_fetch_ms,
    coalesce(a.article_count, 0) as article_count,
    coalesce(a.revision_count, 0) as revision_count,
    coalesce(a.withdrawn_count, 0) as withdrawn_count,
    coalesce(a.revision_count / nullif(a.article_count, 0), 0)::double as revision_rate,
    (coalesce(a.recent_articles, 0) / {{ window_days }})::double as items_per_day,
    a.last_new_item_at,
    date_diff('day', a.last_new_item_at, as_of.as_of) as days_since_last_new_item,
    r.permanent_redirect,
    as_of.as_of
from all_sources as s
cross join as_of
left join totals as t on t.source_id = s.source_id
left join recent as r on r.source_id = s.source_id
left join articles as a on a.source_id = s.source_id
