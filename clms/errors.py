"""The catalogue of errors a person or a phone can get back.

Each problem has a stable code (``status.sub``, as ODK Central numbers them), an HTTP status and a
message a person understands. The same :class:`Problem` renders as JSON for the API, as an OpenRosa
``<OpenRosaResponse>`` for phones and as an HTML page for the web: views raise, never format.

>>> p = problem("submission.instance_id_missing")
>>> (p.code, p.status)
('400.3', 400)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from xml.sax.saxutils import escape

CATALOGUE: dict[str, tuple[str, int, str]] = {
    # key: (code, HTTP status, message template)
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
        "Attachment name {name!r} is not a plain file name.",
    ),
    "request.invalid_json": ("400.8", 400, "The request body must be JSON: {detail}."),
    "request.missing_field": ("400.9", 400, "Field '{field}' is required."),
    "form.invalid": ("400.10", 400, "{detail}"),
    "form.version_not_increasing": (
        "400.11",
        400,
        "Form '{form_id}' version '{version}' does not increase on the live version '{live}'; "
        "set a higher version in the settings sheet.",
    ),
    "auth.required": ("401.1", 401, "Sign in to use this."),
    "auth.failed": ("401.2", 401, "Wrong username or password."),
    "auth.basic_needs_https": (
        "401.3",
        401,
        "Basic authentication is only accepted over https; use Digest or a device token URL.",
    ),
    "auth.forbidden": ("403.1", 403, "Your role may not use this."),
    "auth.bad_device_token": ("403.2", 403, "This device token is not valid (revoked or unknown)."),
    "form.not_assigned": ("403.3", 403, "Form '{form_id}' is not one of the forms you may use."),
    "form.not_found": ("404.1", 404, "There is no form '{form_id}' on this server."),
    "submission.deprecated_unknown": (
        "404.2",
        404,
        "This edit replaces submission {deprecated_id}, which this server never received.",
    ),
    "not_found": ("404.3", 404, "Nothing here."),
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
    "request.too_large": (
        "413.1",
        413,
        "The upload is larger than this server accepts ({limit} bytes). "
        "ODK Collect splits large submissions; other clients must send smaller parts.",
    ),
    "service.unavailable": (
        "503.1",
        503,
        "The server cannot store data right now; nothing was saved. Keep it and send again later.",
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
    code, status, template = CATALOGUE[key]
    return Problem(
        key=key,
        code=code,
        status=status,
        message=template.format(**details),
        details={k: v for k, v in details.items() if isinstance(v, str | int | float | list)},
        headers=headers or {},
    )


def openrosa_message(text: str, nature: str = "") -> str:
    """An ``<OpenRosaResponse>`` carrying one message."""
    return (
        '<OpenRosaResponse xmlns="http://openrosa.org/http/response" items="0">'
        f'<message nature="{escape(nature)}">{escape(text)}</message></OpenRosaResponse>'
    )
