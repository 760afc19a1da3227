{{
    config(
        materialized='incremental',
        incremental_strategy='append',
    )
}}
-- Per article version and field: whether entities were extracted, and if not why
-- (unsupported_language: no model for the language; never English-model guesses;
-- truncated: only the start of an over-long text was read; failed: the model raised).
--
-- Appended per new article event: a text's outcome never changes for one
-- extractor, and a new extractor makes the transform rebuild everything.
select
    f.article_id,
    f.version,
    f.field,
    t.language,
    t.status,
    t.mention_count,
    t.detail,
    f.event_seq
from {{ ref('stg_enrich__field_texts') }} as f
inner join {{ ref('stg_enrich__texts') }} as t using (text_hash)
{% if is_incremental() %}
where f.event_seq > (select coalesce(max(event_seq), 0) from {{ this }})
{% endif %}
