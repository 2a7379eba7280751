"""Against the REAL ODK Central (tests/central_server.py, started once per session): our pull,
and the contract that keeps tests/central_double.py answering as the real server does.

The contract's request/response pairs come from central-backend's own integration tests
(test/integration/api/submissions.js: sessions, edits with deprecatedID and /versions, review
states, delete and restore; odata.js: newest first, $top with @odata.nextLink, $filter on __id,
__system/updatedAt and __system/deletedAt, deleted submissions hidden unless the filter names
deletedAt) and are run, unchanged, against the double and the real server.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from clms.db import session_scope
from clms.intake.pull import pull_source
from clms.models import Submission
from forms.pull.sources import add_source
from tests.central_double import CentralDouble
from tests.central_server import RealCentral
from tests.submissions import household_xml


class RecordingHttp:
    """A requests.Session that remembers the bearer tokens it sent."""

    def __init__(self):
        import requests

        self.http = requests.Session()
        self.tokens: set[str] = set()
        original = self.http.request

        def request(method, url, headers=None, **kw):
            auth = (headers or {}).get("Authorization", "")
            if auth.startswith("Bearer "):
                self.tokens.add(auth.removeprefix("Bearer "))
            return original(method, url, headers=headers, **kw)

        self.http.request = request


# --- our pull, against the real server -----------------------------------------------------------


def test_pull_from_real_central_follows_edits_reviews_deletions_and_restores(
    app, version, real_central: RealCentral
):
    server = real_central
    assert server.versions["clms_household_visit"] == version  # the same forms, both sides
    ids = [server.new_id() for _ in range(4)]
    # from a phone (OpenRosa, as an app user) and through the REST API
    assert server.submit_openrosa(household_xml(version, instance_id=ids[0])).status_code == 201
    for instance_id in ids[1:]:
        server.submit_rest(household_xml(version, instance_id=instance_id))
    # a reviewer edits one before we ever pull it
    edited = server.new_id()
    xml = household_xml(version, instance_id=edited, deprecated_id=ids[1], head="Edited")
    assert server.edit(ids[1], xml).status_code == 200
    with session_scope(app) as s:
        source_id = add_source(
            s, "real-central", "central", server.url, "clms_household_visit",
            {"email": server.email, "password": server.password},
            project_id=str(server.project_id), key=app.config["CREDENTIALS_KEY"],
        ).id  # fmt: skip
    recording = RecordingHttp()
    try:

        def pull():
            return pull_source(
                app.extensions["clms_sessionmaker"], source_id, app.config, http=recording.http
            )

        first = pull()

        assert first.ok, first.error
        assert (first.stored, first.edits, first.problem_count) == (4, 1, 0)
        with session_scope(app) as s:
            rows = {r.instance_id: r for r in s.scalars(select(Submission))}
            assert rows[ids[1]].current is False and rows[edited].current is True
            assert rows[edited].logical_id == ids[1] == rows[edited].remote_id
            assert rows[edited].remote_review_state == "edited"
            assert {r.pull_source_id for r in rows.values()} == {source_id}
        # the run's one session was ended on the server
        assert len(recording.tokens) == 1
        [token] = recording.tokens
        gone = recording.http.get(f"{server.url}/v1/users/current",
                                  headers={"Authorization": f"Bearer {token}"})  # fmt: skip
        assert gone.status_code == 401

        # then, in Central: rejected, deleted, edited again
        assert server.review(ids[2], "rejected").status_code == 200
        assert server.delete(ids[3]).status_code == 200
        again = server.new_id()
        xml = household_xml(version, instance_id=again, deprecated_id=edited, head="Again")
        assert server.edit(ids[1], xml).status_code == 200

        second = pull()

        assert second.ok, second.error
        assert (second.stored, second.edits, second.withdrawn) == (0, 1, 2)
        with session_scope(app) as s:
            rows = {r.instance_id: r for r in s.scalars(select(Submission))}
            assert rows[ids[2]].withdrawn_reason == "rejected"
            assert rows[ids[3]].withdrawn_reason == "deleted"
            assert rows[again].current and not rows[edited].current
            assert rows[ids[0]].withdrawn_at is None

        # restored and approved there: counted again here
        assert server.restore(ids[3]).status_code == 200
        assert server.review(ids[2], "approved").status_code == 200

        third = pull()

        assert third.ok and third.restored == 2, third.error
        with session_scope(app) as s:
            reasons = {r.instance_id: r.withdrawn_reason for r in s.scalars(select(Submission))}
            assert set(reasons.values()) == {None}
    finally:
        # the real server is shared by the session's tests (sqlite and postgresql runs of this
        # one too): leave nothing live behind
        for root_id in ids:
            server.delete(root_id)


# --- the contract: the double answers as the real server -----------------------------------------


@pytest.fixture(params=["double", "real"])
def server(request):
    if request.param == "real":
        yield request.getfixturevalue("real_central")
        return
    double = CentralDouble().start()
    try:
        yield RealCentral(double.url, double.email, double.password, double.project_id, work=None)
    finally:
        double.stop()


def _odata(server: RealCentral, where: str, **params):
    query = {"$select": "__id,__system", "$filter": where, **params}
    r = server.api("GET", server.form_path() + ".svc/Submissions", params=query)
    assert r.status_code == 200, r.text
    return r.json()


def _either(*ids: str) -> str:
    return " or ".join(f"__id eq '{i}'" for i in ids)


def test_the_double_answers_as_the_real_central(server: RealCentral):
    import requests

    # sessions (sessions.js): a wrong password is 401.2; a token has its times
    wrong = requests.post(f"{server.url}/v1/sessions",
                          json={"email": server.email, "password": "not it at all"})  # fmt: skip
    assert (wrong.status_code, wrong.json()["code"]) == (401, 401.2)
    version = server.versions.get("clms_household_visit", "1")
    a, b = server.new_id(), server.new_id()
    original = household_xml(version, instance_id=a)
    created = server.submit_rest(original)
    assert created["instanceId"] == a and created["updatedAt"] is None
    server.submit_rest(household_xml(version, instance_id=b))

    # odata.js: newest first, $top pages with @odata.nextLink, $count counts the filter
    page = _odata(server, _either(a, b), **{"$top": 1, "$count": "true"})
    assert [row["__id"] for row in page["value"]] == [b] and page["@odata.count"] == 2
    assert "@odata.nextLink" in page
    rest = server.signed_in().get(page["@odata.nextLink"]).json()
    assert [row["__id"] for row in rest["value"]] == [a] and "@odata.nextLink" not in rest
    system = page["value"][0]["__system"]
    assert {"submissionDate", "updatedAt", "reviewState", "edits", "deletedAt"} <= set(system)
    assert (system["edits"], system["reviewState"], system["deletedAt"]) == (0, None, None)

    # submissions.js, edits: deprecatedID required (400.19), must name the current version
    assert (
        server.edit(a, household_xml(version, instance_id=server.new_id())).json()["code"] == 400.19
    )
    a2 = server.new_id()
    edit = household_xml(version, instance_id=a2, deprecated_id=a, head="Edited")
    assert server.edit(a, edit).status_code == 200
    stale = household_xml(version, instance_id=server.new_id(), deprecated_id=a)
    assert (server.edit(a, stale).status_code, server.edit(a, stale).json()["code"]) == (409, 409.9)
    [row] = _odata(server, _either(a))["value"]
    assert row["__id"] == a and row["__system"]["edits"] == 1
    assert row["__system"]["reviewState"] == "edited" and row["__system"]["updatedAt"]
    assert row["__system"]["submissionDate"] == created["createdAt"]  # kept by an edit
    assert server.api("GET", server.form_path() + f"/submissions/{a}.xml").content == edit
    versions = server.api("GET", server.form_path() + f"/submissions/{a}/versions").json()
    assert [(v["instanceId"], v["current"]) for v in versions] == [(a2, True), (a, False)]
    old = server.api("GET", server.form_path() + f"/submissions/{a}/versions/{a}.xml")
    assert old.content == original

    # review states set updatedAt (a filter on it finds the submission)
    reviewed = server.review(b, "rejected").json()
    assert reviewed["reviewState"] == "rejected" and reviewed["updatedAt"]
    found = _odata(server, f"({_either(a, b)}) and __system/updatedAt ge {reviewed['updatedAt']}")
    assert [r["__id"] for r in found["value"]] == [b]

    # deletion: 404 and hidden, unless the filter names __system/deletedAt; updatedAt unchanged
    assert server.delete(b).json() == {"success": True}
    missing = server.api("GET", server.form_path() + f"/submissions/{b}.xml")
    assert (missing.status_code, missing.json()["code"]) == (404, 404.1)
    assert _odata(server, _either(b))["value"] == []
    [gone] = _odata(server, f"{_either(b)} and __system/deletedAt ge {created['createdAt']}")[
        "value"
    ]
    assert gone["__system"]["deletedAt"] and gone["__system"]["updatedAt"] == reviewed["updatedAt"]
    assert _odata(server, f"{_either(b)} and __system/deletedAt eq null")["value"] == []

    # restore clears deletedAt and sets no time; a live submission cannot be restored
    assert server.restore(b).json() == {"success": True}
    [back] = _odata(server, _either(b))["value"]
    assert back["__system"]["deletedAt"] is None
    assert back["__system"]["updatedAt"] == reviewed["updatedAt"]
    assert back["__system"]["reviewState"] == "rejected"
    assert server.restore(b).status_code == 404

    # DELETE /v1/sessions/current ends the session
    assert server.api("DELETE", "/sessions/current").json() == {"success": True}
    after = server.api("GET", server.form_path() + f"/submissions/{a}/versions")
    assert (after.status_code, after.json()["code"]) == (401, 401.2)
    server.signed_in().headers.pop("Authorization")
    # the real server is shared by the session's tests: leave nothing live behind
    assert server.delete(a).status_code == server.delete(b).status_code == 200
