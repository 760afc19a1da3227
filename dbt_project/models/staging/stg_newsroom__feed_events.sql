-- One row per fetch attempt of a source: feed.fetched and feed.failed events.
with events as (
    select
        *,
        json_extract_string(payload, [
            '$.fetched_at', '$.url', '$.final_url', '$.permanent_redirect', '$.status',
            '$.bytes', '$.elapsed_ms', '$.attempts', '$.conditional', '$.not_modified',
            '$.unchanged_body', '$.items_seen', '$.new', '$.revised', '$.withdrawn',
            '$.rejected', '$.error_class', '$.error_message', '$.parse_warning'
        ]) as f
    from {{ source('newsroom', 'events') }}
    where event_type in ('feed.fetched', 'feed.failed')
)

select
    event_seq,
    event_id,
    event_type,
    source_id,
    stream_version as fetch_number,
    recorded_at,
    run_id,
    event_type = 'feed.failed' as is_failure,
    try_cast(f[1] as timestamp) as fetched_at,
    f[2] as url,
    f[3] as final_url,
    f[4] as permanent_redirect,
    try_cast(f[5] as integer) as http_status,
    try_cast(f[6] as bigint) as body_bytes,
    try_cast(f[7] as integer) as elapsed_ms,
    try_cast(f[8] as integer) as attempts,
    coalesce(try_cast(f[9] as boolean), false) as was_conditional,
    coalesce(try_cast(f[10] as boolean), false) as was_not_modified,
    coalesce(try_cast(f[11] as boolean), false) as had_unchanged_body,
    content_hash as body_sha256,
    coalesce(try_cast(f[12] as integer), 0) as items_seen,
    coalesce(try_cast(f[13] as integer), 0) as items_new,
    coalesce(try_cast(f[14] as integer), 0) as items_revised,
    coalesce(try_cast(f[15] as integer), 0) as items_withdrawn,
    coalesce(try_cast(f[16] as integer), 0) as items_rejected,
    f[17] as error_class,
    f[18] as error_message,
    f[19] as parse_warning
from events
