"""Reading XML that strangers send, safely.

Submissions and forms come from phones and uploads we do not control. ODK never uses DTDs or
entities, so any document that declares them is refused before it is expanded: that stops external
entities (reading files or URLs on the server) and entity-expansion bombs alike. libxml2 is also
told never to load DTDs, resolve entities or touch the network, as a second line.

>>> parse_xml(b'<data id="x"><a>1</a></data>').get("id")
'x'
"""

from __future__ import annotations

import re

from lxml import etree

from clms.errors import problem

_DTD_MARKERS = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)
# what libxml2 says of bytes in another encoding than the declared one (UTF-8 by default), or of
# UTF-16 without a byte-order mark (a NUL every other byte)
_ENCODING_ERRORS = re.compile(r"encoding|Char 0x0 out of allowed range|not proper UTF-8", re.I)
_ENCODING_HINT = (
    "the bytes are not in the document's encoding: send UTF-8, or declare the encoding, e.g. "
    '<?xml version="1.0" encoding="ISO-8859-1"?>'
)


def _parser(recover: bool = False) -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=False,
        recover=recover,
    )


def parse_xml(data: bytes) -> etree._Element:
    """Parse ``data`` and return the root element, or raise a catalogue problem.

    Raises ``request.hostile_xml`` for any DTD or entity declaration and ``request.malformed_xml``
    (naming line and column) for anything else libxml2 cannot read.
    """
    found = _declared_dtd(data)
    if found:
        raise problem("request.hostile_xml", detail=found)
    parser = _parser()
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as e:
        # the parser's own log: the exception's log may also hold errors of earlier parses
        root = _tolerate_undeclared_prefix(data, e, list(parser.error_log))
    except ValueError as e:  # e.g. a str with an encoding declaration, or empty input
        raise problem("request.malformed_xml", detail=str(e)) from e
    if root is None:
        raise problem("request.malformed_xml", detail="the document is empty")
    # the byte scan cannot see a DTD in a UTF-16 document; the parsed tree can
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None:
        raise problem("request.hostile_xml", detail="DOCTYPE")
    return root


def _declared_dtd(data: bytes) -> str | None:
    """The DTD or entity declaration in ``data``, looked for in the bytes and, for a document in
    UTF-16 (a byte-order mark or NUL bytes at the start), in its text: libxml2 would read the
    declarations of a UTF-16 document before the parsed tree could tell."""
    found = _DTD_MARKERS.search(data)
    if found:
        return found.group(0).decode("ascii", "replace")
    if data[:2] in (b"\xff\xfe", b"\xfe\xff") or b"\x00" in data[:4]:
        for encoding in ("utf-16-le", "utf-16-be"):
            text = data.decode(encoding, "replace")
            match = re.search(r"<!\s*(DOCTYPE|ENTITY)", text, re.IGNORECASE)
            if match:
                return match.group(0)
    return None


def _tolerate_undeclared_prefix(
    data: bytes, error: etree.XMLSyntaxError, errors: list
) -> etree._Element:
    """Accept a document whose only fault is an undeclared namespace prefix.

    Some real clients write ``<orx:meta>`` without declaring ``xmlns:orx`` (ODK Central accepts
    these). libxml2 reports that as a namespace error and can still build the tree; anything else
    wrong with the document is still refused.
    """
    only_namespace = errors and all(
        e.domain_name == "NAMESPACE" and e.type_name == "NS_ERR_UNDEFINED_NAMESPACE" for e in errors
    )
    if not only_namespace:
        first = errors[0] if errors else None
        where = f"line {first.line}, column {first.column}: " if first else ""
        message = (first.message if first else str(error)).strip().rstrip(".")
        if _ENCODING_ERRORS.search(message):
            message += f" ({_ENCODING_HINT})"
        raise problem("request.malformed_xml", detail=f"{where}{message}") from error
    return etree.fromstring(data, _parser(recover=True))


def local(tag: object) -> str:
    """The local name of an element tag, without namespace or prefix (``orx:meta`` -> ``meta``)."""
    if not isinstance(tag, str):
        return ""  # comments and processing instructions
    tag = tag.rsplit("}", 1)[-1]
    return tag.rsplit(":", 1)[-1]


def child(elem: etree._Element, name: str) -> etree._Element | None:
    """The first direct child of ``elem`` with local name ``name``."""
    for c in elem:
        if local(c.tag) == name:
            return c
    return None


def instance_ids(root: etree._Element) -> tuple[str | None, str | None]:
    """``(instanceID, deprecatedID)`` of a submission, in ``meta`` (any namespace) or the root."""
    meta = child(root, "meta")
    instance_id = deprecated_id = None
    for holder in (meta, root):
        if holder is None:
            continue
        node = child(holder, "instanceID")
        if instance_id is None and node is not None and (node.text or "").strip():
            instance_id = node.text.strip()
        node = child(holder, "deprecatedID")
        if deprecated_id is None and node is not None and (node.text or "").strip():
            deprecated_id = node.text.strip()
    return instance_id, deprecated_id
