-- Each merged thread and the thread it is part of now: merges chain (A into B,
-- later B into C), so A's articles are in C. Merges go from a younger thread into
-- an older one, so every chain ends.
with recursive chain as (
    select thread_id, merged_into, merged_at
    from {{ ref('stg_enrich__thread_merges') }}
    union all
    select c.thread_id, m.merged_into, c.merged_at
    from chain as c
    inner join {{ ref('stg_enrich__thread_merges') }} as m on m.thread_id = c.merged_into
)

select thread_id, merged_into as current_thread_id, merged_at
from chain
where merged_into not in (select thread_id from {{ ref('stg_enrich__thread_merges') }})
