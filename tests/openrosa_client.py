"""Speaking OpenRosa to the app in tests, as ODK Collect does: Digest challenge and response."""

from __future__ import annotations

import hashlib
import io
import os
import re

OPENROSA = {"X-OpenRosa-Version": "1.0"}


def digest_authorization(
    challenge: str, method: str, uri: str, username: str, password: str, count: int = 1
) -> str:
    """The ``Authorization`` header answering a Digest ``WWW-Authenticate`` challenge (qop=auth),
    as the ``count``-th request on its nonce (the server takes each count once)."""
    params = dict(re.findall(r'(\w+)="?([^",]*)"?', challenge))
    realm, nonce = params["realm"], params["nonce"]
    ha1 = hashlib.md5(f"{username}:{realm}:{password}".encode()).hexdigest()
    ha2 = hashlib.md5(f"{method}:{uri}".encode()).hexdigest()
    nc, cnonce = f"{count:08x}", os.urandom(8).hex()
    response = hashlib.md5(f"{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}".encode()).hexdigest()
    return (
        f'Digest username="{username}", realm="{realm}", nonce="{nonce}", uri="{uri}", '
        f'qop=auth, nc={nc}, cnonce="{cnonce}", response="{response}", '
        f'opaque="{params.get("opaque", "")}", algorithm=MD5'
    )


class Phone:
    """A Flask test client that signs in with Digest like Collect: ask, get 401, answer."""

    def __init__(self, client, username: str, password: str, prefix: str = ""):
        self.client = client
        self.username = username
        self.password = password
        self.prefix = prefix

    def request(self, method: str, path: str, **kwargs):
        path = self.prefix + path
        headers = {**OPENROSA, **kwargs.pop("headers", {})}
        first = self.client.open(path, method=method, headers=headers, **_rewind(kwargs))
        if first.status_code != 401 or "WWW-Authenticate" not in first.headers:
            return first
        uri = path
        headers["Authorization"] = digest_authorization(
            first.headers["WWW-Authenticate"], method, uri, self.username, self.password
        )
        return self.client.open(path, method=method, headers=headers, **_rewind(kwargs))

    def get(self, path: str, **kw):
        return self.request("GET", path, **kw)

    def head(self, path: str, **kw):
        return self.request("HEAD", path, **kw)

    def submit(self, xml: bytes, attachments: dict[str, bytes] | None = None, **kw):
        """POST /submission as multipart/form-data, like Collect."""
        data = {"xml_submission_file": (io.BytesIO(xml), "submission.xml", "text/xml")}
        for name, content in (attachments or {}).items():
            data[name] = (io.BytesIO(content), name, "application/octet-stream")
        return self.request(
            "POST", "/submission", data=data, content_type="multipart/form-data", **kw
        )


def _rewind(kwargs: dict) -> dict:
    """Fresh file objects for each try (the first, unauthenticated try reads them)."""
    data = kwargs.get("data")
    if isinstance(data, dict):
        fresh = {}
        for key, value in data.items():
            if isinstance(value, tuple) and hasattr(value[0], "getvalue"):
                fresh[key] = (io.BytesIO(value[0].getvalue()), *value[1:])
            else:
                fresh[key] = value
        kwargs = {**kwargs, "data": fresh}
    return kwargs
