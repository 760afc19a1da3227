-- One row per fetch attempt of a source: feed.fetched and feed.failed events.
-- The payload is read by name in one JSON parse; a mistyped value reads as NULL.
with events as (
    select
        *,
        json_transform(payload, '{
            "fetched_at": "VARCHAR", "url": "VARCHAR", "final_url": "VARCHAR",
            "permanent_redirect": "VARCHAR", "status": "INTEGER", "bytes": "BIGINT",
            "elapsed_ms": "INTEGER", "attempts": "INTEGER", "conditional": "BOOLEAN",
            "not_modified": "BOOLEAN", "unchanged_body": "BOOLEAN", "items_seen": "INTEGER",
            "new": "INTEGER", "revised": "INTEGER", "withdrawn": "INTEGER", "rejected": "INTEGER",
            "error_class": "VARCHAR", "error_message": "VARCHAR", "parse_warning": "VARCHAR"
        }') as outcome
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
    try_cast(outcome.fetched_at as timestamp) as fetched_at,
    outcome.url as url,
    outcome.final_url as final_url,
    outcome.permanent_redirect as permanent_redirect,
    outcome.status as http_status,
    outcome.bytes as body_bytes,
    outcome.elapsed_ms as elapsed_ms,
    outcome.attempts as attempts,
    coalesce(outcome.conditional, false) as was_conditional,
    coalesce(outcome.not_modified, false) as was_not_modified,
    coalesce(outcome.unchanged_body, false) as had_unchanged_body,
    content_hash as body_sha256,
    coalesce(outcome.items_seen, 0) as items_seen,
    coalesce(outcome.new, 0) as items_new,
    coalesce(outcome.revised, 0) as items_revised,
    coalesce(outcome.withdrawn, 0) as items_withdrawn,
    coalesce(outcome.rejected, 0) as items_rejected,
    outcome.error_class as error_class,
    outcome.error_message as error_message,
    outcome.parse_warning as parse_warning
from events
