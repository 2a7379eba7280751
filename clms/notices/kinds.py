"""The kinds of notice: what each tells, whether it also comes by email when the person has not
chosen, and the subject of its mail.

A kind whose event mailed people before notices existed (escalations, approvals, referral
answers, a case that comes to you) keeps coming by email unless the person turns it off; the
kinds that are new with notices (an alert assigned, a note addressed to you, a submission held for
your review) come in the application only unless the person asks for mail.
"""

from __future__ import annotations

from clms.i18n import N_

#: every kind, in the order the settings page lists them, with its title
KINDS: dict[str, str] = {
    "escalated": N_("Escalated to you (an overdue alert, case step or referral)"),
    "approval_requested": N_("A plan or a closure waits for your approval"),
    "approval_decided": N_("A supervisor approved or returned your plan or closure"),
    "referral_answered": N_("A provider accepted, rejected or completed a referral"),
    "referral_received": N_("A referral sent to your organisation"),
    "case_assigned": N_("A case assigned to you or moved to your area"),
    "alert_assigned": N_("An alert assigned to you"),
    "note": N_("A case note addressed to you"),
    "submission_held": N_("A submission held for your review"),
    "source_withdrawn": N_("A submission behind your case withdrawn or restored by its server"),
}

#: the kinds that come by email unless the person chose otherwise
BY_EMAIL_BY_DEFAULT = frozenset(
    {"escalated", "approval_requested", "approval_decided", "referral_answered",
     "referral_received", "case_assigned", "source_withdrawn"}
)  # fmt: skip

#: the roles each kind may reach (the settings page shows a person only their role's kinds)
ROLES_OF: dict[str, tuple[str, ...]] = {
    "escalated": ("officer", "supervisor", "provider"),
    "approval_requested": ("supervisor",),
    "approval_decided": ("officer", "supervisor"),
    "referral_answered": ("officer", "supervisor"),
    "referral_received": ("provider",),
    "case_assigned": ("officer", "supervisor"),
    "alert_assigned": ("officer", "supervisor"),
    "note": ("officer", "supervisor"),
    "submission_held": ("officer", "supervisor"),
    "source_withdrawn": ("officer", "supervisor"),
}

#: what a notice is about: the item its link opens
SUBJECTS = ("case", "alert", "referral", "submission")

#: the outbox's kind of the mail of each notice kind (the outbox keeps short kinds)
MAIL_KIND = {
    "escalated": "escalation",
    "referral_answered": "referral",
    "referral_received": "referral",
}


def kinds_for(role: str) -> list[str]:
    """The kinds a person of ``role`` may receive, in the settings page's order."""
    return [k for k in KINDS if role in ROLES_OF[k]]
