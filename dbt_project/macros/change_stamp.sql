{#- The stamp of a change stored by an incremental model in this run, above the
    watermark (the highest event_seq it holds) of every mart built before the change,
    so that marts look for `stamp > watermark` and see each change once:

    - in a build that met new article events, the log's last article event: every
      mart built before held only older ones;
    - in a build that met none (an edit of entity_overrides alone), one more than
      that: a mart built before may hold the last event itself;
    - and always one more than the model's latest stamp, so that stamps only grow.

    Which kind of build this is, int_log_positions_built tells: it records the
    invocation of each build that met new events. -#}
{% macro change_stamp(stamp_column) -%}
{%- if is_incremental() -%}
greatest(
    (select coalesce(max(event_seq), 0) from {{ ref('stg_newsroom__article_events') }})
        + (select case when count(*) = 0 then 1 else 0 end from {{ ref('int_log_positions_built') }}
           where invocation_id = '{{ invocation_id }}'),
    (select coalesce(max({{ stamp_column }}), 0) + 1 from {{ this }})
)
{%- else -%}
(select coalesce(max(event_seq), 0) from {{ ref('stg_newsroom__article_events') }})
{%- endif -%}
{%- endmacro %}
