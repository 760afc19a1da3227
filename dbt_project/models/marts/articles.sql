{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='article_id',
    )
}}
-- One row per article: its current state. A withdrawn article stays, with status
-- 'withdrawn' and the time of the kill; its text is the last version before the
-- kill when the kill notice carried none.
with versions as (
    select * from {{ ref('article_versions') }}
    {% if is_incremental() %}
    where article_id in (
        select article_id from {{ ref('article_versions') }}
        where event_seq > (select coalesce(max(last_event_seq), 0) from {{ this }})
    )
    {% endif %}
),

summarised as (
    select
        article_id,
        arg_max(version_id, version) as current_version_id,
        arg_min(valid_from, version) as first_valid_from,
        -- the first time a version gave: a feed that moves pubDate with each update claims
        -- later, and a wire that broke the story would hand its scoop to the next one
        arg_min(published_at, version) filter (where published_at is not null) as first_published_at,
        min(recorded_at) as first_seen_at,
        max(recorded_at) filter (where event_type = 'article.revised') as last_revised_at,
        max(version) as version_count,
        count(*) filter (where event_type = 'article.revised') as revision_count,
        max(event_seq) as last_event_seq,
        arg_max(version_id, version) filter (where not is_withdrawal) as last_text_version_id
    from versions
    group by article_id
)

select
    s.article_id,
    cur.source_id,
    cur.guid,
    coalesce(cur.url, txt.url) as url,
    coalesce(nullif(txt.title, ''), cur.title) as title,
    coalesce(nullif(txt.summary, ''), cur.summary) as summary,
    coalesce(nullif(txt.body, ''), cur.body) as body,
    coalesce(nullif(txt.byline, ''), cur.byline) as byline,
    coalesce(cur.language, txt.language) as language,
    coalesce(s.first_published_at, s.first_valid_from) as published_at,
    s.first_seen_at,
    s.last_revised_at,
    s.version_count,
    s.revision_count,
    case when cur.is_withdrawal then 'withdrawn' else 'live' end as status,
    case when cur.is_withdrawal then cur.valid_from end as withdrawn_at,
    cur.wire_version,
    cur.outlet,
    s.last_event_seq
from summarised as s
inner join versions as cur on cur.version_id = s.current_version_id
left join versions as txt on txt.version_id = s.last_text_version_id
