-- One row per story thread: the articles, from any source, covering one
-- developing story. Counts cover current members (a withdrawn article leaves).
{% set active_days = 2 %}
with members as (
    select t.*, a.source_id, a.title
    from {{ ref('thread_articles') }} as t
    inner join {{ ref('articles') }} as a using (article_id)
),

as_of as (
    select max(event_time) as as_of from {{ ref('stg_enrich__thread_assignments') }}
),

entity_counts as (
    select m.thread_id, e.canonical_name, count(distinct m.article_id) as articles
    from members as m
    inner join {{ ref('entity_mentions') }} as em on em.article_id = m.article_id and em.is_current
    inner join {{ ref('entities') }} as e on e.entity_id = em.entity_id
    where m.is_member and e.entity_type in ('person', 'organisation', 'place')
    group by all
),

top_entities as (
    select thread_id, list(canonical_name order by articles desc, canonical_name)[1:5] as top_entities
    from entity_counts
    group by thread_id
)

select
    m.thread_id,
    coalesce(
        max(m.title) filter (where m.article_id = m.thread_id),
        arg_min(m.title, (m.joined_at, m.article_id))
    ) as label,
    min(m.joined_at) as first_seen_at,
    max(m.joined_at) as last_seen_at,
    count(*) filter (where m.is_member) as article_count,
    count(distinct m.source_id) filter (where m.is_member) as source_count,
    count(*) filter (where m.is_member and m.duplicate_of is not null) as copy_count,
    coalesce(any_value(te.top_entities), []::varchar[]) as top_entities,
    case when max(m.joined_at) >= any_value(as_of.as_of) - interval {{ active_days }} day
        then 'active' else 'dormant' end as status
from members as m
cross join as_of
left join top_entities as te using (thread_id)
group by m.thread_id
