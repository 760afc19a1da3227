-- Every thread decision, in log order.
select event_seq, article_id, version, action, thread_id, similarity, duplicate_of, event_time, algorithm
from {{ source('enrich', 'thread_assignments') }}
