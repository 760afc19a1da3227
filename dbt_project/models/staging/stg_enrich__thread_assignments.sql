-- Every thread decision, in log order (only the current rule's: a new one replaces them).
-- Of the events every step has read, as the article events (see enriched_through).
select
    event_seq, article_id, version, action, thread_id, similarity, duplicate_of, copy_similarity,
    event_time, algorithm
from {{ source('enrich', 'thread_assignments') }}
where event_seq <= {{ enriched_through() }}
