{#- DuckLake keeps no primary keys or unique constraints: on a lake, a contract's
    columns are created with their types and NOT NULL only. The unique tests beside
    each key still check it on every build. -#}
{% macro duckdb__get_table_columns_and_constraints() %}
  {%- if not adapter.is_ducklake(this) -%}
    {{ return(table_columns_and_constraints()) }}
  {%- endif -%}
  {%- set columns = {} -%}
  {%- for name, column in model['columns'].items() -%}
    {%- set kept = column.copy() -%}
    {%- do kept.update({'constraints': column['constraints'] | rejectattr('type', 'in', ['primary_key', 'unique']) | list}) -%}
    {%- do columns.update({name: kept}) -%}
  {%- endfor -%}
  (
  {% for c in adapter.render_raw_columns_constraints(raw_columns=columns) -%}
    {{ c }}{{ "," if not loop.last }}
  {% endfor %}
  )
{% endmacro %}
