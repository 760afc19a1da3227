-- Articles and sources per story thread per UTC day (by when each article
-- joined), for "biggest stories today" dashboards. Current members only.
select
    t.thread_id,
    t.joined_at::date as day,
    count(*) as articles,
    count(distinct a.source_id) as sources
from {{ ref('thread_articles') }} as t
inner join {{ ref('articles') }} as a using (article_id)
where t.is_member
group by all
