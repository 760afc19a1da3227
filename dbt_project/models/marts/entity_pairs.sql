{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['entity_a', 'entity_b'],
        post_hook="{% if is_incremental() %}delete from {{ this }} where article_count = 0{% endif %}",
    )
}}
-- Entities named together in the current version of the same live article.
--
-- Incremental runs recount the pairs that can have changed: those named together
-- in any version of an article with a newer version (a pair's articles change
-- only through such an article, which then names both), and every pair of an
-- entity relinked by resolution (entities_relinked: its articles may now count for
-- another). A busy entity's other pairs are left alone. A pair no longer named
-- together is written with a zero count, replacing the old row, and the zero row
-- is then deleted.
-- depends_on: {{ ref('article_versions') }}, {{ ref('int_entity_names_resolved') }}, {{ ref('entity_mentions') }}
with
{% if is_incremental() %}
{% set built_through %}(select coalesce(max(last_event_seq), 0) from {{ this }}){% endset %}
changed_article_entities as (
    select distinct m.article_id, m.entity_id
    from {{ ref('entity_mentions') }} as m
    semi join (
        select article_id from {{ ref('article_versions') }} where event_seq > {{ built_through }}
    ) as v on v.article_id = m.article_id
),

touched_pairs as (
    select distinct a.entity_id as entity_a, b.entity_id as entity_b
    from changed_article_entities as a
    inner join changed_article_entities as b on a.article_id = b.article_id and a.entity_id < b.entity_id
),

relinked as (
    {{ entities_relinked(built_through) }}
),
{% endif %}

article_entities as (
    select distinct m.article_id, m.entity_id, a.published_at, m.event_seq
    from {{ ref('entity_mentions') }} as m
    inner join {{ ref('articles') }} as a using (article_id)
    where m.is_current and a.status = 'live'
    {% if is_incremental() %}
      and (
          m.entity_id in (select entity_id from changed_article_entities)
          or m.article_id in (
              select article_id from {{ ref('entity_mentions') }}
              where is_current and entity_id in (select entity_id from relinked)
          )
      )
    {% endif %}
),

counted as (
    select
        a.entity_id as entity_a,
        b.entity_id as entity_b,
        count(*) as article_count,
        min(a.published_at)::date as first_day,
        max(a.published_at)::date as last_day,
        max(greatest(a.event_seq, b.event_seq)) as last_event_seq
    from article_entities as a
    inner join article_entities as b on a.article_id = b.article_id and a.entity_id < b.entity_id
    {% if is_incremental() %}
    where (a.entity_id, b.entity_id) in (select (entity_a, entity_b) from touched_pairs)
       or a.entity_id in (select entity_id from relinked)
       or b.entity_id in (select entity_id from relinked)
    {% endif %}
    group by all
)

{% if is_incremental() %}
select
    k.entity_a,
    k.entity_b,
    coalesce(c.article_count, 0) as article_count,
    c.first_day,
    c.last_day,
    c.last_event_seq
from (
    select entity_a, entity_b from counted
    union
    select entity_a, entity_b from {{ this }}
    where (entity_a, entity_b) in (select (entity_a, entity_b) from touched_pairs)
       or entity_a in (select entity_id from relinked)
       or entity_b in (select entity_id from relinked)
) as k
left join counted as c using (entity_a, entity_b)
{% else %}
select * from counted
{% endif %}
