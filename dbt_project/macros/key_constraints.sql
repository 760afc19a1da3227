{#- The working database keeps no index for a key: DuckLake keeps none, and in the DuckDB
    file the marts' key indexes took a tenth of the file (100,000 headlines) for a check
    that the unique tests beside each key make anyway, on every build, before anything is
    published. A contract's columns are created with their types and NOT NULL only; the
    keys stay declared in the models' YAML for the docs and the explorer's mirror. -#}
{% macro duckdb__get_table_columns_and_constraints() %}
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
