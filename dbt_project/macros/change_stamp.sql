{#- The stamp of a change stored by an incremental model in this run: the log's last
    article event, or one more than the model's latest stamp when that is not
    less (a run with no new events, such as after an edit of entity_overrides).
    Stamps only grow, and a change stored after a mart's last build always has a
    stamp above that mart's watermark (the highest event_seq it holds), so marts
    look for `stamp > watermark` and see each change once. -#}
{% macro change_stamp(stamp_column) -%}
{%- if is_incremental() -%}
greatest(
    (select coalesce(max(event_seq), 0) from {{ ref('stg_newsroom__article_events') }}),
    (select coalesce(max({{ stamp_column }}), 0) + 1 from {{ this }})
)
{%- else -%}
(select coalesce(max(event_seq), 0) from {{ ref('stg_newsroom__article_events') }})
{%- endif -%}
{%- endmacro %}
