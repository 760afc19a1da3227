{#- The entities that gained or lost a known name whose resolution changed since the
    log position `built_through` (change_stamp): any of their articles may count
    for another entity now. -#}
{% macro entities_relinked(built_through) -%}
select unnest([entity_id, previous_entity_id]) as entity_id
from {{ ref('int_entity_names_resolved') }}
where resolved_at_seq > {{ built_through }} and not is_new
{%- endmacro %}

{#- The (entity, day) pairs whose numbers may have changed since the log position
    `built_through` through articles with a newer version: every entity named in
    any of their versions, on every day any version was published or recorded (an
    article's day is one of those, before and after). Entities relinked since are
    not here: all their days may change (entities_relinked). -#}
{% macro entity_days_touched(built_through) -%}
with changed as (
    select distinct article_id from {{ ref('article_versions') }} where event_seq > {{ built_through }}
),
days as (
    select distinct article_id, unnest([published_at::date, valid_from::date]) as day
    from {{ ref('article_versions') }}
    where article_id in (select article_id from changed)
)
select distinct m.entity_id, d.day
from {{ ref('entity_mentions') }} as m
inner join days as d using (article_id)
where m.article_id in (select article_id from changed)
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
