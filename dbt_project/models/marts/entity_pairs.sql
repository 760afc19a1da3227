{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['entity_a', 'entity_b'],
        post_hook="{% if is_incremental() %}delete from {{ this }} where article_count = 0{% endif %}",
    )
}}
-- Entities named together in the current version of the same live article.
--
-- Incremental runs add to the rows already built what the new versions bring:
-- an article seen for the first time counts once for each pair it names; an
-- article revised once since, live and with the same publication time before
-- and after, counts for the pairs it names now and did not name then. Its log
-- position and days join the row's. Only the pairs that may have lost an article
-- are recounted from all their articles: those a revised article named before and
-- no longer does, every pair of any other article with a newer version
-- (withdrawn, redated, or revised twice since), and every pair of an entity
-- relinked by resolution (entities_relinked: its articles may now count for
-- another). A recounted pair no longer named together is written with a zero
-- count, replacing the old row, and the zero row is then deleted.
--
-- Why adding is safe: a row's last_event_seq is the newest version counted in it,
-- so every version past the watermark (the newest of all rows) is counted in none.
-- depends_on: {{ ref('article_versions') }}, {{ ref('int_entity_names_resolved') }}, {{ ref('entity_mentions') }}
with
{% if is_incremental() %}
{% set built_through %}(select coalesce(max(last_event_seq), 0) from {{ this }}){% endset %}
changed_versions as (
    select article_id, version, event_seq, coalesce(is_withdrawal, false) as is_withdrawal, published_at
    from {{ ref('article_versions') }}
    where article_id in (
        select article_id from {{ ref('article_versions') }} where event_seq > {{ built_through }}
    )
),

changed_articles as (
    select
        article_id,
        -- the version the rows were built with (none for an article seen for the first time)
        max(version) filter (where event_seq <= {{ built_through }}) as built_version,
        count(*) filter (where event_seq > {{ built_through }}) as new_versions
    from changed_versions
    group by article_id
),

steady_revisions as (
    select c.article_id, c.built_version
    from changed_articles as c
    inner join changed_versions as b on b.article_id = c.article_id and b.version = c.built_version
    inner join changed_versions as n on n.article_id = c.article_id and n.event_seq > {{ built_through }}
    where c.new_versions = 1
      and not b.is_withdrawal and not n.is_withdrawal
      and b.published_at = n.published_at
),

other_revised_entities as (
    select distinct m.article_id, m.entity_id
    from {{ ref('entity_mentions') }} as m
    semi join (
        select article_id from changed_articles where built_version is not null
        except
        select article_id from steady_revisions
    ) as c on c.article_id = m.article_id
),

contributing_entities as (
    select distinct m.article_id, m.entity_id, a.published_at, m.event_seq
    from {{ ref('entity_mentions') }} as m
    inner join {{ ref('articles') }} as a using (article_id)
    where m.is_current and a.status = 'live'
      and m.article_id in (
          select article_id from changed_articles where built_version is null
          union all
          select article_id from steady_revisions
      )
),

contributed_pairs as (
    select
        a.article_id,
        a.entity_id as entity_a,
        b.entity_id as entity_b,
        a.published_at,
        greatest(a.event_seq, b.event_seq) as event_seq
    from contributing_entities as a
    inner join contributing_entities as b on a.article_id = b.article_id and a.entity_id < b.entity_id
),

built_entities as (
    select distinct m.article_id, m.entity_id
    from {{ ref('entity_mentions') }} as m
    inner join steady_revisions as s on s.article_id = m.article_id and m.version = s.built_version
),

built_pairs as (
    select a.article_id, a.entity_id as entity_a, b.entity_id as entity_b
    from built_entities as a
    inner join built_entities as b on a.article_id = b.article_id and a.entity_id < b.entity_id
),

added as (
    select
        c.entity_a,
        c.entity_b,
        count(*) filter (where p.article_id is null) as article_count,
        min(c.published_at)::date as first_day,
        max(c.published_at)::date as last_day,
        max(c.event_seq) as last_event_seq
    from contributed_pairs as c
    left join built_pairs as p using (article_id, entity_a, entity_b)
    group by all
),

recounted_pairs as (
    select a.entity_id as entity_a, b.entity_id as entity_b
    from other_revised_entities as a
    inner join other_revised_entities as b on a.article_id = b.article_id and a.entity_id < b.entity_id
    union
    select entity_a, entity_b
    from built_pairs
    anti join contributed_pairs using (article_id, entity_a, entity_b)
),

recounted_entities as (
    select entity_a as entity_id from recounted_pairs
    union
    select entity_b from recounted_pairs
),

relinked as (
    {{ entities_relinked(built_through) }}
),
{% endif %}

article_entities as (
    select distinct m.article_id, m.entity_id, a.published_at, m.event_seq
    from (
        -- chosen before the join: with the filter after it, every current mention was joined first
        select article_id, entity_id, event_seq from {{ ref('entity_mentions') }}
        where is_current
        {% if is_incremental() %}
          and (
              entity_id in (select entity_id from recounted_entities)
              or article_id in (
                  select article_id from {{ ref('entity_mentions') }}
                  where is_current and entity_id in (select entity_id from relinked)
              )
          )
        {% endif %}
    ) as m
    inner join {{ ref('articles') }} as a using (article_id)
    where a.status = 'live'
),

counted as (
    select
        a.entity_id as entity_a,
        b.entity_id as entity_b,
        count(*) as article_count,
        min(a.published_at)::date as first_day,
        max(a.published_at)::date as last_day,
        max(greatest(a.event_seq, b.event_seq)) as last_event_seq
    from article_entities as a
    inner join article_entities as b on a.article_id = b.article_id and a.entity_id < b.entity_id
    {% if is_incremental() %}
    where (a.entity_id, b.entity_id) in (select (entity_a, entity_b) from recounted_pairs)
       or a.entity_id in (select entity_id from relinked)
       or b.entity_id in (select entity_id from relinked)
    {% endif %}
    group by all
)

{% if is_incremental() %}
select
    k.entity_a,
    k.entity_b,
    coalesce(c.article_count, 0) as article_count,
    c.first_day,
    c.last_day,
    c.last_event_seq
from (
    select entity_a, entity_b from counted
    union
    select entity_a, entity_b from {{ this }}
    where (entity_a, entity_b) in (select (entity_a, entity_b) from recounted_pairs)
       or entity_a in (select entity_id from relinked)
       or entity_b in (select entity_id from relinked)
) as k
left join counted as c using (entity_a, entity_b)

union all

-- the other pairs the new versions name: the row built so far and what they add
select
    n.entity_a,
    n.entity_b,
    coalesce(o.article_count, 0) + n.article_count as article_count,
    least(o.first_day, n.first_day) as first_day,
    greatest(o.last_day, n.last_day) as last_day,
    greatest(o.last_event_seq, n.last_event_seq) as last_event_seq
from added as n
anti join recounted_pairs as r on r.entity_a = n.entity_a and r.entity_b = n.entity_b
left join {{ this }} as o on o.entity_a = n.entity_a and o.entity_b = n.entity_b
where not exists (select 1 from relinked as l where l.entity_id in (n.entity_a, n.entity_b))
{% else %}
select * from counted
{% endif %}
