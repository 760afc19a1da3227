-- Raw model output: every span the NER model labelled, with spaCy's fine label.
select text_hash, mention_index, start_char, end_char, surface, label
from {{ source('enrich', 'mentions') }}
