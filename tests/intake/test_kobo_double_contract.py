"""The KoboToolbox double answers as kpi does: each test replays a request/response pair of kpi's
own tests and checks the double gives the same status and fields.

The pairs come from kobotoolbox/kpi: ``kpi/tests/api/v2/test_api_submissions.py``
(``SubmissionApiTests``, ``SubmissionEditApiTests``, ``SubmissionValidationStatusApiTests``,
``SubmissionValidationStatusesApiTests``) and the helpers they call in
``kpi/tests/utils/mixins.py`` (``_update_status``, ``_delete_status``, ``_delete_submission``,
``_simulate_edit_submission``), read with the behaviour behind them:
``kpi/deployment_backends/openrosa_backend.py`` (``set_validation_status(es)``),
``kobo/apps/openrosa/apps/logger/utils/instance.py`` (``get_validation_status``),
``kobo/apps/openrosa/libs/utils/logger_tools.py`` (edits) and
``kobo/apps/openrosa/apps/logger/xform_instance_parser.py`` (``submissionDate``).
"""

from __future__ import annotations

import json

import pytest
import requests

from tests.kobo_double import USERNAME, VALIDATION_STATUSES, KoboDouble, KoboRefused


def xml(n: int, *, deprecated: str | None = None, root: str | None = None, at: str = "") -> bytes:
    date = f' submissionDate="{at}"' if at else ""
    meta = f"<instanceID>uuid:v{n}</instanceID>"
    if deprecated:
        meta += f"<deprecatedID>{deprecated}</deprecatedID>"
    if root:
        meta += f"<rootUuid>{root}</rootUuid>"
    return (
        f'<data id="clms_household_visit" version="1"{date}><q1>{n}</q1><meta>{meta}</meta></data>'
    ).encode()


@pytest.fixture
def kobo():
    double = KoboDouble().start()
    yield double
    double.stop()


@pytest.fixture
def api(kobo):
    http = requests.Session()
    http.headers["Authorization"] = f"Token {kobo.token}"
    base = f"{kobo.url}/api/v2/assets/{kobo.asset_uid}/data"
    yield http, base
    http.close()


def listing(http, base) -> dict:
    answer = http.get(base + "/", params={"format": "json"})
    assert answer.status_code == 200
    return answer.json()


# --- SubmissionValidationStatusApiTests ------------------------------------------------------


def test_retrieve_status_as_owner(kobo, api):
    http, base = api
    sub = kobo.add(xml(1))
    answer = http.get(f"{base}/{sub.id}/validation_status/")
    assert (answer.status_code, answer.json()) == (200, {})


def test_edit_status_as_owner(kobo, api):
    """mixins._update_status: PATCH {'validation_status.uid': ...} as a form, 200; GET has
    by_whom and uid."""
    http, base = api
    sub = kobo.add(xml(1))
    url = f"{base}/{sub.id}/validation_status/"
    data = {"validation_status.uid": "validation_status_not_approved"}
    answer = http.patch(url, data=data)
    assert answer.status_code == 200
    got = http.get(url)
    assert got.status_code == 200
    assert got.json()["by_whom"] == USERNAME
    assert got.json()["uid"] == data["validation_status.uid"]
    # get_validation_status writes exactly these, the label from DEFAULT_VALIDATION_STATUSES
    assert set(got.json()) == {"timestamp", "uid", "by_whom", "label"}
    assert got.json()["label"] == "Not Approved" and isinstance(got.json()["timestamp"], int)
    # the listing carries the same object
    row = listing(http, base)["results"][0]
    assert row["_validation_status"] == got.json()


def test_an_unknown_status_is_400_naming_it(kobo, api):
    """set_validation_status: add_validation_status_to_instance fails -> 400 'Invalid validation
    status: `x`'."""
    http, base = api
    sub = kobo.add(xml(1))
    answer = http.patch(
        f"{base}/{sub.id}/validation_status/", json={"validation_status.uid": "approved"}
    )
    assert answer.status_code == 400
    assert answer.json() == {"detail": "Invalid validation status: `approved`"}


def test_delete_status_as_owner(kobo, api):
    """mixins._delete_status: DELETE 204, then GET 200 {}."""
    http, base = api
    sub = kobo.add(xml(1))
    url = f"{base}/{sub.id}/validation_status/"
    assert http.patch(url, data={"validation_status.uid": "validation_status_on_hold"}).ok
    assert http.delete(url).status_code == 204
    answer = http.get(url)
    assert (answer.status_code, answer.json()) == (200, {})


# --- SubmissionValidationStatusesApiTests ----------------------------------------------------


def test_edit_all_submission_validation_statuses_as_owner(kobo, api):
    http, base = api
    for n in (1, 2, 3):
        kobo.add(xml(n))
    url = f"{base}/validation_statuses/"
    data = {"payload": {"validation_status.uid": "validation_status_approved"}}
    # `confirm` must be sent when every submission is changed
    assert http.patch(url, json=data).status_code == 400
    data["payload"]["confirm"] = True
    answer = http.patch(url, json=data)
    assert answer.status_code == 200
    assert answer.json() == {"detail": "3 submissions have been updated"}
    for row in listing(http, base)["results"]:
        assert row["_validation_status"]["by_whom"] == USERNAME
        assert row["_validation_status"]["uid"] == "validation_status_approved"


def test_edit_some_submission_validation_statuses_as_owner(kobo, api):
    http, base = api
    subs = [kobo.add(xml(n)) for n in (1, 2)]
    data = {
        "payload": {
            "validation_status.uid": "validation_status_approved",
            "submission_ids": [subs[0].id],
        }
    }
    answer = http.patch(f"{base}/validation_statuses/", json=data)
    assert (answer.status_code, answer.json()) == (
        200,
        {"detail": "1 submissions have been updated"},
    )
    by_id = {r["_id"]: r["_validation_status"] for r in listing(http, base)["results"]}
    assert by_id[subs[0].id]["uid"] == "validation_status_approved"
    assert by_id[subs[1].id] == {}


def test_delete_some_statuses_as_owner(kobo, api):
    http, base = api
    subs = [kobo.add(xml(n)) for n in (1, 2)]
    url = f"{base}/validation_statuses/"
    everything = {"payload": {"validation_status.uid": "validation_status_not_approved"}}
    everything["payload"]["confirm"] = True
    assert http.patch(url, json=everything).status_code == 200
    data = {"payload": {"validation_status.uid": None, "submission_ids": [subs[0].id]}}
    answer = http.delete(url, json=data)
    assert (answer.status_code, answer.json()) == (
        200,
        {"detail": "1 submissions have been updated"},
    )
    by_id = {r["_id"]: r["_validation_status"] for r in listing(http, base)["results"]}
    assert by_id[subs[0].id] == {} and by_id[subs[1].id] != {}


def test_the_query_reaches_into_the_status_as_mongo_does(kobo, api):
    """set_validation_statuses' docstring: {"query": {"_validation_status.uid": ...}}."""
    http, base = api
    subs = [kobo.add(xml(n)) for n in (1, 2)]
    kobo.set_validation(subs[1].id, "validation_status_not_approved")
    query = json.dumps({"_validation_status.uid": "validation_status_not_approved"})
    rows = http.get(base + "/", params={"format": "json", "query": query}).json()["results"]
    assert [r["_id"] for r in rows] == [subs[1].id]
    query = json.dumps({"_id": {"$in": [subs[0].id, 9999]}})
    rows = http.get(base + "/", params={"format": "json", "query": query}).json()["results"]
    assert [r["_id"] for r in rows] == [subs[0].id]
    assert set(VALIDATION_STATUSES) == {
        "validation_status_not_approved",
        "validation_status_approved",
        "validation_status_on_hold",
    }


# --- SubmissionApiTests: deletion ------------------------------------------------------------


def test_delete_submission_as_owner(kobo, api):
    """mixins._delete_submission: DELETE 204, and the listing counts one fewer."""
    http, base = api
    subs = [kobo.add(xml(n)) for n in (1, 2)]
    before = listing(http, base)["count"]
    assert http.delete(f"{base}/{subs[0].id}/").status_code == 204
    assert listing(http, base)["count"] == before - 1
    assert http.get(f"{base}/{subs[0].id}/", params={"format": "xml"}).status_code == 404


def test_delete_not_existing_submission_as_owner(api):
    http, base = api
    answer = http.delete(f"{base}/9999/", headers={"accept": "application/json"})
    assert answer.status_code == 404


# --- SubmissionEditApiTests: an edit updates the same row ------------------------------------


def test_edit_submission_twice_keeps_the_row_and_moves_the_old_xml_to_its_history(kobo, api):
    """_simulate_edit_submission: the edit carries deprecatedID (the current instanceID) and
    rootUuid; kpi's create_instance updates the same Instance (same pk, same date_created)."""
    http, base = api
    first = kobo.add(xml(1))
    before = listing(http, base)["results"][0]
    kobo.add(xml(2, deprecated="uuid:v1", root="uuid:v1"))
    kobo.add(xml(3, deprecated="uuid:v2", root="uuid:v1"))
    rows = listing(http, base)["results"]
    assert len(rows) == 1
    row = rows[0]
    assert row["_id"] == before["_id"] == first.id
    assert row["_submission_time"] == before["_submission_time"]
    assert (row["meta/instanceID"], row["_uuid"]) == ("uuid:v3", "v3")
    assert row["meta/deprecatedID"] == "uuid:v2" and row["meta/rootUuid"] == "uuid:v1"
    assert [old for old, _xml in first.history] == ["uuid:v1", "uuid:v2"]
    current = http.get(f"{base}/{first.id}/", params={"format": "xml"})
    assert b"<deprecatedID>uuid:v2</deprecatedID>" in current.content


def test_an_edit_of_an_old_version_or_of_nothing_is_refused_as_kpi_does(kobo):
    kobo.add(xml(1))
    kobo.add(xml(2, deprecated="uuid:v1"))
    with pytest.raises(KoboRefused, match="deprecatedID refers to an old version"):
        kobo.add(xml(3, deprecated="uuid:v1"))
    with pytest.raises(KoboRefused, match="deprecatedID not found"):
        kobo.add(xml(4, deprecated="uuid:never"))


# --- xform_instance_parser.get_submission_date_from_xml --------------------------------------


def test_submission_date_on_the_root_back_dates_the_submission_time(kobo, api):
    http, base = api
    kobo.add(xml(1))
    late = kobo.add(xml(2, at="2026-11-19T07:30:00+00:00"))
    assert late.submission_time == "2026-11-19T07:30:00"
    sort = json.dumps({"_submission_time": 1, "_id": 1})
    rows = http.get(base + "/", params={"format": "json", "sort": sort}).json()["results"]
    assert [r["_id"] for r in rows] == [late.id, late.id - 1]
