{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['entity_id', 'day'],
        post_hook="{% if is_incremental() %}delete from {{ this }} where mentions = 0{% endif %}",
    )
}}
-- Mentions and articles per entity per UTC day (by the article's publication
-- day; current versions of live articles), for trend dashboards.
--
-- Incremental runs recount every day of the touched entities (entities_touched).
-- A day an entity no longer has is written with zero mentions, replacing the old
-- row, and the zero row is then deleted.
-- depends_on: {{ ref('article_versions') }}, {{ ref('int_entity_names_resolved') }}, {{ ref('entity_mentions') }}
with
{% if is_incremental() %}
touched as (
    {{ entities_touched('(select coalesce(max(last_event_seq), 0) from ' ~ this ~ ')') }}
),
{% endif %}

counted as (
    select
        m.entity_id,
        a.published_at::date as day,
        count(*) as mentions,
        count(distinct m.article_id) as articles,
        count(distinct a.source_id) as sources,
        max(m.event_seq) as last_event_seq
    from {{ ref('entity_mentions') }} as m
    inner join {{ ref('articles') }} as a using (article_id)
    where m.is_current and a.status = 'live'
    {% if is_incremental() %}
      and m.entity_id in (select entity_id from touched)
    {% endif %}
    group by all
)

{% if is_incremental() %}
select
    k.entity_id,
    k.day,
    coalesce(c.mentions, 0) as mentions,
    coalesce(c.articles, 0) as articles,
    coalesce(c.sources, 0) as sources,
    c.last_event_seq
from (
    select entity_id, day from counted
    union
    select entity_id, day from {{ this }} where entity_id in (select entity_id from touched)
) as k
left join counted as c using (entity_id, day)
{% else %}
select * from counted
{% endif %}
