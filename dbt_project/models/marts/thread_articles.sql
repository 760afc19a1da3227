{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='article_id',
    )
}}
-- One row per article and the thread it is in (or was in, if withdrawn). A
-- thread merged into another counts as that one: its decisions are read as
-- decisions of the thread that holds its articles now.
--
-- Incremental runs rebuild the articles with newer decisions and the articles of
-- threads whose merge chain grew (threads_remerged).
-- depends_on: {{ ref('stg_enrich__thread_merges') }}
with decisions as (
    select d.* replace (coalesce(r.current_thread_id, d.thread_id) as thread_id)
    from {{ ref('stg_enrich__thread_assignments') }} as d
    left join {{ ref('int_thread_merges_resolved') }} as r using (thread_id)
    {% if is_incremental() %}
    {% set built_through %}(select coalesce(max(last_event_seq), 0) from {{ this }}){% endset %}
    where d.article_id in (
        select article_id from {{ ref('stg_enrich__thread_assignments') }}
        where event_seq > {{ built_through }}
           or thread_id in ({{ threads_remerged(built_through) }})
    )
    {% endif %}
),

latest as (
    select
        article_id,
        arg_max(thread_id, event_seq) as thread_id,
        arg_max(action, event_seq) as last_action,
        max(event_seq) as last_event_seq
    from decisions
    group by article_id
)

select
    l.thread_id,
    l.article_id,
    min(d.event_time) filter (where d.action <> 'leave') as joined_at,
    arg_max(d.similarity, d.event_seq) filter (where d.action <> 'leave') as similarity,
    arg_max(d.duplicate_of, d.event_seq) filter (where d.action <> 'leave') as duplicate_of,
    arg_max(d.copy_similarity, d.event_seq) filter (where d.action <> 'leave') as copy_similarity,
    l.last_action <> 'leave' as is_member,
    max(d.event_time) filter (where d.action = 'leave') as left_at,
    l.last_event_seq
from latest as l
inner join decisions as d on d.article_id = l.article_id and d.thread_id = l.thread_id
group by l.thread_id, l.article_id, l.last_action, l.last_event_seq
