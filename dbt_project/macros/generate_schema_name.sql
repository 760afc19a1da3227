{#- Schemas are named exactly as configured (staging, intermediate, marts):
    people query marts.articles, not main_marts.articles. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {{ custom_schema_name | trim if custom_schema_name else target.schema }}
{%- endmacro %}
