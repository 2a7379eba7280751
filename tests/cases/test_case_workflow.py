"""The case state machine (clms.cases.workflow): pure rules, no database."""

from __future__ import annotations

import datetime as dt
import doctest

import pytest

from clms.cases import workflow as wf
from clms.cases.workflow import Actor, CaseFacts, Observation, Refused, ServiceState

T0 = dt.datetime(2026, 3, 1, 9, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)
OFFICER, SUPERVISOR, OTHER_SUP = Actor("officer", 1), Actor("supervisor", 2), Actor("supervisor", 3)


def test_the_docstring_examples_hold():
    result = doctest.testmod(wf, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 10 and result.failed == 0


def test_every_move_leads_to_a_known_state_from_known_states():
    for move in wf.MOVES.values():
        assert set(move.from_states) <= set(wf.STATES), move.name
        assert move.to_state is None or move.to_state in wf.STATES, move.name
    # nothing leaves closed except a reopening by the system; nothing leaves transferred
    leaving_closed = [
        m.name
        for m in wf.MOVES.values()
        if "closed" in m.from_states and m.to_state not in (None, "closed")
    ]
    assert leaving_closed == ["reopen"] and wf.MOVES["reopen"].roles == ("system",)
    assert not [m for m in wf.MOVES.values() if "transferred" in m.from_states and m.to_state]


@pytest.mark.parametrize(
    ("state", "move", "to"),
    [
        ("verification", "verify_confirmed", "assessment"),
        ("verification", "verify_not_confirmed", "closed"),
        ("assessment", "assess", "action_plan"),
        ("reopened", "assess", "action_plan"),
        ("implementation", "transfer", "transferred"),
    ],
)
def test_allowed_moves_lead_where_the_table_says(state, move, to):
    assert wf.check(CaseFacts(state=state), move, OFFICER).to_state == to


def test_a_refused_move_says_why_in_words():
    with pytest.raises(Refused) as e:
        wf.check(CaseFacts(state="closed"), "assess", OFFICER)
    assert str(e.value) == (
        "This case is at the step 'closed'; the best-interest assessment can only be done at: "
        "best-interest assessment or reopened."
    )
    with pytest.raises(Refused, match="Only a supervisor may do this"):
        wf.check(CaseFacts(state="action_plan", plan_status="submitted"), "approve_plan", OFFICER)
    with pytest.raises(Refused, match="Only the system does this"):
        wf.check(CaseFacts(state="closed", closed_at=T0), "reopen", SUPERVISOR)
    with pytest.raises(Refused, match="may not act on cases"):
        wf.check(CaseFacts(state="verification"), "verify_confirmed", Actor("provider", 9))


def test_the_plan_needs_services_and_a_second_pair_of_eyes():
    draft = CaseFacts(state="action_plan", plan_status="draft", plan_services=0)
    with pytest.raises(Refused, match="no services yet"):
        wf.check(draft, "submit_plan", OFFICER)
    draft.plan_services = 2
    assert wf.check(draft, "submit_plan", OFFICER).name == "submit_plan"
    with pytest.raises(Refused, match="no plan waiting"):
        wf.check(draft, "approve_plan", SUPERVISOR)
    submitted = CaseFacts(
        state="action_plan",
        plan_status="submitted",
        plan_services=2,
        plan_submitted_by=SUPERVISOR.user_id,
    )
    with pytest.raises(Refused, match="You submitted this plan"):
        wf.check(submitted, "approve_plan", SUPERVISOR)
    assert wf.check(submitted, "approve_plan", OTHER_SUP).to_state == "implementation"
    with pytest.raises(Refused, match="waiting for a supervisor's approval"):
        wf.check(submitted, "edit_plan", OFFICER)
    with pytest.raises(Refused, match="already waiting"):
        wf.check(submitted, "submit_plan", OFFICER)


def test_closure_approval_needs_a_supervisor_other_than_the_proposer():
    review = CaseFacts(state="closure_review", closure_proposed_by=SUPERVISOR.user_id)
    with pytest.raises(Refused, match="You proposed this closure"):
        wf.check(review, "approve_closure", SUPERVISOR)
    assert wf.check(review, "approve_closure", OTHER_SUP).to_state == "closed"
    system_proposed = CaseFacts(state="closure_review", closure_proposed_by=None)
    assert wf.check(system_proposed, "approve_closure", SUPERVISOR).to_state == "closed"


@pytest.mark.parametrize(
    ("risk", "category", "needs"),
    [
        ("high", "child_labour", True),
        ("medium", "worst_form", True),
        ("low", "worst_form", True),
        ("medium", "hazardous", False),
        ("low", "child_labour", False),
        (None, "at_risk", False),
    ],
)
def test_supervisor_approval_when_risk_is_high_or_the_category_a_worst_form(risk, category, needs):
    assert wf.needs_plan_approval(risk, category) is needs


def _seen(days: float, category: str = "none", *, followup=True, present=True) -> Observation:
    return Observation(T0 + days * DAY, followup, present, category)


DELIVERED = [ServiceState("school_kit_costs", "delivered"), ServiceState("legal_aid", "closed")]


def test_closure_criteria_two_clean_followups_thirty_days_apart():
    assert wf.closure_criteria([_seen(0), _seen(30, "at_risk")], DELIVERED) == (True, [])
    holds, unmet = wf.closure_criteria([_seen(0), _seen(29)], DELIVERED)
    assert not holds
    assert [str(m) for m in unmet] == [
        "the last 2 follow-ups must be at least 30 days apart (they are 29)"
    ]


def test_closure_criteria_count_only_followups_where_the_child_was_seen():
    visits = [_seen(0), _seen(40, present=False)]
    holds, unmet = wf.closure_criteria(visits, DELIVERED)
    assert not holds
    assert str(unmet[0]) == ("2 follow-up visits at which the child was seen are needed (1 so far)")
    # a household visit is not a follow-up of the case
    assert not wf.closure_criteria([_seen(0), _seen(40, followup=False)], DELIVERED)[0]


def test_closure_criteria_fail_on_child_labour_at_or_between_the_followups():
    holds, unmet = wf.closure_criteria([_seen(0), _seen(35, "child_labour")], DELIVERED)
    assert not holds and "found in child labour at a follow-up on 2026-04-05" in str(unmet[0])
    between = [_seen(0), _seen(10, "hazardous", followup=False), _seen(35)]
    holds, unmet = wf.closure_criteria(between, DELIVERED)
    assert [str(m) for m in unmet] == ["a visit on 2026-03-11 found the child in child labour"]
    # an earlier finding, before the two clean follow-ups, no longer counts
    earlier = [_seen(-20, "hazardous"), _seen(0), _seen(35)]
    assert wf.closure_criteria(earlier, DELIVERED) == (True, [])


def test_closure_criteria_need_every_service_delivered_or_closed_and_no_open_referral():
    visits = [_seen(0), _seen(31)]
    holds, unmet = wf.closure_criteria(visits, [ServiceState("school_enrolment", "referred")])
    assert not holds
    assert [str(m) for m in unmet] == [
        "planned services not yet delivered or closed: school enrolment"
    ]
    assert str(wf.closure_criteria(visits, [])[1][0]) == "the plan has no services"
    holds, unmet = wf.closure_criteria(visits, DELIVERED, open_referrals=1)
    assert [str(m) for m in unmet] == ["1 referral still waiting for an answer or under way"]


def test_the_closure_checklist_names_services_in_the_readers_words(app):
    """Not the stored code ("school enrolment"): the service's name in the reader's language,
    through the one vocabulary (issue 17: codes leaked into French pages)."""
    from clms.locale import localize

    visits = [_seen(0), _seen(31)]
    _holds, unmet = wf.closure_criteria(visits, [ServiceState("school_enrolment", "referred")])
    with app.test_request_context(headers={"Accept-Language": "fr"}):
        french = localize(unmet[0])
    assert "Inscription ou réinscription à l'école" in french and "school" not in french
    with app.test_request_context(headers={"Accept-Language": "en"}):
        assert localize(unmet[0]).endswith(": School enrolment or re-enrolment")


def test_propose_closure_is_refused_while_the_criteria_do_not_hold():
    facts = CaseFacts(state="implementation", observations=[_seen(0)], services=DELIVERED)
    with pytest.raises(Refused, match="The closure criteria are not met: 2 follow-up visits"):
        wf.check(facts, "propose_closure", OFFICER)
    facts.observations.append(_seen(30))
    assert wf.check(facts, "propose_closure", wf.SYSTEM).to_state == "closure_review"


def test_a_policy_changes_the_criteria():
    strict = wf.Policy(closure_followups=3, closure_gap_days=60)
    visits = [_seen(0), _seen(60), _seen(120)]
    assert wf.closure_criteria(visits, DELIVERED, policy=strict) == (True, [])
    assert not wf.closure_criteria(visits[:2], DELIVERED, policy=strict)[0]
    config = {"CASE_CLOSURE_GAP_DAYS": "45", "CASE_REOPEN_DAYS": 180}
    assert wf.Policy.from_config(config).closure_gap_days == 45
    assert wf.Policy.from_config(config).reopen_days == 180


@pytest.mark.parametrize(
    ("state", "days_after", "category", "reopens"),
    [
        ("closed", 1, "child_labour", True),
        ("closed", 365, "worst_form", True),
        ("closed", 366, "hazardous", False),
        ("closed", 100, "at_risk", False),  # at risk is not child labour
        ("closed", -1, "hazardous", False),  # a visit from before the closure
        ("transferred", 10, "hazardous", False),
    ],
)
def test_reopening_within_the_window(state, days_after, category, reopens):
    assert wf.should_reopen(state, T0, T0 + days_after * DAY, category) is reopens


def test_step_deadlines():
    # a worst form's first visit within 72 hours, counted from when the step starts
    assert wf.step_due("verification", T0, visit_within=3 * DAY) == T0 + 3 * DAY
    assert wf.step_due("verification", T0) == T0 + 7 * DAY
    assert wf.step_due("action_plan", T0, plan_submitted=True) == T0 + 3 * DAY
    assert wf.step_due("implementation", T0) is None
    assert wf.referral_respond_by(True, T0) == T0 + dt.timedelta(hours=24)
    assert wf.referral_respond_by(False, T0) == T0 + 5 * DAY


def test_urgent_referrals_are_possible_at_every_open_step_others_only_in_implementation():
    for state in wf.OPEN_STATES:
        assert wf.check(CaseFacts(state=state), "refer_urgent", OFFICER)
    with pytest.raises(Refused):
        wf.check(CaseFacts(state="assessment"), "refer", OFFICER)
    assert wf.check(CaseFacts(state="implementation"), "refer", OFFICER)
    with pytest.raises(Refused):
        wf.check(CaseFacts(state="closed"), "refer_urgent", OFFICER)


def test_consent_override_and_what_is_shared():
    assert wf.may_override_consent("supervisor", urgent=False)
    assert wf.may_override_consent("officer", urgent=True)
    assert not wf.may_override_consent("officer", urgent=False)
    assert not wf.may_override_consent("provider", urgent=True)
    assert wf.shared_items(["village", "full_name", "nonsense"], override=False) == [
        "full_name",
        "village",
    ]
    assert wf.shared_items(["full_name"], override=True) == list(wf.OVERRIDE_SHARES)


@pytest.mark.parametrize(
    ("status", "move", "result"),
    [
        ("pending", "accept", "accepted"),
        ("pending", "reject", "rejected"),
        ("accepted", "complete", "done"),
        ("pending", "revoke", "revoked"),
        ("accepted", "revoke", "revoked"),
    ],
)
def test_referral_moves(status, move, result):
    assert wf.check_referral(status, move) == result


@pytest.mark.parametrize(
    ("status", "move", "message"),
    [
        ("pending", "complete", "Accept the referral before recording the service."),
        ("done", "revoke", "This referral is done; it can no longer be revoked."),
        ("rejected", "accept", "This referral is rejected; it can no longer be accepted."),
        ("revoked", "complete", "This referral is revoked; it can no longer be marked done."),
    ],
)
def test_referral_moves_refused(status, move, message):
    with pytest.raises(Refused) as e:
        wf.check_referral(status, move)
    assert str(e.value) == message


def test_allowed_moves_lists_each_move_with_the_reason_it_is_refused():
    facts = CaseFacts(state="implementation", observations=[], services=DELIVERED)
    moves = wf.allowed_moves(facts, OFFICER)
    assert moves["refer"] is None and moves["transfer"] is None
    assert "closure criteria are not met" in str(moves["propose_closure"])
    assert "approve_plan" not in moves  # an officer is never offered it
    assert "reopen" not in moves


def test_a_service_closed_by_a_referral_says_why_in_the_readers_words(app):
    """The referral's outcome that closed a planned service is a code: the page says it in the
    reader's language (rows stored before kept it with spaces); a typed reason stays as typed."""
    from clms.vocabulary import said_or_typed

    with app.test_request_context(headers={"Accept-Language": "fr"}):
        for stored in ("declined_by_child_or_family", "declined by child or family"):
            assert said_or_typed(stored) == "refusé par l'enfant ou la famille"
        assert said_or_typed("La famille a déménagé") == "La famille a déménagé"
