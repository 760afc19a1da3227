{{
    config(
        materialized='incremental',
        incremental_strategy='append',
    )
}}
-- The log positions builds reached: a row for each build that met article events
-- no build before it had, with that build's dbt invocation. How the work was split
-- into builds, not what it produced: a rebuild from the events keeps one row.
--
-- The change_stamp macro reads it to tell a build with new events from one without
-- (after an edit of entity_overrides alone): a change of the second kind is stamped
-- above the log's last event, which the marts may already hold as their watermark.
-- A first build records where it started under no invocation, so that it counts as
-- "no new events" for the stamps of its own run: the safe side, as a mart may hold
-- any watermark up to there.
select
    max(event_seq) as built_through_seq,
    {% if is_incremental() -%}
    '{{ invocation_id }}'
    {%- else -%}
    null::varchar
    {%- endif %} as invocation_id
from {{ ref('stg_newsroom__article_events') }}
having max(event_seq) is not null
{% if is_incremental() %}
   and max(event_seq) > (select coalesce(max(built_through_seq), 0) from {{ this }})
{% endif %}
