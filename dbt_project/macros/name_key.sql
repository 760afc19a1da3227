{#- The spelling-insensitive key of a name: accents and punctuation dropped,
    lower case, and transliteration endings unified per word (Zelenskyj,
    Zelenskyy, Zelenskiy -> zelensky). Suffixes such as "Jr." stay, so Donald
    Trump and Donald Trump Jr. keep different keys. Letters of every script are
    kept (only a-z were: every Cyrillic, Greek or Chinese name had one key, '',
    and all of them were one entity). -#}
{% macro name_key(expr) -%}
trim(regexp_replace(
    regexp_replace(
        regexp_replace(lower(strip_accents({{ expr }})), '[^\pL\pM\pN ]', ' ', 'g'),
        '(yj|ij|iy|yy|yi)\b', 'y', 'g'),
    '\s+', ' ', 'g'))
{%- endmacro %}

{#- The family-name token of a person key: the last word that is not a suffix. -#}
{% macro surname_key(key) -%}
list_last(list_filter(string_split({{ key }}, ' '), lambda w: w not in ('jr', 'sr', 'ii', 'iii', 'iv')))
{%- endmacro %}

{#- The family name of a person key with the particles before it ("ursula von der
    leyen" -> "von der leyen"; "charles de gaulle" -> "de gaulle"), suffixes dropped.
    The particles are those extraction carries a name across (NAME_PARTICLES in
    ingestion/_derive/ner.py). -#}
{% macro family_name_key(key) -%}
regexp_extract(
    regexp_replace({{ key }}, '( (jr|sr|ii|iii|iv))+$', ''),
    '(?:^| )((?:(?:al|bin|da|das|de|del|della|den|der|des|di|dos|du|ibn|la|le|ten|ter|van|von|zu) )*[^ ]+)$', 1)
{%- endmacro %}

{#- A person key without middle names: its first word and family name ("rafael
    mariano grossi" -> "rafael grossi"); a key of one or two words is unchanged. -#}
{% macro short_person_key(key) -%}
case
    when {{ key }} = {{ family_name_key(key) }} then {{ key }}
    else split_part({{ key }}, ' ', 1) || ' ' || {{ family_name_key(key) }}
end
{%- endmacro %}
