{{
    config(
        materialized='incremental',
        incremental_strategy='append',
    )
}}
-- The typed article events, stored: JSON is parsed once per event, when it
-- arrives. Events never change, so each run only appends the new ones (the
-- filter on event_seq reaches the scan of raw.events, below the JSON parsing).
-- Models that pick events by article read this table, not the staging view.
select *
from {{ ref('stg_newsroom__article_events') }}
{% if is_incremental() %}
where event_seq > (select coalesce(max(event_seq), 0) from {{ this }})
{% endif %}
