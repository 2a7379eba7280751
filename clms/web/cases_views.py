"""Case pages: the list, the case with its timeline, and one page per step of the workflow.

Each view parses the form, calls one operation of the step's module (:mod:`clms.cases.opening`,
:mod:`clms.cases.assessment`, :mod:`clms.cases.plan`, ...), commits, and redirects to the case
(303); a form with wrong answers is shown again with each message next to its field (400), a
move the rules refuse is said on the case page (409 for a form). Forms carry the case's
``version``: an action on a page that someone else changed meanwhile is refused rather than
applied to a state the person never saw.
"""

from __future__ import annotations

from flask import abort, current_app, flash, g, redirect, render_template, request, url_for

from clms.audit import record_read
from clms.auth import allow
from clms.cases import workflow as wf
from clms.cases.ages import ChildAge
from clms.cases.assessment import AssessmentInput, record_assessment
from clms.cases.closure import decide_closure, propose_closure
from clms.cases.entities import resolve_conflict
from clms.cases.export import CASE_COLUMNS, case_table
from clms.cases.opening import open_case, record_verification
from clms.cases.plan import add_planned_service, decide_plan, remove_planned_service, submit_plan
from clms.cases.queries import (
    CASE_CURSORS,
    CASE_PAGING,
    STATE_FILTERS,
    CasePage,
    case_view,
    list_cases,
)
from clms.cases.referrals import record_consent, refer, revoke_referral, withdraw_consent
from clms.cases.services import record_service_outcome
from clms.cases.transfer import (
    TRANSFER_SHAREABLE,
    TransferInput,
    add_note,
    assign_case,
    transfer_case,
)
from clms.cases.withdrawn import acknowledge_flag
from clms.db import db
from clms.errors import Problem
from clms.export_sql import table_chunks
from clms.i18n import Msg
from clms.locale import gettext, localize
from clms.models import utcnow
from clms.web import bp, flash_problem
from clms.web.downloads import download, reading
from clms.web.field_labels import field_label

CASE_ROLES = wf.CASE_ROLES


# --- helpers --------------------------------------------------------------------------------------


@bp.app_template_global()
def age_words(age: ChildAge | None) -> str:
    """A child's age in words, with the date it is taken at: the one way the alert, case, child
    and referral pages say it ("10 at the visit of 8 June 2026; about 11 now", the day in the
    reader's language)."""
    if age is None or not age.known:
        return gettext("unknown")
    if age.seen is None:  # a date of birth, no visit that recorded an age
        return localize(Msg("{age} years", age=age.now))
    if not age.moved_on:
        return localize(Msg("{age} years (at the visit of {day})", age=age.seen,
                            day=age.seen_on))  # fmt: skip
    facts = {"age": age.seen, "day": age.seen_on, "now": age.now}
    if age.exact:  # from a date of birth
        return localize(Msg("{age} years at the visit of {day}; {now} now", **facts))
    return localize(Msg("{age} years at the visit of {day}; about {now} now", **facts))


def _policy() -> wf.Policy:
    """The workflow's settings (``CASE_*``, ``REFERRAL_*``), passed to every operation."""
    return wf.Policy.from_config(current_app.config)


def _version() -> int | None:
    raw = request.form.get("version", "")
    return int(raw) if raw.isdigit() else None


def _field_errors(p: Problem) -> dict[str, str]:
    return {name: localize(message) for name, message in p.fields.items()}


def _back(case_id: int, anchor: str = ""):
    """Back to the case page, or to the home page when the form came from there (a supervisor's
    decision taken from the work queue: ``back=home``; no other place is accepted)."""
    if request.form.get("back") == "home":
        return redirect(url_for("web.home"), code=303)
    return redirect(url_for("web.case_detail", case_id=case_id) + anchor, code=303)


def _act(case_id: int, done: Msg, operation, *args, anchor: str = "", **kwargs):
    """Run a small action from the case page: commit and say so, or say why not; back to the
    case either way (a missing case is 404)."""
    session = db()
    try:
        operation(session, g.user, *args, policy=_policy(), **kwargs)
    except Problem as p:
        if p.status == 404:
            raise
        flash_problem(_problem_text(p), session)
    else:
        session.commit()
        flash(localize(done), "success")
    return _back(case_id, anchor)


def _problem_text(p: Problem) -> str:
    if p.fields:
        return (
            localize(Msg("Some answers need attention:"))
            + " "
            + "; ".join(
                f"{gettext(field_label(name))}: {localize(m)}" for name, m in p.fields.items()
            )
        )
    return localize(p)


def _view(case_id: int):
    view = case_view(db(), g.user, case_id, policy=_policy())
    if view is None:
        abort(404)
    return view


def _form_page(case_id: int, template: str, done: Msg, operation, build, **extra):
    """A step's own page: GET shows the form; POST runs ``operation`` with the arguments
    ``build(form)`` gives, and on success goes back to the case."""
    session = db()
    errors: dict[str, str] = {}
    status = 200
    if request.method == "POST":
        args, kwargs = build(request.form)
        try:
            operation(session, g.user, case_id, *args, policy=_policy(), **kwargs)
        except Problem as p:
            if p.status == 404:
                raise
            session.rollback()
            if p.fields:
                errors, status = _field_errors(p), 400
            else:
                flash_problem(_problem_text(p))
                status = p.status
        else:
            session.commit()
            flash(localize(done), "success")
            return _back(case_id)
    view = _view(case_id)
    return (
        render_template(
            template,
            v=view,
            c=view.case,
            errors=errors,
            values=request.form,
            wf=wf,
            policy=_policy(),
            **extra,
        ),
        status,
    )


# --- the list and the case -----------------------------------------------------------------------


@bp.route("/cases")
@allow(*CASE_ROLES)
def cases_index():
    """The cases in the person's areas: overdue first, then by the step deadline."""
    args = request.args
    filters = _case_filters(args)
    status = 200
    try:
        key = CASE_CURSORS.read(args, "due")  # deep pages: after (or before) a row, by its key
        page = list_cases(db(), g.user, page=CASE_PAGING.read(args).page, key=key, **filters)
    except Problem as p:
        flash_problem(_problem_text(p))
        page, status = CasePage(rows=[], total=0, page=1, pages=1), 400
    from alerts.queue import queue_choices

    villages, _suppliers = queue_choices(db(), g.user)
    query = {k: v for k, v in args.items() if k in filters and v}
    return render_template(
        "cases_index.html",
        page=page,
        filters=filters,
        query=query,
        villages=villages,
        states=STATE_FILTERS,
        wf=wf,
    ), status


@bp.route("/cases/export.<any(csv, xlsx):fmt>")
@allow(*CASE_ROLES)
def cases_export(fmt: str):
    """Every case of the list's filters in the person's areas, in the list's order, one row
    each, by case number and pseudonymous child id: no names, no coordinates, no free text.
    Written to the audit log with its filters."""
    session = reading(db())
    filters = _case_filters(request.args)
    now = utcnow()
    table = case_table(session, g.user, now=now, **filters)  # a bad filter: 400, saying which
    asked = {k: v for k, v in request.args.items() if k in filters and v}
    record_read(session, g.user, "cases.export", "cases", format=fmt, filters=asked)
    chunks = table_chunks(session, table, CASE_COLUMNS, fmt, gettext("Cases"))
    return download(chunks, fmt, f"clms-cases-{now.date()}")


def _case_filters(args) -> dict:
    """The case list's filters from the query string (the list and its downloads)."""
    return {
        "state": args.get("state") or None,
        "village": args.get("village") or None,
        "mine": args.get("mine") == "1",
        "overdue": {"true": True, "false": False}.get(args.get("overdue", "")),
        "q": args.get("q") or None,
    }


@bp.route("/cases/<int:case_id>")
@allow(*CASE_ROLES)
def case_detail(case_id: int):
    """A case: where it stands, what to do next, and everything that happened."""
    view = _view(case_id)
    return render_template("case_detail.html", v=view, c=view.case, wf=wf, errors={}, values={})


@bp.route("/alerts/<int:alert_id>/open-case", methods=["POST"])
@allow(*CASE_ROLES)
def case_open(alert_id: int):
    """Open a case from an alert (verification), then go to the case."""
    session = db()
    try:
        case = open_case(
            session, g.user, alert_id, child_uid=request.form.get("child"), policy=_policy()
        )
    except Problem as p:
        if p.status == 404:
            raise
        flash_problem(_problem_text(p), session)
        return redirect(url_for("web.alert_detail", alert_id=alert_id), code=303)
    session.commit()
    flash(localize(Msg("Case {number} opened: verify the allegation.",
                       number=case.case_number)), "success")  # fmt: skip
    return _back(case.id)


# --- step 1: verification ------------------------------------------------------------------------


@bp.route("/cases/<int:case_id>/verify", methods=["GET", "POST"])
@allow(*CASE_ROLES)
def case_verify(case_id: int):
    """Record the verification visit."""

    def build(form):
        confirmed = {"yes": True, "no": False}.get(form.get("confirmed", ""))
        return (), {
            "confirmed": confirmed,
            "visited_on": form.get("visited_on"),
            "findings": form.get("findings"),
            "reason": form.get("reason"),
            "signs_seen": form.get("signs_seen") == "yes",
            "signs_reason": form.get("signs_reason"),
            "signs_shown": form.get("signs_digest"),
            "expected_version": _version(),
        }

    return _form_page(case_id, "case_verify.html", Msg("Verification recorded."),
                      record_verification, build)  # fmt: skip


# --- step 2: assessment --------------------------------------------------------------------------


@bp.route("/cases/<int:case_id>/assess", methods=["GET", "POST"])
@allow(*CASE_ROLES)
def case_assess(case_id: int):
    """The best-interest assessment form."""

    def build(form):
        data = AssessmentInput(
            risk_level=form.get("risk_level"),
            child_views=form.get("child_views"),
            family_situation=form.get("family_situation"),
            schooling=form.get("schooling"),
            schooling_notes=form.get("schooling_notes"),
            immediate_safety=form.get("immediate_safety"),
            safety_notes=form.get("safety_notes"),
            response_types=form.getlist("response_types"),
            response_level=form.get("response_level"),
        )
        return (data,), {"expected_version": _version()}

    return _form_page(case_id, "case_assess.html", Msg("Assessment recorded."),
                      record_assessment, build)  # fmt: skip


# --- step 3: the plan ----------------------------------------------------------------------------


@bp.route("/cases/<int:case_id>/plan", methods=["GET", "POST"])
@allow(*CASE_ROLES)
def case_plan(case_id: int):
    """The action plan: its services, adding one (POST), submitting it."""

    def build(form):
        return (), {
            "service_code": form.get("service"),
            "provider_code": form.get("provider"),
            "due_on": form.get("due_on"),
            "notes": form.get("notes"),
        }

    session = db()
    if request.method == "POST":
        try:
            kwargs = build(request.form)[1]
            add_planned_service(session, g.user, case_id, policy=_policy(), **kwargs)
        except Problem as p:
            if p.status == 404:
                raise
            session.rollback()
            view = _view(case_id)
            errors = _field_errors(p) if p.fields else {}
            if not p.fields:
                flash_problem(_problem_text(p))
            page = render_template("case_plan.html", v=view, c=view.case, errors=errors,
                                   values=request.form, wf=wf)  # fmt: skip
            return page, (400 if p.fields else p.status)
        session.commit()
        flash(gettext("Service added to the plan."), "success")
        return redirect(url_for("web.case_plan", case_id=case_id), code=303)
    view = _view(case_id)
    return render_template("case_plan.html", v=view, c=view.case, errors={}, values={}, wf=wf)


@bp.route("/cases/<int:case_id>/plan/services/<int:planned_id>/remove", methods=["POST"])
@allow(*CASE_ROLES)
def case_plan_remove(case_id: int, planned_id: int):
    """Take a service off a draft plan."""
    _act(case_id, Msg("Service removed from the plan."), remove_planned_service, planned_id)
    return redirect(url_for("web.case_plan", case_id=case_id), code=303)


@bp.route("/cases/<int:case_id>/plan/submit", methods=["POST"])
@allow(*CASE_ROLES)
def case_plan_submit(case_id: int):
    """Submit the plan (for approval when it needs one)."""
    return _act(case_id, Msg("Plan submitted."), submit_plan, case_id,
                expected_version=_version())  # fmt: skip


@bp.route("/cases/<int:case_id>/plan/decide", methods=["POST"])
@allow(*CASE_ROLES)
def case_plan_decide(case_id: int):
    """A supervisor approves or returns the submitted plan."""
    approve = request.form.get("decision") == "approve"
    done = Msg("Plan approved.") if approve else Msg("Plan returned with your note.")
    return _act(case_id, done, decide_plan, case_id, approve=approve,
                note=request.form.get("note"), expected_version=_version())  # fmt: skip


@bp.route("/cases/<int:case_id>/services/<int:planned_id>/outcome", methods=["POST"])
@allow(*CASE_ROLES)
def case_service_outcome(case_id: int, planned_id: int):
    """Record a planned service delivered, or close it with a reason."""
    delivered = request.form.get("outcome") == "delivered"
    done = Msg("Service recorded as delivered.") if delivered else Msg("Service closed.")
    return _act(case_id, done, record_service_outcome, planned_id, delivered=delivered,
                on=request.form.get("on"), reason=request.form.get("reason"),
                anchor="#plan")  # fmt: skip


# --- consent and referrals ------------------------------------------------------------------------


@bp.route("/cases/<int:case_id>/consent", methods=["GET", "POST"])
@allow(*CASE_ROLES)
def case_consent(case_id: int):
    """Record the consent of the child or guardian to share the case with a provider."""

    def build(form):
        return (), {
            "provider_code": form.get("provider"),
            "given_by": form.get("given_by"),
            "method": form.get("method"),
            "shares": form.getlist("shares"),
            "notes": form.get("notes"),
        }

    return _form_page(case_id, "case_consent.html", Msg("Consent recorded."),
                      record_consent, build)  # fmt: skip


@bp.route("/cases/<int:case_id>/consents/<int:consent_id>/withdraw", methods=["POST"])
@allow(*CASE_ROLES)
def case_consent_withdraw(case_id: int, consent_id: int):
    """Record that a consent was withdrawn."""
    return _act(case_id, Msg("Consent withdrawn."), withdraw_consent, consent_id,
                anchor="#referrals")  # fmt: skip


@bp.route("/cases/<int:case_id>/refer", methods=["GET", "POST"])
@allow(*CASE_ROLES)
def case_refer(case_id: int):
    """Refer a planned service, or an urgent service at any step."""
    planned = request.values.get("planned", type=int)

    def build(form):
        return (), {
            "planned_service_id": planned,
            "service_code": form.get("service") or None,
            "provider_code": form.get("provider") or None,
            "override_reason": form.get("override_reason"),
            "message": form.get("message"),
        }

    return _form_page(case_id, "case_refer.html", Msg("Referral sent."), refer, build,
                      planned_id=planned)  # fmt: skip


@bp.route("/cases/<int:case_id>/referrals/<int:referral_id>/revoke", methods=["POST"])
@allow(*CASE_ROLES)
def case_referral_revoke(case_id: int, referral_id: int):
    """Withdraw a referral (with a reason)."""
    return _act(case_id, Msg("Referral revoked."), revoke_referral, referral_id,
                reason=request.form.get("reason"), anchor="#referrals")  # fmt: skip


# --- closure, transfer, assignment, notes --------------------------------------------------------


@bp.route("/cases/<int:case_id>/propose-closure", methods=["POST"])
@allow(*CASE_ROLES)
def case_propose_closure(case_id: int):
    """Propose closure (the criteria must hold)."""
    return _act(case_id, Msg("Closure proposed to the supervisors."), propose_closure,
                case_id, expected_version=_version())  # fmt: skip


@bp.route("/cases/<int:case_id>/closure", methods=["GET", "POST"])
@allow(*CASE_ROLES)
def case_closure(case_id: int):
    """A supervisor approves the closure with the closure report, or returns the case."""

    def build(form):
        return (), {
            "approve": form.get("decision") == "approve",
            "outcome": form.get("outcome"),
            "lessons_learned": form.get("lessons_learned"),
            "root_causes": form.getlist("root_causes"),
            "note": form.get("note"),
            "signs_seen": form.get("signs_seen") == "yes",
            "signs_reason": form.get("signs_reason"),
            "signs_shown": form.get("signs_digest"),
            "expected_version": _version(),
        }

    done = (
        Msg("Case closed.")
        if request.form.get("decision") == "approve"
        else Msg("Case returned to implementation.")
    )
    return _form_page(case_id, "case_closure.html", done, decide_closure, build)


@bp.route("/cases/<int:case_id>/transfer", methods=["GET", "POST"])
@allow(*CASE_ROLES)
def case_transfer(case_id: int):
    """Transfer the case to another agency or jurisdiction, or move it to another village."""

    def build(form):
        data = TransferInput(
            kind=form.get("kind"),
            to_agency=form.get("to_agency"),
            to_country=form.get("to_country"),
            to_village=form.get("to_village"),
            to_contact=form.get("to_contact"),
            reason=form.get("reason"),
            shared=form.getlist("shared"),
            consent_basis=form.get("consent_basis"),
        )
        return (data,), {"expected_version": _version()}

    return _form_page(case_id, "case_transfer.html", Msg("Transfer recorded."),
                      transfer_case, build, shareable=TRANSFER_SHAREABLE)  # fmt: skip


@bp.route("/cases/<int:case_id>/assign", methods=["POST"])
@allow(*CASE_ROLES)
def case_assign(case_id: int):
    """Assign the case officer and/or the follow-up monitor."""
    return _act(case_id, Msg("Case assigned."), assign_case, case_id,
                officer=request.form.get("officer") or None,
                monitor=request.form.get("monitor") or None)  # fmt: skip


@bp.route("/cases/<int:case_id>/withdrawals/<int:flag_id>/acknowledge", methods=["POST"])
@allow(*CASE_ROLES)
def case_withdrawal_acknowledge(case_id: int, flag_id: int):
    """The officer has read that a submission behind the case was withdrawn by its server, and
    says with a note what it means for the case (the case itself stays as it is)."""
    return _act(case_id, Msg("Withdrawal acknowledged with your note."), acknowledge_flag,
                case_id, flag_id, request.form.get("note"), anchor="#withdrawn-h")  # fmt: skip


@bp.route("/cases/<int:case_id>/notes", methods=["POST"])
@allow(*CASE_ROLES)
def case_note(case_id: int):
    """Add a note to the timeline, addressed to a person of the case if the form says so (they
    are notified)."""
    return _act(case_id, Msg("Note added."), add_note, case_id, request.form.get("text"),
                for_user=request.form.get("for_user") or None, anchor="#timeline")  # fmt: skip


@bp.route("/cases/<int:case_id>/entity-conflict/resolve", methods=["POST"])
@allow(*CASE_ROLES)
def case_entity_conflict_resolve(case_id: int):
    """Mark resolved, with a note, the conflict between phones that updated the case from the
    same version (clms.cases.entities)."""
    return _act(case_id, Msg("Conflict between phones marked resolved."), resolve_conflict,
                case_id, request.form.get("note"), anchor="#entity-conflict")  # fmt: skip
