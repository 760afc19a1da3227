{#- How many characters of `old` and `new` are unchanged around a single edited
    span: the common prefix plus the common suffix (not overlapping). Then
    removed = length(old) - kept and added = length(new) - kept: exact for one
    edit, an upper bound for scattered edits. Strings are split into characters
    once, so the cost is linear in their length. -#}
{% macro _common_prefix_length(old_chars, new_chars) -%}
coalesce(
    nullif(list_position(
        list_transform(list_zip({{ old_chars }}, {{ new_chars }}), lambda pair: pair[1] = pair[2]),
        false), 0) - 1,
    least(len({{ old_chars }}), len({{ new_chars }})))
{%- endmacro %}

{% macro unchanged_chars(old, new) -%}
{%- set old_chars = "string_split(coalesce(" ~ old ~ ", ''), '')" -%}
{%- set new_chars = "string_split(coalesce(" ~ new ~ ", ''), '')" -%}
{%- set shorter = "least(length(coalesce(" ~ old ~ ", '')), length(coalesce(" ~ new ~ ", '')))" -%}
{%- set prefix = _common_prefix_length(old_chars, new_chars) -%}
{%- set suffix = _common_prefix_length("list_reverse(" ~ old_chars ~ ")", "list_reverse(" ~ new_chars ~ ")") -%}
({{ prefix }} + least({{ suffix }}, {{ shorter }} - {{ prefix }}))
{%- endmacro %}
