"""ODK form encryption: ODK Collect's own encrypted submission decrypts to exactly its plaintext;
a form gets a key whose private half only the passphrase opens; encrypted submissions arrive over
OpenRosa, wait for the key, and once decrypted are processed like any other; damaged or forged
ones are refused and kept as received."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import uuid

import pytest
from cryptography.hazmat.decrepit.ciphers.modes import CFB
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.padding import MGF1, OAEP
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms
from cryptography.hazmat.primitives.padding import PKCS7
from sqlalchemy import func, select

from clms.db import Base, session_scope
from clms.models import (
    AuditEvent,
    Child,
    EncryptedSubmission,
    Form,
    FormKey,
    FormVersion,
    Submission,
    SubmissionAttachment,
    Visit,
)
from forms import crypto
from forms.convert import submission_public_key
from forms.publish import XLSFORM_DIR, ensure_builtin_forms, publish_form
from forms.xmlsafe import parse_xml
from tests.conftest import PASSWORD, SHARED
from tests.submissions import household_xml

VECTOR_DIR = SHARED / "odk_encryption"
VECTOR = json.loads((VECTOR_DIR / "collect_vector.json").read_text(encoding="utf-8"))
PASSPHRASE = "tortoise lantern 7 ribbon"
FORM = "clms_household_visit"
_OAEP = OAEP(mgf=MGF1(algorithm=hashes.SHA256()), algorithm=hashes.SHA256(), label=None)


# --- a test-only encrypter, written from the spec (shared/design/protocols.md) --------------------


def encrypt_like_collect(
    public_key_b64: str,
    form_id: str,
    version: str | None,
    instance_id: str,
    xml: bytes,
    media: list[tuple[str, bytes]] = (),
    aes_key: bytes | None = None,
    signed_md5: bytes | None = None,
) -> tuple[bytes, dict[str, bytes]]:
    """What ODK Collect sends for an encrypted form: the manifest and the ``*.enc`` files."""
    public = serialization.load_der_public_key(base64.b64decode(public_key_b64))
    aes_key = aes_key or os.urandom(32)
    b64key = base64.b64encode(public.encrypt(aes_key, _OAEP)).decode()
    seed = bytearray(hashlib.md5(instance_id.encode() + aes_key).digest())
    signed = f"{form_id}\n" + (f"{version}\n" if version is not None else "")
    signed += f"{b64key}\n{instance_id}\n"
    files = {}
    for i, (name, data) in enumerate([*media, ("submission.xml", xml)]):
        seed[i % 16] = (seed[i % 16] + 1) & 0xFF
        padder = PKCS7(128).padder()
        padded = padder.update(data) + padder.finalize()
        encryptor = Cipher(algorithms.AES(aes_key), CFB(bytes(seed))).encryptor()
        files[name + ".enc"] = encryptor.update(padded) + encryptor.finalize()
        signed += f"{name}::{hashlib.md5(data).hexdigest()}\n"
    md5 = signed_md5 if signed_md5 is not None else hashlib.md5(signed.encode()).digest()
    signature = base64.b64encode(public.encrypt(md5, _OAEP)).decode()
    version_attr = f' version="{version}"' if version is not None else ""
    media_xml = "".join(f"<media><file>{name}.enc</file></media>" for name, _ in media)
    # the namespace of Collect's manifests (others differ: the server matches local names)
    manifest = (
        f'<data xmlns="http://opendatakit.org/submissions" encrypted="yes" id="{form_id}"'
        f"{version_attr}><base64EncryptedKey>{b64key}</base64EncryptedKey>"
        '<orx:meta xmlns:orx="http://openrosa.org/xforms">'
        f"<orx:instanceID>{instance_id}</orx:instanceID></orx:meta>{media_xml}"
        "<encryptedXmlFile>submission.xml.enc</encryptedXmlFile>"
        f"<base64EncryptedElementSignature>{signature}</base64EncryptedElementSignature></data>"
    )
    return manifest.encode(), files


def shared_private_key():
    return crypto.unlock_private_key((VECTOR_DIR / "priv.pem").read_bytes(), None)


# --- pure ----------------------------------------------------------------------------------------


def test_the_examples_in_forms_crypto_hold():
    import doctest

    assert doctest.testmod(crypto).failed == 0


def test_odk_collects_encrypted_submission_decrypts_to_exactly_its_plaintext():
    case = VECTOR["end_to_end"]
    aes_key = crypto.decrypt_aes_key(
        shared_private_key(), base64.b64decode(case["base64_encrypted_key"])
    )
    iv = crypto.file_iv(case["instance_id"], aes_key, case["file_index"])
    plain = crypto.decrypt_file(aes_key, iv, base64.b64decode(case["ciphertext_base64"]))
    assert plain == case["plaintext"].encode("utf-8")


def test_the_iv_of_every_file_follows_odks_vectors():
    ivs = VECTOR["iv_vectors"]
    aes_key = base64.b64decode(ivs["aes_key_base64"])
    for index, expected in ivs["ivs_hex"].items():
        assert crypto.file_iv(ivs["instance_id"], aes_key, int(index)).hex() == expected


def test_the_test_encrypter_reproduces_collects_ciphertext():
    """The encrypter the round trips below use is right: with Collect's AES key it writes
    Collect's bytes (the XML is file 1: one media file came first)."""
    case = VECTOR["end_to_end"]
    aes_key = crypto.decrypt_aes_key(
        shared_private_key(), base64.b64decode(case["base64_encrypted_key"])
    )
    public = crypto.public_key_base64(
        serialization.load_pem_public_key((VECTOR_DIR / "pub.pem").read_bytes())
    )
    _manifest, files = encrypt_like_collect(
        public, "encrypted", "working3", case["instance_id"], case["plaintext"].encode(),
        media=[("1561432532482.jpg", b"a photo")], aes_key=aes_key,
    )  # fmt: skip
    assert files["submission.xml.enc"] == base64.b64decode(case["ciphertext_base64"])


def test_a_manifest_is_read_by_local_names_and_a_broken_one_says_what_is_missing():
    public = crypto.public_key_base64(
        serialization.load_pem_public_key((VECTOR_DIR / "pub.pem").read_bytes())
    )
    xml = b'<data id="f"><meta><instanceID>uuid:1</instanceID></meta></data>'
    manifest, files = encrypt_like_collect(public, "f", None, "uuid:1", xml, [("a.jpg", b"x")])
    root = parse_xml(manifest)
    assert crypto.is_encrypted(root)
    m = crypto.parse_manifest(root)
    assert (m.form_id, m.version, m.instance_id) == ("f", None, "uuid:1")
    assert m.files == ["a.jpg.enc", "submission.xml.enc"]
    decrypted = crypto.decrypt_submission([shared_private_key()], m, files)
    assert decrypted.media == [("a.jpg", b"x")]

    no_key = manifest.replace(b"<base64EncryptedKey>", b"<other>").replace(
        b"</base64EncryptedKey>", b"</other>"
    )
    with pytest.raises(crypto.DecryptionError, match="base64EncryptedKey"):
        crypto.parse_manifest(parse_xml(no_key))
    assert not crypto.is_encrypted(parse_xml(b'<data id="f"/>'))


def test_a_new_key_is_kept_only_encrypted_and_opens_only_with_its_passphrase():
    pair = crypto.generate_key_pair(PASSPHRASE, bits=2048)
    assert pair.private_key_pem.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert PASSPHRASE.encode() not in pair.private_key_pem
    private = crypto.unlock_private_key(pair.private_key_pem, PASSPHRASE)
    # the public key is base64 DER SubjectPublicKeyInfo, the half of this private key
    assert crypto.public_key_base64(private.public_key()) == pair.public_key
    assert serialization.load_der_public_key(base64.b64decode(pair.public_key)).key_size == 2048
    assert pair.fingerprint == hashlib.sha256(base64.b64decode(pair.public_key)).hexdigest()
    with pytest.raises(crypto.WrongPassphrase):
        crypto.unlock_private_key(pair.private_key_pem, PASSPHRASE + "!")
    with pytest.raises(crypto.WrongPassphrase):
        crypto.unlock_private_key(pair.private_key_pem, None)
    with pytest.raises(ValueError, match="at least 12"):
        crypto.generate_key_pair("short")


def test_a_changed_file_or_a_forged_signature_is_refused():
    public = crypto.public_key_base64(
        serialization.load_pem_public_key((VECTOR_DIR / "pub.pem").read_bytes())
    )
    xml = b'<data id="f" version="1"><meta><instanceID>uuid:2</instanceID></meta></data>'
    key = [shared_private_key()]
    manifest, files = encrypt_like_collect(public, "f", "1", "uuid:2", xml, media=[("a.jpg", b"y")])
    m = crypto.parse_manifest(parse_xml(manifest))
    assert crypto.decrypt_submission(key, m, files).xml == xml

    # a flipped byte in a photo keeps its padding valid but changes its md5: the signature fails
    photo = files["a.jpg.enc"]
    changed = dict(files, **{"a.jpg.enc": bytes([photo[0] ^ 1]) + photo[1:]})
    with pytest.raises(crypto.DecryptionError, match="signature does not match"):
        crypto.decrypt_submission(key, m, changed)
    with pytest.raises(crypto.DecryptionError, match="missing: a.jpg.enc"):
        crypto.decrypt_submission(key, m, {"submission.xml.enc": files["submission.xml.enc"]})
    forged, forged_files = encrypt_like_collect(
        public, "f", "1", "uuid:2", xml, signed_md5=hashlib.md5(b"something else").digest()
    )
    with pytest.raises(crypto.DecryptionError, match="signature does not match"):
        crypto.decrypt_submission(key, crypto.parse_manifest(parse_xml(forged)), forged_files)
    other = crypto.unlock_private_key(crypto.generate_key_pair(PASSPHRASE, 2048).private_key_pem,
                                      PASSPHRASE)  # fmt: skip
    with pytest.raises(crypto.DecryptionError, match="None of the form's keys"):
        crypto.decrypt_submission([other], m, files)


# --- with the database ----------------------------------------------------------------------------


def keygen(runner, tmp_path, passphrase=PASSPHRASE, form=FORM):
    secret = tmp_path / "passphrase.txt"
    secret.write_text(passphrase + "\n", encoding="utf-8")
    return runner.invoke(
        args=["forms", "keygen", form, "--passphrase-file", str(secret), "--bits", "2048"]
    )


def decrypt(runner, tmp_path, passphrase=PASSPHRASE, form=FORM):
    secret = tmp_path / "decrypt-passphrase.txt"
    secret.write_text(passphrase + "\n", encoding="utf-8")
    args = ["forms", "decrypt", *([form] if form else []), "--passphrase-file", str(secret)]
    return runner.invoke(args=args)


def form_key(app) -> FormKey:
    with session_scope(app) as s:
        return s.scalar(select(FormKey).join(Form).where(Form.xml_form_id == FORM))


def encrypted_household(app, **kw) -> tuple[str, bytes, bytes, dict[str, bytes]]:
    """An encrypted clms_household_visit submission for the live (encrypted) version, with a
    photo: (instanceID, plaintext, manifest, files)."""
    with session_scope(app) as s:
        form = s.scalar(select(Form).where(Form.xml_form_id == FORM))
        version, public = form.live_version.version, submission_public_key(form.live_version.xml)
    instance_id = f"uuid:{uuid.uuid4()}"
    xml = household_xml(version, instance_id=instance_id, **kw)
    manifest, files = encrypt_like_collect(
        public, FORM, version, instance_id, xml, media=[("photo.jpg", b"\xff\xd8 a photo")]
    )
    return instance_id, xml, manifest, files


def dump_database(app) -> str:
    """Every value of every table, as text, to look for what must never be stored."""
    out = []
    with session_scope(app) as s:
        for table in Base.metadata.sorted_tables:
            for row in s.execute(select(table)):
                for value in row:
                    out.append(value.decode("latin-1") if isinstance(value, bytes) else str(value))
    return "\n".join(out)


def test_round_trip_keygen_publish_post_encrypted_then_decrypt_and_process(
    app, phone, runner, process, tmp_path, caplog
):
    caplog.set_level(logging.DEBUG)
    done = keygen(runner, tmp_path)
    assert done.exit_code == 0, done.output
    key = form_key(app)
    assert key.active and key.private_key_pem.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY")
    # the new live version carries the public key, and is what phones download
    with session_scope(app) as s:
        form = s.scalar(select(Form).where(Form.xml_form_id == FORM))
        live = form.live_version.version
    assert live.endswith(f"+key{key.id}") and live in done.output
    served = phone.get(f"/forms/{FORM}/form.xml")
    assert submission_public_key(served.data) == key.public_key
    assert f'base64RsaPublicKey="{key.public_key}"'.encode() in served.data

    # Collect splits a large submission: the photo first, the XML in a second POST
    instance_id, xml, manifest, files = encrypted_household(app)
    first = phone.submit(manifest, {"photo.jpg.enc": files["photo.jpg.enc"]})
    second = phone.submit(manifest, {"submission.xml.enc": files["submission.xml.enc"]})
    assert (first.status_code, second.status_code) == (201, 201)
    assert process().processed == 0  # nothing to parse: it waits for the key
    with session_scope(app) as s:
        sub = s.scalar(select(Submission).where(Submission.instance_id == instance_id))
        assert sub.status == "encrypted" and sub.xml == manifest
        assert sorted(a.name for a in sub.attachments) == ["photo.jpg.enc", "submission.xml.enc"]
        assert s.get(EncryptedSubmission, sub.id).state == "waiting"
        assert s.scalar(select(func.count()).select_from(Visit)) == 0

    wrong = decrypt(runner, tmp_path, passphrase="not the passphrase at all")
    assert wrong.exit_code != 0 and "passphrase does not unlock" in wrong.output
    with session_scope(app) as s:
        assert s.scalar(select(Submission.status).where(Submission.instance_id == instance_id)) == (
            "encrypted"
        )

    ok = decrypt(runner, tmp_path)
    assert ok.exit_code == 0, ok.output
    assert "Decrypted 1 submission(s)" in ok.output and "1 parsed" in ok.output
    with session_scope(app) as s:
        sub = s.scalar(select(Submission).where(Submission.instance_id == instance_id))
        assert sub.status == "parsed" and sub.xml == xml
        assert sub.xml_sha256 == hashlib.sha256(xml).hexdigest()
        by_name = {a.name: a.data for a in sub.attachments}
        assert by_name["photo.jpg"] == b"\xff\xd8 a photo"
        assert by_name["photo.jpg.enc"] == files["photo.jpg.enc"]  # the originals stay
        kept = s.get(EncryptedSubmission, sub.id)
        assert (kept.state, kept.manifest, kept.form_key_id) == ("decrypted", manifest, key.id)
        visit = s.scalar(select(Visit).where(Visit.submission_id == sub.id))
        assert visit is not None and visit.household_id is not None
        assert s.scalar(select(func.count()).select_from(Child)) == 1
        actions = s.scalars(select(AuditEvent.action).order_by(AuditEvent.seq)).all()
        assert "form.key_generate" in actions and "form.decrypt" in actions
        assert "form.decrypt_refused" in actions

    again = decrypt(runner, tmp_path)
    assert again.exit_code == 0 and "Decrypted 0 submission(s)" in again.output
    # the phone re-sending the manifest after decryption is a retry, not a conflict
    assert phone.submit(manifest).status_code == 201

    assert PASSPHRASE not in dump_database(app)
    assert PASSPHRASE not in caplog.text


def test_a_changed_file_is_refused_kept_as_received_and_does_not_stop_the_others(
    app, phone, runner, tmp_path
):
    assert keygen(runner, tmp_path).exit_code == 0
    bad_id, _xml, bad_manifest, bad_files = encrypted_household(app, household_code="HH-V1-007")
    tampered = bytearray(bad_files["submission.xml.enc"])
    tampered[5] ^= 0x20
    bad_files["submission.xml.enc"] = bytes(tampered)
    good_id, _good_xml, good_manifest, good_files = encrypted_household(app)
    assert phone.submit(bad_manifest, bad_files).status_code == 201
    assert phone.submit(good_manifest, good_files).status_code == 201

    result = decrypt(runner, tmp_path)
    assert result.exit_code == 1
    assert f"Not decrypted: {bad_id}:" in result.output and "changed" in result.output
    assert "Decrypted 1 submission(s)" in result.output
    with session_scope(app) as s:
        bad = s.scalar(select(Submission).where(Submission.instance_id == bad_id))
        assert bad.status == "encrypted" and bad.xml == bad_manifest
        assert {a.name: a.data for a in bad.attachments} == bad_files
        kept = s.get(EncryptedSubmission, bad.id)
        assert kept.state == "waiting" and "changed" in kept.last_error
        good = s.scalar(select(Submission).where(Submission.instance_id == good_id))
        assert good.status == "parsed"


def test_openrosa_refuses_encrypted_submissions_it_could_never_read(app, phone, runner, tmp_path):
    with session_scope(app) as s:
        version = s.scalar(select(Form).where(Form.xml_form_id == FORM)).live_version.version
    public = crypto.public_key_base64(
        serialization.load_pem_public_key((VECTOR_DIR / "pub.pem").read_bytes())
    )
    instance_id = f"uuid:{uuid.uuid4()}"
    manifest, files = encrypt_like_collect(
        public, FORM, version, instance_id, household_xml(version, instance_id=instance_id)
    )
    no_key = phone.submit(manifest, files)
    assert no_key.status_code == 400 and b"is not encrypted on this server" in no_key.data

    # typed twice, hidden; two that differ are asked again
    typed = runner.invoke(
        args=["forms", "keygen", FORM, "--bits", "2048"],
        input=f"{PASSPHRASE}\nsomething else entirely\n{PASSPHRASE}\n{PASSPHRASE}\n",
    )
    assert typed.exit_code == 0, typed.output
    assert "do not match" in typed.output and PASSPHRASE not in typed.output
    broken = manifest.replace(b"encryptedXmlFile>", b"somethingElse>")
    refused = phone.submit(broken, files)
    assert refused.status_code == 400 and b"encryptedXmlFile" in refused.data
    phone_version = manifest.replace(f'version="{version}"'.encode(), b'version="nope"')
    unknown = phone.submit(phone_version, files)
    assert unknown.status_code == 400 and b"has no version 'nope'" in unknown.data
    with session_scope(app) as s:
        assert s.scalar(select(func.count()).select_from(Submission)) == 0
        assert s.scalar(select(func.count()).select_from(SubmissionAttachment)) == 0


def test_every_version_of_an_encrypted_form_carries_its_key(app, phone, runner, tmp_path):
    assert keygen(runner, tmp_path).exit_code == 0
    key = form_key(app)
    source = (XLSFORM_DIR / f"{FORM}.md").read_text(encoding="utf-8")
    newer = source.replace("2026112201", "2026120101").encode()
    with session_scope(app) as s:
        # an XLSForm gets the key through pyxform's settings public_key
        version = publish_form(s, f"{FORM}.md", newer, validate=False).form_version
        assert version.version == "2026120101"
        assert submission_public_key(version.xml) == key.public_key
        xform = version.xml
    # an XForm without the key is refused (phones would send plaintext or use a foreign key)
    with session_scope(app) as s:
        from clms.errors import Problem

        plain = xform.replace(f'base64RsaPublicKey="{key.public_key}"'.encode(), b"")
        plain = plain.replace(b"2026120101", b"2026120102")
        with pytest.raises(Problem, match="must carry the form's public key"):
            publish_form(s, f"{FORM}.xml", plain, validate=False)
    # and a form without a key refuses an XLSForm that names one
    report = (XLSFORM_DIR / "clms_report.md").read_text(encoding="utf-8")
    with_key = report.replace("| settings |", "| settings | public_key |", 1).replace(
        "|          | clms_report |", f"|          | {key.public_key} | clms_report |", 1
    )
    with session_scope(app) as s:
        with pytest.raises(Problem, match="holds no key for form 'clms_report'"):
            publish_form(s, "clms_report.md", with_key.replace("2026112201", "2026120101").encode(),
                         validate=False)  # fmt: skip
        # three built forms, the encrypted version, the newer XLSForm: nothing else was written
        assert s.scalar(select(func.count()).select_from(FormVersion)) == 5
        # `clms init` again leaves the encrypted form alone (its built XForm carries no key)
        assert ensure_builtin_forms(s) == []


def test_the_admin_page_generates_the_key_and_decrypts_what_waits(app, phone, make_user):
    from tests.alerts.test_alert_queue import login

    make_user("root", "admin")
    web = app.test_client()
    login(web, "root")
    page = web.get(f"/forms/{FORM}")
    assert b"Generate the key" in page.data
    differ = web.post(
        f"/forms/{FORM}/key", data={"passphrase": PASSPHRASE, "passphrase_again": PASSPHRASE + "x"}
    )
    assert differ.status_code == 400 and b"The two passphrases differ." in differ.data
    short = web.post(
        f"/forms/{FORM}/key", data={"passphrase": "short", "passphrase_again": "short"}
    )
    assert short.status_code == 400 and b"at least 12 characters" in short.data
    assert form_key(app) is None
    made = web.post(
        f"/forms/{FORM}/key", data={"passphrase": PASSPHRASE, "passphrase_again": PASSPHRASE}
    )
    assert made.status_code == 302
    key = form_key(app)
    assert key.fingerprint

    instance_id, _xml, manifest, files = encrypted_household(app)
    assert phone.submit(manifest, files).status_code == 201
    page = web.get(f"/forms/{FORM}")
    assert b'<dd id="encrypted-waiting">1</dd>' in page.data

    wrong = web.post(f"/forms/{FORM}/decrypt", data={"passphrase": "nothing like it at all"})
    assert wrong.status_code == 400 and b"does not unlock" in wrong.data
    ok = web.post(f"/forms/{FORM}/decrypt", data={"passphrase": PASSPHRASE})
    assert ok.status_code == 302
    page = web.get(f"/forms/{FORM}")
    assert b"Decrypted 1 submission: 1 parsed" in page.data
    assert b'<dd id="encrypted-waiting">0</dd>' in page.data
    with session_scope(app) as s:
        status = s.scalar(select(Submission.status).where(Submission.instance_id == instance_id))
        assert status == "parsed"
        details = " ".join(s.scalars(select(AuditEvent.details)).all())
    assert PASSPHRASE not in details and PASSPHRASE not in dump_database(app)
    assert PASSWORD not in dump_database(app)


def test_an_encrypted_submission_pulled_from_central_waits_for_the_key_too(app, phone, runner,
                                                                           tmp_path):  # fmt: skip
    """Central hands out the manifest and the .enc files when it does not hold the key."""
    from tests.central_double import CentralDouble
    from tests.intake.test_pull import add_central, pull

    assert keygen(runner, tmp_path).exit_code == 0
    instance_id, xml, manifest, files = encrypted_household(app)
    central = CentralDouble().start()
    try:
        central.add(manifest, attachments=files)
        result, _ = pull(app, add_central(app, central))
    finally:
        central.stop()
    assert result.stored == 1
    with session_scope(app) as s:
        sub = s.scalar(select(Submission).where(Submission.instance_id == instance_id))
        assert (sub.status, sub.source, sub.xml) == ("encrypted", "central", manifest)
    done = decrypt(runner, tmp_path)
    assert done.exit_code == 0 and "1 parsed" in done.output
    with session_scope(app) as s:
        assert s.scalar(select(Submission.xml).where(Submission.instance_id == instance_id)) == xml


def test_a_replaced_key_still_decrypts_what_was_sent_with_it(app, phone, runner, tmp_path):
    assert keygen(runner, tmp_path).exit_code == 0
    first = form_key(app)
    old_id, old_xml, old_manifest, old_files = encrypted_household(app)
    assert phone.submit(old_manifest, old_files).status_code == 201

    refused = keygen(runner, tmp_path)
    assert refused.exit_code != 0 and "already has a key" in refused.output
    secret = tmp_path / "passphrase.txt"
    replaced = runner.invoke(
        args=["forms", "keygen", FORM, "--passphrase-file", str(secret), "--bits", "2048",
              "--replace"]
    )  # fmt: skip
    assert replaced.exit_code == 0, replaced.output
    with session_scope(app) as s:
        keys = s.scalars(select(FormKey).order_by(FormKey.id)).all()
        assert [(k.id, k.active) for k in keys] == [(first.id, False), (keys[1].id, True)]
        live = s.scalar(select(Form).where(Form.xml_form_id == FORM)).live_version
        assert live.version.endswith(f"+key{keys[1].id}") and "+key" not in live.version[:-6]
        assert submission_public_key(live.xml) == keys[1].public_key
    new_id, _new_xml, new_manifest, new_files = encrypted_household(app, household_code="HH-V1-9")
    assert phone.submit(new_manifest, new_files).status_code == 201

    done = decrypt(runner, tmp_path)
    assert done.exit_code == 0 and "Decrypted 2 submission(s)" in done.output, done.output
    with session_scope(app) as s:
        opened_by = dict(
            s.execute(
                select(Submission.instance_id, EncryptedSubmission.form_key_id).join(
                    EncryptedSubmission, EncryptedSubmission.submission_id == Submission.id
                )
            ).all()
        )
    assert opened_by == {old_id: first.id, new_id: keys[1].id}
