"""The words for the codes the system stores: states, categories, risk levels, outcomes, roles.

A code is stored and exchanged as it is (``worst_form``, ``closure_review``); people read the word
for it, in their language: templates call ``say(code)`` (a Jinja global), code calls
:func:`say`. Every word is marked with :func:`~clms.i18n.N_` so the translation test finds it.
"""

from __future__ import annotations

from clms.cases.catalogue import SERVICES
from clms.i18n import N_
from clms.lexicon import FAMILIES, FAMILY_OF_FIELD
from clms.locale import current_locale, gettext, when

WORDS: dict[str, str] = {
    # roles
    "monitor": N_("monitor"),
    "officer": N_("officer"),
    "supervisor": N_("supervisor"),
    "provider": N_("provider"),
    "brand": N_("brand"),
    "admin": N_("administrator"),
    "system": N_("the system"),
    # case states
    "verification": N_("verification"),
    "assessment": N_("best-interest assessment"),
    "action_plan": N_("action plan"),
    "implementation": N_("implementation and monitoring"),
    "closure_review": N_("closure review"),
    "closed": N_("closed"),
    "reopened": N_("reopened"),
    "transferred": N_("transferred"),
    "open": N_("open"),
    "all": N_("all"),
    # categories and severities
    "worst_form": N_("worst form of child labour"),
    "hazardous": N_("hazardous work"),
    "child_labour": N_("child labour"),
    "at_risk": N_("at risk"),
    "none": N_("none"),
    "critical": N_("critical"),
    "high": N_("high"),
    "medium": N_("medium"),
    "low": N_("low"),
    # assessment
    "attending": N_("attending school"),
    "irregular": N_("attends irregularly"),
    "dropped_out": N_("dropped out"),
    "never_enrolled": N_("never enrolled"),
    "not_applicable": N_("not applicable"),
    "safe": N_("safe"),
    "in_danger": N_("in danger: needs protection now"),
    "education": N_("education"),
    "economic_strengthening": N_("economic strengthening of the household"),
    "health": N_("health"),
    "psychosocial": N_("psychosocial support"),
    "legal_protection": N_("legal protection"),
    "family_tracing": N_("family tracing and reunification"),
    "awareness": N_("awareness and counselling"),
    "decent_work": N_("decent work for 15-17 year olds"),
    "prevention": N_("prevention"),
    "remediation": N_("remediation"),
    "protection": N_("specialised protection"),
    # plans and services
    "draft": N_("draft"),
    "submitted": N_("waiting for approval"),
    "approved": N_("approved"),
    "auto": N_("in force (no approval needed)"),
    "returned": N_("returned for changes"),
    "superseded": N_("superseded"),
    "planned": N_("planned"),
    "referred": N_("referred"),
    "delivered": N_("delivered"),
    # referrals
    "pending": N_("waiting for an answer"),
    "accepted": N_("accepted"),
    "rejected": N_("rejected"),
    "done": N_("done"),
    "revoked": N_("revoked"),
    "service_provided": N_("service provided"),
    "already_received_elsewhere": N_("already received elsewhere"),
    "declined_by_child_or_family": N_("declined by the child or family"),
    "service_unavailable": N_("service unavailable"),
    # consent and sharing
    "child": N_("the child"),
    "guardian": N_("a parent or guardian"),
    "child_and_guardian": N_("the child and a parent or guardian"),
    "verbal": N_("spoken"),
    "written": N_("written"),
    "thumbprint": N_("thumbprint"),
    "first_name": N_("first name"),
    "full_name": N_("full name"),
    "age": N_("age"),
    "sex": N_("sex"),
    "village": N_("village"),
    "household_head": N_("name of the household head"),
    "assessment_summary": N_("summary of the assessment (risk, schooling, safety)"),
    # closure
    "remediated": N_("remediated: no longer in child labour"),
    "not_confirmed": N_("not confirmed"),
    "aged_out": N_("turned 18"),
    "moved_or_lost_contact": N_("moved away or contact lost"),
    "other": N_("other"),
    "household_income": N_("household income"),
    "school_access": N_("no school within reach"),
    "school_costs": N_("school costs"),
    "labour_shortage": N_("shortage of adult labour"),
    "recruiter_or_intermediary": N_("a recruiter or intermediary"),
    "debt": N_("debt"),
    "family_separation": N_("separated from the family"),
    "no_birth_registration": N_("no birth registration"),
    "social_norms": N_("social norms and expectations"),
    # transfers
    "internal": N_("to another village covered here"),
    "external": N_("to another agency or jurisdiction"),
    "consent": N_("consent of the child or guardian"),
    "best_interests": N_("the child's best interests (no consent)"),
    "identity": N_("the child's identity"),
    "case_summary": N_("a summary of the case"),
    "assessments": N_("the assessments"),
    "plan_and_services": N_("the plan and services"),
    "referrals": N_("the referrals"),
    "visit_history": N_("the visits and classifications"),
    "household_contact": N_("the household's contact"),
    # provider kinds
    "school": N_("school"),
    "clinic": N_("clinic"),
    "legal_aid": N_("legal aid"),
    "social_services": N_("social services"),
    "ngo": N_("NGO"),
    "police": N_("police"),
    "local_authority": N_("local authority"),
    # sex
    "female": N_("female"),
    "male": N_("male"),
    # alerts
    "new": N_("new"),
    "acknowledged": N_("acknowledged"),
    "dismissed": N_("dismissed"),
    "case_opened": N_("case opened"),
    "withdrawn": N_("withdrawn at the source"),
    # why a server withdrew a submission (clms.intake.withdraw)
    "deleted": N_("deleted"),
    "not_approved": N_("not approved"),
    # visits
    "household": N_("household visit"),
    "followup": N_("follow-up visit"),
}


#: the seeded services of the catalogue, in each language (an administrator may rename a service
#: or add one: the catalogue's pages show the stored name; a stored code reads as the seed's)
SERVICE_WORDS: dict[str, dict[str, str]] = {
    code: {"en": en, "fr": fr} for code, en, fr, *_rest in SERVICES
}


def say(code: str | None, family: str | None = None) -> str:
    """The word for ``code`` in the current language, in ``family`` when given (a code of the
    forms' lists, an audit action, a service: see :mod:`clms.lexicon`), else the general words
    above. A code with no word (free text an administrator typed) is shown as it is, with spaces
    for underscores."""
    if code is None:
        return "—"
    if family == "service" and code in SERVICE_WORDS:
        names = SERVICE_WORDS[code]
        return names.get(current_locale()) or names["en"]
    word = english_word(code, family)
    if word is not None:
        return gettext(word)
    return code if family == "audit_action" else code.replace("_", " ")


def said_or_typed(text: str | None) -> str:
    """A value that is either a stored code (a referral's outcome closing a planned service;
    older rows kept it with spaces: "declined by child or family") or words a person typed (a
    reason): the code's word in the reader's language, else the text as typed."""
    if not text:
        return ""
    code = text.strip().replace(" ", "_")
    return say(code) if english_word(code) is not None else text


def english_word(code: str, family: str | None = None) -> str | None:
    """The English word (marked for translation) for ``code`` in ``family`` (else in the general
    words); None when there is none. An audit action of a case's event (``case.<event>``) reads
    as the timeline's line; a family's code no family word has falls back to the general words
    (a role, a category)."""
    if family == "service":
        names = SERVICE_WORDS.get(code)
        return names["en"] if names else None
    if family == "audit_action":
        word = FAMILIES[family].get(code)
        if word is None and code.startswith("case."):
            word = EVENT_WORDS.get(code.removeprefix("case."))
        return word
    if family is not None and code in FAMILIES[family]:
        return FAMILIES[family][code]
    return WORDS.get(code)


#: what each line of a case's timeline says happened
EVENT_WORDS: dict[str, str] = {
    "opened": N_("Case opened from an alert"),
    "alert_linked": N_("Another alert joined this case"),
    "verified": N_("Verification visit recorded"),
    "assessed": N_("Best-interest assessment recorded"),
    "reassessed": N_("New assessment recorded"),
    "service_planned": N_("Service added to the plan"),
    "service_removed": N_("Service removed from the plan"),
    "plan_submitted": N_("Plan submitted"),
    "plan_approved": N_("Plan approved"),
    "plan_returned": N_("Plan returned for changes"),
    "service_delivered": N_("Service delivered"),
    "service_closed": N_("Service closed without delivery"),
    "consent_recorded": N_("Consent recorded"),
    "consent_withdrawn": N_("Consent withdrawn"),
    "referred": N_("Referred to a provider"),
    "referral_revoked": N_("Referral revoked"),
    "referral_accepted": N_("Referral accepted by the provider"),
    "referral_rejected": N_("Referral rejected by the provider"),
    "referral_done": N_("Provider recorded the outcome"),
    "referral_overdue": N_("Referral overdue: escalated"),
    "closure_proposed": N_("Closure proposed"),
    "closed": N_("Case closed"),
    "closure_returned": N_("Closure returned: back to implementation"),
    "transferred": N_("Case transferred"),
    "moved_village": N_("Case moved to another village"),
    "assigned": N_("Case assigned"),
    "note": N_("Note"),
    "followup": N_("Follow-up visit"),
    "found_in_work": N_("A visit found the child in child labour"),
    "visited": N_("Household visit saw the child"),
    "reopened": N_("Case reopened: child found in child labour again"),
    "child_merged": N_("Duplicate record of the child merged"),
    "escalated": N_("Step overdue: escalated to the supervisors"),
    "state_changed": N_("Step changed"),
    "source_withdrawn": N_("A submission behind the case was withdrawn by its server"),
    "source_restored": N_("The withdrawn submission was restored by its server"),
    "source_withdrawal_read": N_("The withdrawal was read and answered"),
}

#: detail keys of timeline events whose values are codes (shown with :func:`say`)
CODE_KEYS = {
    "category", "risk_level", "immediate_safety", "response_level", "service", "outcome",
    "given_by", "kind", "consent_basis", "visit", "from", "to", "by", "category_raised_from",
    "withdrawn_reason",
}  # fmt: skip


#: detail keys whose values are codes of a family (:func:`say` with it)
CODE_FAMILIES = {
    "service": "service",
    "services_received": "service",
    "services_delivered": "service",
    **FAMILY_OF_FIELD,
}


def event_words(action: str) -> str:
    """What a timeline line says happened, in the current language."""
    return gettext(EVENT_WORDS.get(action, action.replace("_", " ")))


def detail_words(key: str, value) -> str:
    """One value of a timeline event's detail, for people."""
    if isinstance(value, bool):
        return gettext("yes") if value else gettext("no")
    family = CODE_FAMILIES.get(key)
    if isinstance(value, list):
        return ", ".join(say(v, family) if isinstance(v, str) else str(v) for v in value) or "—"
    if isinstance(value, str) and (key in CODE_KEYS or family):
        return say(value, family)
    if isinstance(value, str) and key.endswith("_at"):
        return _moment(value)
    return "—" if value is None else str(value)


def _moment(value: str) -> str:
    """A moment kept as ISO 8601 text, as the pages show moments (to the minute, UTC, in the
    reader's language: English outside a request).

    >>> _moment("2026-12-02T08:00:13+00:00"), _moment("soon")
    ('Dec 2, 2026, 08:00 UTC', 'soon')
    """
    import datetime as dt

    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        return value
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC)
    return when(moment)  # in the reader's language, UTC


DETAIL_LABELS: dict[str, str] = {
    "category": N_("finding"),
    "risk_level": N_("risk"),
    "immediate_safety": N_("immediate safety"),
    "response_level": N_("level of response"),
    "service": N_("service"),
    "provider": N_("provider"),
    "due_on": N_("due"),
    "outcome": N_("outcome"),
    "reason": N_("reason"),
    "note": N_("note"),
    "text": N_("note"),
    "for": N_("for"),
    "findings": N_("what was found"),
    "visited_on": N_("visit date"),
    "visited_at": N_("visit"),
    "confirmed": N_("confirmed"),
    "shared": N_("shared"),
    "shares": N_("may see"),
    "given_by": N_("given by"),
    "urgent": N_("urgent"),
    "consent_override": N_("consent overridden, reason"),
    "child_present": N_("child seen"),
    "services_received": N_("services received"),
    "services_delivered": N_("services delivered"),
    "root_causes": N_("root causes"),
    "lessons_learned": N_("lessons learned"),
    "to_agency": N_("to"),
    "to_country": N_("country"),
    "to_village": N_("village"),
    "consent_basis": N_("basis"),
    "officer": N_("officer"),
    "monitor": N_("monitor"),
    "closure_withdrawn": N_("closure withdrawn"),
    "plan_needs_approval": N_("plan now needs approval"),
    "service_date": N_("service date"),
    "needs_approval": N_("needs approval"),
    "category_raised_from": N_("previous finding"),
    "withdrawn_reason": N_("reason"),
    "server": N_("server"),
}
#: detail keys kept out of the timeline (ids for the machine)
HIDDEN_DETAIL = {
    "classification_id", "alert_id", "assessment_id", "planned_service_id", "referral_id",
    "consent_id", "transfer_id", "plan_version", "severity", "source", "visit", "by", "monitor",
    "flag", "submission_id",
}  # fmt: skip


def detail_label(key: str) -> str:
    """The label of a timeline event's detail key."""
    return gettext(DETAIL_LABELS.get(key, key.replace("_", " ")))
