{#- Threads merged at or into the end of a merge chain that grew after the log
    position `built_through`: their articles now count for another thread. A
    superset (every thread merged into such an end), which costs little: merges
    are rare. -#}
{% macro threads_remerged(built_through) -%}
select r.thread_id
from {{ ref('int_thread_merges_resolved') }} as r
where r.current_thread_id in (
    select current_thread_id from {{ ref('int_thread_merges_resolved') }}
    where thread_id in (
        select thread_id from {{ ref('stg_enrich__thread_merges') }} where event_seq > {{ built_through }}
    )
)
{%- endmacro %}

{#- The threads whose rows may have changed since the log position `built_through`:
    every thread (as merges resolve it now) that holds or held an article with a
    newer thread decision, and the threads of grown merge chains with their ends. -#}
{% macro threads_touched(built_through) -%}
select coalesce(r.current_thread_id, d.thread_id) as thread_id
from {{ ref('stg_enrich__thread_assignments') }} as d
left join {{ ref('int_thread_merges_resolved') }} as r using (thread_id)
where d.article_id in (
    select article_id from {{ ref('stg_enrich__thread_assignments') }} where event_seq > {{ built_through }}
)
union
select unnest([thread_id, current_thread_id])
from {{ ref('int_thread_merges_resolved') }}
where thread_id in ({{ threads_remerged(built_through) }})
{%- endmacro %}
