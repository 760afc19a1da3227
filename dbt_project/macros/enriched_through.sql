{#- The last article event both entity extraction and threading have read (a step
    whose table is empty never ran, and bounds nothing). The staging models of the
    article events and of what those steps wrote read through it only: an event
    recorded between the steps and a build (an ingest waiting for the file) waits
    for the next build, which its mentions and thread reach as well. Built before
    them, the marts would count it without them, and their watermarks would be past
    it when they came. -#}
{% macro enriched_through() -%}
least(
    coalesce((select max(last_event_seq) from {{ source('enrich', 'batches') }}), 9223372036854775807),
    coalesce((select max(event_seq) from {{ source('enrich', 'thread_assignments') }}), 9223372036854775807)
)
{%- endmacro %}
