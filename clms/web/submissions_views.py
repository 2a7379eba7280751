"""Received submissions: the list, the review queue, one submission (its questions and answers,
why it is held, its history) and the reviewer's decisions on it (:mod:`forms.decisions`)."""

from __future__ import annotations

from flask import Response, abort, flash, g, redirect, render_template, request, url_for

from clms.audit import record_read
from clms.auth import allow
from clms.db import db
from clms.errors import Problem
from clms.i18n import N_, Msg
from clms.locale import current_locale, gettext, localize
from clms.notices.tell import settle
from clms.web import bp, flash_problem
from forms import decisions
from forms.questions import answers, read_form
from forms.reasons import (
    CODE_NAMES,
    Where,
    acceptable,
    code_of,
    describe,
    named,
    split_path,
    summary,
)
from forms.review import (
    QUEUE_STATES,
    SUBMISSION_PAGING,
    get_submission,
    list_submissions,
    may_decide,
    may_read_content,
    may_read_raw,
    village_choices,
    villages_of,
)
from forms.review import review_queue as held_page
from forms.xmlsafe import local, parse_xml

STATUSES = ("received", "parsed", "review", "raw", "rejected", "withdrawn")
#: the status filters, as the list names them
FILTER_WORDS = {
    "received": N_("Waiting to be processed"),
    "parsed": N_("Parsed"),
    "review": N_("Needs review"),
    "raw": N_("Other forms"),
    "rejected": N_("Rejected"),
    "withdrawn": N_("Withdrawn by their server"),
}
#: a submission's status, on its badge
STATUS_WORDS = {
    "received": N_("received"),
    "parsed": N_("parsed"),
    "review": N_("review"),
    "raw": N_("raw"),
    "encrypted": N_("encrypted"),
    "rejected": N_("rejected"),
    "corrected": N_("corrected"),
}
#: the review queue's lists
QUEUE_WORDS = {
    "held": N_("Waiting for a decision"),
    "rejected": N_("Rejected"),
    "encrypted": N_("Waiting for the form's key"),
}
#: a line of a submission's history
EVENT_WORDS = {
    "received": N_("Received from %(who)s"),
    "version": N_("New version made by the correction"),
    "held": N_("Held for review"),
    "correct": N_("Corrected by %(who)s"),
    "accept": N_("Accepted as it is by %(who)s"),
    "reject": N_("Rejected by %(who)s"),
}


def status_word(status: str) -> str:
    """A submission's status in the reader's language."""
    return gettext(STATUS_WORDS.get(status, status))


@bp.route("/submissions")
@allow("officer", "supervisor", "admin")
def submissions_index():
    """Newest submissions first; those held for review have their own queue (``/review``)."""
    status = request.args.get("status")
    if status == "review":
        return redirect(url_for("web.review_queue"), 303)
    if status not in STATUSES:
        status = None
    page = list_submissions(
        db(), g.user, status=status, page=SUBMISSION_PAGING.read(request.args).page
    )
    return render_template(
        "submissions_index.html",
        page=page,
        status=status,
        statuses=STATUSES,
        filter_words=FILTER_WORDS,
        status_word=status_word,
        summary=summary,
    )


@bp.route("/review")
@allow("officer", "supervisor", "admin")
def review_queue():
    """Submissions held for review, the oldest first, each with why in plain words; filtered by
    reason (``?reason=far_gps``), or the rejected ones, or those waiting for a key (``?state=``)."""
    state = request.args.get("state", "held")
    if state not in QUEUE_STATES:
        state = "held"
    code = request.args.get("reason") or None
    if code not in CODE_NAMES:
        code = None
    page = held_page(
        db(), g.user, state=state, code=code, page=SUBMISSION_PAGING.read(request.args).page
    )
    return render_template(
        "review_queue.html",
        page=page,
        state=state,
        code=code,
        states=QUEUE_WORDS,
        codes=CODE_NAMES,
        summary=summary,
        status_word=status_word,
        villages=villages_of(db(), [s.id for s in page.rows]),
    )


@bp.route("/submissions/<int:submission_id>")
@allow("officer", "supervisor", "admin")
def submission_detail(submission_id: int):
    """One submission: who sent it and when, its questions and answers in the reader's language
    (who may read them), why it is held next to the questions concerned, what a reviewer may do,
    and its history."""
    session = db()
    submission = get_submission(session, g.user, submission_id)
    if submission is None:
        abort(404)
    readable = may_read_content(session, g.user, submission)
    lang = current_locale()
    layout = read_form(submission.form_version.xml)
    rows = []
    if readable and submission.status != "encrypted":
        record_read(session, g.user, "submission.read", f"submission:{submission.instance_id}")
        rows = answers(layout, submission.xml, lang)
    labels = {r.path: r for r in rows}
    root_name = _root_name(submission)
    held = []
    for reason in submission.review_reasons or []:
        if not isinstance(reason, dict):
            continue
        where = _where(layout, root_name, reason, labels, lang)
        # who may not read the answers reads the reason's name, never the facts it quotes
        words = describe(reason, where) if readable else named(reason, where)
        held.append((reason.get("path") or "", words))
    by_path: dict[str, list] = {}
    for path, words in held:
        by_path.setdefault(path, []).append(words)
    decide = (
        may_decide(session, g.user, submission)
        and submission.status == "review"
        and submission.current
    )
    can_accept, blocking = acceptable(submission.review_reasons)
    field = request.args.get("field", "")
    return render_template(
        "submission_detail.html",
        s=submission,
        rows=rows,
        readable=readable,
        raw=may_read_raw(session, g.user, submission),
        held=held,
        by_path=by_path,
        decide=decide,
        can_accept=can_accept,
        blocking=[localize(Msg(CODE_NAMES.get(code_of(r) or "", "?"))) for r in blocking],
        field=field,
        field_row=labels.get(field),
        villages=village_choices(session, g.user) if decide and field else [],
        editable=[r for r in rows if r.kind == "answer" and r.question is not None],
        history=decisions.history(session, submission),
        event_words=EVENT_WORDS,
        codes=CODE_NAMES,
        status_word=status_word,
        lang=lang,
        field_label=lambda path: _label(layout, root_name, path, labels, lang),
    )


def _root_name(submission) -> str:
    try:
        return local(parse_xml(submission.xml).tag)
    except Problem:
        return "data"


def _where(layout, root_name: str, reason: dict, labels: dict, lang: str) -> Where:
    path = reason.get("path") or ""
    child, name = split_path(path)
    return Where(_label(layout, root_name, path, labels, lang), child)


def _label(layout, root_name: str, path: str, labels: dict, lang: str) -> str:
    """The question's label in ``lang`` for a reason's path (from the form; the path when the
    form does not know it)."""
    from forms.questions import question_at

    if path in labels:
        return labels[path].label
    if path == "submission":
        return gettext("The submission")
    if path == "child":
        return gettext("Children")
    question = question_at(layout, root_name, path)
    return question.label(lang) if question is not None else path


@bp.route("/submissions/<int:submission_id>/xml", methods=["GET", "POST"])
@allow("officer", "supervisor", "admin")
def submission_xml(submission_id: int):
    """The submission's XML exactly as received, for who may read it. An administrator who may
    not read the answers (no officer's scope) first says why they need them (a form to fix, a
    parse error to understand): the reason is kept with the read, as a break-glass access."""
    session = db()
    submission = get_submission(session, g.user, submission_id)
    if submission is None or not may_read_raw(session, g.user, submission):
        abort(404)
    reason = None
    if not may_read_content(session, g.user, submission):
        reason = " ".join((request.form.get("reason") or "").split())[:500]
        if request.method != "POST" or not reason:
            status = 400 if request.method == "POST" else 200
            return render_template("submission_xml_reason.html", s=submission,
                                   missing=request.method == "POST"), status  # fmt: skip
    record_read(session, g.user, "submission.read_raw", f"submission:{submission.instance_id}",
                reason=reason)  # fmt: skip
    response = Response(submission.xml, mimetype="text/plain")
    response.headers["Content-Disposition"] = f'inline; filename="submission-{submission.id}.xml"'
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@bp.route("/submissions/<int:submission_id>/correct", methods=["POST"])
@allow("officer", "supervisor", "admin")
def submission_correct(submission_id: int):
    """Correct one answer (a new version, processed again), then to the new version."""
    form = request.form
    return _decide(
        submission_id,
        decisions.correct,
        form.get("field", ""),
        _value(form),
        form.get("reason", ""),
        done=Msg("Corrected: the new version waits to be processed again."),
    )


def _value(form) -> str:
    """The corrected answer: a text, one choice, or several choices (ticked boxes)."""
    if "value_choices" in form or form.get("multi") == "1":
        return " ".join(form.getlist("value_choices"))
    return form.get("value", "")


@bp.route("/submissions/<int:submission_id>/accept", methods=["POST"])
@allow("officer", "supervisor", "admin")
def submission_accept(submission_id: int):
    """Accept as it is: processing goes on."""
    return _decide(submission_id, decisions.accept, request.form.get("reason", ""),
                   done=Msg("Accepted: processing goes on."))  # fmt: skip


@bp.route("/submissions/<int:submission_id>/reject", methods=["POST"])
@allow("officer", "supervisor", "admin")
def submission_reject(submission_id: int):
    """Reject with a reason, once confirmed: final, never processed."""
    return _decide(submission_id, decisions.reject, request.form.get("reason", ""),
                   done=Msg("Rejected: it will never be processed."),
                   confirm=request.form.get("confirm") == "yes")  # fmt: skip


def _decide(submission_id: int, operation, *args, done: Msg, confirm: bool = True):
    """Run one decision: commit and say so, or say why not; to the submission's (new) page.
    ``confirm``: False for an irreversible decision the person did not confirm (refused)."""
    session = db()
    submission = get_submission(session, g.user, submission_id)
    if submission is None:
        abort(404)
    if not may_decide(session, g.user, submission):
        abort(403)  # an administrator sees it exists, but decides only with an officer's scope
    target = submission_id
    if not confirm:
        flash(localize(Msg("Tick the box to confirm the rejection: it cannot be undone.")),
              "error")  # fmt: skip
        return redirect(url_for("web.submission_detail", submission_id=target), 303)
    try:
        result = operation(session, g.user, submission_id, *args)
    except Problem as p:
        flash_problem(p, session)
        field = request.form.get("field")
        args_ = {"field": field} if field and operation is decisions.correct else {}
        return redirect(url_for("web.submission_detail", submission_id=target, **args_), 303)
    target = result.id
    settle(session, "submission_held", "submission", submission_id)  # decided: it waits no more
    session.commit()
    flash(localize(done), "success")
    return redirect(url_for("web.submission_detail", submission_id=target), 303)
