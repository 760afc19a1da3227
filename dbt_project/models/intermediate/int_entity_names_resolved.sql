{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['name', 'entity_type'],
    )
}}
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
--
-- Resolution is global (a new person with a known surname makes that lone
-- surname ambiguous), so every name is resolved again each run: that costs the
-- number of distinct names, not of mentions. Only names whose outcome changed are
-- stored again, stamped with the run's change_stamp (resolved_at_seq) and
-- the entity they left (previous_entity_id; is_new for a name first seen): the marts rebuild just the articles
-- and entities those names touch. An ignored name stays, with no entity_id, so
-- that un-ignoring it is a change too.
-- depends_on: {{ ref('int_log_positions_built') }} (change_stamp reads it)
with names as (
    -- the key worked out once a name: the regular expressions are most of a run's cost here
    select name, entity_type, {{ name_key('name') }} as name_key from {{ ref('int_entity_names_counted') }}
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
        o.entity_type as curated_type,
        o.canonical_name as curated_name,
        case
            when o.action = 'alias' and names.entity_type = 'person'
                then {{ short_person_key(name_key('o.canonical_name')) }}
            when o.action = 'alias' then {{ name_key('o.canonical_name') }}
            when o.action = 'split' then 'split:' || lower(names.name)
            when names.entity_type = 'place' and p.place_key is not null then p.place_key
            when names.entity_type = 'person' then {{ short_person_key('names.name_key') }}
            else names.name_key
        end as key
    from names
    left join {{ ref('entity_overrides') }} as o on lower(o.surface) = lower(names.name)
    left join place_spellings as p on p.name_key = names.name_key
),

full_person_keys as (
    select surname, min(key) as key
    from (
        select unnest([{{ surname_key('key') }}, {{ family_name_key('key') }}]) as surname, key
        from overridden
        where entity_type = 'person' and key <> {{ family_name_key('key') }}
          and action is distinct from 'split' and action is distinct from 'ignore'
    )
    group by 1
    having count(distinct key) = 1
),

resolved as (
    select
        o.name,
        o.entity_type,
        o.action,
        o.curated_type,
        o.curated_name,
        case
            when o.key = {{ family_name_key('o.key') }} and o.action is null and p.key is not null then p.key
            else o.key
        end as entity_key
    from overridden as o
    left join full_person_keys as p on p.surname = o.key
),

outcome as (
    select
        name,
        entity_type,
        entity_key,
        case when action is distinct from 'ignore' then left(md5(entity_key), 16) end as entity_id,
        action as override_action,
        curated_type,
        curated_name
    from resolved
)

select
    n.*,
    {% if is_incremental() -%}
    o.name is null as is_new,
    o.entity_id as previous_entity_id,
    {%- else -%}
    true as is_new,
    null::varchar as previous_entity_id,
    {%- endif %}
    {{ change_stamp('resolved_at_seq') }} as resolved_at_seq
from outcome as n
{% if is_incremental() %}
left join {{ this }} as o using (name, entity_type)
where o.name is null
   or (n.entity_key, n.entity_id, n.override_action, n.curated_type, n.curated_name)
      is distinct from (o.entity_key, o.entity_id, o.override_action, o.curated_type, o.curated_name)
{% endif %}
