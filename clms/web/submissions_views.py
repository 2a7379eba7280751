"""Received submissions: the list (with those that need review) and one submission."""

from __future__ import annotations

from flask import abort, g, render_template, request

from clms.audit import record_read
from clms.auth import allow
from clms.db import db
from clms.i18n import N_
from clms.locale import gettext
from clms.web import bp
from forms.review import (
    SUBMISSION_PAGING,
    get_submission,
    list_submissions,
    may_read_content,
)

STATUSES = ("received", "parsed", "review", "raw")
#: the status filters, as the list names them
FILTER_WORDS = {
    "received": N_("Waiting to be processed"),
    "parsed": N_("Parsed"),
    "review": N_("Needs review"),
    "raw": N_("Other forms"),
}
#: a submission's status, on its badge
STATUS_WORDS = {
    "received": N_("received"),
    "parsed": N_("parsed"),
    "review": N_("review"),
    "raw": N_("raw"),
}


def status_word(status: str) -> str:
    """A submission's status in the reader's language."""
    return gettext(STATUS_WORDS.get(status, status))


@bp.route("/submissions")
@allow("officer", "supervisor", "admin")
def submissions_index():
    """Newest submissions first; ``?status=review`` lists those that need a person."""
    status = request.args.get("status")
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
    )


@bp.route("/submissions/<int:submission_id>")
@allow("officer", "supervisor", "admin")
def submission_detail(submission_id: int):
    """One submission: who sent it, when, why it needs review, and its XML when permitted."""
    submission = get_submission(db(), g.user, submission_id)
    if submission is None:
        abort(404)
    content = None
    if may_read_content(g.user, submission):
        record_read(db(), g.user, "submission.read", f"submission:{submission.instance_id}")
        content = submission.xml.decode("utf-8", "replace")
    return render_template(
        "submission_detail.html", s=submission, content=content, status_word=status_word
    )
