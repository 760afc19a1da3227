-- One row per archive file loaded with `newsroom backfill`.
select
    event_seq,
    event_id,
    source_id,
    recorded_at,
    run_id,
    content_hash as archive_sha256,
    payload ->> '$.archive_name' as archive_name,
    try_cast(payload ->> '$.lines' as integer) as lines,
    try_cast(payload ->> '$.new' as integer) as articles_new,
    try_cast(payload ->> '$.revised' as integer) as articles_revised,
    try_cast(payload ->> '$.rejected' as integer) as lines_rejected
from {{ source('newsroom', 'events') }}
where event_type = 'archive.loaded'
