"""Every code a person may read has a word in each language: the translation test for codes.

Each family's codes are enumerated from where they are defined (the forms' choice lists in
:mod:`clms.codes`, the seeded country profiles, the service catalogue's seed, the case workflow,
the models, and every audit action the code writes, found by reading the code), never from a list
written here; a code without a word, or a word without French, fails."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from alerts import rules
from alerts.profiles.seeds import seed_profiles
from clms import codes, vocabulary
from clms.cases import catalogue, transfer
from clms.cases import workflow as wf
from clms.i18n import catalogue as translations
from clms.models import alerts as alert_models
from clms.models import cases as case_models
from clms.models import people
from forms import reasons as review_reasons

ROOT = Path(__file__).resolve().parents[2]
CODE = ("clms", "alerts", "forms", "geo")


def _python_calls():
    for package in CODE:
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text("utf-8"))):
                if isinstance(node, ast.Call):
                    func = node.func
                    name = getattr(func, "id", None) or getattr(func, "attr", None)
                    yield path.relative_to(ROOT).as_posix(), name, node


def _argument(node: ast.Call, index: int, keyword: str):
    if len(node.args) > index:
        return node.args[index]
    return next((k.value for k in node.keywords if k.arg == keyword), None)


#: calls that write an audit action or a case event, and which argument holds it
AUDIT_WRITERS = {"record": (2, "action"), "record_read": (2, "action")}
CASE_EVENT_WRITERS = {"record_event": (3, "action"), "change_case": (99, "action")}
#: where the action is not written literally: the calls that pass on an action chosen elsewhere,
#: with the case events they may write (the audit relays' actions are read from their callers
#: below); a new such call fails the test until it is named here
RELAYS: dict[tuple[str, str], set[str]] = {
    ("clms/audit.py", "record"): set(),  # record_read relays to record
    ("clms/audit_hooks.py", "record"): set(),  # a request's reads, kept by record_read
    ("clms/cases/records.py", "record"): set(),  # case.<event>: the case events
    ("alerts/lifecycle.py", "record"): set(),  # alert.<action>: the calls of _record
    ("clms/web/kpis_views.py", "record_read"): set(),  # the calls of _audit
    ("clms/cases/records.py", "record_event"): {"state_changed"},  # change_case's own action
    ("clms/cases/services.py", "change_case"): {"service_delivered", "service_closed"},
    ("clms/cases/findings.py", "change_case"): {"followup", "found_in_work", "visited"},
    ("clms/cases/plan.py", "change_case"): {"plan_submitted", "plan_approved"},
}


def audit_actions() -> set[str]:
    """Every audit action the code can write: literal actions of the audit calls, the alert
    actions of ``alerts.lifecycle._record``, the indicators' exports, and ``case.<event>`` for
    every case event."""
    found, relays = set(), set()
    for where, name, node in _python_calls():
        if name in AUDIT_WRITERS:
            arg = _argument(node, *AUDIT_WRITERS[name])
            if isinstance(arg, ast.Constant):
                found.add(arg.value)
            elif arg is not None:
                relays.add((where, name))
        elif name == "_record" and where == "alerts/lifecycle.py" and len(node.args) > 3:
            found.add("alert." + node.args[3].value)
        elif name == "_audit" and where == "clms/web/kpis_views.py":
            found.add(node.args[0].value)
    unknown = relays - set(RELAYS)
    assert not unknown, f"an audit call whose action this test cannot read: {unknown}"
    return found | {"case." + action for action in case_events()}


def case_events() -> set[str]:
    """Every case event the code can write (the timeline's lines)."""
    found, relays = set(), set()
    for where, name, node in _python_calls():
        if name in CASE_EVENT_WRITERS:
            arg = _argument(node, *CASE_EVENT_WRITERS[name])
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                found.add(arg.value)
            elif arg is not None and not isinstance(arg, ast.Constant):
                relays.add((where, name))
    assert relays <= set(RELAYS), f"a case event this test cannot read: {relays - set(RELAYS)}"
    return found.union(*(RELAYS[relay] for relay in relays))


def test_the_enumeration_finds_the_codes():
    """The enumeration itself works: it finds codes of each kind that we know are written."""
    actions = audit_actions()
    assert {"case.read", "auth.login", "alert.acknowledged", "kpis.export"} <= actions
    assert {"case.referred", "case.service_delivered", "case.opened"} <= actions
    assert len(actions) > 60


def families() -> list[tuple[str | None, str, str]]:
    """(family, code, where it is defined) for every code a page may show."""
    rows: list[tuple[str | None, str, str]] = []

    def add(family, source, where):
        rows.extend((family, code, where) for code in source)

    add("hazard", codes.HAZARDS, "clms.codes.HAZARDS")
    for profile in seed_profiles(None):
        add("hazard", profile["hazardous_list"], f"seeded profile {profile['code']}")
    add("worst_form_sign", codes.WORST_FORM_SIGNS, "clms.codes.WORST_FORM_SIGNS")
    add("relationship", codes.RELATIONSHIPS, "clms.codes.RELATIONSHIPS")
    add("work_activity", codes.WORK_ACTIVITIES, "clms.codes.WORK_ACTIVITIES")
    add("migrant_status", codes.MIGRANT_STATUS, "clms.codes.MIGRANT_STATUS")
    add("reporter_type", codes.REPORTER_TYPES, "clms.codes.REPORTER_TYPES")
    add("concern", codes.CONCERNS, "clms.codes.CONCERNS")
    add(None, codes.SEX, "clms.codes.SEX")
    add("service", [s[0] for s in catalogue.SERVICES], "clms.cases.catalogue.SERVICES")
    add(None, catalogue.PROVIDER_KINDS, "clms.cases.catalogue.PROVIDER_KINDS")
    add("audit_action", audit_actions(), "the audit calls of the code")
    add(None, people.ROLES, "clms.models.people.ROLES")
    add(None, rules.CATEGORIES, "alerts.rules.CATEGORIES")
    add(None, alert_models.SEVERITIES, "clms.models.alerts.SEVERITIES")
    add(None, alert_models.ALERT_STATUSES, "clms.models.alerts.ALERT_STATUSES")
    add(None, case_models.REFERRAL_STATUSES, "clms.models.cases.REFERRAL_STATUSES")
    add(None, case_models.REFERRAL_OUTCOMES, "clms.models.cases.REFERRAL_OUTCOMES")
    for name in (
        "STATES", "RISK_LEVELS", "SCHOOLING", "SAFETY", "RESPONSE_LEVELS", "RESPONSE_TYPES",
        "CLOSURE_OUTCOMES", "ROOT_CAUSES", "CONSENT_GIVERS", "CONSENT_METHODS", "SHAREABLE",
        "TRANSFER_KINDS", "TRANSFER_BASES", "REFERRAL_DONE_OUTCOMES",
    ):  # fmt: skip
        add(None, getattr(wf, name), f"clms.cases.workflow.{name}")
    add(None, transfer.TRANSFER_SHAREABLE, "clms.cases.transfer.TRANSFER_SHAREABLE")
    return rows


def test_every_code_has_a_word_and_its_french():
    french = translations("fr")
    missing = []
    for family, code, where in families():
        word = vocabulary.english_word(code, family)
        if word is None:
            missing.append(f"{where}: {code!r} has no word ({family or 'general'})")
        elif family == "service":
            if not vocabulary.SERVICE_WORDS[code].get("fr"):
                missing.append(f"{where}: service {code!r} has no French name")
        elif not french.get(word):
            missing.append(f"{where}: {code!r} -> {word!r} has no French")
    assert missing == [], f"{len(missing)} codes without words:\n" + "\n".join(missing)


def test_every_case_event_has_a_timeline_line():
    missing = sorted(case_events() - set(vocabulary.EVENT_WORDS))
    assert missing == []


def test_every_review_reason_has_words():
    french = translations("fr")
    for code, words in review_reasons.WORDS.items():
        assert french.get(words) and french.get(review_reasons.CODE_NAMES[code]), code


@pytest.mark.parametrize(
    ("code", "family", "english", "french"),
    [
        ("sharp_tools", "hazard", "Using a machete or cutlass", "Utilisation d'une machette"),
        ("debt", "worst_form_sign", "debt bondage", "servitude pour dettes"),
        ("debt", None, "debt", "endettement"),  # a root cause: the same code, another word
        ("cash_transfer", "service", "Cash transfer or social protection",
         "Transfert monétaire ou protection sociale"),
        ("case.read", "audit_action", "read a case", "a consulté un cas"),
        ("case.referred", "audit_action", "Referred to a provider", "Orientation vers"),
        ("auth.login", "audit_action", "signed in", "s'est connecté"),
    ],
)  # fmt: skip
def test_say_gives_the_familys_word_in_the_persons_language(app, code, family, english, french):
    with app.test_request_context(headers={"Accept-Language": "en"}):
        assert vocabulary.say(code, family).startswith(english)
    with app.test_request_context(headers={"Accept-Language": "fr"}):
        assert vocabulary.say(code, family).startswith(french)


def test_free_text_in_a_family_is_shown_as_entered(app):
    """An administrator may type a hazard of their own into a profile's list: it reads as typed."""
    with app.test_request_context(headers={"Accept-Language": "fr"}):
        assert vocabulary.say("Carrying_pesticide drums", "hazard") == "Carrying pesticide drums"
        assert vocabulary.say("plugin.something", "audit_action") == "plugin.something"


@pytest.mark.parametrize(
    ("key", "value", "french"),
    [
        ("category_raised_from", "child_labour", "travail des enfants"),
        ("service", "cash_transfer", "Transfert monétaire ou protection sociale"),
        ("services_received", ["cash_transfer", "health_care"],
         "Transfert monétaire ou protection sociale, Soins de santé"),
        ("root_causes", ["debt", "school_costs"], "endettement, coût de la scolarité"),
    ],
)  # fmt: skip
def test_a_timelines_codes_read_in_french(app, key, value, french):
    with app.test_request_context(headers={"Accept-Language": "fr"}):
        assert vocabulary.detail_words(key, value) == french


def test_no_template_makes_words_of_a_code_by_itself():
    """A template shows a code through ``say`` (with its family), never by replacing its
    underscores: that shows English codes to every reader."""
    pattern = re.compile(r"""replace\(\s*['"]_['"]\s*,\s*['"] ['"]\s*\)""")
    found = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in sorted((ROOT / "clms" / "templates").glob("*.html"))
        for number, line in enumerate(path.read_text("utf-8").splitlines(), 1)
        if pattern.search(line)
    ]
    assert found == []
