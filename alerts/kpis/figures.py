"""The indicators of one row (:mod:`alerts.kpis`, *Indicators of each row*), each set-based
SQL grouped by the row's key: children and households, alerts, cases; and the medians, ratios and
rounding they share.
"""

from __future__ import annotations

from sqlalchemy import and_, case, distinct, exists, func, null, or_, select, union_all

from alerts.escalate import overdue_alert_condition
from alerts.kpis.dimensions import (
    _alert_dims,
    _case_dims,
    _Context,
    _in_window,
    _join_alert_dims,
    _join_case_dims,
    _join_visit_dims,
    _key,
    alert_counts,
    fact_dims,
    visit_dims,
)
from alerts.kpis.filters import TIME_GROUPS
from alerts.rules import CATEGORIES
from clms.models import (
    ACTIVE_ALERT_STATUSES,
    CASE_STATES,
    Alert,
    Case,
    KpiChildFact,
    PlannedService,
    Referral,
    Visit,
)

#: the categories that are child labour (the rest: at risk, none)
CHILD_LABOUR = CATEGORIES[:3]
#: referral outcomes that mean the child received the service
SERVICE_RECEIVED_OUTCOMES = ("service_provided", "already_received_elsewhere")
#: the figures of a row, in the order the table and the exports show them
SCALAR_FIGURES = (
    "households_covered",
    "children_monitored",
    "children_identified",
    "identification_rate",
    "children_in_child_labour",
    "sdg_871",
    "identified_remediated",
    "pct_identified_remediated",
    "identified_followed_up",
    "identified_no_longer_in_child_labour",
    "pct_identified_no_longer_in_child_labour",
    "alerts_acted_on",
    "median_days_alert_to_first_action",
    "alerts_open",
    "alerts_overdue",
    "cases_closed",
    "median_days_case_open_to_close",
    "followups",
    "cases_open_in_period",
    "followups_per_case",
    "services_delivered",
)
#: the figures that are as they are now (None in month and quarter rows)
NOW_FIGURES = ("alerts_open", "alerts_overdue", "cases_by_state")


def empty_figures(*, timed: bool = False) -> dict:
    """A row with nothing counted (``timed``: a month or quarter row, whose "now" figures are
    None)."""
    row: dict = {name: 0 for name in SCALAR_FIGURES}
    for name in (
        "identification_rate",
        "pct_identified_remediated",
        "pct_identified_no_longer_in_child_labour",
        "median_days_alert_to_first_action",
        "median_days_case_open_to_close",
        "followups_per_case",
    ):
        row[name] = None
    row["by_category"] = {c: 0 for c in CATEGORIES}
    row["cases_by_state"] = {s: 0 for s in CASE_STATES}
    row["services_delivered_by_type"] = {}
    if timed:
        for name in NOW_FIGURES:
            row[name] = None
    return row


def _figures(ctx: _Context, group: str) -> dict:
    """``{group key: row}`` of every figure for one grouping (``none``: ``{None: overall}``)."""
    timed = group in TIME_GROUPS
    rows: dict = {}

    def row(key):
        return rows.setdefault(key, empty_figures(timed=timed))

    if group == "none":
        row(None)
    windows = ctx.windows(group)
    for key, n in _households(ctx, group, windows):
        row(key)["households_covered"] = n
    for key, values in _children(ctx, group, windows).items():
        row(key).update(values)
    for key, (n, median) in _alert_first_action(ctx, group, windows).items():
        row(key).update(alerts_acted_on=n, median_days_alert_to_first_action=_round(median, 2))
    if not timed:
        for key, n, overdue in _alerts_now(ctx, group):
            row(key).update(alerts_open=n, alerts_overdue=int(overdue or 0))
        for key, state, n in _cases_now(ctx, group):
            row(key)["cases_by_state"][state] = n
    for key, (n, median) in _case_open_to_close(ctx, group, windows).items():
        row(key).update(cases_closed=n, median_days_case_open_to_close=_round(median, 2))
    for key, n in _followups(ctx, group, windows):
        row(key)["followups"] = n
    for key, n in _cases_open(ctx, group, windows):
        row(key)["cases_open_in_period"] = n
    for key, code, n in _services(ctx, group, windows):
        r = row(key)
        r["services_delivered_by_type"][code] = n
        r["services_delivered"] += n
    for r in rows.values():
        _ratios(r)
    return rows


def _ratios(r: dict) -> None:
    r["identification_rate"] = _share(r["children_identified"], r["children_monitored"], 4)
    r["pct_identified_remediated"] = _pct(r["identified_remediated"], r["children_identified"])
    r["pct_identified_no_longer_in_child_labour"] = _pct(
        r["identified_no_longer_in_child_labour"], r["identified_followed_up"]
    )
    r["followups_per_case"] = _share(r["followups"], r["cases_open_in_period"], 2)


# --- children and households ---------------------------------------------------------------------


def _households(ctx: _Context, group: str, windows) -> list:
    dims = visit_dims()
    inner = (
        _join_visit_dims(
            select(_key(group, dims, windows).label("k"), Visit.household_id.label("household_id"))
            .select_from(Visit)
            .join(windows, _in_window(Visit.visited_at, windows))
        )
        .where(
            Visit.current,
            Visit.kind == "household",
            Visit.household_id.is_not(None),
            *ctx.conditions(dims),
        )
        .subquery("household_visits")
    )
    return ctx.session.execute(
        select(inner.c.k, func.count(distinct(inner.c.household_id))).group_by(inner.c.k)
    ).all()


#: the kept pointers of each grouping: the partition a child's rows are ranked in
_POINTER = {"village": "_village", "area": "_area", "supplier": "_supplier", "tier": "_tier",
            "monitor": "_monitor"}  # fmt: skip


def _latest_classifications(ctx: _Context, group: str, windows, *, monitor=True, village=True):
    """A subquery: for each group key and child, the child's latest classification in the
    window (``category``, ``sdg``), whether any was child labour (``identified``) and the
    window's end (``e``).

    Read from the kept facts (:mod:`clms.facts`), without ranking: a fact is the child's latest
    in its partition (the child, or the child in the group's village, area, supplier, tier,
    monitor) when the partition's next fact comes after the window (``next_*_at``), and the
    child was identified when the latest child labour up to it (``labour_*_at``) is in the
    window. That holds when the filters keep all of a partition's facts or none; when they may
    keep some (a person's scope, say, over a child seen in two villages), the row is decided by
    looking at the facts the filters keep (``NOT EXISTS``, ``EXISTS``), for those rows only.
    """
    f = KpiChildFact.__table__.alias("kf")
    dims = fact_dims(f)
    key = _key(group, dims, windows)
    closed, partition = _closed(ctx, group, f, monitor=monitor, village=village)
    suffix = _POINTER.get(partition, "")
    next_at, labour_at = f.c[f"next{suffix}_at"], f.c[f"labour{suffix}_at"]
    conditions = ctx.conditions(dims, monitor=monitor, village=village)

    def in_partition(other):
        """``other`` (an alias of the facts) is of the same child and group as ``f``, kept by
        the filters, in the window."""
        out = [other.c.child_id == f.c.child_id, other.c.visited_at < windows.c.e]
        if group in _POINTER:
            column = _key(group, fact_dims(other), windows)
            out.append(column.is_not_distinct_from(key))
        return [*out, *ctx.conditions(fact_dims(other), monitor=monitor, village=village)]

    later = KpiChildFact.__table__.alias("kf_later")
    after = or_(
        later.c.visited_at > f.c.visited_at,
        and_(
            later.c.visited_at == f.c.visited_at,
            or_(
                later.c.visit_id > f.c.visit_id,
                and_(later.c.visit_id == f.c.visit_id, later.c.child_visit_id > f.c.child_visit_id),
            ),
        ),
    )
    last_of_partition = or_(next_at.is_(None), next_at >= windows.c.e)
    labour = KpiChildFact.__table__.alias("kf_labour")
    in_window_labour = case((labour_at >= windows.c.s, 1), else_=0)
    if closed is True:
        latest, identified = last_of_partition, in_window_labour
    else:
        none_later = ~exists().where(*in_partition(later), after)
        some_labour = exists().where(
            *in_partition(labour), labour.c.in_labour, labour.c.visited_at >= windows.c.s
        )
        latest = or_(last_of_partition, and_(~closed, none_later))
        identified = case((closed, in_window_labour), (some_labour, 1), else_=0)
    return (
        select(
            key.label("k"),
            f.c.child_id.label("child_id"),
            f.c.category.label("category"),
            f.c.sdg_871.label("sdg"),
            windows.c.e.label("e"),
            identified.label("identified"),
        )
        .select_from(f)
        .join(windows, _in_window(f.c.visited_at, windows))
        .where(*conditions, latest)
        .subquery("latest_classifications")
    )


def _closed(ctx: _Context, group: str, f, *, monitor: bool, village: bool):
    """Whether the filters keep all of a partition's facts or none, and which partition's
    pointers say so: ``(True, partition)`` (always) or ``(condition, partition)``, a condition
    on the fact ``f`` (a filter by villages, suppliers, a tier or a monitor, over a child whose
    facts all have one village, supplier, tier, monitor). The partition is the grouping's, or,
    for the overall row and the months and quarters (whose partition is the child), the one filter
    by a supplier, a tier or a monitor: the facts it keeps of a child are those of the child
    with that supplier, tier or monitor, a partition of their own."""
    r = ctx.resolved
    villages = ctx.villages if village else ctx.area_villages
    by_villages = False
    if villages is not None:
        by_area = not ctx.scoped and (not village or r.village_id is None)
        by_villages = group != "village" and not (group == "area" and by_area)
    open_: list[str] = []
    if r.supplier_id is not None and group != "supplier":
        open_.append("supplier")
    if ctx.filters.tier is not None and group not in ("supplier", "tier"):
        open_.append("tier")
    if monitor and r.monitor_id is not None and group != "monitor":
        open_.append("monitor")
    partition = group
    if len(open_) == 1 and group not in _POINTER:  # none, month, quarter: the child's
        partition, open_ = open_[0], []
    # over a child whose rows all have one village (supplier, tier, monitor), the filter by it
    # keeps all of the child's facts or none
    whole = [f.c[f"single_{name}"] for name in open_]
    if by_villages:
        whole.append(f.c.single_village)
    if not whole:
        return True, partition
    return and_(*whole), partition


def _first_remediation(ctx: _Context):
    """A subquery: each child's first remediation service (``child_id``, ``first_at``)."""
    return first_remediation(ctx.dialect)


def first_remediation(dialect: str):
    """A subquery: each child's first remediation service (``child_id``, ``first_at``), as the
    KPIs define it (:mod:`alerts.kpis`); ``dialect``: ``session.get_bind().dialect.name``.
    Shared with the hotspot figures (:mod:`geo.hotspots`)."""
    # a follow-up reporting a service: its services_received list holds a code other than "none"
    if dialect == "postgresql":
        as_array = case(
            (func.jsonb_typeof(Visit.services_received) == "array", Visit.services_received),
            else_=func.jsonb("[]"),
        )
        code = func.jsonb_array_elements_text(as_array).column_valued("code")
        reported = select(code).where(code != "none")
    else:
        received = func.json_each(Visit.services_received).table_valued("value", "type")
        reported = select(received.c.value).where(
            received.c.type == "text", received.c.value != "none"
        )
    events = union_all(
        select(Case.child_id.label("child_id"), PlannedService.delivered_at.label("at"))
        .join(Case, Case.id == PlannedService.case_id)
        .where(PlannedService.status == "delivered", PlannedService.delivered_at.is_not(None)),
        select(Case.child_id, func.coalesce(Referral.done_at, Referral.responded_at))
        .join(Case, Case.id == Referral.case_id)
        .where(
            Referral.status == "done",
            Referral.outcome.in_(SERVICE_RECEIVED_OUTCOMES),
            func.coalesce(Referral.done_at, Referral.responded_at).is_not(None),
        ),
        select(Case.child_id, Visit.visited_at)
        .join(Case, Case.id == Visit.case_id)
        .where(Visit.current, Visit.kind == "followup", reported.exists()),
    ).subquery("remediation_events")
    return (
        select(events.c.child_id, func.min(events.c.at).label("first_at"))
        .group_by(events.c.child_id)
        .subquery("first_remediation")
    )


def _children(ctx: _Context, group: str, windows, *, followups: bool = True) -> dict:
    """``{key: figures}`` of the children: monitored, identified, in child labour, SDG 8.7.1,
    remediated, by category and (``followups``) the identified children followed up and, of
    them, those not in child labour at their latest follow-up before the window's end, all
    from one reading of the latest classifications."""
    latest = _latest_classifications(ctx, group, windows)
    first = _first_remediation(ctx)
    identified = latest.c.identified == 1
    columns = [
        func.count().label("monitored"),
        func.sum(latest.c.identified).label("identified"),
        func.sum(case((latest.c.category.in_(CHILD_LABOUR), 1), else_=0)).label("in_labour"),
        func.sum(case((latest.c.sdg, 1), else_=0)).label("sdg"),
        func.sum(case((and_(identified, first.c.first_at < latest.c.e), 1), else_=0)).label(
            "remediated"
        ),
        *(
            func.sum(case((latest.c.category == c, 1), else_=0)).label(f"cat_{c}")
            for c in CATEGORIES
        ),
    ]
    stmt = (
        select(latest.c.k)
        .select_from(latest)
        .outerjoin(first, first.c.child_id == latest.c.child_id)
    )
    if followups:
        # one look-up per identified child, whose answer counts both figures at once
        columns.append(func.sum(case((identified, _latest_followup(latest)), else_=0)).label("fu"))
    out = {}
    for r in ctx.session.execute(stmt.add_columns(*columns).group_by(latest.c.k)).mappings():
        out[r["k"]] = {
            "children_monitored": r["monitored"],
            "children_identified": int(r["identified"] or 0),
            "children_in_child_labour": int(r["in_labour"] or 0),
            "sdg_871": int(r["sdg"] or 0),
            "identified_remediated": int(r["remediated"] or 0),
            "by_category": {c: int(r[f"cat_{c}"] or 0) for c in CATEGORIES},
        }
        if followups:
            free, followed = divmod(int(r["fu"] or 0), _FREE)
            out[r["k"]]["identified_followed_up"] = followed
            out[r["k"]]["identified_no_longer_in_child_labour"] = free
    return out


#: what a follow-up adds to the sum of :func:`_latest_followup`: 1 for one followed up, and
#: _FREE more when it was not in child labour (counts stay far below it)
_FREE = 1 << 32


def _latest_followup(latest):
    """For a row of :func:`_latest_classifications`, what the child's latest classified
    follow-up before the window's end adds to the follow-up sum: nothing without one, 1 when it
    found child labour, ``1 + _FREE`` when it did not; the sum's ``divmod`` by ``_FREE`` is
    (not in child labour, followed up). One look-up by the facts' child index, made by the
    databases once per identified child (a figure per look-up would make it twice)."""
    kept = KpiChildFact.__table__.alias("kf_followups")
    counted = case((kept.c.category.in_(CHILD_LABOUR), 1), else_=1 + _FREE)
    return func.coalesce(
        select(counted)
        .where(
            kept.c.child_id == latest.c.child_id,
            kept.c.kind == "followup",
            kept.c.visited_at < latest.c.e,
        )
        .order_by(kept.c.visited_at.desc(), kept.c.visit_id.desc(), kept.c.child_visit_id.desc())
        .limit(1)
        .scalar_subquery(),
        0,
    )


# --- alerts --------------------------------------------------------------------------------------


def _alert_first_action(ctx: _Context, group: str, windows) -> dict:
    """``{key: (alerts acted on, median days to the first action)}``: the first of its
    acknowledgement, its dismissal and the opening of a case from it, read on the alert's row
    (the cases' first opening per alert grouped once), so that the databases plan it by the
    alerts they count."""
    f = ctx.filters
    opened = (
        select(Case.alert_id.label("alert_id"), func.min(Case.opened_at).label("at"))
        .where(Case.alert_id.is_not(None))
        .group_by(Case.alert_id)
        .subquery("case_opened")
    )
    first_at = _earliest(ctx.dialect, Alert.acknowledged_at, Alert.dismissed_at, opened.c.at)
    dims = _alert_dims()
    values = _join_alert_dims(
        select(
            _key(group, dims, windows).label("k"),
            ctx.days(Alert.created_at, first_at).label("v"),
        )
        .select_from(Alert)
        .outerjoin(opened, opened.c.alert_id == Alert.id)
        .join(windows, _in_window(Alert.created_at, windows))
    ).where(
        Alert.created_at >= f.start,
        Alert.created_at < f.end,
        first_at.is_not(None),
        first_at <= ctx.now,
        alert_counts(),
        *ctx.conditions(dims),
    )
    return _medians(ctx, values.subquery("alert_days"))


def _earliest(dialect: str, *columns):
    """The earliest of ``columns`` that are not NULL (NULL if all are): PostgreSQL's LEAST
    skips NULLs; SQLite's MIN of several values would be NULL if one is, so it takes the MIN
    of each column coalesced with the others (a NULL column takes another one's value)."""
    if dialect == "postgresql":
        return func.least(*columns)
    return func.min(*(func.coalesce(c, *(o for o in columns if o is not c)) for c in columns))


def _alerts_now(ctx: _Context, group: str) -> list:
    dims = _alert_dims()
    inner = (
        _join_alert_dims(
            select(
                _key(group, dims, None).label("k"),
                case((overdue_alert_condition(ctx.now), 1), else_=0).label("overdue"),
            ).select_from(Alert)
        )
        .where(
            Alert.status.in_(ACTIVE_ALERT_STATUSES),
            Alert.created_at <= ctx.now,
            *ctx.conditions(dims),
        )
        .subquery("open_alerts")
    )
    return ctx.session.execute(
        select(inner.c.k, func.count(), func.sum(inner.c.overdue)).group_by(inner.c.k)
    ).all()


# --- cases ---------------------------------------------------------------------------------------


def _case_end():
    """When a case stopped being open here: closed, or transferred; NULL while open."""
    return case(
        (Case.state == "closed", Case.closed_at),
        (Case.state == "transferred", Case.state_changed_at),
        else_=null(),
    )


def _cases_now(ctx: _Context, group: str) -> list:
    dims = _case_dims()
    inner = (
        _join_case_dims(
            select(_key(group, dims, None).label("k"), Case.state.label("state")).select_from(Case)
        )
        .where(*ctx.conditions(dims))
        .subquery("cases_now")
    )
    return ctx.session.execute(
        select(inner.c.k, inner.c.state, func.count()).group_by(inner.c.k, inner.c.state)
    ).all()


def _case_open_to_close(ctx: _Context, group: str, windows) -> dict:
    dims = _case_dims()
    values = _join_case_dims(
        select(
            _key(group, dims, windows).label("k"),
            ctx.days(Case.opened_at, Case.closed_at).label("v"),
        )
        .select_from(Case)
        .join(windows, _in_window(Case.closed_at, windows))
    ).where(Case.state == "closed", *ctx.conditions(dims))
    return _medians(ctx, values.subquery("case_days"))


def _followups(ctx: _Context, group: str, windows) -> list:
    dims = _case_dims()
    inner = (
        _join_case_dims(
            select(_key(group, dims, windows).label("k"), Visit.id.label("visit_id"))
            .select_from(Visit)
            .join(Case, Case.id == Visit.case_id)
            .join(windows, _in_window(Visit.visited_at, windows))
        )
        .where(Visit.current, Visit.kind == "followup", *ctx.conditions(dims))
        .subquery("followups")
    )
    return ctx.session.execute(select(inner.c.k, func.count()).group_by(inner.c.k)).all()


def _cases_open(ctx: _Context, group: str, windows) -> list:
    dims = _case_dims()
    end = _case_end()
    inner = (
        _join_case_dims(
            select(_key(group, dims, windows).label("k"), Case.id.label("case_id"))
            .select_from(Case)
            .join(
                windows,
                and_(Case.opened_at < windows.c.e, or_(end.is_(None), end >= windows.c.s)),
            )
        )
        .where(*ctx.conditions(dims))
        .subquery("open_cases")
    )
    return ctx.session.execute(select(inner.c.k, func.count()).group_by(inner.c.k)).all()


def _services(ctx: _Context, group: str, windows) -> list:
    dims = _case_dims()
    inner = (
        _join_case_dims(
            select(_key(group, dims, windows).label("k"), PlannedService.service_code.label("code"))
            .select_from(PlannedService)
            .join(Case, Case.id == PlannedService.case_id)
            .join(windows, _in_window(PlannedService.delivered_at, windows))
        )
        .where(PlannedService.status == "delivered", *ctx.conditions(dims))
        .subquery("services")
    )
    return ctx.session.execute(
        select(inner.c.k, inner.c.code, func.count())
        .group_by(inner.c.k, inner.c.code)
        .order_by(inner.c.code)
    ).all()


# --- medians and ratios --------------------------------------------------------------------------


def _medians(ctx: _Context, values) -> dict:
    """``{k: (count, median of v)}`` of a subquery with columns ``k`` and ``v``: the middle one
    or two of the ordered values (their mean). PostgreSQL's ``percentile_cont(0.5)`` is that
    median, in one sort per group; SQLite has none, so the middle ones are picked with
    ROW_NUMBER and COUNT windows."""
    if ctx.dialect == "postgresql":
        median = func.percentile_cont(0.5).within_group(values.c.v)
        return {
            k: (n, m)
            for k, n, m in ctx.session.execute(
                select(values.c.k, func.count(), median).group_by(values.c.k)
            )
        }
    ranked = select(
        values.c.k,
        values.c.v,
        func.row_number().over(partition_by=values.c.k, order_by=values.c.v).label("rn"),
        func.count().over(partition_by=values.c.k).label("n"),
    ).subquery("ranked_values")
    return {
        k: (n, median)
        for k, n, median in ctx.session.execute(
            select(ranked.c.k, func.max(ranked.c.n), func.avg(ranked.c.v))
            .where(or_(ranked.c.rn == (ranked.c.n + 1) // 2, ranked.c.rn == (ranked.c.n + 2) // 2))
            .group_by(ranked.c.k)
        )
    }


def _share(numerator, denominator, digits: int) -> float | None:
    return round(numerator / denominator, digits) if denominator else None


def _pct(numerator, denominator) -> float | None:
    return round(100.0 * numerator / denominator, 1) if denominator else None


def _round(value, digits: int) -> float | None:
    return None if value is None else round(float(value), digits)
