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
-- Incremental runs recount the days of the entities in articles with a newer
-- version (entity_days_touched: only the days those articles were on, so a busy
-- entity costs its new articles, not its history), and every day of the entities
-- whose names were resolved anew (entities_relinked). A day an entity no longer
-- has is written with zero mentions, replacing the old row, and the zero row is
-- then deleted.
-- depends_on: {{ ref('article_versions') }}, {{ ref('int_entity_names_resolved') }}, {{ ref('entity_mentions') }}
{% if is_incremental() %}
{% set built_through %}(select coalesce(max(last_event_seq), 0) from {{ this }}){% endset %}
{% endif %}
with
{% if is_incremental() %}
touched_days as (
    {{ entity_days_touched(built_through) }}
),

relinked as (
    {{ entities_relinked(built_through) }}
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
    from (
        -- chosen before the join (with the filter after it, every current mention was joined
        -- first): the relinked entities' mentions and those in articles of the days touched,
        -- which the filter below narrows to the entities' days
        select article_id, entity_id, event_seq from {{ ref('entity_mentions') }}
        where is_current
        {% if is_incremental() %}
          and (
              entity_id in (select entity_id from relinked)
              or article_id in (
                  select article_id from {{ ref('articles') }}
                  where published_at::date in (select day from touched_days)
              )
          )
        {% endif %}
    ) as m
    inner join {{ ref('articles') }} as a using (article_id)
    where a.status = 'live'
    {% if is_incremental() %}
      and (m.entity_id in (select entity_id from relinked)
           or (m.entity_id, a.published_at::date) in (select (entity_id, day) from touched_days))
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
    select entity_id, day from {{ this }}
    where entity_id in (select entity_id from relinked)
       or (entity_id, day) in (select (entity_id, day) from touched_days)
) as k
left join counted as c using (entity_id, day)
{% else %}
select * from counted
{% endif %}
