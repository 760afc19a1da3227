-- Every distinct name used in a mention, resolved to an entity.
--
-- 1. The entity_overrides seed wins: ignore drops the name, alias maps it to a
--    canonical name, split keeps it apart from everything else.
-- 2. Names with the same spelling-insensitive key are one entity (name_key).
-- 3. A place's other spelling in the gazetteer ("Genf", "Deutschland") is that
--    place ("Geneva", "Germany") when the spelling names one place only.
-- 4. A person's names with and without middle names are one person ("Rafael
--    Mariano Grossi" = "Rafael Grossi"); an editor keeps two apart with split.
-- 5. A lone surname or family name of a person ("Leyen", "von der Leyen") belongs
--    to the one person known by a full name with it; if several people share it,
--    it stays on its own.
-- entity_id is derived from the resolved key, so it never changes when articles
-- are added (unless the resolution of that name itself changes).
with names as (
    select linked_name as name, entity_type, count(*) as mentions
    from {{ ref('int_entity_mentions_cleaned') }}
    group by all
),

place_spellings as (
    -- countries, their subdivisions and cities of 100,000 people or more
    select name_key, min(place_key) as place_key
    from {{ ref('stg_enrich__places') }}
    where kind <> 'city' or population >= 100000
    group by name_key
    having count(distinct place_key) = 1
),

overridden as (
    select
        names.*,
        o.action,
        case
            when o.action = 'alias' and names.entity_type = 'person'
                then {{ short_person_key(name_key('o.canonical_name')) }}
            when o.action = 'alias' then {{ name_key('o.canonical_name') }}
            when o.action = 'split' then 'split:' || lower(names.name)
            when names.entity_type = 'place' and p.place_key is not null then p.place_key
            when names.entity_type = 'person' then {{ short_person_key(name_key('names.name')) }}
            else {{ name_key('names.name') }}
        end as key
    from names
    left join {{ ref('entity_overrides') }} as o on lower(o.surface) = lower(names.name)
    left join place_spellings as p on p.name_key = {{ name_key('names.name') }}
    where o.action is distinct from 'ignore'
),

full_person_keys as (
    select surname, min(key) as key
    from (
        select unnest([{{ surname_key('key') }}, {{ family_name_key('key') }}]) as surname, key
        from overridden
        where entity_type = 'person' and key <> {{ family_name_key('key') }}
          and action is distinct from 'split'
    )
    group by 1
    having count(distinct key) = 1
),

resolved as (
    select
        o.name,
        o.entity_type,
        o.mentions,
        o.action,
        case
            when o.key = {{ family_name_key('o.key') }} and o.action is null and p.key is not null then p.key
            else o.key
        end as entity_key
    from overridden as o
    left join full_person_keys as p on p.surname = o.key
)

select
    name,
    entity_type,
    mentions,
    entity_key,
    left(md5(entity_key), 16) as entity_id,
    action as override_action
from resolved
