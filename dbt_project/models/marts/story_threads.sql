-- One row per story thread: the articles, from any source, covering one
-- developing story. Counts cover current members (a withdrawn article leaves).
--
-- The label is the thread's most representative headline: among the titles in
-- the thread's most common language, the one sharing most words with the others
-- (a medoid by word overlap; words of four letters or more, so "the" and "to"
-- do not count; between equals, the earliest), compared within the first
-- {{ label_candidates }} members so a big thread costs no more than a small one.
-- The first report is the member with the earliest publisher time (its recorded
-- time when the feed gives none).
--
-- Incremental runs rebuild the threads whose members or merges changed
-- (threads_touched), whose members' mentions were resolved anew or name an entity
-- that was renamed or retyped, and those whose status the threads' new clock
-- changes (thread_status: active ones gone quiet; the only column of an untouched
-- thread that time alone changes). Only the first kind is read anew for its label
-- and first report (the costly part); the others keep theirs (kept), as the same
-- members give the same ones. A thread left with no article and no merge is
-- deleted after.
{% set label_candidates = 40 %}
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='thread_id',
        post_hook="""{% if is_incremental() %}
            delete from {{ this }}
            where thread_id not in (select thread_id from {{ ref('thread_articles') }})
              and thread_id not in (
                  select thread_id from {{ ref('int_thread_merges_resolved') }}
                  where current_thread_id in (select thread_id from {{ ref('thread_articles') }}))
        {% endif %}""",
    )
}}
-- depends_on: {{ ref('stg_enrich__thread_assignments') }}, {{ ref('stg_enrich__thread_merges') }}
-- depends_on: {{ ref('int_entity_mentions_cleaned') }}, {{ ref('int_entity_names_resolved') }}, {{ ref('int_entity_labels') }}
with
as_of as (
    select max(event_time) as as_of from {{ ref('stg_enrich__thread_assignments') }}
),

{% if is_incremental() %}
{% set built_through %}(select coalesce(max(last_event_seq), 0) from {{ this }}){% endset %}
relinked_articles as (
    {{ articles_relinked(built_through) }}
    union
    select article_id from {{ ref('entity_mentions') }}
    where is_current and entity_id in (
        select entity_id from {{ ref('int_entity_labels') }} where changed_at_seq > {{ built_through }}
    )
),

rebuilt as (
    {{ threads_touched(built_through) }}
),

touched as (
    select thread_id from rebuilt
    union
    select thread_id from {{ ref('thread_articles') }}
    where article_id in (select article_id from relinked_articles)
    union
    select thread_id from {{ this }} cross join as_of
    where status <> 'merged' and status <> {{ thread_status('last_seen_at', 'as_of') }}
),

kept as (
    -- touched threads whose members did not change: their label and first report stand
    select thread_id, label, first_published_at, first_source_id, languages
    from {{ this }}
    where thread_id in (select thread_id from touched) and thread_id not in (select thread_id from rebuilt)
),
{% endif %}

members as (
    select
        t.*, a.source_id, a.title,
        nullif(lower(split_part(replace(a.language, '_', '-'), '-', 1)), '') as language,
        coalesce(a.published_at, a.first_seen_at) as reported_at
    from {{ ref('thread_articles') }} as t
    inner join {{ ref('articles') }} as a using (article_id)
    {% if is_incremental() %}
    where t.thread_id in (select thread_id from touched)
    {% endif %}
),

current_members as (
    select * from members where is_member
),

reread_members as (
    -- the members the label and the first report are read from anew
    select * from current_members
    {% if is_incremental() %}
    where thread_id in (select thread_id from rebuilt)
    {% endif %}
),

dominant_language as (
    select thread_id, arg_max(language, n) as language
    from (
        select thread_id, coalesce(language, '') as language, count(*) as n
        from reread_members group by all
    )
    group by thread_id
),

label_candidates as (
    select m.thread_id, m.article_id, m.title, m.joined_at,
        list_distinct(list_filter(
            string_split(regexp_replace(lower(m.title), '[^\p{L}\p{N}]+', ' ', 'g'), ' '),
            lambda w: length(w) >= 4
        )) as words
    from reread_members as m
    inner join dominant_language as d
        on d.thread_id = m.thread_id and d.language = coalesce(m.language, '')
    where m.title is not null
    qualify row_number() over (partition by m.thread_id order by m.joined_at, m.article_id)
        <= {{ label_candidates }}
),

candidate_words as (
    select thread_id, article_id, length(words) as word_count, unnest(words) as word from label_candidates
),

shared_words as (
    -- pairs of candidates that share a word, found through the words: comparing every
    -- pair's lists cost 40 x 39 list operations a thread
    select a.thread_id, a.article_id, a.word_count, b.word_count as other_word_count, count(*) as shared
    from candidate_words as a
    inner join candidate_words as b
        on b.thread_id = a.thread_id and b.word = a.word and b.article_id <> a.article_id
    group by a.thread_id, a.article_id, a.word_count, b.article_id, b.word_count
),

candidate_overlaps as (
    -- each candidate's summed Jaccard similarity with the others (a pair sharing no word adds 0)
    select thread_id, article_id,
        sum(shared::double / (word_count + other_word_count - shared)) as overlap
    from shared_words
    group by thread_id, article_id
),

medoids as (
    select
        a.thread_id,
        -- rounded: equal word sets tie exactly, whatever order the sum added them in
        arg_min(a.title, (-round(coalesce(o.overlap, 0), 9), a.joined_at, a.article_id)) as label
    from label_candidates as a
    left join candidate_overlaps as o using (thread_id, article_id)
    group by a.thread_id
    having count(*) > 1  -- one candidate is compared with none: the label falls back (below)
    {% if is_incremental() %}
    union all
    select thread_id, label from kept
    {% endif %}
),

first_reports as (
    select
        thread_id,
        min(reported_at) as first_published_at,
        arg_min(source_id, (reported_at, article_id)) as first_source_id,
        list(distinct language order by language) filter (where language is not null) as languages
    from reread_members
    group by thread_id
    {% if is_incremental() %}
    union all
    select thread_id, first_published_at, first_source_id, languages from kept
    {% endif %}
),

entity_counts as (
    select m.thread_id, e.canonical_name, count(distinct m.article_id) as articles
    from members as m
    inner join {{ ref('entity_mentions') }} as em on em.article_id = m.article_id and em.is_current
    inner join {{ ref('entities') }} as e on e.entity_id = em.entity_id
    where m.is_member and e.entity_type in ('person', 'organisation', 'place')
    group by all
),

top_entities as (
    -- the five first by (articles desc, name): kept as they come, no thread's whole list sorted
    select thread_id, arg_min(canonical_name, (-articles, canonical_name), 5) as top_entities
    from entity_counts
    group by thread_id
),

threads as (
    select
        m.thread_id,
        coalesce(
            any_value(md.label),
            max(m.title) filter (where m.article_id = m.thread_id),
            arg_min(m.title, (m.joined_at, m.article_id))
        ) as label,
        min(m.joined_at) as first_seen_at,
        any_value(fr.first_published_at) as first_published_at,
        any_value(fr.first_source_id) as first_source_id,
        coalesce(any_value(fr.languages), []::varchar[]) as languages,
        max(m.joined_at) as last_seen_at,
        count(*) filter (where m.is_member) as article_count,
        count(distinct m.source_id) filter (where m.is_member) as source_count,
        count(*) filter (where m.is_member and m.duplicate_of is not null) as copy_count,
        coalesce(any_value(te.top_entities), []::varchar[]) as top_entities,
        {{ thread_status('max(m.joined_at)', 'any_value(as_of.as_of)') }} as status,
        max(m.last_event_seq) as last_event_seq
    from members as m
    cross join as_of
    left join top_entities as te using (thread_id)
    left join medoids as md using (thread_id)
    left join first_reports as fr using (thread_id)
    group by m.thread_id
)

select * exclude (last_event_seq), null::varchar as merged_into, null::timestamp as merged_at, last_event_seq
from threads
union all
-- a merged thread keeps its id: it points at the thread that holds its articles now
select
    r.thread_id, t.label, null, null, null, []::varchar[], null, 0, 0, 0, []::varchar[], 'merged',
    r.current_thread_id, r.merged_at, null
from {{ ref('int_thread_merges_resolved') }} as r
inner join threads as t on t.thread_id = r.current_thread_id
