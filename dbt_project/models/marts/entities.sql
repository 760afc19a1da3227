-- One row per entity: who or what the news names. Counts cover the current
-- version of articles that are not withdrawn ("who was named most"); first and
-- last seen cover every version.
with mentions as (
    select m.*, a.status, a.published_at
    from {{ ref('entity_mentions') }} as m
    inner join {{ ref('articles') }} as a using (article_id)
),

names as (
    select
        r.entity_id,
        r.name,
        r.override_action,
        sum(r.mentions) as mentions
    from {{ ref('int_entity_names_resolved') }} as r
    group by all
),

canonical as (
    select
        n.entity_id,
        -- a curated canonical name wins; else the most used full spelling
        coalesce(
            max(o.canonical_name) filter (where o.action in ('alias', 'split')),
            -- ties broken by the text itself, so every build picks the same spelling
            arg_max(n.name, (n.mentions, length(n.name), n.name))
        ) as canonical_name,
        max(o.entity_type) as curated_type
    from names as n
    left join {{ ref('entity_overrides') }} as o on lower(o.surface) = lower(n.name)
    group by n.entity_id
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
    list_sort(list_distinct(list(m.name))) as aliases,
    min(m.valid_from) as first_seen_at,
    max(m.valid_from) as last_seen_at,
    count(distinct m.article_id) filter (where m.is_current and m.status = 'live') as article_count,
    count(*) filter (where m.is_current and m.status = 'live') as mention_count
from canonical as c
inner join voted as v using (entity_id)
inner join mentions as m using (entity_id)
group by c.entity_id, c.canonical_name, c.curated_type, v.entity_type, v.person_votes, v.all_votes
