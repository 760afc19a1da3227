{#- The entities whose numbers may have changed since the log position `built_through`:
    those named in any version of an article with a newer version, and those that
    gained or lost a known name whose resolution changed since (change_stamp). -#}
{% macro entities_touched(built_through) -%}
select m.entity_id
from {{ ref('entity_mentions') }} as m
semi join (
    select article_id from {{ ref('article_versions') }} where event_seq > {{ built_through }}
) as v on v.article_id = m.article_id
union
select unnest([entity_id, previous_entity_id])
from {{ ref('int_entity_names_resolved') }}
-- a name first seen is in an article with a newer version, found above
where resolved_at_seq > {{ built_through }} and not is_new
{%- endmacro %}

{#- The articles naming a known name whose resolution changed since the log position
    `built_through` (change_stamp): their mentions now belong to another entity. -#}
{% macro articles_relinked(built_through) -%}
select m.article_id
from {{ ref('int_entity_mentions_cleaned') }} as m
semi join (
    select name, entity_type from {{ ref('int_entity_names_resolved') }}
    where resolved_at_seq > {{ built_through }} and not is_new
) as r on r.name = m.linked_name and r.entity_type = m.entity_type
{%- endmacro %}
