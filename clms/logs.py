"""Log lines that carry no device token.

A phone configured with a device token sends it in every URL (``/key/<token>/submission``, as
ODK Central's app users do): whoever reads the access log, the error log or an exception's
first line would otherwise hold a working credential. :func:`install` makes every log record
of this process, whichever logger writes it (Flask's "Exception on /key/... [POST]", gunicorn's
access and error logs, werkzeug's request lines in the demo server, our own), carry
``/key/[token]`` instead, before any handler formats it.

It replaces the process's log record factory (``logging.setLogRecordFactory``) rather than adding
filters to handlers: handlers are added by gunicorn, Flask and the scheduler at different times,
and a logger's filters do not see the records of its children, but every record is made by the
factory.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, MutableMapping

#: a device token in a path (tokens are URL-safe base64: letters, digits, - and _), however the
#: path is written (/KEY/, //key//...)
TOKEN_IN_PATH = re.compile(r"(/+key/+)[^/\s?#\"'<>]+", re.IGNORECASE)
REPLACEMENT = r"\1[token]"


def redact(text: str) -> str:
    """``text`` with every device token in a ``/key/<token>`` path replaced.

    >>> redact("Exception on /key/Zm9vYmFy-_1/submission [POST]")
    'Exception on /key/[token]/submission [POST]'
    """
    return TOKEN_IN_PATH.sub(REPLACEMENT, text) if "key/" in text.lower() else text


def _clean(value):
    return redact(value) if isinstance(value, str) else value


def install() -> None:
    """Redact device tokens from every log record this process makes from now on (idempotent)."""
    previous = logging.getLogRecordFactory()
    if getattr(previous, "clms_redacting", False):
        return

    def factory(*args, **kwargs):
        record = previous(*args, **kwargs)
        record.msg = _clean(record.msg)
        if isinstance(record.args, MutableMapping):
            # gunicorn's access log: its dict of atoms, changed in place (a copy would lose what
            # makes it answer "-" for a header the request does not have)
            for key, value in list(record.args.items()):
                if isinstance(value, str):
                    record.args[key] = redact(value)
        elif isinstance(record.args, Mapping):
            record.args = {key: _clean(value) for key, value in record.args.items()}
        elif isinstance(record.args, tuple):
            record.args = tuple(_clean(value) for value in record.args)
        return record

    factory.clms_redacting = True
    logging.setLogRecordFactory(factory)
