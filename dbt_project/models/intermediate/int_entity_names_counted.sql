{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['name', 'entity_type'],
    )
}}
-- Every distinct (name, type) used in a mention, with how often it is used (all
-- versions). Kept up to date from the new mentions only: a name's count is its
-- stored count plus its new mentions, so the cost follows the new work.
with new_mentions as (
    select linked_name as name, entity_type, count(*) as mentions, max(event_seq) as last_event_seq
    from {{ ref('int_entity_mentions_cleaned') }}
    {% if is_incremental() %}
    where event_seq > (select coalesce(max(last_event_seq), 0) from {{ this }})
    {% endif %}
    group by all
)

select
    n.name,
    n.entity_type,
    {% if is_incremental() -%}
    n.mentions + coalesce(o.mentions, 0) as mentions,
    {%- else -%}
    n.mentions,
    {%- endif %}
    n.last_event_seq
from new_mentions as n
{% if is_incremental() %}
left join {{ this }} as o using (name, entity_type)
{% endif %}
