"""A captured Digest header cannot be sent again (clms.openrosa.auth).

Found by attacking the demo: one ``Authorization: Digest`` header computed for ``POST
/submission`` was sent twice with two different XML bodies and both were stored as the monitor's;
the same header for ``GET /formList`` worked three times. Now each (nonce, nc) pair is accepted
once, in every gunicorn worker, and honest clients, which count ``nc`` up, never notice.
"""

from __future__ import annotations

import io
import threading
import uuid

import pytest
import requests
from requests.auth import HTTPDigestAuth
from sqlalchemy import func, select

from clms.db import session_scope
from clms.models import DigestNonce, Submission
from tests.conftest import PASSWORD
from tests.failure_rig import Gunicorn, server_env
from tests.openrosa_client import OPENROSA, digest_authorization
from tests.submissions import household_xml


def _challenge(client, path="/submission", method="HEAD") -> str:
    r = client.open(path, method=method, headers=OPENROSA)
    assert r.status_code == 401
    return r.headers["WWW-Authenticate"]


def _with_nc(header: str, challenge: str, method: str, uri: str, nc: int) -> str:
    """The header of ``digest_authorization`` with another request count."""
    import hashlib
    import re

    params = dict(re.findall(r'(\w+)="?([^",]*)"?', challenge))
    ha1 = hashlib.md5(f"awa:{params['realm']}:{PASSWORD}".encode()).hexdigest()
    ha2 = hashlib.md5(f"{method}:{uri}".encode()).hexdigest()
    count = f"{nc:08x}"
    response = hashlib.md5(
        f"{ha1}:{params['nonce']}:{count}:c0ffee:auth:{ha2}".encode()
    ).hexdigest()
    return (
        f'Digest username="awa", realm="{params["realm"]}", nonce="{params["nonce"]}", '
        f'uri="{uri}", qop=auth, nc={count}, cnonce="c0ffee", response="{response}", '
        f"algorithm=MD5"
    )


def _post(client, xml: bytes, authorization: str):
    data = {"xml_submission_file": (io.BytesIO(xml), "submission.xml", "text/xml")}
    return client.post(
        "/submission", data=data, content_type="multipart/form-data",
        headers={**OPENROSA, "Authorization": authorization},
    )  # fmt: skip


def _stored(app) -> set[str]:
    with session_scope(app) as s:
        return set(s.scalars(select(Submission.instance_id)))


def test_a_replayed_submission_header_is_refused_whatever_the_body(app, client, phone, version):
    challenge = _challenge(client)
    header = digest_authorization(challenge, "POST", "/submission", "awa", PASSWORD)
    first = household_xml(version, instance_id="uuid:first")
    forged = household_xml(version, instance_id="uuid:forged", household_code="HH-V1-666")
    assert _post(client, first, header).status_code == 201
    again = _post(client, forged, header)
    assert again.status_code == 401
    # the credentials were right: a fresh challenge that a client answers without asking
    assert "stale=true" in again.headers["WWW-Authenticate"]
    assert _stored(app) == {"uuid:first"}


def test_a_replayed_form_list_header_works_once(client, phone):
    challenge = _challenge(client, "/formList", "GET")
    header = digest_authorization(challenge, "GET", "/formList", "awa", PASSWORD)
    answers = [
        client.get("/formList", headers={**OPENROSA, "Authorization": header}).status_code
        for _ in range(3)
    ]
    assert answers == [200, 401, 401]


def test_the_count_must_go_up(client, phone):
    challenge = _challenge(client, "/formList", "GET")

    def get(nc):
        header = _with_nc("", challenge, "GET", "/formList", nc)
        return client.get("/formList", headers={**OPENROSA, "Authorization": header}).status_code

    assert [get(5), get(3), get(5), get(6), get(0x10)] == [200, 401, 401, 200, 200]


def test_digest_without_qop_or_with_a_bad_count_is_refused(client, phone):
    import hashlib
    import re

    challenge = _challenge(client, "/formList", "GET")
    params = dict(re.findall(r'(\w+)="?([^",]*)"?', challenge))
    ha1 = hashlib.md5(f"awa:{params['realm']}:{PASSWORD}".encode()).hexdigest()
    ha2 = hashlib.md5(b"GET:/formList").hexdigest()
    response = hashlib.md5(f"{ha1}:{params['nonce']}:{ha2}".encode()).hexdigest()
    rfc2069 = (f'Digest username="awa", realm="{params["realm"]}", nonce="{params["nonce"]}", '
               f'uri="/formList", response="{response}"')  # fmt: skip
    assert client.get("/formList", headers={**OPENROSA, "Authorization": rfc2069}).status_code \
        == 401  # fmt: skip
    bad = _with_nc("", challenge, "GET", "/formList", 1).replace("nc=00000001", "nc=zz")
    assert client.get("/formList", headers={**OPENROSA, "Authorization": bad}).status_code == 401


def test_used_nonces_are_forgotten_when_they_expire(app, client, phone, monkeypatch):
    import clms.openrosa.auth as auth

    for _ in range(3):
        challenge = _challenge(client, "/formList", "GET")
        header = digest_authorization(challenge, "GET", "/formList", "awa", PASSWORD)
        assert client.get("/formList", headers={**OPENROSA, "Authorization": header}).status_code \
            == 200  # fmt: skip
    with session_scope(app) as s:
        assert s.scalar(select(func.count()).select_from(DigestNonce)) == 3
    # an hour later every one of them has expired: the next new nonce clears them away
    import time

    later = time.time() + 3600
    monkeypatch.setattr(auth.time, "time", lambda: later)
    monkeypatch.setattr(
        "clms.models.utcnow",
        lambda: __import__("datetime").datetime.fromtimestamp(later, __import__("datetime").UTC),
    )
    challenge = _challenge(client, "/formList", "GET")
    header = digest_authorization(challenge, "GET", "/formList", "awa", PASSWORD)
    assert client.get("/formList", headers={**OPENROSA, "Authorization": header}).status_code \
        == 200  # fmt: skip
    with session_scope(app) as s:
        assert s.scalar(select(func.count()).select_from(DigestNonce)) == 1


@pytest.mark.slow
@pytest.mark.committing  # gunicorn's worker processes
def test_replays_are_refused_across_two_gunicorn_workers(app, phone, version, tmp_path):
    """Real gunicorn with two worker processes: a captured header replayed from many
    connections at once is accepted once in all; an honest client (requests' HTTPDigestAuth)
    goes through with one challenge for the whole session."""
    server = Gunicorn(server_env(app), tmp_path / "gunicorn.log", workers=2, threads=4)
    server.start()
    try:
        base = server.url
        challenge = requests.head(base + "/submission", headers=OPENROSA, timeout=10)
        header = digest_authorization(
            challenge.headers["WWW-Authenticate"], "POST", "/submission", "awa", PASSWORD
        )
        answers = []
        lock = threading.Lock()

        def send(n: int) -> None:
            xml = household_xml(version, instance_id=f"uuid:{uuid.uuid4()}",
                                household_code=f"HH-R-{n}")  # fmt: skip
            r = requests.post(
                base + "/submission", headers={**OPENROSA, "Authorization": header},
                files={"xml_submission_file": ("submission.xml", xml, "text/xml")}, timeout=30,
            )  # fmt: skip
            with lock:
                answers.append(r.status_code)

        threads = [threading.Thread(target=send, args=(n,)) for n in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(answers) == [201] + [401] * 15
        assert len(_stored(app)) == 1
        # an honest client: one 401 for the first request, none after
        session = requests.Session()
        session.auth = HTTPDigestAuth("awa", PASSWORD)
        answers = [session.get(base + "/formList", headers=OPENROSA, timeout=10)
                   for _ in range(30)]  # fmt: skip
        assert [r.status_code for r in answers] == [200] * 30
        # the 401s answered on the way (requests keeps them in each answer's history)
        assert [h.status_code for r in answers for h in r.history] == [401]
    finally:
        server.stop()


def test_recording_a_nonce_never_holds_a_second_connection(app, client, phone, monkeypatch):
    """Found by CI on PostgreSQL: twenty phones sending at once, each request holding its own
    session's connection while asking the pool for another to record the nonce, exhausted the pool
    (5 + 5 connections) and waited 30 s for each other (503s). The nonce is recorded only once
    the request's own connection is back in the pool."""
    from clms.db import engine
    from clms.openrosa import auth

    held = []
    record = auth._first_use

    def watched(nonce, nc):
        held.append(engine().pool.checkedout())
        return record(nonce, nc)

    monkeypatch.setattr(auth, "_first_use", watched)
    challenge = _challenge(client, "/formList", "GET")
    header = digest_authorization(challenge, "GET", "/formList", "awa", PASSWORD)
    assert client.get("/formList", headers={**OPENROSA, "Authorization": header}).status_code == 200
    assert held == [0]
