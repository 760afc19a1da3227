-- Mentions and articles per entity per UTC day (by the article's publication
-- day; current versions of live articles), for trend dashboards.
select
    m.entity_id,
    a.published_at::date as day,
    count(*) as mentions,
    count(distinct m.article_id) as articles,
    count(distinct a.source_id) as sources
from {{ ref('entity_mentions') }} as m
inner join {{ ref('articles') }} as a using (article_id)
where m.is_current and a.status = 'live'
group by all
