"""The data model (SQLAlchemy 2.0, typed). Schema changes go through Alembic migrations.

Personal data (names, dates of birth, coordinates, free text) lives only in the child-level tables
(``households``, ``children``, ``child_visits``, ``visits``, ``reports``) and in the raw
submissions; everything that leaves officer scope uses the pseudonymous ``Child.child_uid``.

One module a feature (``base``: the column types and helpers; ``places``, ``supply``, ``people``,
``forms``, ``visits``, ``cases``, ``entities`` (cases as ODK entities), ``alerts``, ``jobs``,
``notices``, ``hotspots``, ``audit``); this package imports them all, so every table is on
``Base.metadata`` (Alembic, ``clms init``) and every model and helper can be imported from
``clms.models``.
"""

from __future__ import annotations

from clms.models.alerts import ACTIVE_ALERT_STATUSES, ALERT_STATUSES, SEVERITIES, Alert, AlertEvent
from clms.models.audit import AuditEvent, AuditHead
from clms.models.base import JSONType, UTCDateTime, new_child_uid, utcnow
from clms.models.cases import (
    CASE_STATES,
    OPEN_CASE_STATES,
    REFERRAL_OUTCOMES,
    REFERRAL_STATUSES,
    ActionPlan,
    Assessment,
    Case,
    CaseEvent,
    CaseTransfer,
    CaseWithdrawal,
    ChildMerge,
    Consent,
    DuplicateDismissal,
    PlannedService,
    Referral,
    ServiceProvider,
    ServiceType,
)
from clms.models.entities import ENTITY_CONFLICTS, CaseEntity, CaseEntityVersion
from clms.models.facts import KpiChildFact
from clms.models.forms import (
    EncryptedSubmission,
    Form,
    FormArea,
    FormAttachment,
    FormKey,
    FormVersion,
    PullRetry,
    PullSource,
    Submission,
    SubmissionAttachment,
    SubmissionReview,
)
from clms.models.hotspots import HotspotRelease
from clms.models.jobs import JobRun, KpiSnapshot, Notification
from clms.models.notices import Notice, NoticePreference
from clms.models.people import ROLES, ApiToken, DigestNonce, LoginThrottle, User, UserScope
from clms.models.places import AREA_LEVELS, Area, Village
from clms.models.supply import Brand, BrandSupplier, Supplier, SupplierLink, SupplierVillage
from clms.models.visits import (
    Child,
    ChildVisit,
    Classification,
    CountryProfile,
    Household,
    Report,
    Visit,
)

__all__ = [
    "KpiChildFact",
    "UTCDateTime",
    "JSONType",
    "utcnow",
    "new_child_uid",
    "AREA_LEVELS",
    "Area",
    "Village",
    "Brand",
    "Supplier",
    "BrandSupplier",
    "SupplierLink",
    "SupplierVillage",
    "ROLES",
    "User",
    "UserScope",
    "ApiToken",
    "DigestNonce",
    "LoginThrottle",
    "Notice",
    "NoticePreference",
    "Form",
    "FormArea",
    "FormVersion",
    "FormAttachment",
    "Submission",
    "SubmissionAttachment",
    "SubmissionReview",
    "PullRetry",
    "PullSource",
    "FormKey",
    "EncryptedSubmission",
    "Household",
    "Visit",
    "Child",
    "ChildVisit",
    "Report",
    "CountryProfile",
    "Classification",
    "CASE_STATES",
    "OPEN_CASE_STATES",
    "Case",
    "CaseEvent",
    "CaseWithdrawal",
    "Assessment",
    "ServiceType",
    "ServiceProvider",
    "ActionPlan",
    "PlannedService",
    "Consent",
    "REFERRAL_STATUSES",
    "REFERRAL_OUTCOMES",
    "Referral",
    "CaseTransfer",
    "ChildMerge",
    "DuplicateDismissal",
    "ENTITY_CONFLICTS",
    "CaseEntity",
    "CaseEntityVersion",
    "SEVERITIES",
    "ALERT_STATUSES",
    "ACTIVE_ALERT_STATUSES",
    "Alert",
    "AlertEvent",
    "Notification",
    "JobRun",
    "KpiSnapshot",
    "HotspotRelease",
    "AuditEvent",
    "AuditHead",
]
