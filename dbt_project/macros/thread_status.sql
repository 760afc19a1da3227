{#- A story thread's status: 'active' while its last article (`last_seen_at`) is at most
    two days older than the threads' clock `as_of` (the newest thread decision's time),
    'dormant' after. -#}
{% macro thread_status(last_seen_at, as_of) -%}
case when {{ last_seen_at }} >= {{ as_of }} - interval 2 day then 'active' else 'dormant' end
{%- endmacro %}
