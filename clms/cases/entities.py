"""The cases a monitor's phone holds as ODK entities, their versions and their conflicts.

The follow-up form (forms/xlsform/clms_followup.md) chooses the case from the entity list
``cases`` and updates the chosen case on the phone (the last follow-up date, whether the child was
seen, at school, the hours worked), so the phone's copy stays useful between downloads. The
server is the list's home, as ODK Central is for its entity lists:

- :func:`listed_cases` is the one query of the cases a monitor follows up (their villages' open
  cases that are theirs or nobody's): cases.csv (clms.openrosa.media) and the entity list use it;
- :func:`entity_list` gives each listed case its entity (a stable UUID, version 1, on first
  listing) and the rows of the list (``name,label,__version`` and the properties);
- :func:`entity_states` answers the list's integrity URL: an entity the phone holds that is no
  longer in the monitor's list (case closed, merged, transferred, given to another monitor) is
  ``deleted``, as Central reports entities deleted or out of the user's reach;
- :func:`apply_followups` (a step of the intake pipeline) takes each follow-up's
  ``<meta><entity>`` block and makes a new version of the case entity, detecting conflicting
  offline updates by ODK Central's rules (lib/model/query/entities.js): an update made from a
  version older than the current one is a ``soft`` conflict, a ``hard`` one when it sets a
  property the updates it did not see changed, to another value; the values merge, the later
  update wins each property, and the conflict stays on the case page until an officer resolves it
  (:func:`resolve_conflict`, with a note, audited).

What a follow-up does to the case itself is clms.cases.findings' work, unchanged: the entity is
the phones' copy, and a conflict says two monitors saw the child differently from the same
starting point.
"""

from __future__ import annotations

import datetime as dt
import uuid as uuidlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from clms import audit
from clms.cases import workflow as wf
from clms.cases.inputs import _text
from clms.cases.records import case_in_scope, check_move
from clms.errors import field_errors, problem
from clms.models import (
    OPEN_CASE_STATES,
    Case,
    CaseEntity,
    CaseEntityVersion,
    Child,
    Submission,
    User,
    Village,
    utcnow,
)
from clms.scope import village_ids_in_scope
from forms.parse import FOLLOWUP_ENTITY_PROPERTIES, EntityBlock

#: the entity list of the cases (its file is cases.csv; ODK names a list's file <list>.csv)
DATASET = "cases"
#: the properties the server writes into the list, from the case (after ``name,label,__version``)
CASE_PROPERTIES = ("case_number", "first_name", "village")
#: the properties a follow-up saves on the phone (the form's save_to column)
PHONE_PROPERTIES = tuple(FOLLOWUP_ENTITY_PROPERTIES)
HEADER = ["name", "label", "__version", *CASE_PROPERTIES, *PHONE_PROPERTIES]


def listed_cases(village_ids: Iterable[int], monitor_id: int) -> Select:
    """The cases a monitor follows up on the phone: the open cases of their villages that are
    theirs or nobody's yet, by case number; rows of (id, case number, child's name, village
    code)."""
    return (
        select(Case.id, Case.case_number, Child.name, Village.code)
        .join(Child, Child.id == Case.child_id)
        .join(Village, Village.id == Case.village_id)
        .where(
            Case.village_id.in_(sorted(village_ids)),
            Case.state.in_(OPEN_CASE_STATES),
            # the monitor's own cases, and those of their villages nobody follows yet
            or_(Case.monitor_id == monitor_id, Case.monitor_id.is_(None)),
        )
        .order_by(Case.case_number)
    )


def first_name(child_name: str | None) -> str:
    """The child's first name, all a phone's list shows of it."""
    return child_name.split()[0] if child_name and child_name.split() else ""


def case_label(number: str, child_name: str | None) -> str:
    """What the monitor reads in the list: the case number and the child's first name."""
    return f"{number} {first_name(child_name)}".strip()


def entity_list(session: Session, user: User) -> list[list[str]]:
    """The rows of the entity list ``cases`` for ``user`` (header :data:`HEADER`), giving an
    entity to each listed case that has none yet (flushes)."""
    rows = session.execute(listed_cases(village_ids_in_scope(session, user), user.id)).all()
    entities = ensure_entities(session, [r.id for r in rows])
    out = []
    for case_id, number, child_name, village_code in rows:
        e = entities[case_id]
        props = e.properties or {}
        out.append([
            e.uuid, case_label(number, child_name), str(e.version),
            number, first_name(child_name), village_code,
            *(str(props.get(p, "")) for p in PHONE_PROPERTIES),
        ])  # fmt: skip
    return out


def ensure_entities(session: Session, case_ids: Sequence[int]) -> dict[int, CaseEntity]:
    """The entity of each of ``case_ids`` by case id, made (version 1) for those that have none
    yet. Flushes."""
    found: dict[int, CaseEntity] = {}
    for start in range(0, len(case_ids), 500):
        chunk = case_ids[start : start + 500]
        found.update(
            (e.case_id, e)
            for e in session.scalars(select(CaseEntity).where(CaseEntity.case_id.in_(chunk)))
        )
    now = utcnow()
    for case_id in case_ids:
        if case_id not in found:
            e = CaseEntity(
                case_id=case_id, uuid=str(uuidlib.uuid4()), version=1, properties={},
                created_at=now, updated_at=now,
            )  # fmt: skip
            session.add(e)
            session.flush()
            session.add(CaseEntityVersion(entity_id=e.id, version=1, at=now, received={},
                                          properties={}, conflicting=[]))  # fmt: skip
            found[case_id] = e
    session.flush()
    return found


def entity_states(
    session: Session, user: User, ids: Sequence[str] | None
) -> list[tuple[str, bool]]:
    """(uuid, deleted) of the entities asked for (``ids``; None: every entity of ``user``'s
    list), as the integrity URL answers them: an entity no longer in ``user``'s list is deleted
    for them; an id the server never gave is left out (as Central does)."""
    listed = set(
        session.scalars(
            select(CaseEntity.uuid).where(
                CaseEntity.case_id.in_(
                    listed_cases(village_ids_in_scope(session, user), user.id)
                    .with_only_columns(Case.id)
                    .order_by(None)
                )
            )
        )
    )
    if ids is None:
        return [(u, False) for u in sorted(listed)]
    wanted = sorted({i.lower() for i in ids})
    known = set(session.scalars(select(CaseEntity.uuid).where(CaseEntity.uuid.in_(wanted))))
    return [(u, u not in listed) for u in wanted if u in known]


@dataclass
class EntityUpdate:
    """A follow-up's entity block, with the submission it came in."""

    submission_id: int
    submitter: User | None
    received_at: dt.datetime
    block: EntityBlock


@dataclass
class Applied:
    """What :func:`apply_followups` did: the versions made (conflicts among them) and the
    blocks it could not apply, each with why."""

    versions: list[CaseEntityVersion]
    refused: list[tuple[int, str]]

    @property
    def conflicts(self) -> list[CaseEntityVersion]:
        return [v for v in self.versions if v.conflict]


def apply_followups(session: Session, updates: Sequence[EntityUpdate]) -> Applied:
    """Make a version of the case entity for each follow-up's update, in order (flushes).

    A submission already applied is skipped (the intake may run a submission again). An edit of a
    follow-up that already made a version (the same logical submission, a later version of it)
    continues from that version instead of competing with it: a reviewer's correction is not a
    second phone. A block that cannot apply (a problem in it, another list, an entity or version
    the server never gave) is audited as ``case_entity.refused`` with the reason, and changes
    nothing.
    """
    applied = Applied([], [])
    logical = dict(session.execute(
        select(Submission.id, Submission.logical_id)
        .where(Submission.id.in_([u.submission_id for u in updates]))
    ).all())  # fmt: skip
    done = set(
        session.scalars(
            select(CaseEntityVersion.submission_id).where(
                CaseEntityVersion.submission_id.in_([u.submission_id for u in updates])
            )
        )
    )
    for u in updates:
        if u.submission_id in done:
            continue
        try:
            version = _apply(session, u, _made_by_earlier(session, logical.get(u.submission_id)))
        except _Refused as why:
            applied.refused.append((u.submission_id, str(why)))
            audit.record(session, None, "case_entity.refused", f"submission:{u.submission_id}",
                         reason=str(why), entity=u.block.entity_id[:64])  # fmt: skip
            continue
        done.add(u.submission_id)
        applied.versions.append(version)
    return applied


def _made_by_earlier(session: Session, logical_id: str | None) -> dict[int, int]:
    """The latest version each entity got from earlier versions of the logical submission
    ``logical_id`` (entity id -> version)."""
    if logical_id is None:
        return {}
    return dict(session.execute(
        select(CaseEntityVersion.entity_id, func.max(CaseEntityVersion.version))
        .join(Submission, Submission.id == CaseEntityVersion.submission_id)
        .where(Submission.logical_id == logical_id)
        .group_by(CaseEntityVersion.entity_id)
    ).all())  # fmt: skip


class _Refused(Exception):
    """Why an entity block was not applied (in English, for the audit and the logs)."""


def _apply(session: Session, u: EntityUpdate, earlier: dict[int, int]) -> CaseEntityVersion:
    b = u.block
    if b.problem:
        raise _Refused(b.problem)
    if b.dataset != DATASET:
        raise _Refused(f"dataset '{b.dataset[:40]}' is not the list '{DATASET}'")
    if not b.update:
        raise _Refused("a follow-up updates a case; it cannot create one")
    entity = session.scalar(
        select(CaseEntity).where(CaseEntity.uuid == b.entity_id).with_for_update()
    )
    if entity is None:
        raise _Refused(f"no case entity has the id '{b.entity_id}'")
    versions = {
        v.version: v
        for v in session.scalars(
            select(CaseEntityVersion).where(CaseEntityVersion.entity_id == entity.id)
        )
    }
    current = versions[entity.version]
    if b.trunk_version is not None and b.trunk_version > entity.version:
        raise _Refused(f"trunkVersion {b.trunk_version} is newer than the entity's "
                       f"version {entity.version}")  # fmt: skip
    base = _base_version(b, versions)
    if entity.id in earlier:  # an edit: it changes what its first version did
        base = versions[earlier[entity.id]]
    if base is None:
        raise _Refused(f"baseVersion {b.base_version} of entity '{b.entity_id}' is not a version "
                       "the server gave")  # fmt: skip
    received = {k: v for k, v in b.properties.items() if k in PHONE_PROPERTIES}
    kind, conflicting = None, []
    if base.version != current.version:
        # what changed on the server since the phone's version, against what the phone sent
        changed = {k: v for k, v in current.properties.items() if base.properties.get(k) != v}
        conflicting = sorted(k for k in received if k in changed and changed[k] != received[k])
        kind = "hard" if conflicting else "soft"
    elif b.branch_id and _interrupted(versions, b):
        kind = "soft"
    merged = {**current.properties, **received}
    version = CaseEntityVersion(
        entity_id=entity.id,
        version=entity.version + 1,
        base_version=base.version,
        submission_id=u.submission_id,
        submitter_id=u.submitter.id if u.submitter is not None else None,
        at=u.received_at,
        received=received,
        properties=merged,
        branch_id=b.branch_id,
        trunk_version=b.trunk_version,
        branch_base_version=b.base_version if b.branch_id else None,
        conflict=kind,
        conflicting=conflicting,
    )
    session.add(version)
    entity.version = version.version
    entity.properties = merged
    if kind:  # never downgraded: a hard conflict stays hard until resolved
        entity.conflict = "hard" if "hard" in (entity.conflict, kind) else kind
    entity.updated_at = utcnow()
    session.flush()
    if version.conflict:
        audit.record(session, None, "case_entity.conflict", f"case:{_case_number(session, entity)}",
                     conflict=version.conflict, version=version.version,
                     base_version=base.version, properties=conflicting)  # fmt: skip
    return version


def _base_version(b: EntityBlock, versions: dict[int, CaseEntityVersion]):
    """The server version the phone updated (Central's _computeBaseVersion): the base version
    itself, or within an offline branch the version its previous update in the branch made;
    one not yet received is taken as the branch's trunk (the update is applied, not held)."""
    if not b.branch_id or b.base_version in (1, b.trunk_version):
        return versions.get(b.base_version)
    for v in versions.values():
        if v.branch_id == b.branch_id and v.branch_base_version == b.base_version - 1:
            return v
    return versions.get(b.trunk_version) if b.trunk_version else None


def _interrupted(versions: dict[int, CaseEntityVersion], b: EntityBlock) -> bool:
    """Whether another phone's update came in after this offline branch's trunk (Central's
    _interruptedBranch): the branch's later updates then did not see it."""
    return any(
        v.version > (b.trunk_version or 1) and v.branch_id != b.branch_id for v in versions.values()
    )


def _case_number(session: Session, entity: CaseEntity) -> str:
    return session.scalar(select(Case.case_number).where(Case.id == entity.case_id)) or "?"


@dataclass
class ConflictVersion:
    """One update in a conflict, as the officer reads it."""

    version: int
    base_version: int | None
    by: str | None  # the monitor's username; None when unknown
    at: dt.datetime
    received: dict
    differs: list[str]  # properties set to another value than a competing update set
    conflict: str | None


@dataclass
class Conflict:
    """An unresolved conflict on a case entity: the updates made from the same version (the
    first of them, then those that did not see it), with what each phone sent."""

    entity_uuid: str
    kind: str  # soft or hard
    base_version: int
    updates: list[ConflictVersion]


def conflict_of(session: Session, case_id: int) -> Conflict | None:
    """The unresolved conflict of a case's entity, or None."""
    entity = session.scalar(select(CaseEntity).where(CaseEntity.case_id == case_id))
    if entity is None or entity.conflict is None:
        return None
    versions = session.scalars(
        select(CaseEntityVersion)
        .where(CaseEntityVersion.entity_id == entity.id)
        .order_by(CaseEntityVersion.version)
    ).all()
    open_ = [v for v in versions if v.conflict and v.resolved_at is None]
    if not open_:
        return None
    base = min(v.base_version for v in open_ if v.base_version is not None)
    shown = [v for v in versions if v.version > base and v.submission_id is not None]
    users = dict(session.execute(select(User.id, User.username).where(
        User.id.in_({v.submitter_id for v in shown if v.submitter_id}))).all())  # fmt: skip
    updates = []
    for v in shown:
        others = [o for o in shown if o is not v]
        differs = sorted(
            k for k, value in v.received.items()
            if any(k in o.received and o.received[k] != value for o in others)
        )  # fmt: skip
        updates.append(ConflictVersion(v.version, v.base_version, users.get(v.submitter_id),
                                       v.at, dict(v.received), differs, v.conflict))  # fmt: skip
    return Conflict(entity.uuid, entity.conflict, base, updates)


def resolve_conflict(
    session: Session,
    user: User,
    case_id: int,
    note: str | None,
    *,
    policy: wf.Policy | None = None,
) -> CaseEntity:
    """Mark the conflict on the case's entity resolved by ``user`` (who may write on the case,
    as for a note; the workflow's settings ``policy``), with ``note``, what the officer found or
    did; audited. The entity keeps its current version: phones get it at their next download.
    Flushes."""
    case = case_in_scope(session, user, case_id)
    check_move(session, case, "note", user, policy=policy)
    actor = user
    errors: dict = {}
    note = _text(errors, "note", note, required=True)
    if errors:
        raise field_errors(errors)
    entity = session.scalar(
        select(CaseEntity).where(CaseEntity.case_id == case.id).with_for_update()
    )
    if entity is None or entity.conflict is None:
        raise problem("case.entity_no_conflict", case_number=case.case_number)
    now = utcnow()
    resolved = []
    for v in session.scalars(
        select(CaseEntityVersion).where(
            CaseEntityVersion.entity_id == entity.id,
            CaseEntityVersion.conflict.is_not(None),
            CaseEntityVersion.resolved_at.is_(None),
        )
    ):
        v.resolved_at, v.resolved_by_id, v.resolution_note = now, actor.id, note
        resolved.append(v.version)
    kind, entity.conflict, entity.updated_at = entity.conflict, None, now
    session.flush()
    # the note is personal data (it may name the child): kept with the versions, where an erasure
    # finds it (clms.dataprotection), never in the audit log, which is kept for ever
    audit.record(session, actor, "case_entity.conflict_resolved", f"case:{case.case_number}",
                 conflict=kind, versions=sorted(resolved))  # fmt: skip
    return entity


def followup_updates(items: Iterable) -> list[EntityUpdate]:
    """The entity updates of a batch's follow-ups (``forms.store.Item``s: submission id, record,
    submitter, time of arrival), current versions only, in order."""
    return [
        EntityUpdate(i.submission_id, i.submitter, i.received_at, i.record.entity)
        for i in items
        if getattr(i.record, "kind", None) == "followup"
        and i.record.entity is not None
        and getattr(i, "current", True)
    ]
