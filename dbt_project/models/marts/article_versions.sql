{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='version_id',
    )
}}
-- One row per article version, with its validity interval and what changed.
--
-- valid_from is the publisher's time of the event when it gave one, never later
-- than when we recorded it and never earlier than the previous version's
-- valid_from (a running max keeps intervals contiguous when publisher clocks
-- disagree). valid_to is the next version's valid_from.
--
-- Incremental runs recompute every version of the articles that received new
-- events (found by log position, so late-arriving events are never missed);
-- their earlier rows change too (valid_to, is_current). The events are read from
-- the log's view: both filters reach the scan of raw.events, so only the
-- touched articles' payloads are parsed, and no typed copy of the log is kept.
with
{% if is_incremental() %}
touched as (
    select distinct article_id
    from {{ ref('stg_newsroom__article_events') }}
    where event_seq > (select coalesce(max(event_seq), 0) from {{ this }})
),
{% endif %}

events as (
    select
        *,
        least(coalesce(occurred_at, recorded_at), recorded_at) as claimed_from,
        -- a kill notice that says nothing changes no text: the next version is compared
        -- with the one before it, and the kill with nothing
        not (event_type = 'article.withdrawn' and title = '' and summary = '' and body = '') as carries_text
    from {{ ref('stg_newsroom__article_events') }}
    {% if is_incremental() %}
    where article_id in (select article_id from touched)
    {% endif %}
),

sequenced as (
    select
        *,
        max(claimed_from) over (
            partition by article_id order by version rows between unbounded preceding and current row
        ) as valid_from,
        last_value(if(carries_text, title, null) ignore nulls) over earlier as previous_title,
        last_value(if(carries_text, summary, null) ignore nulls) over earlier as previous_summary,
        last_value(if(carries_text, body, null) ignore nulls) over earlier as previous_body,
        last_value(if(carries_text, byline, null) ignore nulls) over earlier as previous_byline,
        last_value(if(carries_text, url, null) ignore nulls) over earlier as previous_url,
        count(*) filter (where carries_text) over earlier > 0 as follows_text,
        max(version) over (partition by article_id) as latest_version
    from events
    window earlier as (
        partition by article_id order by version rows between unbounded preceding and 1 preceding
    )
),

diffed as (
    select
        *,
        carries_text and follows_text as compared,
        compared and title is distinct from previous_title as title_changed,
        compared and summary is distinct from previous_summary as summary_changed,
        compared and body is distinct from previous_body as body_changed
    from sequenced
),

measured as (
    select
        *,
        case when title_changed then {{ unchanged_chars('previous_title', 'title') }} end as title_kept,
        case when summary_changed then {{ unchanged_chars('previous_summary', 'summary') }} end
            as summary_kept,
        case when body_changed then {{ unchanged_chars('previous_body', 'body') }} end as body_kept
    from diffed
)

select
    event_id as version_id,
    event_seq,
    article_id,
    version,
    event_type,
    source_id,
    valid_from,
    lead(valid_from) over (partition by article_id order by version) as valid_to,
    version = latest_version as is_current,
    event_type = 'article.withdrawn' as is_withdrawal,
    recorded_at,
    published_at,
    updated_at,
    guid,
    url,
    title,
    summary,
    body,
    byline,
    language,
    wire_version,
    wire_pubstatus,
    wire_signals,
    outlet,
    content_hash,
    title_changed,
    summary_changed,
    body_changed,
    compared and byline is distinct from previous_byline as byline_changed,
    compared and url is distinct from previous_url as url_changed,
    coalesce(length(previous_title) - title_kept, 0) as title_chars_removed,
    coalesce(length(title) - title_kept, 0) as title_chars_added,
    coalesce(length(previous_summary) - summary_kept, 0) as summary_chars_removed,
    coalesce(length(summary) - summary_kept, 0) as summary_chars_added,
    coalesce(length(previous_body) - body_kept, 0) as body_chars_removed,
    coalesce(length(body) - body_kept, 0) as body_chars_added,
    previous_title
from measured
