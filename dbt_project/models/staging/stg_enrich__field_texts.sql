-- Which text each article version's fields are (one row per non-empty field).
select event_seq, article_id, version, field, text_hash
from {{ source('enrich', 'field_texts') }}
