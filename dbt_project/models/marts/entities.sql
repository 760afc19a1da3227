{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='entity_id',
        post_hook="""{% if is_incremental() %}
            -- an entity all of whose names now resolve elsewhere (or are ignored)
            delete from {{ this }} where entity_id not in (
                select entity_id from {{ ref('int_entity_names_resolved') }} where entity_id is not null)
        {% endif %}""",
    )
}}
-- One row per entity: who or what the news names. Counts cover the current
-- version of articles that are not withdrawn ("who was named most"); first and
-- last seen cover every version.
--
-- Incremental runs add to the rows built what the new versions bring: each article
-- with a new version counts now for the entities its current version names (if
-- live) and no longer for those its version of the last build named (unless that
-- was a withdrawal, which counted for no one: withdrawn, then published again); the new
-- versions' mentions add their names, types and times. The canonical name is
-- chosen again from the entity's names. Only the entities whose names were resolved
-- anew (entities_relinked: any of their articles may count for another now) are
-- recounted from all their mentions. Adding is safe because a row's
-- last_article_event_seq is the newest event of any article that names the entity
-- (in any version), so every event past the watermark (the newest of all rows) is
-- counted in none, a withdrawal or a revision that names nobody included; a busy
-- entity costs its new mentions, not its history.
-- depends_on: {{ ref('article_versions') }}, {{ ref('int_entity_names_resolved') }}, {{ ref('entity_mentions') }}
with
{% if is_incremental() %}
{% set built_through %}(select coalesce(max(last_article_event_seq), 0) from {{ this }}){% endset %}
recounted as (
    select entity_id from ({{ entities_relinked(built_through) }}) where entity_id is not null
),

changed_articles as (
    select
        article_id,
        -- the version the rows were built with (none for an article seen for the first time)
        max(version) filter (where event_seq <= {{ built_through }}) as built_version,
        -- whether it was a withdrawal: then its mentions were counted for no one
        coalesce(arg_max(is_withdrawal, version) filter (where event_seq <= {{ built_through }}), false)
            as built_withdrawn
    from {{ ref('article_versions') }}
    where article_id in (
        select article_id from {{ ref('article_versions') }} where event_seq > {{ built_through }}
    )
    group by article_id
),

-- every version's mentions of the articles with a new version, of the entities added to
changed_mentions as (
    select m.*, a.status, a.last_event_seq as article_event_seq, c.built_version, c.built_withdrawn
    from {{ ref('entity_mentions') }} as m
    inner join changed_articles as c using (article_id)
    inner join {{ ref('articles') }} as a using (article_id)
    where m.entity_id not in (select entity_id from recounted)
),

added as (
    select
        entity_id,
        list(distinct name) filter (where event_seq > {{ built_through }}) as new_names,
        min(valid_from) filter (where event_seq > {{ built_through }}) as first_seen_at,
        max(valid_from) filter (where event_seq > {{ built_through }}) as last_seen_at,
        count(distinct article_id) filter (where is_current and status = 'live')
            - count(distinct article_id) filter (where version = built_version and not built_withdrawn)
            as article_change,
        count(*) filter (where is_current and status = 'live')
            - count(*) filter (where version = built_version and not built_withdrawn) as mention_change,
        max(event_seq) as last_event_seq,
        max(article_event_seq) as last_article_event_seq
    from changed_mentions
    group by entity_id
),
{% endif %}

-- the mentions counted in full: all of them, or in an incremental run the recounted entities'
mentions as (
    select m.*, a.status, a.last_event_seq as article_event_seq
    from {{ ref('entity_mentions') }} as m
    inner join {{ ref('articles') }} as a using (article_id)
    {% if is_incremental() %}
    where m.entity_id in (select entity_id from recounted)
    {% endif %}
),

names as (
    select
        r.entity_id,
        r.name,
        r.override_action,
        r.curated_type,
        r.curated_name,
        c.mentions
    from {{ ref('int_entity_names_resolved') }} as r
    inner join {{ ref('int_entity_names_counted') }} as c using (name, entity_type)
    where r.entity_id in (select entity_id from mentions)
    {% if is_incremental() %}
       or r.entity_id in (select entity_id from added)
    {% endif %}
),

canonical as (
    select
        entity_id,
        -- a curated canonical name wins; else the most used full spelling
        coalesce(
            max(curated_name) filter (where override_action in ('alias', 'split')),
            -- ties broken by the text itself, so every build picks the same spelling
            arg_max(name, (mentions, length(name), name))
        ) as canonical_name,
        max(curated_type) as curated_type
    from (
        -- a name used with several types counts once per type, as it always has
        select entity_id, name, override_action, curated_type, curated_name, sum(mentions) as mentions
        from names
        group by all
    )
    group by entity_id
),

types as (
    select entity_id, entity_type, count(*) as votes
    from mentions
    group by all
    {% if is_incremental() %}
    union all
    -- the votes counted before and those of the new versions' mentions
    select entity_id, entity_type, sum(votes)::bigint as votes
    from (
        select entity_id, unnest(map_keys(type_votes)) as entity_type, unnest(map_values(type_votes)) as votes
        from {{ this }}
        where entity_id in (select entity_id from added)
        union all
        select entity_id, entity_type, count(*)
        from changed_mentions
        where event_seq > {{ built_through }}
        group by all
    )
    group by all
    {% endif %}
),

voted as (
    select
        entity_id,
        arg_max(entity_type, (votes, entity_type <> 'other', entity_type)) as entity_type,
        sum(votes) filter (where entity_type = 'person') as person_votes,
        sum(votes) as all_votes
    from types
    group by entity_id
),

known_places as (
    select distinct name_key from {{ ref('stg_enrich__places') }}
),

-- grouped by entity alone, before the joins: fewer keys to group a busy entity's mentions by
numbers as (
    select
        entity_id,
        -- distinct while aggregating: no list of a busy entity's every mention first
        list_sort(list(distinct name)) as aliases,
        min(valid_from) as first_seen_at,
        max(valid_from) as last_seen_at,
        count(distinct article_id) filter (where is_current and status = 'live') as article_count,
        count(*) filter (where is_current and status = 'live') as mention_count,
        max(event_seq) as last_event_seq,
        max(article_event_seq) as last_article_event_seq
    from mentions
    group by entity_id
    {% if is_incremental() %}
    union all
    select
        n.entity_id,
        list_sort(list_distinct(list_concat(coalesce(o.aliases, []), coalesce(n.new_names, [])))),
        least(o.first_seen_at, n.first_seen_at),
        greatest(o.last_seen_at, n.last_seen_at),
        coalesce(o.article_count, 0) + n.article_change,
        coalesce(o.mention_count, 0) + n.mention_change,
        greatest(o.last_event_seq, n.last_event_seq),
        greatest(o.last_article_event_seq, n.last_article_event_seq)
    from added as n
    left join {{ this }} as o using (entity_id)
    {% endif %}
)

select
    c.entity_id,
    c.canonical_name,
    coalesce(
        c.curated_type,
        -- A well-known place is a place, even when the models mostly said person,
        -- unless that evidence is overwhelming (20 mentions or more, 95% of them).
        case
            when v.entity_type = 'person'
                and {{ name_key('c.canonical_name') }} in (select name_key from known_places)
                and not (v.person_votes >= 20 and v.person_votes >= 0.95 * v.all_votes)
                then 'place'
            else v.entity_type
        end
    ) as entity_type,
    (select map(list(t.entity_type order by t.entity_type), list(t.votes order by t.entity_type))
     from types t where t.entity_id = c.entity_id) as type_votes,
    n.aliases,
    n.first_seen_at,
    n.last_seen_at,
    n.article_count,
    n.mention_count,
    n.last_event_seq,
    n.last_article_event_seq
from canonical as c
inner join voted as v using (entity_id)
inner join numbers as n using (entity_id)
