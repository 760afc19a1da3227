-- One row per distinct text run through (or refused by) the entity extractor.
select text_hash, extractor, language, status, words, mention_count, detail
from {{ source('enrich', 'texts') }}
