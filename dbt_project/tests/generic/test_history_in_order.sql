{#-
  Generic test: each key's versions form one history. Versions run 1, 2, 3...
  without gaps, each validity interval ends where the next begins and never
  before it starts, and exactly the latest version is current.

  Only keys with a row after the event in NEWSROOM_CHECKED_SINCE are checked:
  `newsroom transform` sets it to the last published event, so a build checks
  what changed since readers last saw the table; a plain `dbt build` (variable
  unset) checks every key.
-#}
{% test history_in_order(model, key, version, valid_from, valid_to, is_current, event_seq) %}
with checked as (
    select distinct {{ key }} as checked_key
    from {{ model }}
    where {{ event_seq }} > {{ env_var('NEWSROOM_CHECKED_SINCE', '0') | int }}
),

versions as (
    select
        {{ key }} as checked_key,
        {{ version }} as version,
        {{ valid_from }} as valid_from,
        {{ valid_to }} as valid_to,
        {{ is_current }} as is_current,
        row_number() over history as position,
        lead({{ valid_from }}) over history as next_valid_from,
        max({{ version }}) over (partition by {{ key }}) as latest
    from {{ model }}
    where {{ key }} in (select checked_key from checked)
    window history as (partition by {{ key }} order by {{ version }})
)

select
    *,
    case
        when version <> position then 'a version is missing before this one'
        when valid_to < valid_from then 'the interval ends before it starts'
        when valid_to is distinct from next_valid_from then 'the interval does not meet the next one'
        when is_current <> (version = latest) then 'is_current is not the latest version'
    end as problem
from versions
where version <> position
    or valid_to < valid_from
    or valid_to is distinct from next_valid_from
    or is_current <> (version = latest)
{% endtest %}
