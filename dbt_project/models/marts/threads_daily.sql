{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['thread_id', 'day'],
        post_hook="{% if is_incremental() %}delete from {{ this }} where articles = 0{% endif %}",
    )
}}
-- Articles and sources per story thread per UTC day (by when each article
-- joined), for "biggest stories today" dashboards. Current members only.
--
-- Incremental runs recount every day of the touched threads (threads_touched). A
-- day a thread no longer has is written with zero articles, replacing the old
-- row, and the zero row is then deleted.
-- depends_on: {{ ref('stg_enrich__thread_assignments') }}, {{ ref('int_thread_merges_resolved') }}, {{ ref('stg_enrich__thread_merges') }}
with
{% if is_incremental() %}
touched as (
    {{ threads_touched('(select coalesce(max(last_event_seq), 0) from ' ~ this ~ ')') }}
),
{% endif %}

counted as (
    select
        t.thread_id,
        t.joined_at::date as day,
        count(*) as articles,
        count(distinct a.source_id) as sources,
        max(t.last_event_seq) as last_event_seq
    from {{ ref('thread_articles') }} as t
    inner join {{ ref('articles') }} as a using (article_id)
    where t.is_member
    {% if is_incremental() %}
      and t.thread_id in (select thread_id from touched)
    {% endif %}
    group by all
)

{% if is_incremental() %}
select
    k.thread_id,
    k.day,
    coalesce(c.articles, 0) as articles,
    coalesce(c.sources, 0) as sources,
    c.last_event_seq
from (
    select thread_id, day from counted
    union
    select thread_id, day from {{ this }} where thread_id in (select thread_id from touched)
) as k
left join counted as c using (thread_id, day)
{% else %}
select * from counted
{% endif %}
