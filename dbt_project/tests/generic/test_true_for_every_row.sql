{#- Generic test: `expression` holds on every row (the failing rows are returned). -#}
{% test true_for_every_row(model, expression) %}
select * from {{ model }} where not coalesce(({{ expression }}), false)
{% endtest %}
