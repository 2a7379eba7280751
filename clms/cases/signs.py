"""Signs of a worst form of child labour or of trafficking anywhere in a child's record, so a case
is not closed on autopilot while the record says the child may be trafficked or in forced labour.

A case may meet the closure criteria (follow-ups found the child out of work, services done)
while the child's own words say "I came with a man, I want to go home to my mother", assessed
safe and low risk. :func:`signs_of` reads the whole record and returns every sign with where it
was recorded; the case page and the closure pages show them to the officer and the supervisor,
and approving the closure of a case with signs needs an explicit acknowledgement with a reason
(:mod:`clms.cases.closure`, audited with the signs it acknowledged).

Where signs come from
    - every visit of the child: a worst-form sign answered (``worst_form_signs``: cannot leave,
      debt, recruited by a third party, separated from family, sexual exploitation, illicit
      activities), living away from parents with people not related or after migrating (not
      a child fostered by an uncle: that alone would flag a third of the children), an
      undocumented migrant;
    - every classification of those visits in ``worst_form``;
    - the case's gravest category (``worst_form``);
    - every assessment of the child's cases: the child in danger, a protection-level response,
      and the free text (the child's own views, the family situation, the notes on school and on
      safety) read for the indicator phrases below;
    - services planned or referrals sent for legal aid, law enforcement, emergency protection,
      family tracing or reunification: someone already judged the child needed them.

The indicator phrases (:data:`PHRASES`)
    Short phrases in English and French for the common indicators of child trafficking and
    forced labour of the ILO and IOM lists (ILO, *Operational indicators of trafficking in human
    beings*, 2009; IOM, *Handbook on direct assistance for victims of trafficking*, 2007):
    brought by a third party, separated from family and wishing to go home, debt, not free to
    leave, documents kept by someone else, threats or violence, deceptive promises or being sold.
    Matching is on whole words without accents or case, the words of a phrase in order with at
    most one other word between two of them ("came with a man" finds "I came here with a man").
    Their limits: matching is on words, not meaning: a phrase in another form ("a man brought
    us"), another language or a typo is missed, and a negation ("I did not come with a man") is
    still flagged. A flag asks a person to read the record; it is never a finding, and no flag
    does not mean no trafficking. Add phrases here, in both languages, as officers meet them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import unicodedata
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from clms.cases.inputs import _text
from clms.i18n import N_, Msg

#: indicator -> (its label, phrases in English and French); matched on whole words, without
#: accents or case ("venue avec un homme" matches "Je suis venue avec un homme")
PHRASES: dict[str, tuple[str, tuple[str, ...]]] = {
    "brought_by_third_party": (
        N_("brought by someone outside the family"),
        (
            "came with a man",
            "came with a woman",
            "came with a stranger",
            "came with someone",
            "brought me",
            "brought here by",
            "brought by a man",
            "a man brought",
            "an agent",
            "venu avec un homme",
            "venue avec un homme",
            "venu avec une femme",
            "venue avec une femme",
            "venu avec un inconnu",
            "venue avec un inconnu",
            "amene par",
            "amenee par",
            "m a amene",
            "m a amenee",
            "un homme m a",
            "un intermediaire",
            "venu avec un monsieur",
            "venue avec un monsieur",
            "venu avec une dame",
            "venue avec une dame",
            "came with a gentleman",
            "came with a lady",
        ),
    ),
    "separated_from_family": (
        N_("separated from family, wishes to go home"),
        (
            "go home to my mother",
            "go home to my father",
            "go back to my mother",
            "go back to my family",
            "want to go home",
            "want to see my mother",
            "miss my mother",
            "my parents do not know",
            "my parents don t know",
            "far from my family",
            "rentrer chez ma mere",
            "rentrer chez mon pere",
            "retourner chez ma mere",
            "rentrer a la maison",
            "rentrer chez moi",
            "veux rentrer",
            "voir ma mere",
            "ma mere me manque",
            "mes parents ne savent pas",
            "loin de ma famille",
        ),
    ),
    "debt": (
        N_("a debt to work off"),
        (
            "owe money",
            "i owe",
            "pay back",
            "pay off the debt",
            "debt",
            "not paid",
            "never paid",
            "dette",
            "je dois de l argent",
            "rembourser",
            "pas paye",
            "jamais paye",
        ),
    ),
    "not_free_to_leave": (
        N_("not free to leave"),
        (
            "cannot leave",
            "can t leave",
            "not allowed to leave",
            "not allowed to go",
            "locked",
            "cannot go home",
            "can t go home",
            "ne peux pas partir",
            "pas le droit de partir",
            "pas le droit de sortir",
            "enferme",
            "enfermee",
            "ne peux pas rentrer",
        ),
    ),
    "documents_kept": (
        N_("identity documents kept by someone else"),
        (
            "took my papers",
            "keeps my papers",
            "has my papers",
            "took my passport",
            "keeps my passport",
            "pris mes papiers",
            "garde mes papiers",
            "a mes papiers",
            "pris mon passeport",
            "garde mon passeport",
        ),
    ),
    "threats_violence": (
        N_("threats or violence"),
        (
            "beat me",
            "beats me",
            "hit me",
            "hits me",
            "threaten",
            "threatened",
            "punish me",
            "me frappe",
            "m a frappe",
            "battu",
            "battue",
            "menace",
            "menacee",
            "me punit",
        ),
    ),
    "deceived_or_sold": (
        N_("deceptive promises, sold or given away"),
        (
            "promised me",
            "they promised",
            "sold me",
            "was sold",
            "given to",
            "recruiter",
            "said i would go to school",
            "told me i would go to school",
            "said i would be paid",
            "m a promis",
            "on m a promis",
            "vendu",
            "vendue",
            "confie a",
            "confiee a",
            "recruteur",
            "a dit que j irais a l ecole",
            "m a dit que j irais",
            "dit que je serais paye",
        ),
    ),
}

#: the services and referrals that say someone judged the child needed protection
PROTECTION_SERVICES = {
    "legal_aid": N_("legal aid"),
    "law_enforcement_referral": N_("referral to law enforcement"),
    "emergency_protection": N_("emergency shelter or protection"),
    "family_reunification": N_("family tracing or reunification"),
}
#: the worst-form signs of the household visit form (clms.codes.WORST_FORM_SIGNS but "none")
WORST_FORM_SIGNS = {
    "cannot_leave": N_("cannot leave"),
    "debt": N_("bound by a debt"),
    "recruited_by_third_party": N_("recruited by a third party"),
    "separated_from_family": N_("separated from family"),
    "sexual_exploitation": N_("sexual exploitation"),
    "illicit_activities": N_("illicit activities"),
}
#: the assessment's free-text fields, each with the words that name it
FREE_TEXT = (
    ("child_views", N_("the child's own views")),
    ("family_situation", N_("the family situation")),
    ("schooling_notes", N_("the notes on school")),
    ("safety_notes", N_("the notes on safety")),
)


@dataclass(frozen=True)
class Sign:
    """One sign: ``kind`` (a code: a worst-form sign, an indicator of :data:`PHRASES`...),
    ``what`` it is and ``where`` it was recorded (both translatable), and ``quote``, the
    record's own words that raised it (free text only)."""

    kind: str
    what: Msg
    where: Msg
    quote: str | None = None

    def to_json(self) -> dict:
        return {"kind": self.kind, "what": str(self.what), "where": str(self.where),
                "quote": self.quote}  # fmt: skip


def _plain(text: str) -> str:
    """Lower case, no accents, words separated by one space (apostrophes too)."""
    decomposed = unicodedata.normalize("NFKD", text or "")
    bare = "".join(c for c in decomposed if not unicodedata.combining(c)).lower()
    return " ".join(re.findall(r"[a-z0-9]+", bare))


def phrase_signs(text: str | None, where: Msg) -> list[Sign]:
    """The indicator phrases in ``text``, one sign per indicator, quoting the sentence."""
    if not text:
        return []
    plain = _plain(text)
    found = []
    for kind, (label, phrases) in PHRASES.items():
        hit = next((p for p in phrases if _pattern(p).search(plain)), None)
        if hit is not None:
            found.append(Sign(kind, Msg(label), where, _sentence_with(text, hit)))
    return found


def _pattern(phrase: str) -> re.Pattern:
    """The phrase's words in order, whole words, one other word allowed between two of them
    ("came with a man" finds "came here with a man")."""
    words = _plain(phrase).split()
    return re.compile(r"\b" + r" (?:[a-z0-9]+ )?".join(map(re.escape, words)) + r"\b")


def _sentence_with(text: str, phrase: str) -> str:
    """The sentence of ``text`` holding ``phrase`` (the record's own words, for the reader)."""
    pattern = _pattern(phrase)
    for sentence in re.split(r"(?<=[.!?;])\s+|\n+", text):
        if pattern.search(_plain(sentence)):
            return sentence.strip()[:300]
    return text.strip()[:300]


@dataclass
class VisitFacts:
    """What one visit recorded of the child (pure input of :func:`signs_in`)."""

    visited_on: dt.date | None
    worst_form_signs: list = field(default_factory=list)
    lives_with_parent: bool | None = None
    migrant_status: str | None = None
    relationship_to_head: str | None = None
    categories: list = field(default_factory=list)


@dataclass
class AssessmentFacts:
    assessed_on: dt.date | None
    immediate_safety: str | None = None
    response_level: str | None = None
    texts: dict = field(default_factory=dict)  # field -> text


@dataclass
class RecordFacts:
    """A child's record, as :func:`signs_in` reads it."""

    case_category: str | None = None
    visits: list[VisitFacts] = field(default_factory=list)
    assessments: list[AssessmentFacts] = field(default_factory=list)
    protection_services: list[str] = field(default_factory=list)  # planned or referred codes


def _day(value: dt.date | None) -> str:
    return value.isoformat() if value else "?"


def signs_in(record: RecordFacts) -> list[Sign]:
    """Every sign of a worst form or of trafficking in ``record``, in the order of the record
    (the case, the visits, the assessments, the services); the same sign from the same place
    once."""
    signs: list[Sign] = []
    if record.case_category == "worst_form":
        signs.append(Sign("worst_form", Msg("classified in a worst form of child labour"),
                          Msg("the case")))  # fmt: skip
    for v in record.visits:
        where = Msg("the visit of {day}", day=_day(v.visited_on))
        if "worst_form" in v.categories:
            signs.append(Sign("worst_form", Msg("classified in a worst form of child labour"),
                              where))  # fmt: skip
        for code in v.worst_form_signs or []:
            if code in WORST_FORM_SIGNS:
                signs.append(
                    Sign(
                        code,
                        Msg("worst-form sign: {sign}", sign=Msg(WORST_FORM_SIGNS[code])),
                        where,
                    )
                )
        # living apart from parents is common (a child fostered by an uncle) and alone would
        # flag every such child; with a migration or with people not related it is the pattern
        # of child trafficking the ILO and IOM indicators describe
        if v.lives_with_parent is False and (
            (v.migrant_status or "").startswith("migrant")
            or v.relationship_to_head == "not_related"
        ):
            signs.append(
                Sign(
                    "not_with_parent",
                    Msg("lives away from parents, with people not related or after migrating"),
                    where,
                )
            )
        if v.migrant_status == "migrant_undocumented":
            signs.append(Sign("undocumented_migrant", Msg("an undocumented migrant"), where))
    for a in record.assessments:
        day = _day(a.assessed_on)
        where = Msg("the assessment of {day}", day=day)
        if a.immediate_safety == "in_danger":
            signs.append(Sign("in_danger", Msg("assessed in danger"), where))
        if a.response_level == "protection":
            signs.append(Sign("protection_response", Msg("a protection-level response"), where))
        for name, words in FREE_TEXT:
            signs += phrase_signs(a.texts.get(name),
                                  Msg("the assessment of {day}: {part}", day=day,
                                      part=Msg(words)))  # fmt: skip
    for code in dict.fromkeys(record.protection_services):
        signs.append(Sign("protection_service", Msg("a service for a child in danger: {service}",
                                                     service=Msg(PROTECTION_SERVICES[code])),
                          Msg("the plan and referrals")))  # fmt: skip
    unique: dict[tuple, Sign] = {}
    for s in signs:
        unique.setdefault((s.kind, str(s.where), s.quote), s)
    return list(unique.values())


def record_of(session: Session, case) -> RecordFacts:
    """Read the record of ``case``'s child: every visit, classification and assessment of the
    child (all their cases), the case's planned services and referrals."""
    from clms.models import (
        Assessment,
        Case,
        ChildVisit,
        Classification,
        PlannedService,
        Referral,
        Visit,
    )

    rows = session.execute(
        select(ChildVisit, Visit.visited_at)
        .join(Visit, Visit.id == ChildVisit.visit_id)
        # a visit replaced by an edit, or withdrawn by its server, is no longer in the record
        .where(ChildVisit.child_id == case.child_id, Visit.current.is_(True))
        .order_by(Visit.visited_at, ChildVisit.id)
    ).all()
    categories: dict[int, list[str]] = {}
    for cv_id, category in session.execute(
        select(Classification.child_visit_id, Classification.category).where(
            Classification.child_id == case.child_id, Classification.current.is_(True)
        )
    ):
        categories.setdefault(cv_id, []).append(category)
    visits = [
        VisitFacts(
            visited_on=_date_of(when),
            worst_form_signs=list(cv.worst_form_signs or []),
            lives_with_parent=cv.lives_with_parent,
            migrant_status=cv.migrant_status,
            relationship_to_head=cv.relationship_to_head,
            categories=categories.get(cv.id, []),
        )  # fmt: skip
        for cv, when in rows
    ]
    assessments = [
        AssessmentFacts(
            assessed_on=_date_of(a.assessed_at),
            immediate_safety=a.immediate_safety,
            response_level=a.response_level,
            texts={name: getattr(a, name) for name, _words in FREE_TEXT},
        )  # fmt: skip
        for a in session.scalars(
            select(Assessment)
            .join(Case, Case.id == Assessment.case_id)
            .where(Case.child_id == case.child_id)
            .order_by(Assessment.assessed_at)
        )  # fmt: skip
    ]
    services = [
        code for code in session.scalars(
            select(PlannedService.service_code).where(PlannedService.case_id == case.id)
        ) if code in PROTECTION_SERVICES
    ] + [
        code for code in session.scalars(
            select(Referral.service_code).where(Referral.case_id == case.id)
        ) if code in PROTECTION_SERVICES
    ]  # fmt: skip
    return RecordFacts(case_category=case.category, visits=visits, assessments=assessments,
                       protection_services=services)  # fmt: skip


def _date_of(value) -> dt.date | None:
    if value is None:
        return None
    return value.date() if isinstance(value, dt.datetime) else value


def signs_of(session: Session, case) -> list[Sign]:
    """Every sign of a worst form or of trafficking in the record of ``case``'s child."""
    return signs_in(record_of(session, case))


def digest(signs: list[Sign]) -> str:
    """A short fingerprint of ``signs`` (kind, place, words), which the page that shows them
    sends back with the acknowledgement: a sign recorded meanwhile changes it."""
    rows = sorted(json.dumps(x.to_json(), sort_keys=True) for x in signs)
    return hashlib.sha256("\n".join(rows).encode()).hexdigest()[:16]


def acknowledge(
    session: Session,
    case,
    errors: dict,
    seen: bool,
    reason: str | None,
    shown: str | None = None,
) -> tuple[list[Sign], dict]:
    """Before ``case`` closes (a supervisor's approval, an officer's "not confirmed"): the signs
    of its record, which the person must say they read (``seen``) and why it may close all the
    same (``reason``), else ``errors`` says so under ``signs_seen`` and ``signs_reason``; a page
    sends the :func:`digest` of the signs it ``shown``, and a sign recorded since is refused
    as unread. Returns
    the signs and what the closing event's detail records of them (none: nothing): their kinds
    reach the audit log, the signs with their words and the reason stay in the timeline."""
    signs = signs_of(session, case)
    if not signs:
        return signs, {}
    if not seen:
        errors["signs_seen"] = Msg("tick the box to say you read the signs listed above")
    elif shown is not None and shown != digest(signs):
        errors["signs_seen"] = Msg("the record changed since the page was shown: read the signs "
                                   "listed above again")  # fmt: skip
    reason = _text(errors, "signs_reason", reason, required=True)
    return signs, {
        "signs_acknowledged": list(dict.fromkeys(x.kind for x in signs)),
        "signs": [x.to_json() for x in signs],
        "signs_reason": reason,
    }
