-- Every merge of one story thread into another, in log order.
-- Of the events every step has read, as the article events (see enriched_through).
select event_seq, thread_id, merged_into, merged_at, algorithm
from {{ source('enrich', 'thread_merges') }}
where event_seq <= {{ enriched_through() }}
