"""What 'valid' means at each stage, declared once: the frame each suite checks
(a DuckDB query) and its expectations (Great Expectations classes by name).

Each check has one home. Inside the dbt graph, dbt tests and contracts keep
the keys, relationships, accepted values, version order and status against
history, so `dbt build` itself blocks; no suite here repeats one of them. These
suites check what enters the warehouse (the raw batch, validated before anything
is built from it: hashes, volumes, formats, null rates) and the quality of what
leaves it. Row checks that need several columns are boolean columns of the
frame's SQL, expected to be true; GX reports them by name with the failing rows.
`newsroom gx-sync` writes the suites into gx/; validation only reads gx/.

``{since}`` in a query is the last event_seq already validated and published:
row-level checks look at what is new, cross-checks reach into all history.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ingestion._log.store import CHAIN_HASH_SQL, EVENT_TYPES, GENESIS_HASH

HEX64 = r"^[0-9a-f]{64}$"
#: A source failing more often than this is flagged (a warning, not a block).
MAX_FAILURE_RATE = 0.5


@dataclass(frozen=True, slots=True)
class Expect:
    kind: str  # a great_expectations.expectations class name
    kwargs: dict[str, Any]
    #: "critical" blocks publishing; "warning" is reported only.
    severity: str = "critical"


@dataclass(frozen=True, slots=True)
class Suite:
    name: str
    stage: str
    description: str
    sql: str
    expectations: tuple[Expect, ...] = field(default_factory=tuple)


def _true(column: str, severity: str = "critical", mostly: float | None = None) -> Expect:
    kwargs: dict[str, Any] = {"column": column, "value_set": [True]}
    if mostly is not None:
        kwargs["mostly"] = mostly
    return Expect("ExpectColumnValuesToBeInSet", kwargs, severity)


SUITES: tuple[Suite, ...] = (
    Suite(
        name="raw_events",
        stage="raw",
        description="New events in raw.events: ids, types, hashes, versions, times, payloads.",
        sql=f"""
        WITH new AS (SELECT * FROM raw.events WHERE event_seq > {{since}}),
        stream_order AS (
            SELECT event_seq,
                   stream_version = row_number() OVER (PARTITION BY stream_id ORDER BY event_seq)
                       AS version_follows_previous
            FROM raw.events WHERE stream_id IN (SELECT stream_id FROM new)
        ),
        id_counts AS (
            SELECT event_id, count(*) AS event_id_occurrences FROM raw.events
            WHERE event_id IN (SELECT event_id FROM new) GROUP BY event_id
        ),
        -- The batch's hashes recomputed (what `newsroom verify` does for the whole log):
        -- nothing edited in the log since it was appended is built on and published.
        chain AS (
            SELECT event_seq,
                   payload_hash IS NOT DISTINCT FROM sha256(payload::VARCHAR) AS payload_matches_hash,
                   event_hash IS NOT DISTINCT FROM {CHAIN_HASH_SQL} AS event_matches_hash,
                   prev_hash IS NOT DISTINCT FROM
                       lag(event_hash, 1, '{GENESIS_HASH}') OVER (ORDER BY event_seq) AS links_to_previous
            FROM raw.events WHERE event_seq >= {{since}}
        )
        SELECT new.event_seq, new.event_id, new.event_type, new.stream_id, new.stream_version,
               new.payload_hash, new.prev_hash, new.event_hash,
               json_valid(new.payload::VARCHAR) AS payload_is_json,
               new.recorded_at <= now()::TIMESTAMP + INTERVAL 5 MINUTE AS recorded_not_in_future,
               stream_order.version_follows_previous,
               id_counts.event_id_occurrences,
               chain.payload_matches_hash, chain.event_matches_hash, chain.links_to_previous
        FROM new
        JOIN stream_order USING (event_seq)
        JOIN id_counts USING (event_id)
        JOIN chain USING (event_seq)
        """,
        expectations=(
            # Once in the whole log, so also once in the batch.
            Expect(
                "ExpectColumnValuesToBeBetween",
                {"column": "event_id_occurrences", "min_value": 1, "max_value": 1},
            ),
            Expect("ExpectColumnValuesToNotBeNull", {"column": "stream_id"}),
            Expect("ExpectColumnValuesToBeInSet", {"column": "event_type", "value_set": list(EVENT_TYPES)}),
            Expect("ExpectColumnValuesToMatchRegex", {"column": "event_hash", "regex": HEX64}),
            Expect("ExpectColumnValuesToMatchRegex", {"column": "prev_hash", "regex": HEX64}),
            Expect("ExpectColumnValuesToMatchRegex", {"column": "payload_hash", "regex": HEX64}),
            _true("version_follows_previous"),
            _true("recorded_not_in_future"),
            _true("payload_is_json"),
            _true("payload_matches_hash"),
            _true("event_matches_hash"),
            _true("links_to_previous"),
        ),
    ),
    Suite(
        name="raw_fetches",
        stage="raw",
        description="Per source, the latest new body against its usual volume.",
        sql="""
        WITH bodies AS (
            SELECT source_id, event_seq, try_cast(payload ->> '$.items_seen' AS INTEGER) AS items
            FROM raw.events
            WHERE event_type = 'feed.fetched' AND content_hash IS NOT NULL
              AND coalesce(payload ->> '$.unchanged_body', 'false') <> 'true'
        ),
        latest AS (
            SELECT source_id, max(event_seq) AS latest_seq, arg_max(items, event_seq) AS latest_items
            FROM bodies WHERE event_seq > {since} GROUP BY source_id
        ),
        usual AS (
            SELECT b.source_id, median(b.items) AS usual_items
            FROM bodies b JOIN latest l ON b.source_id = l.source_id AND b.event_seq < l.latest_seq
            GROUP BY b.source_id
        )
        SELECT latest.source_id, latest.latest_items, usual.usual_items,
               NOT (latest.latest_items = 0 AND coalesce(usual.usual_items, 0) > 0) AS not_suddenly_empty
        FROM latest LEFT JOIN usual USING (source_id)
        """,
        expectations=(_true("not_suddenly_empty", severity="warning"),),
    ),
    Suite(
        name="staging_article_events",
        stage="staging",
        description="New article events as staged: identity, text, language, dates.",
        sql="""
        SELECT article_id, version, language, url,
               (title <> '' OR summary <> '' OR body <> '') AS has_text,
               coalesce(published_at <= recorded_at + INTERVAL 1 DAY, true) AS published_not_after_recorded
        FROM staging.stg_newsroom__article_events WHERE event_seq > {since}
        """,
        expectations=(
            Expect("ExpectColumnValuesToBeBetween", {"column": "version", "min_value": 1}),
            _true("has_text", mostly=0.99),
            _true("published_not_after_recorded"),
            Expect(
                "ExpectColumnValuesToMatchRegex",
                {"column": "language", "regex": r"^[a-z]{2,3}(?:[-_][a-z0-9]{1,8})*$", "mostly": 0.99},
                severity="warning",
            ),
            Expect(
                "ExpectColumnValuesToMatchRegex",
                {"column": "url", "regex": r"^https?://", "mostly": 0.99},
                severity="warning",
            ),
        ),
    ),
    Suite(
        name="staging_feed_events",
        stage="staging",
        description="New fetch outcomes as staged: statuses, timings, reasons for failures.",
        sql="""
        SELECT source_id, http_status, elapsed_ms,
               NOT is_failure OR (error_class IS NOT NULL AND error_message IS NOT NULL)
                   AS failure_has_reason
        FROM staging.stg_newsroom__feed_events WHERE event_seq > {since}
        """,
        expectations=(
            Expect(
                "ExpectColumnValuesToBeBetween", {"column": "http_status", "min_value": 100, "max_value": 599}
            ),
            Expect("ExpectColumnValuesToBeBetween", {"column": "elapsed_ms", "min_value": 0}),
            _true("failure_has_reason"),
        ),
    ),
    Suite(
        name="marts_entity_mentions",
        stage="marts",
        description="New entity mentions point at their surface in the article text.",
        sql="""
        SELECT m.article_id, m.version, m.field, m.surface, m.entity_type,
               substr(CASE m.field WHEN 'title' THEN v.title WHEN 'summary' THEN v.summary
                      ELSE v.body END, m.start_char + 1, m.end_char - m.start_char) = m.surface
                   AS span_matches_surface
        FROM marts.entity_mentions m
        JOIN marts.article_versions v USING (article_id, version)
        WHERE m.event_seq > {since}
        """,
        expectations=(_true("span_matches_surface"),),
    ),
    Suite(
        name="marts_sources",
        stage="marts",
        description="Source health: failure rates under the threshold (a warning).",
        sql="SELECT source_id, recent_failure_rate, failure_rate FROM marts.sources",
        expectations=(
            Expect(
                "ExpectColumnValuesToBeBetween",
                {"column": "recent_failure_rate", "min_value": 0, "max_value": MAX_FAILURE_RATE},
                severity="warning",
            ),
        ),
    ),
)

STAGES = ("raw", "staging", "marts")
