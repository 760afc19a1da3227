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
-- Incremental runs rebuild only the entities named by articles with new versions
-- and those whose names were resolved anew (macro entities_touched), each from
-- all its mentions.
-- depends_on: {{ ref('article_versions') }}, {{ ref('int_entity_names_resolved') }}, {{ ref('entity_mentions') }}
with
{% if is_incremental() %}
touched as (
    {{ entities_touched('(select coalesce(max(last_event_seq), 0) from ' ~ this ~ ')') }}
),
{% endif %}

mentions as (
    select m.*, a.status, a.published_at
    from {{ ref('entity_mentions') }} as m
    inner join {{ ref('articles') }} as a using (article_id)
    {% if is_incremental() %}
    where m.entity_id in (select entity_id from touched)
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
        max(event_seq) as last_event_seq
    from mentions
    group by entity_id
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
    n.last_event_seq
from canonical as c
inner join voted as v using (entity_id)
inner join numbers as n using (entity_id)
