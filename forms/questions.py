"""A submission as its form's questions and answers, in the reader's language; a corrected copy.

The XForm a phone filled (``FormVersion.xml``) says everything a reader needs: the questions in
the order of the body, grouped and repeated, each label and each choice label in every language
of its ``itext`` (our forms are in English and French) or written inline. :func:`read_form`
reads that once per form version (:class:`FormLayout`); :func:`answers` walks a submission's XML
along it and returns the rows a page shows (a heading for each group and each repeat, "Child 1",
"Child 2", and a row for each answer with the labels of the choices chosen). An element the form
does not know is still shown, by its name, so nothing received is hidden.

Each answer row carries the path the processing names in its review reasons (``child[2]/hazards``,
``village``): the page puts the reasons next to the question they concern, and a correction
names the answer it changes by that path. :func:`corrected` makes the XML of a new version with
one answer changed, as ODK Collect does for an edit: a new ``instanceID`` and ``deprecatedID``
naming the version it replaces; the original bytes are never touched.

No database, no Flask: XML in, plain data out (parsed with :mod:`forms.xmlsafe`).
"""

from __future__ import annotations

import hashlib
import re
import threading
from dataclasses import dataclass, field

from lxml import etree

from forms.xmlsafe import child as child_of
from forms.xmlsafe import local, parse_xml

XF = "http://www.w3.org/2002/xforms"
H = "http://www.w3.org/1999/xhtml"
_CONTROLS = {"input", "select1", "select", "upload", "range", "rank", "odk:rank", "trigger"}
_ITEXT_REF = re.compile(r"""^jr:itext\(\s*['"](?P<id>[^'"]+)['"]\s*\)$""")
_INSTANCE_REF = re.compile(r"""instance\(\s*['"](?P<id>[^'"]+)['"]\s*\)""")
#: elements of a submission no reader needs: ODK's metadata
_HIDDEN = {"meta"}
#: our forms' repeats, left out when a name outside them is looked for (as forms.parse does)
_REPEATS = {"child"}


@dataclass
class Question:
    """One question of a form: its path (``/data/child/hazards``), kind (the body's control:
    input, select1, select, ...; ``group`` and ``repeat`` for those), data type (the bind's
    ``type``), labels by language, and choices (value -> labels by language; None when the
    choices come from a file, as the village and supplier lists do)."""

    path: str
    kind: str
    type: str = "string"
    labels: dict[str, str] = field(default_factory=dict)
    choices: dict[str, dict[str, str]] | None = None
    choice_file: str | None = None  # the external list the choices come from (``villages``)

    def label(self, lang: str) -> str:
        """The label in ``lang``, else in the form's default language, else the name."""
        return (
            self.labels.get(lang)
            or self.labels.get("")
            or next(iter(self.labels.values()), "")
            or self.path.rsplit("/", 1)[-1]
        )

    def choice_label(self, value: str, lang: str) -> str | None:
        labels = (self.choices or {}).get(value)
        if not labels:
            return None
        return labels.get(lang) or labels.get("") or next(iter(labels.values()), None)


@dataclass
class FormLayout:
    """The questions of a form version, by path, in the order of its body."""

    questions: dict[str, Question]
    repeats: set[str]
    preloaded: set[str]  # paths filled by the phone itself (start, end, deviceid, calculations)


@dataclass
class Row:
    """A line of a submission as a page shows it.

    ``kind``: ``group`` (a heading: a group, or one repeat, ``number`` set) or ``answer``.
    ``path``: as review reasons name it (``child[2]/hazards``); ``value``: the answer as
    received; ``shown``: the answer for a reader (choice labels, joined), ``depth``: nesting.
    """

    kind: str
    label: str
    path: str
    depth: int
    value: str = ""
    shown: str = ""
    number: int | None = None
    question: Question | None = None


# --- reading the form -----------------------------------------------------------------------------


_LAYOUTS: dict[str, FormLayout] = {}
_LOCK = threading.Lock()


def read_form(xform: bytes) -> FormLayout:
    """The layout of an XForm (kept per process by the bytes' digest: a version never changes)."""
    key = hashlib.sha256(xform).hexdigest()
    with _LOCK:
        found = _LAYOUTS.get(key)
    if found is None:
        found = _read_form(parse_xml(xform))
        with _LOCK:
            if len(_LAYOUTS) > 200:
                _LAYOUTS.clear()
            _LAYOUTS[key] = found
    return found


def _lang_code(name: str) -> str:
    """``English (en)`` -> ``en``; a name without a code is kept, lower case."""
    match = re.search(r"\(([A-Za-z]{2,3})(?:[-_][A-Za-z]+)?\)\s*$", name or "")
    return match.group(1).lower() if match else (name or "").strip().lower()


def _read_form(root: etree._Element) -> FormLayout:
    model = root.find(f"{{{H}}}head/{{{XF}}}model")
    body = root.find(f"{{{H}}}body")
    if model is None or body is None:
        return FormLayout({}, set(), set())
    itext = _read_itext(model)
    instances = {
        inst.get("id"): inst for inst in model.findall(f"{{{XF}}}instance") if inst.get("id")
    }
    types, preloaded = {}, set()
    for bind in model.findall(f"{{{XF}}}bind"):
        nodeset = bind.get("nodeset") or ""
        types[nodeset] = bind.get("type") or "string"
        if any(k.endswith("preload") for k in bind.attrib) or bind.get("calculate"):
            preloaded.add(nodeset)
    layout = FormLayout({}, set(), preloaded)

    def text_of(elem) -> dict[str, str]:
        if elem is None:
            return {}
        ref = elem.get("ref") or ""
        match = _ITEXT_REF.match(ref.strip())
        if match:
            found = match["id"]
            return {lang: texts[found] for lang, texts in itext.items() if found in texts}
        inline = "".join(elem.itertext()).strip()
        return {"": inline} if inline else {}

    def walk(parent, group_path: str | None) -> None:
        for elem in parent:
            name = _tag(elem)
            if name in ("group", "repeat"):
                path = elem.get("nodeset") if name == "repeat" else elem.get("ref")
                path = path or group_path
                if path:
                    existing = layout.questions.get(path)
                    labels = text_of(elem.find(f"{{{XF}}}label"))
                    if existing is None:
                        layout.questions[path] = Question(path, name, labels=labels)
                    elif labels and not existing.labels:
                        existing.labels = labels
                    if name == "repeat":
                        layout.repeats.add(path)
                walk(elem, path)
            elif name in _CONTROLS and elem.get("ref"):
                path = elem.get("ref")
                question = Question(path, name, types.get(path, "string"),
                                    text_of(elem.find(f"{{{XF}}}label")))  # fmt: skip
                if name in ("select1", "select"):
                    question.choices, question.choice_file = _choices(
                        elem, instances, itext, text_of
                    )
                layout.questions[path] = question

    walk(body, None)
    return layout


def _tag(elem) -> str:
    return local(elem.tag) if isinstance(elem.tag, str) else ""


def _read_itext(model) -> dict[str, dict[str, str]]:
    """Every itext translation: language code -> text id -> text (the default one also as
    ``""``)."""
    out: dict[str, dict[str, str]] = {}
    itext = model.find(f"{{{XF}}}itext")
    if itext is None:
        return out
    for translation in itext.findall(f"{{{XF}}}translation"):
        texts = {}
        for text in translation.findall(f"{{{XF}}}text"):
            values = text.findall(f"{{{XF}}}value")
            plain = [v for v in values if not v.get("form")] or values
            if plain:
                texts[text.get("id")] = "".join(plain[0].itertext()).strip()
        out[_lang_code(translation.get("lang") or "")] = texts
        if translation.get("default") or "" not in out:
            out[""] = texts
    return out


def _choices(elem, instances, itext, text_of) -> tuple[dict | None, str | None]:
    items = elem.findall(f"{{{XF}}}item")
    if items:
        choices = {}
        for item in items:
            value = item.find(f"{{{XF}}}value")
            if value is not None and value.text:
                choices[value.text.strip()] = text_of(item.find(f"{{{XF}}}label"))
        return choices, None
    itemset = elem.find(f"{{{XF}}}itemset")
    if itemset is None:
        return None, None
    match = _INSTANCE_REF.search(itemset.get("nodeset") or "")
    if not match:
        return None, None
    instance = instances.get(match["id"])
    if instance is None or instance.get("src"):
        return None, match["id"]  # a list from a file (villages, suppliers, cases)
    value_ref = (itemset.find(f"{{{XF}}}value").get("ref") or "name").strip()
    label = itemset.find(f"{{{XF}}}label")
    label_ref = (label.get("ref") if label is not None else "label") or "label"
    choices = {}
    for item in instance.iter(f"{{{XF}}}item"):
        value = child_of(item, value_ref)
        if value is None or not (value.text or "").strip():
            continue
        if label_ref.strip().startswith("jr:itext("):
            node = child_of(item, "itextId")
            text_id = (node.text or "").strip() if node is not None else ""
            labels = {lang: t[text_id] for lang, t in itext.items() if text_id in t}
        else:
            node = child_of(item, label_ref.strip())
            labels = {"": (node.text or "").strip()} if node is not None and node.text else {}
        choices[value.text.strip()] = labels
    return choices, None


# --- a submission along its form ------------------------------------------------------------------


def answers(layout: FormLayout, xml: bytes | etree._Element, lang: str) -> list[Row]:
    """The rows of a submission (see :class:`Row`), in the order of its XML, labels in
    ``lang``."""
    root = parse_xml(xml) if isinstance(xml, bytes) else xml
    rows: list[Row] = []
    base = "/" + local(root.tag)

    def walk(elem, form_path: str, reason_prefix: str, depth: int) -> None:
        counts: dict[str, int] = {}
        for c in elem:
            name = _tag(c)
            if not name or name in _HIDDEN:
                continue
            path = f"{form_path}/{name}"
            question = layout.questions.get(path)
            if path in layout.repeats:
                counts[name] = counts.get(name, 0) + 1
                number = counts[name]
                label = question.label(lang) if question else name
                rows.append(Row("group", label, f"{name}[{number}]", depth, number=number,
                                question=question))  # fmt: skip
                walk(c, path, f"{name}[{number}]/", depth + 1)
            elif len(c):
                rows.append(Row("group", question.label(lang) if question else name,
                                reason_prefix + name, depth, question=question))  # fmt: skip
                walk(c, path, reason_prefix, depth + 1)
            else:
                if path in layout.preloaded and question is None:
                    continue
                value = (c.text or "").strip()
                rows.append(
                    Row("answer", question.label(lang) if question else name,
                        reason_prefix + name, depth, value, shown(question, value, lang),
                        question=question)
                )  # fmt: skip

    walk(root, base, "", 0)
    return rows


def shown(question: Question | None, value: str, lang: str) -> str:
    """An answer as a reader reads it: the labels of the choices chosen (a value the form does
    not list stays as it came), else the value."""
    if question is None or not value or question.choices is None:
        return value
    parts = value.split() if question.kind == "select" else [value]
    return "; ".join(question.choice_label(p, lang) or p for p in parts)


# --- correcting one answer ------------------------------------------------------------------------


class PathNotFound(LookupError):
    """The answer a correction names is not in the submission."""


def find_answer(root: etree._Element, path: str) -> etree._Element | None:
    """The element of the answer ``path`` (``child[2]/hazards`` or ``village``), as the
    processing reads it: by name, anywhere outside the repeats and the metadata."""
    match = re.match(r"^(?P<repeat>[\w.-]+)\[(?P<n>\d+)\]/(?P<name>[\w.-]+)$", path)
    if match:
        repeats = [c for c in root if _tag(c) == match["repeat"]]
        n = int(match["n"])
        if not 1 <= n <= len(repeats):
            return None
        return _find_leaf(repeats[n - 1], match["name"], skip=set())
    if not re.match(r"^[\w.-]+$", path or ""):
        return None
    return _find_leaf(root, path, skip=_REPEATS | _HIDDEN)


def _find_leaf(elem, name: str, skip: set[str]):
    for c in elem:
        tag = _tag(c)
        if not tag or tag in skip:
            continue
        if len(c):
            found = _find_leaf(c, name, skip)
            if found is not None:
                return found
        elif tag == name:
            return c
    return None


def current_value(xml: bytes, path: str) -> str | None:
    """The answer at ``path`` as received (None: not in the submission)."""
    found = find_answer(parse_xml(xml), path)
    return None if found is None else (found.text or "").strip()


def corrected(xml: bytes, path: str, value: str, instance_id: str, replaces: str) -> bytes:
    """A new version of the submission ``xml`` with the answer at ``path`` set to ``value``,
    ``instanceID`` ``instance_id`` and ``deprecatedID`` ``replaces``. An answer the submission
    lacks is added where the processing reads it (in its repeat, or under the root)."""
    root = parse_xml(xml)
    target = find_answer(root, path)
    if target is None:
        target = _add_answer(root, path)
    target.text = value
    namespace = etree.QName(root).namespace
    meta = child_of(root, "meta")
    if meta is None:
        meta = etree.SubElement(root, _qualified(namespace, "meta"))
    meta_ns = etree.QName(meta).namespace
    node = child_of(meta, "instanceID")
    if node is None:
        node = etree.SubElement(meta, _qualified(meta_ns, "instanceID"))
    node.text = instance_id
    old = child_of(meta, "deprecatedID")
    if old is None:
        old = etree.Element(_qualified(meta_ns, "deprecatedID"))
        node.addnext(old)
    old.text = replaces
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def _qualified(namespace: str | None, name: str) -> str:
    return f"{{{namespace}}}{name}" if namespace else name


def _add_answer(root, path: str):
    match = re.match(r"^(?P<repeat>[\w.-]+)\[(?P<n>\d+)\]/(?P<name>[\w.-]+)$", path)
    namespace = etree.QName(root).namespace
    if match:
        repeats = [c for c in root if _tag(c) == match["repeat"]]
        n = int(match["n"])
        if not 1 <= n <= len(repeats):
            raise PathNotFound(path)
        return etree.SubElement(repeats[n - 1], _qualified(namespace, match["name"]))
    if not re.match(r"^[\w.-]+$", path or ""):
        raise PathNotFound(path)
    new = etree.Element(_qualified(namespace, path))
    meta = child_of(root, "meta")
    if meta is not None:
        meta.addprevious(new)
    else:
        root.append(new)
    return new


def question_at(layout: FormLayout, root_name: str, path: str) -> Question | None:
    """The form's question of the answer ``path`` (``child[2]/hazards`` -> ``/data/child/hazards``;
    a name outside the repeats is looked for anywhere in the form, as the processing does)."""
    match = re.match(r"^(?P<repeat>[\w.-]+)\[(?P<n>\d+)\]/(?P<name>[\w.-]+)$", path or "")
    if match:
        return layout.questions.get(f"/{root_name}/{match['repeat']}/{match['name']}")
    direct = layout.questions.get(f"/{root_name}/{path}")
    if direct is not None:
        return direct
    for q_path, question in layout.questions.items():
        if q_path.rsplit("/", 1)[-1] == path and not any(
            q_path.startswith(r + "/") for r in layout.repeats
        ):
            return question
    return None
