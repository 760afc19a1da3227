-- Article events with their payload unpacked into typed columns.
-- One JSON parse per event: json_extract_string with a list of paths is several
-- times cheaper than one ->> per field.
with events as (
    select
        *,
        json_extract_string(payload, [
            '$.identity', '$.guid', '$.url', '$.link', '$.title', '$.summary', '$.body',
            '$.byline', '$.language', '$.published_at', '$.updated_at', '$.wire.version',
            '$.wire.pubstatus', '$.wire.outlet', '$.raw.body_sha256', '$.raw.archive_sha256'
        ]) as f
    from {{ source('newsroom', 'events') }}
    where event_type in ('article.published', 'article.revised', 'article.withdrawn')
)

select
    event_seq,
    event_id,
    event_type,
    stream_id as article_id,
    stream_version as version,
    source_id,
    occurred_at,
    recorded_at,
    run_id,
    content_hash,
    f[1] as identity,
    f[2] as guid,
    f[3] as url,
    f[4] as link,
    coalesce(f[5], '') as title,
    coalesce(f[6], '') as summary,
    coalesce(f[7], '') as body,
    coalesce(f[8], '') as byline,
    nullif(lower(f[9]), '') as language,
    try_cast(f[10] as timestamp) as published_at,
    try_cast(f[11] as timestamp) as updated_at,
    f[12] as wire_version,
    f[13] as wire_pubstatus,
    payload -> '$.wire.signals' as wire_signals,
    payload -> '$.wire.subjects' as wire_subjects,
    f[14] as outlet,
    coalesce(f[15], f[16]) as raw_sha256
from events
