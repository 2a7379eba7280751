"""The pages of a withdrawal (issue 18): the flag on the case, acknowledged with a note; the case
on the officer's home; the withdrawn alert; the submissions their server withdrew, listed with
their reason and date. In English and in French."""

from __future__ import annotations

from sqlalchemy import select

from clms.cases.opening import open_case
from clms.db import session_scope
from clms.intake.withdraw import withdraw_submission
from clms.models import Alert, AuditEvent, CaseWithdrawal, Submission, User
from tests.conftest import PASSWORD
from tests.submissions import child, household_xml

WORKING = {"work_activities": "own_farm", "work_hours_7d": 6}


def _login(client, username):
    client.post("/logout")
    answer = client.post("/login", data={"username": username, "password": PASSWORD})
    assert answer.status_code == 302


def _withdrawn_world(app, phone, version, process, make_user) -> dict:
    """Two children found working: one's alert became olga's case, the other's stays an alert;
    then ODK Central deleted both submissions."""
    make_user("olga", "officer", areas=["CI-D1"])
    make_user("ada", "admin")
    for n, code in ((1, "HH-V1-001"), (2, "HH-V1-002")):
        kid = child(child_name=f"Child {n}", age=10, **WORKING)
        xml = household_xml(version, instance_id=f"uuid:gone-{n}", household_code=code,
                            children=[kid])  # fmt: skip
        assert phone.submit(xml).status_code == 201
    process()
    with session_scope(app) as s:
        olga = s.scalar(select(User).where(User.username == "olga"))
        alerts = s.scalars(select(Alert).order_by(Alert.id)).all()
        case = open_case(s, olga, alerts[0].id)
        ids = {"case": case.id, "alert": alerts[1].id}
        for sub in s.scalars(select(Submission)):
            sub.source = "central"
    with session_scope(app) as s:
        for n in (1, 2):
            sub = s.scalar(select(Submission).where(Submission.instance_id == f"uuid:gone-{n}"))
            withdraw_submission(s, sub.id, "deleted")
    return ids


def test_the_case_shows_the_flag_and_the_officer_acknowledges_it(
    app, client, phone, version, process, make_user
):
    ids = _withdrawn_world(app, phone, version, process, make_user)
    _login(client, "olga")
    page = client.get(f"/cases/{ids['case']}").get_data(as_text=True)
    assert "A submission behind this case was withdrawn" in page
    assert "Submission uuid:gone-1: deleted on ODK Central" in page
    assert "Acknowledge the withdrawal" in page
    home = client.get("/").get_data(as_text=True)
    assert "Your cases whose source was withdrawn: read the flag" in home

    client.post("/language", data={"locale": "fr", "next": "/"})
    page = client.get(f"/cases/{ids['case']}").get_data(as_text=True)
    assert "Une soumission à l’origine de ce dossier a été retirée" in page
    assert "Soumission uuid:gone-1 : supprimée sur ODK Central" in page
    client.post("/language", data={"locale": "en", "next": "/"})

    with session_scope(app) as s:
        flag_id = s.scalar(select(CaseWithdrawal.id))
    url = f"/cases/{ids['case']}/withdrawals/{flag_id}/acknowledge"
    refused = client.post(url, data={"note": "   "}, follow_redirects=True)
    assert "is required: say what the withdrawal means for the case" in refused.get_data(
        as_text=True
    )
    with session_scope(app) as s:
        assert s.get(CaseWithdrawal, flag_id).acknowledged_at is None
    done = client.post(url, data={"note": "Child seen at home: still working"})
    assert done.status_code == 303
    page = client.get(f"/cases/{ids['case']}").get_data(as_text=True)
    assert "Read by olga" in page and "Child seen at home: still working" in page
    assert "Acknowledge the withdrawal" not in page
    assert "Your cases whose source was withdrawn" not in client.get("/").get_data(as_text=True)
    with session_scope(app) as s:
        assert s.scalar(
            select(AuditEvent.actor).where(AuditEvent.action == "case.source_withdrawal_read")
        ) == "olga"  # fmt: skip


def test_the_withdrawn_alert_says_why_in_english_and_french(
    app, client, phone, version, process, make_user
):
    ids = _withdrawn_world(app, phone, version, process, make_user)
    _login(client, "olga")
    page = client.get(f"/alerts/{ids['alert']}").get_data(as_text=True)
    assert "Withdrawn at the source" in page
    assert "deleted on ODK Central, submission uuid:gone-2" in page
    listed = client.get("/alerts?status=withdrawn").get_data(as_text=True)
    assert f"/alerts/{ids['alert']}" in listed
    client.post("/language", data={"locale": "fr", "next": "/"})
    page = client.get(f"/alerts/{ids['alert']}").get_data(as_text=True)
    assert "Retirée à la source" in page


def test_the_submissions_list_shows_those_withdrawn_with_their_reason_and_date(
    app, client, phone, version, process, make_user
):
    _withdrawn_world(app, phone, version, process, make_user)
    _login(client, "ada")
    page = client.get("/submissions?status=withdrawn").get_data(as_text=True)
    assert "2 submissions" in page
    assert page.count("withdrawn: deleted,") == 2
    assert 'aria-current="page">Withdrawn by their server' in page
    with session_scope(app) as s:
        sub_id = s.scalar(select(Submission.id).where(Submission.instance_id == "uuid:gone-1"))
    detail = client.get(f"/submissions/{sub_id}").get_data(as_text=True)
    assert "its server took it back" in detail
    client.post("/language", data={"locale": "fr", "next": "/"})
    page = client.get("/submissions?status=withdrawn").get_data(as_text=True)
    assert "Retirées par leur serveur" in page
    assert page.count("retirée : supprimée,") == 2
