"""Encrypting the credentials of pull sources (ODK Central email and password, Kobo API token).

They are kept in ``PullSource.credentials`` as a Fernet token (AES-128-CBC with an HMAC-SHA256,
from ``cryptography``) under a key derived with HKDF-SHA256 from the ``CREDENTIALS_KEY`` setting:
a stolen database alone does not give working passwords. Decrypted credentials are a
:class:`Credentials` mapping whose ``repr`` and ``str`` hide the values, so a log line, a traceback
or an error message that shows one never shows a secret.

>>> key = "00" * 32
>>> token = encrypt_credentials({"token": "s3cret"}, key)
>>> b"s3cret" in token
False
>>> creds = decrypt_credentials(token, key)
>>> creds["token"], repr(creds)
('s3cret', "Credentials(token='***')")
"""

from __future__ import annotations

import base64
import json

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from clms.errors import DomainProblem

# Changing it invalidates every stored credential, like changing the key itself.
_HKDF_INFO = b"clms pull-source credentials v1"


class CredentialsError(DomainProblem):
    """Stored credentials cannot be read with the configured key (the message says what to do;
    ``pull.credentials_unreadable``)."""

    KEY = "pull.credentials_unreadable"


class Credentials(dict):
    """A dict of secrets whose ``repr`` and ``str`` show the keys only."""

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}='***'" for k in self)
        return f"Credentials({inner})"

    __str__ = __repr__


def encrypt_credentials(credentials: dict[str, str], key: str) -> bytes:
    """Encrypt ``credentials`` (a flat dict of strings) under the setting ``key``."""
    plaintext = json.dumps(dict(credentials), sort_keys=True).encode()
    return _fernet(key).encrypt(plaintext)


def decrypt_credentials(token: bytes, key: str) -> Credentials:
    """The credentials encrypted in ``token``; :class:`CredentialsError` if ``key`` does not fit."""
    try:
        plaintext = _fernet(key).decrypt(bytes(token))
    except InvalidToken:
        # from None: the cause carries nothing useful, and nothing of the token belongs in logs
        raise CredentialsError(
            "credentials cannot be decrypted: was CLMS_CREDENTIALS_KEY changed? Restore the old "
            "key (or the instance folder's credentials_key file), or enter the credentials again."
        ) from None
    return Credentials(json.loads(plaintext))


def _fernet(key: str) -> Fernet:
    if not key:
        raise CredentialsError("CREDENTIALS_KEY is not set: cannot encrypt or decrypt credentials.")
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO).derive(
        str(key).encode()
    )
    return Fernet(base64.urlsafe_b64encode(derived))
