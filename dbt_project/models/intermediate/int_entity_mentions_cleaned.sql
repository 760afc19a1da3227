{{
    config(
        materialized='incremental',
        incremental_strategy='append',
    )
}}
-- Entity mentions of every article version, after explainable clean-up rules,
-- with a person's lone surname linked to the full name used in the same
-- article ("Merz" after "Friedrich Merz"). Appended per new article event.
--
-- Rules:
--   * only names: PERSON, ORG, PLACE, MISC (our models: nationalities, events,
--     titles of works...), and GPE, LOC, FAC, NORP, EVENT, PRODUCT, WORK_OF_ART,
--     LAW (spaCy's label set; dates, numbers, money... are not entities here);
--   * agency credits like "(sda/dpa/con)" and photo credits ("Image: keystone")
--     are not entities; neither is a span without a capital letter or a letter;
--   * a leading "the" and a trailing possessive 's are not part of the mention
--     (its offsets and surface exclude them);
--   * a nationality adjective in the demonyms seed names its place ("Ukrainian"
--     -> Ukraine), whether the model called it NORP or GPE;
--   * a name of two words or more ending in a word of the name_head_words seed has
--     that word's type ("Stena Line" an organisation, "Charles de Gaulle Airport"
--     a place), whatever the model said;
--   * a full name's last word found alone in another field of the same version, where
--     the model found nothing, is a mention of that person (headlines name people by
--     surname: "Selenskyj zu UN-Gesprächen" above "Wolodymyr Selenskyj ist ...");
--   * a person named by a single everyday word, its plural or an agent noun made
--     from it (common_words seed: "Terminal", "Daughter", "Campaigners") is dropped unless the article also names that person in full:
--     capitals at the start of a sentence or in a title-case headline say nothing.
with fields as (
    select *, case field when 'title' then 0 when 'summary' then 1 else 2 end as field_rank
    from {{ ref('stg_enrich__field_texts') }}
    {% if is_incremental() %}
    where event_seq > (select coalesce(max(event_seq), 0) from {{ this }})
    {% endif %}
),

mentions as (
    select
        f.event_seq, f.article_id, f.version, f.field, t.extractor, f.field_rank,
        m.mention_index, m.label,
        -- the span without a leading "the" and a trailing possessive, offsets moved to match
        (m.start_char + length(m.surface) - length(regexp_replace(m.surface, '^(the|The|THE)\s+', '')))::integer
            as start_char,
        (m.end_char - length(m.surface) + length(regexp_replace(m.surface, '[''’]s$', '')))::integer
            as end_char,
        regexp_replace(regexp_replace(m.surface, '^(the|The|THE)\s+', ''), '[''’]s$', '') as bare_name
    from fields as f
    inner join {{ ref('stg_enrich__mentions') }} as m on m.text_hash = f.text_hash
    inner join {{ ref('stg_enrich__texts') }} as t on t.text_hash = f.text_hash
    where m.label in (
        'PERSON', 'ORG', 'PLACE', 'MISC', 'GPE', 'LOC', 'FAC', 'NORP', 'EVENT', 'PRODUCT', 'WORK_OF_ART', 'LAW'
    )
),

kept as (
    select * from mentions
    where not regexp_matches(bare_name, '^\(?[A-Za-z]{2,6}(/[A-Za-z]{2,6})+\)?$')
      and not regexp_matches(bare_name, '^(Image|Images|Photo|Photos|Picture|Bild|Foto|Credit)s?\b')
      and regexp_matches(bare_name, '\p{Lu}')
      and regexp_matches(bare_name, '\p{L}{2}')
),

typed as (
    select
        kept.*,
        kept.bare_name as surface,
        coalesce(d.place, kept.bare_name) as name,
        case
            when d.place is not null then 'place'
            when h.entity_type is not null then h.entity_type
            when label = 'PERSON' then 'person'
            when label = 'ORG' then 'organisation'
            when label in ('PLACE', 'GPE', 'LOC', 'FAC') then 'place'
            when label = 'NORP' then 'group'
            else 'other'
        end as entity_type
    from kept
    left join {{ ref('demonyms') }} as d
        on kept.label in ('NORP', 'MISC', 'GPE', 'LOC', 'PLACE') and d.demonym = kept.bare_name
    left join {{ ref('name_head_words') }} as h
        on kept.bare_name like '% %' and h.word = regexp_extract(kept.bare_name, '(\S+)$', 1)
),

keyed_by_model as (
    select *, {{ name_key('name') }} as name_key from typed
),

full_name_surnames as (
    select distinct event_seq, field, regexp_extract(bare_name, '(\S+)$', 1) as surname
    from keyed_by_model
    where entity_type = 'person' and bare_name like '% %'
),

surname_occurrences as (
    -- a full name's last word standing alone in another field of the same version, where
    -- the model found nothing ("Selenskyj" in a headline, "Wolodymyr Selenskyj" in its
    -- summary), is a mention of that person: its first whole-word occurrence there
    select
        f.event_seq, f.article_id, f.version, f.field, t.extractor, f.field_rank, s.surname,
        string_split(
            case f.field when 'title' then e.title when 'summary' then e.summary else e.body end, s.surname
        ) as pieces
    from fields as f
    inner join {{ ref('stg_enrich__texts') }} as t on t.text_hash = f.text_hash
    inner join {{ ref('stg_newsroom__article_events') }} as e on e.event_seq = f.event_seq
    inner join full_name_surnames as s on s.event_seq = f.event_seq and s.field <> f.field
    -- a capitalised word of letters only: whole words of it are found by splitting on it (below)
    where regexp_full_match(s.surname, '\p{Lu}\p{Ll}{2,}')
),

surnames_found as (
    -- The text around the surname's k-th occurrence is pieces[k] and pieces[k + 1]: it is
    -- a whole word where neither piece touches it with a letter or a digit (an empty piece
    -- is the text's start or end, else another occurrence). Not a regular expression
    -- built from the surname: compiling one for every row cost a millisecond each.
    -- Occurrences cannot overlap: a surname is a capital followed by lower-case letters.
    select distinct * exclude (occurrences), occurrences[1].start_char as start_char
    from (
        select
            event_seq, article_id, version, field, extractor, field_rank, surname,
            list_filter(
                list_transform(range(1, len(pieces)), lambda k: {
                    'start_char': (
                        list_sum(list_transform(pieces[1:k], lambda p: length(p))) + (k - 1) * length(surname)
                    )::integer,
                    'whole_word': (
                        case when pieces[k] = '' then k = 1
                             else not regexp_matches(right(pieces[k], 1), '[\pL\pN]') end
                    ) and (
                        case when pieces[k + 1] = '' then k + 1 = len(pieces)
                             else not regexp_matches(left(pieces[k + 1], 1), '[\pL\pN]') end
                    )
                }),
                lambda occurrence: occurrence.whole_word
            ) as occurrences
        from surname_occurrences
    )
    where len(occurrences) > 0
),

keyed as (
    select * from keyed_by_model
    union all by name
    select
        event_seq, article_id, version, field, extractor, field_rank,
        1000000 + start_char as mention_index,  -- apart from the model's own indexes
        'PERSON' as label, start_char, (start_char + length(surname))::integer as end_char,
        surname as bare_name, surname as surface, surname as name, 'person' as entity_type,
        {{ name_key('surname') }} as name_key
    from surnames_found as n
    where not exists (
        select 1 from keyed_by_model as m
        where m.event_seq = n.event_seq and m.field = n.field
          and m.start_char < n.start_char + length(n.surname) and n.start_char < m.end_char
    )
),

full_names as (
    -- a full name is found by its last word and by its family name ("Leyen", "von der Leyen")
    select distinct article_id, version, name, field_rank, start_char, unnest([
        {{ surname_key('name_key') }}, {{ family_name_key('name_key') }}
    ]) as surname
    from keyed
    where entity_type = 'person' and name_key <> {{ family_name_key('name_key') }}
),

linked as (
    select
        k.event_seq, k.article_id, k.version, k.field, k.mention_index, k.start_char, k.end_char,
        k.surface, k.label, k.entity_type, k.name, k.extractor,
        coalesce(
            -- the nearest full name before the surname, else the first one after it
            (select arg_max(f.name, f.field_rank * 1000000000 + f.start_char) from full_names f
             where f.article_id = k.article_id and f.version = k.version and f.surname = k.name_key
               and f.field_rank * 1000000000 + f.start_char < k.field_rank * 1000000000 + k.start_char),
            (select arg_min(f.name, f.field_rank * 1000000000 + f.start_char) from full_names f
             where f.article_id = k.article_id and f.version = k.version and f.surname = k.name_key),
            k.name
        ) as linked_name,
        k.name_key
    from keyed as k
)

select
    * exclude (name_key, name),  -- linked_name is the name downstream
    '{{ env_var("NEWSROOM_ENTITY_RULES", "") }}' as rules
from linked
where not (
    entity_type = 'person' and linked_name = name and name_key not like '% %'
    -- the word, its singular, or the word an agent noun comes from ("Forecasters")
    and (
        name_key in (select word from {{ ref('common_words') }})
        or regexp_replace(name_key, 's$', '') in (select word from {{ ref('common_words') }})
        or regexp_replace(name_key, 'ers$', '') in (select word from {{ ref('common_words') }})
    )
)
