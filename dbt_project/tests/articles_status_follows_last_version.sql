-- An article is withdrawn exactly when its last version is a withdrawal, has a
-- withdrawn_at exactly then, and has at least one version. Checks the articles
-- changed after NEWSROOM_CHECKED_SINCE (see tests/generic/test_history_in_order.sql).
with changed as (
    select article_id, status, withdrawn_at
    from {{ ref('articles') }}
    where last_event_seq > {{ env_var('NEWSROOM_CHECKED_SINCE', '0') | int }}
),

last_versions as (
    select
        article_id,
        count(*) as versions,
        arg_max(is_withdrawal, version) as last_is_withdrawal
    from {{ ref('article_versions') }}
    where article_id in (select article_id from changed)
    group by article_id
)

select
    changed.article_id,
    changed.status,
    changed.withdrawn_at,
    last_versions.versions,
    last_versions.last_is_withdrawal
from changed
left join last_versions using (article_id)
where last_versions.versions is null
    or (changed.status = 'withdrawn') <> last_versions.last_is_withdrawal
    or (changed.status = 'withdrawn') <> (changed.withdrawn_at is not null)
