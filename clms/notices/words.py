"""The sentence of a notice, written from its codes when it is read (in the reader's language)
or mailed (in English, as every mail is), and the path of the item it opens.

>>> str(sentence("approval_requested", "C-2026-0001", {"step": "plan"}))
'The plan of case C-2026-0001 waits for your approval'
>>> path_of("note", "case", 7)
'/cases/7#timeline'
"""

from __future__ import annotations

from clms.i18n import Msg

#: where each subject opens
_PATHS = {
    "case": "/cases/{id}",
    "alert": "/alerts/{id}",
    "referral": "/referrals/{id}",
    "submission": "/submissions/{id}",
}

_ESCALATED = {
    "alert": Msg("Alert {code} is overdue and escalated to you"),
    "case": Msg("The step of case {code} is overdue and escalated to you"),
    "referral": Msg("Referral {referral} of case {code} is overdue"),
    "provider_referral": Msg("Referral {code} is overdue: answer it or record the service"),
}
_REQUESTED = {
    "plan": Msg("The plan of case {code} waits for your approval"),
    "closure": Msg("The closure of case {code} waits for your approval"),
    "risk": Msg("Case {code}: the risk is now high and the plan was not approved"),
}
_DECIDED = {
    ("plan", "approved"): Msg("The plan of case {code} was approved"),
    ("plan", "returned"): Msg("The plan of case {code} was returned: revise it"),
    ("closure", "approved"): Msg("The closure of case {code} was approved: the case is closed"),
    ("closure", "returned"): Msg("The closure of case {code} was returned: the work goes on"),
}
_ANSWERED = {
    "accepted": Msg("Referral {referral} of case {code} was accepted"),
    "rejected": Msg("Referral {referral} of case {code} was rejected: refer it elsewhere"),
    "completed": Msg("Referral {referral} of case {code} was completed"),
}
_ASSIGNED = {
    "assigned": Msg("Case {code} is assigned to you"),
    "moved": Msg("Case {code} moved to your area: take it on"),
}


def sentence(kind: str, code: str, detail: dict | None) -> Msg:
    """What a notice says (a :class:`Msg` with the codes in it, translated when shown)."""
    d = detail or {}
    params = {"code": code, "referral": f"#{d.get('referral', '')}"}
    if kind == "escalated":
        template = _ESCALATED.get(d.get("about", "case"), _ESCALATED["case"])
    elif kind == "approval_requested":
        template = _REQUESTED.get(d.get("step", "plan"), _REQUESTED["plan"])
    elif kind == "approval_decided":
        template = _DECIDED.get((d.get("step", "plan"), d.get("decision", "approved")),
                                _DECIDED[("plan", "approved")])  # fmt: skip
    elif kind == "referral_answered":
        template = _ANSWERED.get(d.get("answer", "accepted"), _ANSWERED["accepted"])
    elif kind == "referral_received":
        urgent = d.get("urgent")
        template = (Msg("An URGENT referral {code} waits for your answer") if urgent
                    else Msg("Referral {code} waits for your answer"))  # fmt: skip
    elif kind == "case_assigned":
        template = _ASSIGNED.get(d.get("how", "assigned"), _ASSIGNED["assigned"])
    elif kind == "alert_assigned":
        template = Msg("Alert {code} is assigned to you")
    elif kind == "note":
        template = Msg("A note for you on case {code}")
    elif kind == "submission_held":
        template = Msg("Submission {code} is held for your review")
    elif kind == "source_withdrawn":
        template = (Msg("A submission behind case {code} was restored by its server")
                    if d.get("restored") else
                    Msg("A submission behind case {code} was withdrawn by its server: "
                        "read the flag on the case"))  # fmt: skip
    else:
        template = Msg("Something happened about {code}")
    return Msg(template.template, **params)


def path_of(kind: str, subject: str, subject_id: int) -> str:
    """The path of the page a notice opens (a note: the case's timeline)."""
    path = _PATHS[subject].format(id=subject_id)
    return path + "#timeline" if kind == "note" else path
