"""What each section of a home page is called and where its whole list is
(:mod:`clms.workday.home` gives the sections; :func:`clms.web.views.home` shows them)."""

from __future__ import annotations

from clms.i18n import N_

#: a section's title, and the endpoint and arguments of the page that lists exactly its items, as
#: many as its count says (None: no page lists exactly these; each line links to its item)
SECTIONS: dict[str, tuple[str, str | None, dict]] = {
    "alerts_overdue": (N_("Overdue alerts"), "web.alerts_index", {"overdue": "true"}),
    "alerts_new": (N_("New alerts"), "web.alerts_index", {"status": "new"}),
    "cases_overdue": (N_("Your cases past a deadline"), "web.cases_index",
                      {"mine": "1", "overdue": "true"}),
    "cases_withdrawn": (N_("Your cases whose source was withdrawn: read the flag"), None, {}),
    "cases_conflict": (N_("Your cases that phones updated without seeing each other: resolve"),
                       None, {}),
    "cases_due": (N_("Your cases with a step due soon"), None, {}),
    "plans_returned": (N_("Your plans returned for changes"), None, {}),
    "followups_due": (N_("Follow-up visits due"), None, {}),
    "referrals_overdue": (N_("Overdue referrals"), None, {}),
    "referrals_answered": (N_("Referrals answered this week"), None, {}),
    "plans_to_approve": (N_("Plans waiting for your approval"), None, {}),
    "closures_to_approve": (N_("Closures waiting for your approval"), "web.cases_index",
                            {"state": "closure_review"}),
    "escalations": (N_("Escalated to you"), None, {}),
    "notes_for_you": (N_("Notes addressed to you"), None, {}),
    "referrals_to_answer": (N_("Referrals waiting for your answer"), "web.referrals_index",
                            {"status": "pending"}),
    "services_to_record": (N_("Accepted referrals: record the service"), "web.referrals_index",
                           {"status": "accepted"}),
    "submissions_held": (N_("Submissions held for review"), "web.review_queue",
                         {}),
    "sources_failing": (N_("Pull sources with errors"), None, {}),
    "jobs_failed": (N_("Scheduled jobs whose last run failed"), None, {}),
    "mail_failed": (N_("Mail that could not be sent"), None, {}),
    "accounts_locked": (N_("Accounts locked after failed sign-ins"), None, {}),
    "keys_missing": (N_("Encrypted submissions waiting for their form's key"), None, {}),
}  # fmt: skip

#: why the read replica is not read (clms.db.ReplicaState.status), on an administrator's home
REPLICA_WORDS = {
    "lagging": N_("it is too far behind the primary"),
    "not_streaming": N_("it is not receiving changes from the primary"),
    "not_standby": N_("it is not a standby: promoted, or the wrong server"),
    "down": N_("it does not answer"),
}

#: where a line of each kind opens (the endpoint and the name of its id argument)
LINE_TARGETS = {
    "alert": ("web.alert_detail", "alert_id"),
    "case": ("web.case_detail", "case_id"),
    "referral": ("web.referral_detail", "referral_id"),
    "submission": ("web.submission_detail", "submission_id"),
    "source": ("web.source_edit", "source_id"),
    "note": ("notifications.open", "notice_id"),
    "account": ("web.user_detail", "user_id"),
}
