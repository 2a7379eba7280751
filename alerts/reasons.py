"""Reasons in words (pure): a sentence for each ``{"rule", "facts"}`` reason of a classification
or an alert, in the language of the page that shows it."""

from __future__ import annotations

from alerts.rules import RULES
from clms.i18n import N_, Msg
from clms.lexicon import FAMILY_OF_FIELD, word

# words for rule ids the rules module does not list (its RULES has the classifier's own)
RULE_WORDS = {
    "REPORTED_CONCERN": N_("a concern reported through the report form, to be verified"),
}
# an id known to neither still says what kind of finding it is by its prefix
RULE_PREFIX_WORDS = {
    "WF": N_("signs of a worst form of child labour"),
    "HAZ": N_("hazardous work"),
    "CL": N_("child labour (work below the minimum age or beyond the permitted hours)"),
    "AR": N_("at risk"),
    "RISK": N_("a risk factor"),
}
FACT_WORDS = {
    "age": N_("age"),
    "signs": N_("signs"),
    "work_hours_7d": N_("hours worked in the last 7 days"),
    "chore_hours_7d": N_("hours of household chores in the last 7 days"),
    "work_activities": N_("work"),
    "hazards": N_("hazardous tasks or conditions"),
    "night_work": N_("night work"),
    "attends_school": N_("attends school"),
    "threshold": N_("threshold"),
    "light_work_age": N_("light-work age"),
    "compulsory_school_age": N_("compulsory school age"),
    "concern": N_("concern reported"),
    "reporter_type": N_("reported by"),
    "child_age_estimate": N_("estimated age"),
}


def explain_reason(reason: dict, translate=None) -> str:
    """A sentence for one ``{"rule", "facts"}`` reason of a classification or an alert, in the
    language of ``translate`` (a function of English text; English without it).

    >>> explain_reason({"rule": "HAZ_NIGHT", "facts": {"age": 14, "night_work": True}})
    'Night work (18:00-06:00): age 14; night work yes'
    """
    t = translate or (lambda text: text)
    rule = str(reason.get("rule", "")) if isinstance(reason, dict) else str(reason)
    words = RULES[rule][1] if rule in RULES else RULE_WORDS.get(rule)
    if words is not None:
        words = t(words)
    else:
        prefix = next((p for p in RULE_PREFIX_WORDS if rule.startswith(p + "_")), None)
        if prefix:
            msg = Msg("{words} (rule {rule})", words=Msg(RULE_PREFIX_WORDS[prefix]), rule=rule)
        else:
            msg = Msg("rule {rule}", rule=rule)
        words = msg.render(t)
    words = words[:1].upper() + words[1:]
    facts = reason.get("facts") if isinstance(reason, dict) else None
    if isinstance(facts, dict) and facts:
        parts = [
            f"{t(FACT_WORDS[k]) if k in FACT_WORDS else k.replace('_', ' ')} "
            f"{_fact(v, t, FAMILY_OF_FIELD.get(k))}"
            for k, v in facts.items()
        ]
        return f"{words}: {'; '.join(parts)}"
    if facts not in (None, {}, [], ""):
        return f"{words}: {_fact(facts, t)}"
    return words


def _fact(value, t, family: str | None = None) -> str:
    """One fact's value in words: a code of the fact's family (a hazard, a sign, a concern...)
    in the words of :mod:`clms.lexicon`; anything else as it was recorded."""
    if value is None:
        return t(N_("unknown"))
    if isinstance(value, bool):
        return t(N_("yes")) if value else t(N_("no"))
    if isinstance(value, list | tuple):
        return ", ".join(_fact(v, t, family) for v in value) or t(N_("none"))
    if isinstance(value, dict):
        return ", ".join(f"{k} {_fact(v, t)}" for k, v in value.items())
    if isinstance(value, str) and family is not None:
        known = word(value, family)
        if known is not None:
            return t(known)
    return str(value).replace("_", " ") if isinstance(value, str) else str(value)
