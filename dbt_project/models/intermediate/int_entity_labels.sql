{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='entity_id',
    )
}}
-- Each entity's name and type as the entities mart shows them, and the stamp
-- of the run that last changed either (changed_at_seq, macro change_stamp): story threads
-- list their top entities by name, so a renamed entity rebuilds the threads that
-- name it, and only those. Compares every entity each run, which costs the number
-- of entities, not of mentions.
-- depends_on: {{ ref('int_log_positions_built') }} (change_stamp reads it)
with current_labels as (
    select entity_id, canonical_name, entity_type from {{ ref('entities') }}
)

select
    n.entity_id,
    n.canonical_name,
    n.entity_type,
    {{ change_stamp('changed_at_seq') }} as changed_at_seq
from current_labels as n
{% if is_incremental() %}
left join {{ this }} as o using (entity_id)
where (n.canonical_name, n.entity_type) is distinct from (o.canonical_name, o.entity_type)
{% endif %}
