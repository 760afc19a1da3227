-- Every name a well-known place goes by, with the place's own name and both keyed
-- like entity names.
select
    name,
    place,
    kind,
    country_code,
    population,
    {{ name_key('name') }} as name_key,
    {{ name_key('place') }} as place_key
from {{ source('enrich', 'places') }}
