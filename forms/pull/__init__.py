"""Pulling submissions from ODK Central and KoboToolbox, and the pull sources admins manage.

Monitors may fill our forms on an ODK Central project or a KoboToolbox asset instead of sending them
here; a pull source (:mod:`forms.pull.sources`) names that form and the account that may read it. A
pull (:mod:`forms.pull.run`, run by ``clms.intake.pull``) fetches what is new since the source's
cursor (:mod:`forms.pull.clients`) and stores each submission with the one ingest operation
(:func:`forms.ingest.ingest_submission`), so a submission that arrives both ways, pushed by a phone
over OpenRosa and pulled, is stored once: a byte-identical copy is recognised as a retry.

How the servers answer (shared/design/protocols.md; ODK Central's lib/resources/odata.js and
lib/util/db.js, KoboToolbox's kpi/views/v2/data.py and kpi/paginators.py):

* ODK Central: ``POST /v1/sessions`` gives a bearer token. The OData feed
  ``/v1/projects/{pid}/forms/{xmlFormId}.svc/Submissions`` lists submissions newest first and pages
  with ``@odata.nextLink`` (a ``$skiptoken`` naming the last instanceID seen). It cannot combine
  ``$orderby`` with ``$skiptoken`` (501.1), so we follow the default order to the end, keeping only
  ``__id`` and ``__system`` (``$select``), and sort oldest first ourselves. Each submission's XML
  comes byte for byte from ``.../submissions/{instanceId}.xml`` and its files from
  ``.../attachments``. Errors are JSON ``{"code": 401.2, "message": ...}``.
* KoboToolbox: ``GET /api/v2/assets/{uid}/data/?format=json`` with ``Authorization: Token``, a Mongo
  ``query`` and ``sort``, paged by ``start``/``limit`` with ``next`` links (servers cap ``limit``:
  always follow ``next``). ``.../data/{_id}/?format=xml`` gives the XML, with an XML declaration
  prepended when the stored one had none. Errors are JSON ``{"detail": ...}``.

The cursor is the submission time of the newest submission stored, exactly as the server wrote it
(Central: ``2024-01-31T23:59:59.999Z``, Kobo: ``2024-01-31T23:59:59``). The next pull asks for
submissions at *or after* it: Central keeps microseconds but shows milliseconds and Kobo shows
seconds, so several submissions may share the cursor's time, and asking for those strictly after it
could skip one. Seeing the newest one again is harmless, because ingest recognises it. Each
submission is committed with the cursor that covers it, so a pull killed midway resumes where it
stopped, with no gap and no duplicate. The submissions pulled are stored as received; the
processing job parses them as it does pushed ones.

A submission of an encrypted form arrives as ODK Collect sent it when the remote server does not
hold the form's private key (ours never leaves this server): Central's ``.xml`` is the encryption
manifest and its attachments are the ``*.enc`` files. The one ingest stores it as it stores a
pushed one, waiting for the key (:mod:`forms.encryption`).

Transient failures (connection errors, 429, 5xx) are retried a few times with exponential backoff,
honouring ``Retry-After``; refused credentials (401/403) stop the source at once. A submission the
pull cannot take (the ingest refuses it, or the server lost it between listing and fetching) waits
on the source's retry list (``pull_retries``) with its reason, shown to admins; the cursor moves on,
and every pull tries it again until it is stored.

Every pull reads again ``PULL_LOOKBACK_MINUTES`` (15) behind its cursors: Central writes
attachments after ``createdAt`` and Kobo back-dates ``_submission_time``, so a submission may
become visible after a newer one. Cursors only move forward.

ODK Central changes submissions after they arrive (central-backend lib/resources/submissions.js,
lib/data/odata-filter.js): an edit adds a version (``.xml`` is the current one, ``/versions``
lists all) and, like a review decision, sets ``updatedAt``; a deletion sets only ``deletedAt``
and hides the submission from OData unless the filter names ``__system/deletedAt``; a restore
clears it and sets no time. A second cursor (``changes_cursor``) follows ``updatedAt`` and
``deletedAt``; the versions we lack are stored oldest first, the logical submission (its root,
Central's rootId) is withdrawn when deleted or rejected there and counted again when restored
(``clms.intake.pull.apply_remote_state``). One Central session serves a whole run and is ended
(``DELETE /v1/sessions/current``) when it ends.

Credentials are decrypted only to be sent to the server they belong to; they never appear in logs,
errors or results (:mod:`forms.credentials`).
"""
