"""ODK form encryption: per-form key pairs and decrypting what the phones encrypted.

A form published with ``base64RsaPublicKey`` on its ``<submission>`` element makes ODK Collect
encrypt every finalised submission on the phone, so that nothing in between (a third-party server,
a lost phone's storage) can read it. What arrives is a *manifest* (``<data encrypted="yes" ...>``)
and the encrypted files (``*.enc``). This module is pure: it builds and reads keys, reads manifests
and decrypts; storing is :mod:`forms.encryption`'s work.

The scheme (shared/design/protocols.md, "ODK form encryption"; ODK Collect's EncryptionUtils):

* A random 256-bit AES key per submission, encrypted with the form's RSA public key using OAEP
  with SHA-256 and MGF1-SHA-256 (``base64EncryptedKey``).
* Each file is AES-256-CFB (128-bit feedback) with PKCS#7 padding. The IV comes from a seed,
  md5(instanceID + AES key); before file n (0, 1, ...) byte ``n % 16`` of the seed is incremented,
  so the first file already uses a changed seed. Media files come first, ``submission.xml`` last.
* ``base64EncryptedElementSignature`` is the RSA-OAEP encryption of the md5 of
  ``formId\\n[version\\n]base64Key\\ninstanceID\\n`` followed by ``name::md5hex\\n`` of each
  plaintext file in encryption order: it proves that the files are the ones the phone encrypted.

The private key never exists in clear outside memory: it is kept as PKCS#8 PEM encrypted with the
operator's passphrase, which we never store.

>>> iv = file_iv("uuid:22525f8e-4f2d-41ed-94da-4c46a2478448",
...              base64.b64decode("3TJoHf74zHbDwG3Ta+bcvfUr50C6yF/astfu+CdSnQU="), 1)
>>> iv.hex()
'39bcb0890f3222269da68b172146477a'
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass, field

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.decrepit.ciphers.modes import CFB
from cryptography.hazmat.primitives import hashes, padding, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.padding import MGF1, OAEP
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms
from lxml import etree

from clms.errors import DomainProblem, Problem
from forms.xmlsafe import child, instance_ids, local, parse_xml

#: RSA key size for new keys (ODK Collect takes any size; 3072 bits lasts well beyond 2030)
RSA_BITS = 3072
#: the shortest passphrase accepted for a new key
MIN_PASSPHRASE_LENGTH = 12
AES_KEY_BYTES = 32
ENC_SUFFIX = ".enc"


class DecryptionError(DomainProblem):
    """A submission cannot be decrypted; the message says what is wrong, for a person
    (``submission.decryption_failed``)."""

    KEY = "submission.decryption_failed"


class WrongPassphrase(DecryptionError):  # noqa: N818 - the name says what happened
    """The passphrase does not unlock the private key (``form.wrong_passphrase``)."""

    KEY = "form.wrong_passphrase"


@dataclass(frozen=True)
class KeyPair:
    """A new key pair: the public key as ODK wants it, the private key encrypted (PEM)."""

    public_key: str  # base64 of the DER SubjectPublicKeyInfo: the XForm's base64RsaPublicKey
    private_key_pem: bytes  # PKCS#8, encrypted with the passphrase
    fingerprint: str  # sha256 of the DER public key, hex


@dataclass
class Manifest:
    """What an encrypted submission's manifest says."""

    form_id: str
    version: str | None  # None when the manifest carries no version attribute
    instance_id: str
    base64_key: str  # exactly as written: the signature covers this text
    encrypted_key: bytes
    media: list[str] = field(default_factory=list)  # the .enc media file names, in order
    xml_file: str = ""  # the encrypted submission file's name (submission.xml.enc)
    signature: bytes | None = None

    @property
    def files(self) -> list[str]:
        """Every encrypted file, in encryption order (media first, the XML last)."""
        return [*self.media, self.xml_file]


@dataclass
class Decrypted:
    """A decrypted submission: its XML and its media files by their plaintext names."""

    xml: bytes
    media: list[tuple[str, bytes]]
    key_index: int  # which of the keys given opened it


# --- keys -----------------------------------------------------------------------------------------


def check_passphrase(passphrase: str) -> None:
    """Refuse a passphrase too short to protect a key that opens children's data."""
    if len(passphrase or "") < MIN_PASSPHRASE_LENGTH:
        raise ValueError(f"The passphrase needs at least {MIN_PASSPHRASE_LENGTH} characters.")


def generate_key_pair(passphrase: str, bits: int = RSA_BITS) -> KeyPair:
    """A new RSA key pair whose private key only ``passphrase`` unlocks.

    >>> pair = generate_key_pair("a long enough passphrase", bits=2048)
    >>> pair.private_key_pem.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    True
    """
    check_passphrase(passphrase)
    if bits < 2048:
        raise ValueError("RSA keys shorter than 2048 bits are refused.")
    private = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(passphrase.encode("utf-8")),
    )
    public = public_key_base64(private.public_key())
    return KeyPair(public_key=public, private_key_pem=pem, fingerprint=fingerprint(public))


def public_key_base64(public_key: rsa.RSAPublicKey) -> str:
    """The public key as ODK's ``base64RsaPublicKey``: base64 of DER SubjectPublicKeyInfo."""
    der = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(der).decode("ascii")


def fingerprint(public_key_b64: str) -> str:
    """The sha256 of the DER public key, hex: how a person tells two keys apart."""
    return hashlib.sha256(base64.b64decode(public_key_b64)).hexdigest()


def unlock_private_key(pem: bytes, passphrase: str | None) -> rsa.RSAPrivateKey:
    """Load an (encrypted) PEM private key; :class:`WrongPassphrase` if it does not open."""
    secret = passphrase.encode("utf-8") if passphrase else None
    try:
        key = serialization.load_pem_private_key(pem, password=secret)
    except TypeError as e:  # a passphrase for a clear key, or none for an encrypted one
        if secret is None:
            raise WrongPassphrase("This private key needs its passphrase.") from e
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, UnsupportedAlgorithm) as e:
        raise WrongPassphrase(
            "The passphrase does not unlock the form's private key (or the key is damaged)."
        ) from e
    if not isinstance(key, rsa.RSAPrivateKey):
        raise DecryptionError("The private key is not an RSA key.")
    return key


# --- manifests ------------------------------------------------------------------------------------


def is_encrypted(root: etree._Element) -> bool:
    """Whether a parsed submission is an encryption manifest (``encrypted="yes"`` on the root)."""
    for name, value in root.attrib.items():
        if local(name) == "encrypted" and value.strip().lower() in ("yes", "true"):
            return True
    return False


def parse_manifest(root: etree._Element) -> Manifest:
    """Read an encryption manifest (already parsed by :func:`forms.xmlsafe.parse_xml`).

    Elements are matched by local name: the namespace differs between Collect versions.
    Raises :class:`DecryptionError` naming the missing or broken part.
    """
    form_id = (root.get("id") or "").strip()
    if not form_id:
        raise DecryptionError("The encrypted submission's root element has no id (the form id).")
    version = root.get("version")
    instance_id, _ = instance_ids(root)
    if instance_id is None:
        raise DecryptionError("The encrypted submission has no meta/instanceID.")
    key_text = _text(child(root, "base64EncryptedKey"))
    if not key_text:
        raise DecryptionError("The encrypted submission has no base64EncryptedKey.")
    xml_file = _text(child(root, "encryptedXmlFile"))
    if not xml_file:
        raise DecryptionError("The encrypted submission has no encryptedXmlFile.")
    media = []
    for holder in root:
        if local(holder.tag) != "media":
            continue
        name = _text(child(holder, "file"))
        if name:
            media.append(name)
    signature_text = _text(child(root, "base64EncryptedElementSignature"))
    for name in [*media, xml_file]:
        if "/" in name or "\\" in name or name in (".", ".."):
            raise DecryptionError(f"The encrypted file name {name!r} is not a plain file name.")
    return Manifest(
        form_id=form_id,
        version=version,
        instance_id=instance_id,
        base64_key=key_text,
        encrypted_key=_b64(key_text, "base64EncryptedKey"),
        media=media,
        xml_file=xml_file,
        signature=_b64(signature_text, "base64EncryptedElementSignature")
        if signature_text
        else None,
    )


# --- decrypting -----------------------------------------------------------------------------------


def decrypt_aes_key(private_key: rsa.RSAPrivateKey, encrypted_key: bytes) -> bytes:
    """The submission's AES key; :class:`DecryptionError` if this private key does not open it."""
    try:
        key = private_key.decrypt(encrypted_key, _OAEP)
    except ValueError as e:
        raise DecryptionError(
            "The submission's key cannot be opened with this form's private key "
            "(it was encrypted for another key, or it is damaged)."
        ) from e
    if len(key) != AES_KEY_BYTES:
        raise DecryptionError(f"The submission's AES key has {len(key)} bytes, not 32.")
    return key


def file_iv(instance_id: str, aes_key: bytes, index: int) -> bytes:
    """The IV of encrypted file ``index`` (0 = the first media file, the XML comes last)."""
    seed = bytearray(hashlib.md5(instance_id.encode("utf-8") + aes_key).digest())
    for n in range(index + 1):  # Collect increments before each file, cumulatively
        seed[n % 16] = (seed[n % 16] + 1) % 256
    return bytes(seed)


def decrypt_file(aes_key: bytes, iv: bytes, data: bytes, name: str = "file") -> bytes:
    """AES-256-CFB (128-bit feedback) then PKCS#7 unpadding; :class:`DecryptionError` if the
    padding is wrong (a damaged file, or the wrong key or IV)."""
    decryptor = Cipher(algorithms.AES(aes_key), CFB(iv)).decryptor()
    padded = decryptor.update(data) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    try:
        return unpadder.update(padded) + unpadder.finalize()
    except ValueError as e:
        raise DecryptionError(
            f"{name} does not decrypt to a whole file (it is damaged or was changed)."
        ) from e


def signature_md5(manifest: Manifest, plaintexts: list[tuple[str, bytes]]) -> bytes:
    """The md5 the phone signed: form id, version, key, instance id and each file's md5."""
    text = manifest.form_id + "\n"
    if manifest.version is not None:
        text += manifest.version + "\n"
    text += manifest.base64_key + "\n" + manifest.instance_id + "\n"
    for name, data in plaintexts:
        text += f"{name}::{hashlib.md5(data).hexdigest()}\n"
    return hashlib.md5(text.encode("utf-8")).digest()


def decrypt_submission(
    private_keys: list[rsa.RSAPrivateKey], manifest: Manifest, files: dict[str, bytes]
) -> Decrypted:
    """Decrypt a submission's files with the first of ``private_keys`` that opens its AES key,
    and check its signature.

    ``files`` maps the encrypted file names (``*.enc``) to their bytes. Raises
    :class:`DecryptionError` for a missing file, a key that opens nothing, a damaged file, a
    missing or wrong signature, or a decrypted XML that is not this submission's.
    """
    missing = [name for name in manifest.files if name not in files]
    if missing:
        raise DecryptionError(
            "Not every encrypted file has arrived yet; missing: " + ", ".join(missing) + "."
        )
    aes_key = key_index = None
    for i, private_key in enumerate(private_keys):
        try:
            aes_key, key_index = decrypt_aes_key(private_key, manifest.encrypted_key), i
            break
        except DecryptionError:
            continue
    if aes_key is None:
        raise DecryptionError(
            "None of the form's keys unlocked with this passphrase opens this submission "
            "(it was encrypted for another key, or its key is damaged)."
        )
    plaintexts = []
    for index, name in enumerate(manifest.files):
        data = decrypt_file(
            aes_key, file_iv(manifest.instance_id, aes_key, index), files[name], name
        )
        plaintexts.append((plain_name(name), data))
    if manifest.signature is None:
        raise DecryptionError("The submission carries no signature, so it cannot be trusted.")
    try:
        signed = private_keys[key_index].decrypt(manifest.signature, _OAEP)
    except ValueError as e:
        raise DecryptionError(
            "The submission's signature cannot be read: it was changed after the phone sent it."
        ) from e
    if not hmac.compare_digest(signed, signature_md5(manifest, plaintexts)):
        raise DecryptionError(
            "The submission's signature does not match its files: a file or the manifest was "
            "changed after the phone encrypted it."
        )
    xml = plaintexts[-1][1]
    _check_same_submission(manifest, xml)
    return Decrypted(xml=xml, media=plaintexts[:-1], key_index=key_index)


def plain_name(name: str) -> str:
    """``photo.jpg.enc`` -> ``photo.jpg``."""
    return name[: -len(ENC_SUFFIX)] if name.endswith(ENC_SUFFIX) else name


# --- private helpers ------------------------------------------------------------------------------

_OAEP = OAEP(mgf=MGF1(algorithm=hashes.SHA256()), algorithm=hashes.SHA256(), label=None)


def _text(elem: etree._Element | None) -> str:
    return (elem.text or "").strip() if elem is not None else ""


def _b64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError) as e:
        raise DecryptionError(f"The encrypted submission's {what} is not valid base64.") from e


def _check_same_submission(manifest: Manifest, xml: bytes) -> None:
    """The decrypted XML must be this form's submission with this instanceID: a valid file of
    another submission of the same key would otherwise slip in (the signature covers names and
    md5s, so this only catches a phone bug, but it costs nothing)."""
    try:
        root = parse_xml(xml)
    except Problem as p:
        raise DecryptionError(f"The decrypted submission is not readable XML: {p.message}") from p
    instance_id, _ = instance_ids(root)
    if (root.get("id") or "") != manifest.form_id or instance_id != manifest.instance_id:
        raise DecryptionError(
            "The decrypted submission names another form or instanceID than its manifest."
        )
