"""Submissions built from the published form's own primary instance, so that each has the form's
real structure: leaves filled by name, repeats as many as answered.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterable

from lxml import etree

XFORMS_NS = "http://www.w3.org/2002/xforms"
JR_NS = "http://openrosa.org/javarosa"


# --- submissions from the form's own primary instance -------------------------------------------


def primary_instance(xform: bytes) -> etree._Element:
    """The primary instance's root element (``data``) of an XForm, as a detached copy."""
    from forms.xmlsafe import parse_xml

    html = parse_xml(xform)
    model = html.find(f".//{{{XFORMS_NS}}}model")
    if model is None:
        raise ValueError("the XForm has no <model>")
    for instance in model.iter(f"{{{XFORMS_NS}}}instance"):
        if instance.get("id") is None:
            roots = [e for e in instance if isinstance(e.tag, str)]
            if len(roots) != 1:
                raise ValueError("the primary <instance> must hold exactly one element")
            return copy.deepcopy(roots[0])
    raise ValueError("the XForm has no primary <instance>")


def choice_values(xform: bytes, name: str) -> list[str]:
    """The choice codes of the question called ``name`` (inline items or an itemset instance)."""
    from forms.xmlsafe import parse_xml

    html = parse_xml(xform)
    for control in html.iter(f"{{{XFORMS_NS}}}select", f"{{{XFORMS_NS}}}select1"):
        if (control.get("ref") or "").rsplit("/", 1)[-1] != name:
            continue
        values = [
            v.text or "" for v in control.iterfind(f"{{{XFORMS_NS}}}item/{{{XFORMS_NS}}}value")
        ]
        itemset = control.find(f"{{{XFORMS_NS}}}itemset")
        if itemset is not None and "instance('" in (itemset.get("nodeset") or ""):
            instance_id = itemset.get("nodeset").split("instance('", 1)[1].split("'", 1)[0]
            value = itemset.find(f"{{{XFORMS_NS}}}value")
            field_name = value.get("ref") if value is not None else "name"
            for inst in html.iter(f"{{{XFORMS_NS}}}instance"):
                if inst.get("id") == instance_id:
                    values += [
                        (e.text or "")
                        for e in inst.iter()
                        if isinstance(e.tag, str) and etree.QName(e).localname == field_name
                    ]
        return values
    return []


def _strip_xforms_namespace(elem: etree._Element) -> None:
    """Submissions carry the instance's elements without the XForms namespace (as Collect sends)."""
    for e in elem.iter():
        if isinstance(e.tag, str) and e.tag.startswith(f"{{{XFORMS_NS}}}"):
            e.tag = e.tag[len(XFORMS_NS) + 2 :]
    etree.cleanup_namespaces(elem)


def _fill(elem: etree._Element, values: dict[str, str], skip: Iterable[str] = ()) -> None:
    """Set every leaf whose name is in ``values``, outside elements named in ``skip``.

    Leaves not named keep the form's default value.
    """
    skip = set(skip)
    for e in elem.iter():
        if not isinstance(e.tag, str) or e is elem:
            continue
        if skip and _inside(e, elem, skip):
            continue
        if len(e) == 0:
            name = etree.QName(e).localname
            if name in values:
                e.text = values[name]


def _inside(e: etree._Element, top: etree._Element, names: set[str]) -> bool:
    node = e
    while node is not None and node is not top:
        if etree.QName(node).localname in names:
            return True
        node = node.getparent()
    return False


def build_submission(
    template: etree._Element,
    values: dict[str, str],
    repeats: dict[str, list[dict[str, str]]] | None = None,
    instance_id: str | None = None,
    entity: dict[str, str] | None = None,
) -> bytes:
    """A submission: the form's primary instance with leaves filled by name.

    ``repeats`` maps a repeat's element name to one dict of values per occurrence; the template
    copy (``jr:template``) and the form's default occurrences are replaced by exactly those.
    ``entity`` sets attributes of ``<meta><entity>`` (``id``, ``baseVersion``, ...), as Collect
    computes them from the entity list.
    """
    root = copy.deepcopy(template)
    _strip_xforms_namespace(root)
    for e in root.iter():  # drop the XForm's indentation: phones send compact XML
        if len(e):
            e.text = None
        e.tail = None
    for name, occurrences in (repeats or {}).items():
        found = [e for e in root.iter(name)]
        if not found:
            raise ValueError(f"the form has no repeat {name!r}")
        model = found[0]
        parent = model.getparent()
        position = parent.index(model)
        for e in found:
            e.getparent().remove(e)
        model.attrib.pop(f"{{{JR_NS}}}template", None)
        for offset, occurrence in enumerate(occurrences):
            item = copy.deepcopy(model)
            _fill(item, occurrence)
            parent.insert(position + offset, item)
    _fill(root, values, skip=(repeats or {}).keys())
    meta_id = instance_id or f"uuid:{uuid.uuid4()}"
    instance_ids = [
        e
        for e in root.iter()
        if isinstance(e.tag, str) and etree.QName(e).localname == "instanceID"
    ]
    if not instance_ids:
        raise ValueError("the form has no meta/instanceID")
    instance_ids[0].text = meta_id
    if entity:
        block = instance_ids[0].getparent().find("entity")
        if block is None:
            raise ValueError("the form has no meta/entity")
        block.attrib.update(entity)
    etree.cleanup_namespaces(root)
    return etree.tostring(root, xml_declaration=False, encoding="UTF-8")
