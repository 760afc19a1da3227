{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['source_id', 'day'],
    )
}}
-- Articles published, revised and withdrawn per source per day (UTC, by the
-- version's valid_from). Incremental runs recompute only the (source, day) pairs
-- that new events touched, however late those events arrived.
with versions as (
    select source_id, valid_from::date as day, event_type, article_id, event_seq
    from {{ ref('article_versions') }}
),

{% if is_incremental() %}
touched as (
    select distinct source_id, day
    from versions
    where event_seq > (select coalesce(max(last_event_seq), 0) from {{ this }})
),
{% endif %}

scoped as (
    select versions.*
    from versions
    {% if is_incremental() %}
    semi join touched on versions.source_id = touched.source_id and versions.day = touched.day
    {% endif %}
)

select
    source_id,
    day,
    count(*) filter (where event_type = 'article.published') as articles_published,
    count(*) filter (where event_type = 'article.revised') as revisions,
    count(distinct article_id) filter (where event_type = 'article.revised') as articles_revised,
    count(*) filter (where event_type = 'article.withdrawn') as articles_withdrawn,
    max(event_seq) as last_event_seq
from scoped
group by source_id, day
