-- Per article version and field: whether entities were extracted, and if not why
-- (unsupported_language: no model for the language; never English-model guesses;
-- truncated: only the start of an over-long text was read; failed: the model raised).
select
    f.article_id,
    f.version,
    f.field,
    t.language,
    t.status,
    t.mention_count,
    t.detail
from {{ ref('stg_enrich__field_texts') }} as f
inner join {{ ref('stg_enrich__texts') }} as t using (text_hash)
