-- Article events with their payload fields as typed columns. The log's
-- raw.article_events view reads the payload by name (its one definition).
-- Only those entity extraction and threading have read (see enriched_through).
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
    identity,
    guid,
    url,
    link,
    coalesce(title, '') as title,
    coalesce(summary, '') as summary,
    coalesce(body, '') as body,
    coalesce(byline, '') as byline,
    nullif(lower(language), '') as language,
    try_cast(published_at as timestamp) as published_at,
    try_cast(updated_at as timestamp) as updated_at,
    wire.version as wire_version,
    wire.pubstatus as wire_pubstatus,
    wire.signals as wire_signals,
    wire.subjects as wire_subjects,
    wire.outlet as outlet,
    coalesce(raw_ref.body_sha256, raw_ref.archive_sha256) as raw_sha256
from {{ source('newsroom', 'article_events') }}
where event_seq <= {{ enriched_through() }}
