"""Decrypting the submissions that wait for their form's key, then processing them.

The steps are :mod:`forms.encryption`'s (unlock the keys, list what waits, decrypt one); this
module runs them with their transactions: the unlocking (and the audit entry of a refused
attempt) in one, each submission in its own (one that fails is reported and stays waiting, the
others go on), the audit entry of the run in one, and then the processing job
(:func:`clms.intake.process.process_received`) exactly as for plaintext submissions.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.orm import Session

from clms.audit import record
from clms.intake.process import process_received
from clms.models import User
from forms import crypto
from forms.encryption import DecryptResult, decrypt_one, unlock_keys, waiting_submissions


def decrypt_pending(
    sessions: Callable[[], Session],
    passphrase: str,
    xml_form_id: str | None = None,
    actor: User | str | None = None,
    progress: Callable[[int, int], None] | None = None,
    process: bool = True,
) -> DecryptResult:
    """Decrypt the waiting submissions of ``xml_form_id`` (every encrypted form when None) with
    the keys ``passphrase`` unlocks, then process them like plaintext submissions.

    Each submission is decrypted in its own transaction; one that fails is reported (instanceID
    and reason) and stays waiting, the others go on. Running it again does nothing more.
    ``progress(done, total)`` is called after each submission. The run is audited (never the
    passphrase). A web request passes its user detached (``clms.audit._Actor``) and ends its own
    transaction first: on SQLite it would hold the write lock these sessions need. Raises
    :class:`forms.crypto.WrongPassphrase` when the passphrase opens none of the keys (nothing
    changes then), and :class:`forms.encryption.FormKeyError` for a form without a key.
    """
    result = DecryptResult()
    with sessions() as session:
        keys = unlock_keys(session, passphrase, xml_form_id, actor, result)
        session.commit()  # the audit entry of a refused attempt, if any
    if keys is None:
        raise crypto.WrongPassphrase(
            "The passphrase does not unlock the key of "
            + (f"form '{xml_form_id}'" if xml_form_id else "any encrypted form")
            + "; nothing was decrypted."
        )
    with sessions() as session:
        todo = waiting_submissions(session, list(keys))
    actor_id = getattr(actor, "id", None)  # a User, or clms.audit's detached copy of one
    for done, (submission_id, form_id) in enumerate(todo, start=1):
        with sessions() as session:
            decrypt_one(session, submission_id, keys[form_id], actor_id, result)
            session.commit()
        if progress is not None:
            progress(done, len(todo))
    with sessions() as session:
        record(
            session,
            actor,
            "form.decrypt",
            target=f"form:{xml_form_id}" if xml_form_id else None,
            forms=result.forms,
            decrypted=result.decrypted,
            failed=[instance_id for instance_id, _ in result.failed],
        )
        session.commit()
    if process and result.decrypted:
        processed = process_received(sessions)
        result.parsed, result.review = processed.parsed, processed.review + processed.failed
    return result
