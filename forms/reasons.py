"""Why a submission is held for review, in plain words, and what a reviewer may do about it.

The processing writes each reason as a :class:`forms.parse.Issue` dict in
``Submission.review_reasons``: ``path`` (``child[2]/hazards``), ``value``, ``problem`` (English,
for the logs) and, since codes exist, a stable ``code`` and the ``data`` its words need. This
module turns one into a :class:`~clms.i18n.Msg` a reviewer reads in their language, naming the
question by its label in the form and the child by its number (the caller gives the label: it
comes from the form, :mod:`forms.questions`). A row written before codes existed gets its code
from its English problem where that is certain (:func:`code_of`), else it is shown as written.

Each code also says whether the submission may be *accepted as it is* (:data:`ACCEPTABLE`): only
where the data saved is right and the reason is a doubt a person can lift (a GPS point far from
its village, a monitor outside their villages, ...). Where accepting would keep a wrong or missing
value (an unknown choice was left out, a village code is unknown, the submission could not be
processed), the reviewer corrects the answer or rejects the submission.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from clms.i18n import N_, Msg

#: the plain words of each code; ``{where}`` is the question (with the child's number),
#: ``{value}`` the answer as received, the others come from the reason's ``data``
WORDS: dict[str, str] = {
    "unknown_village": N_("{where}: “{value}” is not the code of a known village. Correct the "
                          "answer with the right village, or reject the submission."),
    "village_out_of_scope": N_("{where}: village “{value}” is not one of the villages of "
                               "monitor {monitor}. Accept it if the monitor really visited there."),
    "far_gps": N_("{where}: the point is {km} km from village {village}, the village chosen in "
                  "the form (more than {limit} km). Accept it if the household really is there, "
                  "or correct the village."),
    "gps_unusable": N_("{where}: the phone's position “{value}” cannot be used (no fix, or far "
                       "too inaccurate); the village chosen in the form was kept."),
    "too_many_children": N_("{where}: {count} children in one household visit, more than the "
                            "limit of {limit}. Nothing of the visit was saved yet; accept it to "
                            "save every child, or reject it."),
    "unknown_choice": N_("{where}: “{unknown}” is not one of the form's choices; it was left "
                         "out. Correct the answer."),
    "none_with_others": N_("{where}: “None of these” was chosen together with other answers "
                           "(“{value}”)."),
    "not_yes_no": N_("{where}: “{value}” is neither yes nor no; it was left out."),
    "not_a_number": N_("{where}: “{value}” is not a whole number; it was left out."),
    "out_of_range": N_("{where}: {value} is outside the possible range {low} to {high}; it was "
                       "left out."),
    "not_a_date": N_("{where}: “{value}” is not a date; it was left out."),
    "not_gps": N_("{where}: “{value}” is not a GPS point; it was left out."),
    "too_long": N_("{where}: the answer is longer than {limit} characters; it was left out."),
    "missing_field": N_("{where}: the answer is missing."),
    "age_mismatch": N_("{where}: age {value} does not match the date of birth {dob} ({years} "
                       "years)."),
    "too_many_hours": N_("{where}: work and chores add up to more than the {limit} hours of a "
                         "week ({value})."),
    "children_without_consent": N_("{where}: children were recorded although the household "
                                   "refused consent."),
    "unknown_supplier": N_("{where}: “{value}” is not the code of a known supplier; it was left "
                           "out."),
    "household_unknown": N_("{where}: the children could not be linked: the household code is "
                            "missing."),
    "household_moved": N_("{where}: household {household} was recorded before in another "
                          "village."),
    "unknown_case": N_("{where}: “{value}” is not a known case number. Correct it, or reject "
                       "the submission."),
    "case_out_of_scope": N_("{where}: case {value} is not in the villages of monitor {monitor}."),
    "parse_error": N_("The submission could not be processed (an error of the server, not of "
                      "the monitor). Reject it, or ask the administrator."),
    "encrypted_no_key": N_("The submission is encrypted and waits for its form's key: an "
                           "administrator unlocks it on the form's page."),
}  # fmt: skip

#: the names of the codes, for the queue's filter
CODE_NAMES: dict[str, str] = {
    "unknown_village": N_("Unknown village"),
    "village_out_of_scope": N_("Village outside the monitor's villages"),
    "far_gps": N_("GPS point far from the village"),
    "gps_unusable": N_("GPS point unusable"),
    "too_many_children": N_("Too many children"),
    "unknown_choice": N_("Unknown choice"),
    "none_with_others": N_("“None” with other answers"),
    "not_yes_no": N_("Not yes or no"),
    "not_a_number": N_("Not a number"),
    "out_of_range": N_("Out of range"),
    "not_a_date": N_("Not a date"),
    "not_gps": N_("Not a GPS point"),
    "too_long": N_("Answer too long"),
    "missing_field": N_("Missing answer"),
    "age_mismatch": N_("Age and date of birth disagree"),
    "too_many_hours": N_("More hours than a week has"),
    "children_without_consent": N_("Children without consent"),
    "unknown_supplier": N_("Unknown supplier"),
    "household_unknown": N_("Household unknown"),
    "household_moved": N_("Household in another village"),
    "unknown_case": N_("Unknown case"),
    "case_out_of_scope": N_("Case outside the monitor's villages"),
    "parse_error": N_("Could not be processed"),
    "encrypted_no_key": N_("Encrypted, waiting for the key"),
}

#: reasons a reviewer may accept as they are: the data saved is right, only a doubt remains
ACCEPTABLE = frozenset({
    "village_out_of_scope", "far_gps", "gps_unusable", "too_many_children", "none_with_others",
    "age_mismatch", "household_moved",
})  # fmt: skip
#: accepting these sends the submission through the processing again (nothing was saved yet)
REPROCESS_ON_ACCEPT = frozenset({"too_many_children"})

# rows written before codes existed: their English problem says the code, where it is certain
_OLD_PROBLEMS = [
    (re.compile(r"^unknown village code$"), "unknown_village"),
    (re.compile(r"^not one of the villages assigned to "), "village_out_of_scope"),
    (re.compile(r" km from village .*the village chosen in the form"), "far_gps"),
    (re.compile(r"children in one household visit, more than the limit"), "too_many_children"),
    (re.compile(r"^unknown choice\(s\) |^not one of the form's choices"), "unknown_choice"),
    (re.compile(r"^could not be processed: "), "parse_error"),
    (re.compile(r"^missing"), "missing_field"),
    (re.compile(r"^unknown supplier code$"), "unknown_supplier"),
    (re.compile(r"^unknown case number$"), "unknown_case"),
    (re.compile(r"^expected yes or no$"), "not_yes_no"),
    (re.compile(r"^not a whole number$"), "not_a_number"),
]


def code_of(reason: dict) -> str | None:
    """The code of a reason: its own, or the one its English problem certainly means (rows
    written before codes existed); None when unknown.

    >>> code_of({"path": "village", "value": "X", "problem": "unknown village code"})
    'unknown_village'
    >>> code_of({"path": "x", "value": None, "problem": "something new"}) is None
    True
    """
    if not isinstance(reason, dict):
        return None
    if reason.get("code"):
        return reason["code"]
    problem = str(reason.get("problem") or "")
    for pattern, code in _OLD_PROBLEMS:
        if pattern.search(problem):
            return code
    return None


def codes_of(reasons: list) -> list[str]:
    """The codes of ``reasons`` (``"unknown"`` for one without), in order, without repeats."""
    seen: list[str] = []
    for reason in reasons or []:
        code = code_of(reason) or "unknown"
        if code not in seen:
            seen.append(code)
    return seen


@dataclass(frozen=True)
class Where:
    """Where a reason points: the question's label (already in the reader's language, from the
    form) and the child's number in the visit, if the question is one child's."""

    label: str
    child: int | None = None


_CHILD_PATH = re.compile(r"^(?P<repeat>[\w.-]+)\[(?P<n>\d+)\]/(?P<name>[\w.-]+)$")


def split_path(path: str) -> tuple[int | None, str]:
    """A reason's path as (the repeat's number, the question's name).

    >>> split_path("child[2]/hazards"), split_path("village")
    ((2, 'hazards'), (None, 'village'))
    """
    match = _CHILD_PATH.match(path or "")
    if match:
        return int(match["n"]), match["name"]
    return None, path or ""


def where_words(where: Where) -> Msg | str:
    """``Child 2, Hazards`` (translated), or the label alone."""
    if where.child is None:
        return where.label
    return Msg("Child {n}, {label}", n=where.child, label=where.label)


def describe(reason: dict, where: Where) -> Msg:
    """The plain words of one reason (see the module documentation); a reason without a known
    code, or without the data its words need, is shown as written (its English problem)."""
    code = code_of(reason)
    template = WORDS.get(code or "")
    params = {"where": where_words(where), "value": reason.get("value") or "", **_data(reason)}
    if template is not None:
        try:
            template.format(**{k: "" for k in params})
        except (KeyError, IndexError):
            template = None
    if template is None:
        return Msg("{where}: {problem}", where=params["where"], problem=reason.get("problem", ""))
    return Msg(template, **params)


def named(reason: dict, where: Where) -> Msg:
    """Where a reason is and its name only, without the answers or facts its full words quote
    (a date of birth, a GPS point, a value): for a reader who may not read the answers."""
    code = code_of(reason)
    name = Msg(CODE_NAMES[code]) if code in CODE_NAMES else Msg("needs a person's review")
    return Msg("{where}: {problem}", where=where_words(where), problem=name)


def _data(reason: dict) -> dict:
    data = reason.get("data") if isinstance(reason.get("data"), dict) else {}
    out = {}
    if code_of(reason) == "unknown_choice" and "unknown" not in data:
        # a row written before its data: the answer as received is all there is to quote
        out["unknown"] = reason.get("value") or ""
    for key, value in data.items():
        if key in ("where", "value"):
            continue
        if isinstance(value, list):
            value = " ".join(str(v) for v in value)
        elif isinstance(value, float):
            value = f"{value:g}"
        out[key] = value
    return out


def acceptable(reasons: list) -> tuple[bool, list[dict]]:
    """Whether a submission held for ``reasons`` may be accepted as it is, and the reasons that
    forbid it (those whose code is not in :data:`ACCEPTABLE`, or unknown)."""
    blocking = [r for r in reasons or [] if code_of(r) not in ACCEPTABLE]
    return not blocking, blocking


def summary(reasons: list) -> Msg | str:
    """Why a submission is held, in a few words for a list: the first reason's name (with the
    child's number), and how many more there are; a reason without a known code as written.

    >>> str(summary([{"path": "child[2]/hazards", "value": "x", "problem": "", "code":
    ...     "unknown_choice"}, {"path": "gps", "value": "1 1", "problem": "", "code": "far_gps"}]))
    'Unknown choice (child 2), and 1 more'
    """
    reasons = [r for r in reasons or [] if isinstance(r, dict)]
    if not reasons:
        return ""
    first = reasons[0]
    code = code_of(first)
    if code in CODE_NAMES:
        child, _name = split_path(first.get("path") or "")
        words: Msg | str = Msg(CODE_NAMES[code])
        if child is not None:
            words = Msg("{reason} (child {n})", reason=words, n=child)
    else:
        where = first.get("path") or ""
        words = f"{where}: {first.get('problem', '')}" if where else str(first.get("problem", ""))
    if len(reasons) > 1:
        return Msg("{first}, and {n} more", first=words, n=len(reasons) - 1)
    return words
