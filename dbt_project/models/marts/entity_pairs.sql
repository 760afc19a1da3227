-- Entities named together in the current version of the same live article.
with article_entities as (
    select distinct m.article_id, m.entity_id, a.published_at
    from {{ ref('entity_mentions') }} as m
    inner join {{ ref('articles') }} as a using (article_id)
    where m.is_current and a.status = 'live'
)

select
    a.entity_id as entity_a,
    b.entity_id as entity_b,
    count(*) as article_count,
    min(a.published_at)::date as first_day,
    max(a.published_at)::date as last_day
from article_entities as a
inner join article_entities as b on a.article_id = b.article_id and a.entity_id < b.entity_id
group by all
