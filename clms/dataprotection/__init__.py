"""Data protection: retention, the subject access export and erasure of one child's data.

Children's data can harm them (domain.md section 8), so it is kept no longer than it serves them:

Retention (:func:`run_retention`, the ``retention`` job and ``clms retention run``)
    A child whose every case was closed (or transferred) more than ``CLMS_RETENTION_YEARS``
    years ago (default 5; 0 turns retention off), with no open case, no active alert and no
    visit since that cut, is anonymised (:func:`anonymise_children`).
Subject access (:func:`export_child`, ``clms child export``)
    Everything held about one child, from every table, as one JSON document whose ``about``
    part says what each part is.
Erasure (:func:`erase_child`, ``clms child erase``)
    On a lawful request: the same anonymisation, now, whatever the retention cut, and also the
    child's name wherever else it was written. A child with an open case is refused unless
    forced with a reason: erasing the record of a child in danger may harm the child.

What anonymising removes and what it keeps
    Removed: the name (and its matching key), the exact date of birth (the birth year stays),
    the household head's name (on retention once no child of the household keeps personal
    data; on erasure at once), free-text notes of visits, reports, alerts, cases, assessments,
    plans, consents, referrals, transfers and merges, the text of case and alert events,
    the notification texts about the child's alerts, the raw XML of every submission about the
    child (replaced by a redacted skeleton holding only its instance ids, so that a phone's
    retried upload is still recognised as a duplicate: the stored SHA-256 stays) and the
    content of its attachments (names, types and hashes stay). GPS points are rounded to two
    decimals (about 1 km) and altitudes dropped.
    Kept: the pseudonymous ``child_uid``, sex, birth year, ages and answers of each visit,
    classifications, alert and case categories, states, dates, services and outcomes, village
    and supplier: every figure of the indicators and the hotspot maps stays the same.

Everything is recorded in the audit log (:mod:`clms.audit`), which names children only by their
pseudonymous ids: ``child.anonymise`` per child, ``retention.run`` per run, ``child.export`` and
``child.erase``.

The modules: :mod:`~clms.dataprotection.subject` (finding a child and every row about it),
:mod:`~clms.dataprotection.anonymise`, :mod:`~clms.dataprotection.retention`,
:mod:`~clms.dataprotection.erasure`, :mod:`~clms.dataprotection.export` (subject access) and
:mod:`~clms.dataprotection.cli` (the commands); this package gives their public names.
"""

from __future__ import annotations

from clms.dataprotection.anonymise import REMOVED, anonymise_children, redacted_xml
from clms.dataprotection.erasure import ErasureResult, erase_child
from clms.dataprotection.export import ABOUT, export_child, export_json
from clms.dataprotection.retention import (
    DEFAULT_RETENTION_YEARS,
    RetentionResult,
    due_for_retention,
    retention_cut,
    retention_years,
    run_retention,
)
from clms.dataprotection.subject import (
    DataProtectionError,
    find_subject,
    open_case_numbers,
    related,
    visit_count,
)

__all__ = [
    "ABOUT",
    "DEFAULT_RETENTION_YEARS",
    "REMOVED",
    "DataProtectionError",
    "ErasureResult",
    "RetentionResult",
    "anonymise_children",
    "due_for_retention",
    "erase_child",
    "export_child",
    "export_json",
    "find_subject",
    "open_case_numbers",
    "redacted_xml",
    "related",
    "retention_cut",
    "retention_years",
    "run_retention",
    "visit_count",
]
