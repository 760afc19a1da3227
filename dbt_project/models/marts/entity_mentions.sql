{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='article_id',
        pre_hook="""{% if is_incremental() %}
            -- an article whose every name is now ignored has no row to replace its old ones
            delete from {{ this }} where (name, entity_type) in (
                select name, entity_type from {{ ref('int_entity_names_resolved') }}
                where entity_id is null and not is_new
                  and resolved_at_seq > (select coalesce(max(event_seq), 0) from {{ this }}))
        {% endif %}""",
    )
}}
-- One row per entity mention in any version of any article.
--
-- Incremental runs rebuild the articles that received new versions (their older
-- mentions stop being current) and the articles naming a name whose resolution
-- changed since the last build (resolved_at_seq above the highest event_seq
-- built; see the change_stamp macro).
{% if is_incremental() %}
{% set built_through %}(select coalesce(max(event_seq), 0) from {{ this }}){% endset %}
{% endif %}
with
{% if is_incremental() %}
touched as (
    select article_id from {{ ref('article_versions') }} where event_seq > {{ built_through }}
    union
    {{ articles_relinked(built_through) }}
),
{% endif %}

mentions as (
    select * from {{ ref('int_entity_mentions_cleaned') }}
    {% if is_incremental() %}
    where article_id in (select article_id from touched)
    {% endif %}
)

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
from mentions as m
inner join {{ ref('int_entity_names_resolved') }} as r
    on r.name = m.linked_name and r.entity_type = m.entity_type
inner join {{ ref('article_versions') }} as v
    on v.article_id = m.article_id and v.version = m.version
where r.entity_id is not null
