-- Every merge of one story thread into another, in log order.
select event_seq, thread_id, merged_into, merged_at, algorithm
from {{ source('enrich', 'thread_merges') }}
