{#- The spelling-insensitive key of a name: accents and punctuation dropped,
    lower case, and transliteration endings unified per word (Zelenskyj,
    Zelenskyy, Zelenskiy -> zelensky). Suffixes such as "Jr." stay, so Donald
    Trump and Donald Trump Jr. keep different keys. -#}
{% macro name_key(expr) -%}
trim(regexp_replace(
    regexp_replace(
        regexp_replace(lower(strip_accents({{ expr }})), '[^a-z0-9 ]', ' ', 'g'),
        '(yj|ij|iy|yy|yi)\b', 'y', 'g'),
    '\s+', ' ', 'g'))
{%- endmacro %}

{#- The family-name token of a person key: the last word that is not a suffix. -#}
{% macro surname_key(key) -%}
list_last(list_filter(string_split({{ key }}, ' '), lambda w: w not in ('jr', 'sr', 'ii', 'iii', 'iv')))
{%- endmacro %}
