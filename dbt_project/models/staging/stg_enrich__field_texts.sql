-- Which text each article version's fields are (one row per non-empty field).
-- Of the events every step has read, as the article events (see enriched_through).
select event_seq, article_id, version, field, text_hash
from {{ source('enrich', 'field_texts') }}
where event_seq <= {{ enriched_through() }}
