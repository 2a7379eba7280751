"""The catalogue of errors a person or a phone can get back.

Each problem has a stable code (``status.sub``, as ODK Central numbers them), an HTTP status and a
message a person understands. The same :class:`Problem` renders as JSON for the API, as an OpenRosa
``<OpenRosaResponse>`` for phones and as an HTML page for the web: views raise, never format.
A refusal that code catches by name (a place file refused, a user change refused, ...) is a
:class:`DomainProblem`: a class of its own holding its catalogue key.

>>> p = problem("submission.instance_id_missing")
>>> (p.code, p.status)
('400.3', 400)

Each code is given once, and begins with its status:

>>> codes = [code for code, _status, _message in CATALOGUE.values()]
>>> len(codes) == len(set(codes))
True
>>> all(code.startswith(f"{status}.") for code, status, _ in CATALOGUE.values())
True
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar
from xml.sax.saxutils import escape

from clms.i18n import N_, Msg

CATALOGUE: dict[str, tuple[str, int, str]] = {
    # key: (code, HTTP status, message template)
    # a web form without the session's token, or sent from another site (clms.security)
    "request.csrf": (
        "400.90",
        400,
        N_("The form expired or did not come from this site; reload and try again."),
    ),
    # an encrypted submission (forms.encryption), for OpenRosa, the API and the web alike
    "submission.encrypted_no_key": (
        "400.21",
        400,
        "Form '{form_id}' is not encrypted on this server, so its encrypted submissions cannot be "
        "accepted. Get the current form on the phone and fill it again, or ask the administrator.",
    ),
    "submission.encrypted_invalid": (
        "400.22",
        400,
        "The encrypted submission cannot be used: {detail}",
    ),
    "request.openrosa_version": (
        "400.1",
        400,
        "This server speaks OpenRosa 1.0; the request's X-OpenRosa-Version header was {got!r}.",
    ),
    "request.malformed_xml": ("400.2", 400, "The submitted XML could not be read: {detail}."),
    "submission.instance_id_missing": (
        "400.3",
        400,
        "The submission has no instanceID (expected meta/instanceID or instanceID under the root).",
    ),
    "submission.file_missing": (
        "400.4",
        400,
        "The request has no xml_submission_file part; send the form data as multipart/form-data.",
    ),
    "request.hostile_xml": (
        "400.5",
        400,
        "The XML declares a DTD or entities ({detail}); ODK submissions never do, so it was "
        "refused.",
    ),
    "submission.form_version_unknown": (
        "400.6",
        400,
        "Form '{form_id}' has no version '{version}'. Known versions: {known}. "
        "Get the current form on the phone and fill it again.",
    ),
    "request.bad_attachment_name": (
        "400.7",
        400,
        "Attachment name {name!r} is not a plain file name (no folders, '..', control "
        "characters, and at most 255 characters); nothing was stored.",
    ),
    "request.invalid_json": ("400.8", 400, "The request body must be JSON: {detail}."),
    "request.missing_field": ("400.9", 400, N_("Field '{field}' is required.")),
    "form.invalid": ("400.10", 400, "{detail}"),
    "form.version_not_increasing": (
        "400.11",
        400,
        "Form '{form_id}' version '{version}' does not increase on the live version '{live}'; "
        "set a higher version in the settings sheet.",
    ),
    "request.invalid_parameter": ("400.12", 400, N_("Parameter '{parameter}' {detail}.")),
    "request.invalid_field": ("400.13", 400, N_("Field '{field}' {detail}.")),
    # a brand asked for figures of a period that is not one of the reporting grid's (geo.periods)
    "hotspots.period_not_offered": (
        "400.30",
        400,
        N_(
            "Brands see fixed reporting periods of {months} months, each published {grace} days "
            "after it ends. Ask with months={months} and end set to the last day of one of them: "
            "{ends}."
        ),
    ),
    "request.invalid_fields": (
        "400.14",
        400,
        N_("Some answers need attention: {summary}."),
    ),
    "auth.required": ("401.1", 401, N_("Sign in to use this.")),
    "auth.failed": ("401.2", 401, N_("Wrong username or password.")),
    "auth.basic_needs_https": (
        "401.3",
        401,
        "Basic authentication is only accepted over https; use Digest or a device token URL.",
    ),
    "auth.forbidden": ("403.1", 403, N_("Your role may not use this.")),
    "auth.bad_device_token": ("403.2", 403, "This device token is not valid (revoked or unknown)."),
    # the same answer for a username that exists and one that does not (clms.auth.limits)
    "auth.locked": (
        "429.1",
        429,
        N_(
            "Too many failed sign-ins for this username: it is locked for {minutes} more "
            "minute(s). Try again later, or ask an administrator to unlock it."
        ),
    ),
    "auth.rate_limited": (
        "429.2",
        429,
        N_("Too many sign-in attempts from your address; wait {seconds} seconds and try again."),
    ),
    # a phone configured the KoboToolbox way, https://<server>/<username> (clms.openrosa.auth)
    "auth.other_users_address": (
        "403.4",
        403,
        "This server address ends with the username '{username}', but you signed in as '{you}'. "
        "In the phone's server settings, end the address with your own username, or leave the "
        "username off.",
    ),
    "openrosa.unknown_user_address": (
        "404.5",
        404,
        "This server address ends with '{username}', which is no user's name here. In the "
        "phone's server settings, end the address with your own username, or leave it off.",
    ),
    "form.not_assigned": ("403.3", 403, "Form '{form_id}' is not one of the forms you may use."),
    "form.not_found": ("404.1", 404, "There is no form '{form_id}' on this server."),
    "submission.deprecated_unknown": (
        "404.2",
        404,
        "This edit replaces submission {deprecated_id}, which this server never received.",
    ),
    "not_found": ("404.3", 404, N_("Nothing here.")),
    # what the router refuses before any view runs (clms.app's handlers): a page, not Werkzeug's
    "request.method_not_allowed": (
        "405.1",
        405,
        N_(
            "This address is not a page to open: a form's button sends to it. "
            "Go back to the page the form is on and use the button there."
        ),
    ),
    "request.bad": (
        "400.91",
        400,
        N_("The request could not be understood. Go back and try again."),
    ),
    "request.refused": ("400.92", 400, N_("This request was refused ({status}).")),
    "server.error": (
        "500.2",
        500,
        N_(
            "Something went wrong on our side. What you were doing may not have been saved: "
            "check, then try again. If it happens again, tell an administrator."
        ),
    ),
    "submission.conflict": (
        "409.1",
        409,
        "A different submission with instanceID {instance_id} was already received; "
        "an edit must carry a new instanceID and name the old one in deprecatedID.",
    ),
    "submission.deprecated_replaced": (
        "409.2",
        409,
        "Submission {deprecated_id} was already replaced by another edit; edit the newest version.",
    ),
    "form.closed": ("409.3", 409, "Form '{form_id}' is closed and accepts no more submissions."),
    "alert.transition_refused": ("409.4", 409, "{detail}"),
    "case.transition_refused": ("409.5", 409, "{detail}"),
    "case.stale": (
        "409.6",
        409,
        N_("This case changed after you opened it ({detail}); reload the page and try again."),
    ),
    "referral.consent_missing": (
        "409.7",
        409,
        N_(
            "No consent of the child or guardian to share this case with {provider} is recorded. "
            "Record the consent first, or override it with a reason ({who})."
        ),
    ),
    "referral.transition_refused": ("409.8", 409, "{detail}"),
    "case.entity_no_conflict": (
        "409.81",
        409,
        N_("Case {case_number} has no conflict between phones to resolve (someone resolved it "
           "already?); reload the page."),
    ),
    "request.too_large": (
        "413.1",
        413,
        N_(
            "The upload is larger than this server accepts ({limit} bytes). "
            "ODK Collect splits large submissions; other clients must send smaller parts."
        ),
    ),
    "service.unavailable": (
        "503.1",
        503,
        N_(
            "The server cannot store data right now; nothing was saved. "
            "Keep it and send again later."
        ),
    ),
    # -- refusals raised by name (DomainProblem); a "{detail}" message is worded where it is
    # raised, naming the file, row, user or field at fault
    # users and their tokens (clms.auth.users: UserError), on the command line
    "users.refused": ("400.40", 400, "{detail}"),
    # a file of places (geo.countries: PlaceError; geo.boundaries: BoundaryError)
    "places.refused": ("422.1", 422, "{detail}"),
    "places.boundaries_refused": ("422.2", 422, "{detail}"),
    # supply-chain CSV files (clms.supply.csvfiles: ChainImportError); the issues are in details
    "supply.import_refused": (
        "422.3",
        422,
        "Nothing was imported: {count} problem(s) in the files.",
    ),
    # a country profile's values (alerts.rules: ProfileError), field by field
    "profiles.invalid": ("400.41", 400, "{detail}"),
    # a pull source's settings (forms.pull.sources: SourceInvalid), field by field
    "sources.invalid": ("400.42", 400, "{detail}"),
    # one child's subject access export and erasure (clms.dataprotection: DataProtectionError)
    "dataprotection.child_unknown": ("404.4", 404, N_("No child has the id {uid}.")),
    "dataprotection.export_reason_missing": (
        "400.43",
        400,
        N_("Give the reason for the export (the request it answers)."),
    ),
    "dataprotection.erasure_reason_missing": (
        "400.44",
        400,
        N_("Give the reason for the erasure (the lawful request it answers)."),
    ),
    "dataprotection.force_reason_missing": (
        "400.45",
        400,
        N_("Forcing the erasure of a child with an open case needs a reason of its own."),
    ),
    "dataprotection.open_case": (
        "409.9",
        409,
        N_(
            "Child {uid} has an open case ({cases}): erasing it now may harm a child who may "
            "still be in danger, since the case record is how the child is protected. Close "
            "the case first, or force the erasure with a reason."
        ),
    ),
    # backups and restores (clms.backup: BackupError), on the command line
    "backup.refused": ("400.46", 400, "{detail}"),
    # form keys and encrypted submissions (forms.encryption: FormKeyError; forms.crypto:
    # DecryptionError, WrongPassphrase); a form that is not there is form.not_found
    "form.no_live_version": (
        "409.10",
        409,
        "Form '{form_id}' has no live version to encrypt.",
    ),
    "form.key_exists": (
        "409.11",
        409,
        "Form '{form_id}' already has a key (fingerprint {fingerprint}); replace it explicitly "
        "to make a new one.",
    ),
    "form.no_key": ("409.12", 409, "Form '{form_id}' has no key: nothing of it is encrypted."),
    "form.none_encrypted": ("409.13", 409, "No form has a key: nothing is encrypted."),
    "form.wrong_passphrase": ("400.24", 400, "{detail}"),
    "submission.decryption_failed": ("400.23", 400, "{detail}"),
    # building our XLSForm sources (forms.build: BuildError), on the command line
    "form.build_failed": ("400.47", 400, "{detail}"),
    # pulling from ODK Central or KoboToolbox (forms.pull.clients: PullError and its kinds;
    # forms.credentials: CredentialsError), kept as the source's last error
    "pull.failed": ("502.1", 502, "{detail}"),
    "pull.credentials_refused": ("502.2", 502, "{detail}"),
    "pull.remote_not_found": ("502.3", 502, "{detail}"),
    "pull.credentials_unreadable": ("500.1", 500, "{detail}"),
    # the review of submissions held for review (forms.decisions: ReviewError)
    "review.not_held": (
        "409.60",
        409,
        N_("This submission no longer waits for a decision: someone decided on it or corrected "
           "it meanwhile. Nothing was changed; here is where it stands now."),
    ),
    "review.not_allowed": (
        "403.60",
        403,
        N_("Only an officer or a supervisor of the submission's villages decides on it."),
    ),
    "review.reason_required": ("400.60", 400, N_("Say why: a reason is required for {action}.")),
    "review.not_acceptable": (
        "400.61",
        400,
        N_("This submission cannot be accepted as it is: accepting would keep a wrong or missing "
           "answer ({reasons}). Correct the answer or reject the submission."),
    ),
    "review.unknown_answer": (
        "400.62",
        400,
        N_("The submission has no answer “{path}” that can be corrected."),
    ),
    "review.invalid_value": ("400.63", 400, N_("“{value}” cannot be the answer to “{question}”: "
                                               "{detail}.")),
    "review.same_value": (
        "400.64",
        400,
        N_("The new answer is the same as the one received; nothing was changed."),
    ),
}


@dataclass
class Problem(Exception):
    """An error from the catalogue, raised by operations and views and rendered at the boundary."""

    key: str
    code: str
    status: int
    message: str
    details: dict = field(default_factory=dict)
    headers: dict = field(default_factory=dict)
    # the message waiting for translation (web pages show it in the reader's language), and for a
    # form, what is wrong with each field
    msg: Msg | None = None
    fields: dict[str, Msg | str] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.code} {self.message}"

    def to_json(self) -> dict:
        """The JSON body of an API error."""
        body = {"code": self.code, "error": self.key, "message": self.message}
        if self.details:
            body["details"] = self.details
        return body

    def to_openrosa(self) -> str:
        """The OpenRosa response envelope ODK Collect shows to the monitor."""
        return openrosa_message(self.message, nature="error")


def problem(key: str, headers: dict | None = None, **details) -> Problem:
    """Build the catalogue's problem ``key`` with ``details`` filled into its message."""
    return Problem(**_filled(key, headers, details))


def _filled(key: str, headers: dict | None, details: dict) -> dict:
    """The fields of the catalogue's problem ``key`` with ``details`` filled in."""
    code, status, template = CATALOGUE[key]
    msg = Msg(template, **details)
    return dict(
        key=key,
        code=code,
        status=status,
        message=str(msg),
        details={
            k: str(v) if isinstance(v, Msg) else v
            for k, v in details.items()
            if isinstance(v, str | int | float | list | dict | Msg)
        },
        headers=headers or {},
        msg=msg,
    )


class DomainProblem(Problem):
    """A problem of the catalogue that code raises and catches by a name of its own
    (:class:`geo.countries.PlaceError`, :class:`clms.auth.users.UserError`, ...): each such class
    names its catalogue key in ``KEY``, and is rendered like any other problem.

    ``Cls(text)`` fills the key's ``{detail}`` with ``text``; ``key=`` picks another key of the
    class and the other keywords are the details (``FormKeyError(key="form.no_key",
    form_id=...)``). ``str()`` is the message alone, as the command line and the logs show it.

    >>> class Refused(DomainProblem):
    ...     KEY = "form.invalid"
    >>> e = Refused("The settings sheet has no form_id.")
    >>> (e.key, e.code, e.status, str(e))
    ('form.invalid', '400.10', 400, 'The settings sheet has no form_id.')
    >>> isinstance(e, Problem)
    True
    """

    KEY: ClassVar[str] = ""

    def __init__(
        self, detail: str | Msg | None = None, /, *, key: str | None = None,
        headers: dict | None = None, **details,
    ):  # fmt: skip
        if detail is not None:
            details["detail"] = detail
        Problem.__init__(self, **_filled(key or self.KEY, headers, details))

    def __str__(self) -> str:
        return self.message


def field_errors(errors: dict[str, str | Msg]) -> Problem:
    """One problem for a form with several answers wrong: ``details["fields"]`` maps each field
    to what is wrong with it, so a page can show every message next to its field at once
    (``Problem.fields`` keeps them translatable).

    >>> p = field_errors({"risk_level": "is required", "child_views": Msg("is required")})
    >>> p.message
    "Some answers need attention: 'risk_level' is required; 'child_views' is required."
    >>> p.details["fields"]
    {'risk_level': 'is required', 'child_views': 'is required'}
    """
    summary = "; ".join(f"'{name}' {message}" for name, message in errors.items())
    p = problem(
        "request.invalid_fields",
        summary=summary,
        fields={name: str(message) for name, message in errors.items()},
    )
    p.fields = {
        name: message if isinstance(message, Msg) else Msg(message)
        for name, message in errors.items()
    }
    return p


def openrosa_message(text: str, nature: str = "") -> str:
    """An ``<OpenRosaResponse>`` carrying one message."""
    return (
        '<OpenRosaResponse xmlns="http://openrosa.org/http/response" items="0">'
        f'<message nature="{escape(nature)}">{escape(text)}</message></OpenRosaResponse>'
    )
