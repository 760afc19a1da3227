-- One row per entity mention in any version of any article.
select
    m.article_id,
    m.version,
    r.entity_id,
    m.surface,
    m.linked_name as name,
    m.entity_type,
    m.label,
    m.field,
    m.start_char,
    m.end_char,
    v.is_current,
    v.valid_from,
    m.event_seq
from {{ ref('int_entity_mentions_cleaned') }} as m
inner join {{ ref('int_entity_names_resolved') }} as r
    on r.name = m.linked_name and r.entity_type = m.entity_type
inner join {{ ref('article_versions') }} as v
    on v.article_id = m.article_id and v.version = m.version
