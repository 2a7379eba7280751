"""The review of submissions held for review: the queue, the plain reasons, the questions and
answers in the reader's language, and the decisions (correct, accept, reject) through the
processing job, with who may do what."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from clms.db import session_scope
from clms.models import (
    Area,
    AuditEvent,
    ChildVisit,
    Classification,
    Submission,
    SubmissionReview,
    User,
    UserScope,
    Village,
    Visit,
)
from forms import decisions
from forms.review import reviewers_for
from tests.conftest import PASSWORD
from tests.submissions import VILLAGE_GPS, child, household_xml

WORKING = {"work_activities": "own_farm", "work_hours_7d": 10, "night_work": "no",
           "injured_12m": "no"}  # fmt: skip


@pytest.fixture
def people(app, make_user):
    make_user("olga", "officer", areas=["CI-D1"])
    make_user("omar", "officer", areas=["CI-D2"])
    make_user("sue", "supervisor", areas=["CI-R1"])
    make_user("ada", "admin")
    # an administrator also given an officer's scope (the user commands do not give one yet;
    # domain.md: child data only then): a scope row written directly
    adam = make_user("adam", "admin")
    with session_scope(app) as s:
        area = s.scalar(select(Area.id).where(Area.code == "CI-D1"))
        s.add(UserScope(user_id=adam, area_id=area))
    make_user("pat", "provider")
    make_user("bea", "brand", brand="BRAND-A")


def login(client, username: str) -> None:
    client.post("/logout")
    answer = client.post("/login", data={"username": username, "password": PASSWORD})
    assert answer.status_code == 302, username


def held(app) -> Submission:
    with session_scope(app) as s:
        sub = s.scalar(select(Submission).where(Submission.status == "review"))
        assert sub is not None
        s.expunge(sub)
        return sub


def one(app, model, *where):
    with session_scope(app) as s:
        row = s.scalar(select(model).where(*where))
        if row is not None:
            s.expunge(row)
        return row


def count(app, model, *where) -> int:
    with session_scope(app) as s:
        return s.scalar(select(func.count()).select_from(model).where(*where))


def audit_actions(app, target: str) -> list[str]:
    with session_scope(app) as s:
        return list(
            s.scalars(
                select(AuditEvent.action)
                .where(AuditEvent.target == target)
                .order_by(AuditEvent.seq)
            )
        )


# --- correct --------------------------------------------------------------------------------------


def test_an_unknown_choice_corrected_is_a_new_version_processed_again(
    app, client, phone, version, process, people
):
    xml = household_xml(version, children=[child(**WORKING, hazards="sharp_tools lava")])
    assert phone.submit(xml).status_code == 201
    assert process().review == 1
    sub = held(app)
    [reason] = sub.review_reasons
    assert (reason["path"], reason["code"]) == ("child[1]/hazards", "unknown_choice")

    login(client, "olga")
    page = client.get(f"/submissions/{sub.id}").get_data(as_text=True)
    assert "Child 1" in page and "While working, did the child do any of these tasks" in page
    # the reason, in plain words, next to the question it concerns
    assert "“lava” is not one of the form&#39;s choices" in page
    assert "Using a machete or cutlass" in page  # the choice's label, not its code

    answer = client.post(
        f"/submissions/{sub.id}/correct",
        data={"field": "child[1]/hazards", "multi": "1",
              "value_choices": ["sharp_tools", "heavy_loads"], "reason": "Monitor's typo, called"},
    )  # fmt: skip
    assert answer.status_code == 303
    new = one(app, Submission, Submission.deprecated_id == sub.instance_id)
    assert answer.headers["Location"].endswith(f"/submissions/{new.id}")
    old = one(app, Submission, Submission.id == sub.id)
    assert old.xml == xml and not old.current and old.status == "corrected"  # bytes kept
    assert (new.status, new.current, new.logical_id) == ("received", True, sub.logical_id)
    assert new.instance_id.startswith("uuid:") and new.instance_id != sub.instance_id
    assert b"<hazards>sharp_tools heavy_loads</hazards>" in new.xml
    assert new.submitter_id == sub.submitter_id and new.source == "review"

    result = process()  # the processing job takes the new version
    assert (result.parsed, result.review) == (1, 0)
    with session_scope(app) as s:
        visits = s.scalars(select(Visit).order_by(Visit.id)).all()
        # the held version's visit becomes history, the corrected one is the current visit
        assert [(v.submission_id, v.current) for v in visits] == [(sub.id, False), (new.id, True)]
        cv = s.scalar(select(ChildVisit).where(ChildVisit.visit_id == visits[1].id))
        assert cv.hazards == ["sharp_tools", "heavy_loads"]
        assert s.scalar(select(Classification).where(Classification.child_visit_id == cv.id))
        review = s.scalar(select(SubmissionReview))
        assert (review.action, review.field, review.old_value, review.new_value) == (
            "correct", "child[1]/hazards", "sharp_tools lava", "sharp_tools heavy_loads"
        )  # fmt: skip
        assert review.new_submission_id == new.id and review.actor.username == "olga"
    assert "submission.correct" in audit_actions(app, f"submission:{sub.logical_id}")

    history = client.get(f"/submissions/{new.id}").get_data(as_text=True)
    assert "Corrected by olga" in history and "Monitor&#39;s typo, called" in history
    assert "“sharp_tools lava” → “sharp_tools heavy_loads”" in history


def test_a_far_gps_point_corrected_by_choosing_the_village(
    app, client, phone, version, process, people
):
    # the household is in V3's place but the monitor chose V1 (40 km away): held for the distance
    phone.submit(
        household_xml(version, village="V1", gps=VILLAGE_GPS["V2"].replace("5.701", "5.95"))
    )
    process()
    sub = held(app)
    assert [r["code"] for r in sub.review_reasons] == ["far_gps"]
    login(client, "olga")
    page = client.get(f"/submissions/{sub.id}").get_data(as_text=True)
    assert "km from village V1, the village chosen in the form" in page
    # a village code that does not exist is refused, saying why
    refused = client.post(f"/submissions/{sub.id}/correct",
                          data={"field": "village", "value": "NOPE", "reason": "x"},
                          follow_redirects=True)  # fmt: skip
    assert "not the code of a known village" in refused.get_data(as_text=True)
    assert count(app, Submission) == 1
    client.post(
        f"/submissions/{sub.id}/correct",
        data={"field": "gps", "value": VILLAGE_GPS["V1"], "reason": "GPS taken again"},
    )
    assert process().parsed == 1
    with session_scope(app) as s:
        visit = s.scalar(select(Visit).where(Visit.current.is_(True)))
        assert visit.village.code == "V1" and visit.gps_distance_km < 1


def test_a_correction_is_refused_without_a_reason_or_with_the_same_value(
    app, client, phone, version, process, people
):
    phone.submit(household_xml(version, children=[child(**WORKING, hazards="lava")]))
    process()
    sub = held(app)
    login(client, "olga")
    page = client.post(f"/submissions/{sub.id}/correct",
                       data={"field": "child[1]/hazards", "value": "sharp_tools", "reason": " "},
                       follow_redirects=True).get_data(as_text=True)  # fmt: skip
    assert "a reason is required for a correction" in page
    page = client.post(f"/submissions/{sub.id}/correct",
                       data={"field": "child[1]/hazards", "value": "lava", "reason": "r"},
                       follow_redirects=True).get_data(as_text=True)  # fmt: skip
    assert "not one of the form&#39;s choices" in page
    page = client.post(f"/submissions/{sub.id}/correct",
                       data={"field": "meta", "value": "x", "reason": "r"},
                       follow_redirects=True).get_data(as_text=True)  # fmt: skip
    assert "no answer “meta” that can be corrected" in page
    page = client.post(f"/submissions/{sub.id}/correct",
                       data={"field": "child[1]/age", "value": "10", "reason": "r"},
                       follow_redirects=True).get_data(as_text=True)  # fmt: skip
    assert "the same as the one received" in page
    assert count(app, Submission) == 1 and count(app, SubmissionReview) == 0


# --- accept ---------------------------------------------------------------------------------------


def test_a_far_gps_point_accepted_goes_on_and_is_not_held_again(
    app, client, phone, version, process, people
):
    phone.submit(household_xml(version, village="V1", gps=VILLAGE_GPS["V3"]))
    process()
    sub = held(app)
    login(client, "olga")
    answer = client.post(f"/submissions/{sub.id}/accept", data={"reason": "Farm across river"})
    assert answer.status_code == 303
    done = one(app, Submission, Submission.id == sub.id)
    assert (done.status, done.accepted_reasons) == ("parsed", ["far_gps"])
    assert process().processed == 0  # its visit was saved when it was held: nothing twice
    assert count(app, Visit, Visit.current.is_(True)) == 1
    assert "submission.accept" in audit_actions(app, f"submission:{sub.logical_id}")
    # posted twice (or by a second reviewer): the second is told, nothing changes
    again = client.post(f"/submissions/{sub.id}/accept", data={}, follow_redirects=True)
    assert "no longer waits for a decision" in again.get_data(as_text=True)
    assert count(app, SubmissionReview) == 1


def test_too_many_children_accepted_are_saved_by_the_processing(
    app, client, phone, version, process, people
):
    app.config["MAX_CHILDREN_PER_SUBMISSION"] = 2
    kids = [child(child_name=f"Child {n}", age=6 + n) for n in range(3)]
    phone.submit(household_xml(version, children=kids))
    process()
    sub = held(app)
    assert [r["code"] for r in sub.review_reasons] == ["too_many_children"]
    assert count(app, ChildVisit) == 0
    login(client, "olga")
    client.post(f"/submissions/{sub.id}/accept", data={})
    assert one(app, Submission, Submission.id == sub.id).status == "received"
    assert process().parsed == 1  # the limit is lifted for this submission only
    assert count(app, ChildVisit) == 3
    assert one(app, Submission, Submission.id == sub.id).status == "parsed"


def test_what_would_keep_a_wrong_answer_cannot_be_accepted(
    app, client, phone, version, process, people
):
    phone.submit(household_xml(version, children=[child(**WORKING, hazards="lava")]))
    process()
    sub = held(app)
    login(client, "olga")
    page = client.get(f"/submissions/{sub.id}").get_data(as_text=True)
    assert "It cannot be accepted as it is" in page
    page = client.post(f"/submissions/{sub.id}/accept", data={},
                       follow_redirects=True).get_data(as_text=True)  # fmt: skip
    assert "cannot be accepted as it is" in page and "Unknown choice" in page
    assert one(app, Submission, Submission.id == sub.id).status == "review"


# --- reject ---------------------------------------------------------------------------------------


def test_a_rejected_submission_is_final_and_never_processed(
    app, client, phone, version, process, people
):
    phone.submit(household_xml(version, village="NOPE", household_code="HH-X"))
    process()
    sub = held(app)
    login(client, "olga")
    # not confirmed, then without a reason: refused
    client.post(f"/submissions/{sub.id}/reject", data={"reason": "Test sent by mistake"})
    client.post(f"/submissions/{sub.id}/reject", data={"reason": "", "confirm": "yes"})
    assert one(app, Submission, Submission.id == sub.id).status == "review"
    client.post(f"/submissions/{sub.id}/reject",
                data={"reason": "Test sent by mistake", "confirm": "yes"})  # fmt: skip
    done = one(app, Submission, Submission.id == sub.id)
    assert done.status == "rejected" and done.xml == sub.xml
    assert count(app, Visit, Visit.current.is_(True)) == 0  # what was saved stops counting
    assert process().processed == 0
    assert "submission.reject" in audit_actions(app, f"submission:{sub.logical_id}")
    queue = client.get("/review").get_data(as_text=True)
    assert "Nothing waits for a decision." in queue
    rejected = client.get("/review?state=rejected").get_data(as_text=True)
    assert f"/submissions/{sub.id}" in rejected
    page = client.get(f"/submissions/{sub.id}").get_data(as_text=True)
    assert "Rejected by olga" in page and "Test sent by mistake" in page
    assert "Make the corrected version" not in page and 'action="/submissions/' not in page


def test_two_decisions_on_one_version_exactly_one_wins(app, phone, version, process, people):
    phone.submit(household_xml(version, village="V1", gps=VILLAGE_GPS["V3"]))
    process()
    sub = held(app)
    with session_scope(app) as s:
        olga = s.scalar(select(User).where(User.username == "olga"))
        decisions.accept(s, olga, sub.id)
        with pytest.raises(decisions.ReviewError) as refused:
            decisions.reject(s, olga, sub.id, "too late")
        assert refused.value.key == "review.not_held"


# --- who sees and does what -----------------------------------------------------------------------


def test_every_role(app, client, phone, version, process, people):
    phone.submit(household_xml(version, village="V1", gps=VILLAGE_GPS["V3"]))
    process()
    sub = held(app)
    detail, raw = f"/submissions/{sub.id}", f"/submissions/{sub.id}/xml"

    for username in ("awa", "pat", "bea"):  # monitor, provider, brand: no such pages
        login(client, username)
        assert client.get("/review").status_code == 403
        assert client.get(detail).status_code == 403
        assert client.post(f"{detail}/accept", data={}).status_code == 403

    login(client, "omar")  # an officer of another department: not even that it exists
    assert client.get(detail).status_code == 404 and client.get(raw).status_code == 404
    assert client.post(f"{detail}/accept", data={}).status_code == 404

    login(client, "ada")  # an administrator: the queue and the reasons, never the answers
    assert f"/submissions/{sub.id}" in client.get("/review").get_data(as_text=True)
    page = client.get(detail).get_data(as_text=True)
    assert "GPS point far from the village" in page and "Kouassi Yao" not in page
    assert "km from village" not in page  # the facts a reason quotes are the answers
    assert "Accept as it is" not in page
    # behind a link and a reason (break-glass), recorded as a read with the reason
    asked = client.get(raw)
    assert asked.status_code == 200 and b"Kouassi Yao" not in asked.data
    assert b"Why do you need to read it?" in asked.data
    assert "submission.read_raw" not in audit_actions(app, f"submission:{sub.instance_id}")
    refused = client.post(raw, data={"reason": "   "})
    assert refused.status_code == 400 and b"Kouassi Yao" not in refused.data
    opened = client.post(raw, data={"reason": "The form's XML fails to parse"})
    assert opened.status_code == 200 and b"Kouassi Yao" in opened.data
    with session_scope(app) as s:
        [entry] = s.scalars(
            select(AuditEvent).where(AuditEvent.action == "submission.read_raw")
        ).all()
        assert (entry.actor, entry.reason) == ("ada", "The form's XML fails to parse")
    assert client.post(f"{detail}/accept", data={}).status_code == 403
    assert one(app, Submission, Submission.id == sub.id).status == "review"

    login(client, "adam")  # an administrator given an officer's scope reads the answers
    assert "Kouassi Yao" in client.get(detail).get_data(as_text=True)

    login(client, "sue")  # the supervisor of the region reads and decides
    page = client.get(detail).get_data(as_text=True)
    assert "Kouassi Yao" in page and "Accept as it is" in page
    assert "submission.read" in audit_actions(app, f"submission:{sub.instance_id}")
    client.post(f"{detail}/accept", data={})
    assert one(app, Submission, Submission.id == sub.id).status == "parsed"

    with session_scope(app) as s:
        who = [u.username for u in reviewers_for(s, s.get(Submission, sub.id))]
        assert who == ["olga", "sue"]


def test_pages_in_french(app, client, phone, version, process, people):
    phone.submit(household_xml(version, children=[child(**WORKING, hazards="lava")]))
    process()
    sub = held(app)
    login(client, "olga")
    client.post("/language", data={"locale": "fr", "next": "/"})
    page = client.get(f"/submissions/{sub.id}").get_data(as_text=True)
    assert "Enfant 1" in page and "Pendant son travail, l&#39;enfant a-t-il" in page
    assert "Questions et réponses" in page and "Corriger une réponse" in page
    assert "« lava » n&#39;est pas un des choix du formulaire" in page
    queue = client.get("/review").get_data(as_text=True)
    assert "Choix inconnu (enfant 1)" in queue


def test_old_reasons_without_a_code_still_show(app, client, phone, version, process, people):
    phone.submit(household_xml(version, village="NOPE", household_code="HH-X"))
    process()
    sub = held(app)
    with session_scope(app) as s:
        s.get(Submission, sub.id).review_reasons = [
            {"path": "village", "value": "NOPE", "problem": "unknown village code"},
            {"path": "child[1]/odd", "value": "?", "problem": "something never seen"},
        ]
    login(client, "ada")
    home = client.get("/").get_data(as_text=True)
    assert "Unknown village, and 1 more" in home and "/review" in home
    login(client, "olga")
    page = client.get(f"/submissions/{sub.id}").get_data(as_text=True)
    assert "is not the code of a known village" in page  # the code found from the old words
    assert "something never seen" in page  # shown as written


def test_the_queue_is_oldest_first_and_filters_by_reason(
    app, client, phone, version, process, people
):
    phone.submit(household_xml(version, village="NOPE", household_code="HH-1"))
    phone.submit(household_xml(version, village="V1", gps=VILLAGE_GPS["V3"],
                               household_code="HH-2"))  # fmt: skip
    process()
    with session_scope(app) as s:
        first, second = s.scalars(select(Submission.id).order_by(Submission.id)).all()
    login(client, "olga")
    page = client.get("/review").get_data(as_text=True)
    assert page.index(f"/submissions/{first}") < page.index(f"/submissions/{second}")
    far = client.get("/review?reason=far_gps").get_data(as_text=True)
    assert f"/submissions/{second}" in far and f'/submissions/{first}"' not in far
    assert "V1" in far  # the village the visit was saved in


def test_erasing_a_child_removes_the_answers_kept_by_a_correction(
    app, client, phone, version, process, people
):
    import datetime as dt

    from clms.dataprotection.erasure import erase_child
    from clms.models import Child

    phone.submit(household_xml(version, children=[child(child_name="Adjoua Kouasi",
                                                        **WORKING, hazards="lava")]))  # fmt: skip
    process()
    sub = held(app)
    login(client, "olga")
    client.post(f"/submissions/{sub.id}/correct",
                data={"field": "child[1]/child_name", "value": "Adjoua Kouassi",
                      "reason": "Name misspelt by Adjoua Kouassi's teacher"})  # fmt: skip
    with session_scope(app) as s:
        assert s.scalar(select(SubmissionReview.new_value)) == "Adjoua Kouassi"
        uid = s.scalar(select(Child.child_uid))
        ada = s.scalar(select(User).where(User.username == "ada"))
        erase_child(s, ada, uid, reason="Guardian's request", now=dt.datetime.now(dt.UTC))
    with session_scope(app) as s:
        review = s.scalar(select(SubmissionReview))
        assert (review.old_value, review.new_value, review.reason) == (None, None, "[removed]")


@pytest.mark.committing  # two reviewers in threads, each with a connection of its own
def test_two_reviewers_at_once_exactly_one_decides(app, phone, version, process, people):
    import threading

    from clms.errors import Problem

    phone.submit(household_xml(version, village="V1", gps=VILLAGE_GPS["V3"]))
    process()
    sub = held(app)
    maker = app.extensions["clms_sessionmaker"]
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def decide(username: str, operation, *args) -> None:
        session = maker()
        try:
            me = session.scalar(select(User).where(User.username == username))
            session.commit()
            barrier.wait()
            operation(session, me, sub.id, *args)
            session.commit()
            outcomes.append("ok")
        except Problem as p:
            session.rollback()
            outcomes.append(p.key)
        finally:
            session.close()

    threads = [
        threading.Thread(target=decide, args=("olga", decisions.accept)),
        threading.Thread(target=decide, args=("sue", decisions.reject, "duplicate")),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(outcomes) == ["ok", "review.not_held"], outcomes
    assert count(app, SubmissionReview) == 1
    status = one(app, Submission, Submission.id == sub.id).status
    action = one(app, SubmissionReview, SubmissionReview.submission_id == sub.id).action
    assert (status, action) in (("parsed", "accept"), ("rejected", "reject"))


def test_an_unknown_village_corrected_from_the_reviewers_villages(
    app, client, phone, version, process, people
):
    phone.submit(household_xml(version, village="V9", gps=VILLAGE_GPS["V2"]))
    process()
    sub = held(app)
    assert [r["code"] for r in sub.review_reasons] == ["unknown_village"]
    login(client, "olga")
    page = client.get(f"/submissions/{sub.id}?field=village").get_data(as_text=True)
    assert '<option value="V2"' in page and '<option value="V3"' not in page  # her villages
    client.post(
        f"/submissions/{sub.id}/correct",
        data={"field": "village", "value": "V2", "reason": "V9 is not a code"},
    )
    assert process().parsed == 1
    with session_scope(app) as s:
        visit = s.scalar(select(Visit).where(Visit.current.is_(True)))
        assert visit.village.code == "V2" and visit.submission_id != sub.id


def test_the_reviewers_find_held_submissions_on_their_home_page(
    app, client, phone, version, process, people
):
    phone.submit(household_xml(version, children=[child(**WORKING, hazards="lava")]))
    process()
    sub = held(app)
    for username in ("olga", "sue"):
        login(client, username)
        home = client.get("/").get_data(as_text=True)
        assert "Submissions held for review" in home and f"/submissions/{sub.id}" in home
        assert "Unknown choice (child 1)" in home and 'href="/review"' in home
    login(client, "omar")  # not his villages
    assert f"/submissions/{sub.id}" not in client.get("/").get_data(as_text=True)


def test_a_monitor_of_two_departments_does_not_open_one_to_the_others_officers(
    app, client, phone, version, process, people
):
    """Awa also covers V3 (CI-D2, Omar's): her visit placed in V1 is Olga's alone; only what
    is placed in no village (an unknown code) reaches every officer sharing one of her
    villages."""
    from forms.review import get_submission, may_read_content

    with session_scope(app) as s:
        awa = s.scalar(select(User).where(User.username == "awa"))
        s.add(UserScope(user_id=awa.id, village_id=s.scalar(select(Village.id).where(
            Village.code == "V3"))))  # fmt: skip
    phone.submit(household_xml(version, village="V1", gps=VILLAGE_GPS["V3"]))  # far: held
    process()
    placed = held(app)
    phone.submit(household_xml(version, village="V9", gps=VILLAGE_GPS["V2"]))  # unknown code
    process()
    with session_scope(app) as s:
        unplaced = s.scalar(
            select(Submission).where(Submission.status == "review", Submission.id != placed.id)
        )
        omar = s.scalar(select(User).where(User.username == "omar"))
        olga = s.scalar(select(User).where(User.username == "olga"))
        placed_row = s.get(Submission, placed.id)
        assert get_submission(s, omar, placed.id) is None
        assert not may_read_content(s, omar, placed_row)
        assert [u.username for u in reviewers_for(s, placed_row)] == ["olga", "sue"]
        assert get_submission(s, olga, placed.id) is not None
        # placed nowhere: it reaches the officers of every village of its monitor
        assert get_submission(s, omar, unplaced.id) is not None
        assert {u.username for u in reviewers_for(s, unplaced)} == {"olga", "omar", "sue"}
        unplaced_id = unplaced.id
    login(client, "omar")
    assert client.get(f"/submissions/{placed.id}").status_code == 404
    assert client.get(f"/submissions/{placed.id}/xml").status_code == 404
    answer = client.post(f"/submissions/{placed.id}/accept", data={"reason": "not mine"})
    assert answer.status_code == 404
    assert count(app, SubmissionReview) == 0
    assert client.get(f"/submissions/{unplaced_id}").status_code == 200


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("end", "not-a-date-at-all"),  # ODK's metadata, recorded by the phone
        ("username", "monitor05"),
        ("deviceid", "collect:FORGED"),
        ("start", "2099-01-01T00:00:00Z"),
        ("secretfield", "x"),  # not a question of the form
        ("child", "bogus"),  # a repeat, not an answer
    ],
)
def test_only_a_question_of_the_form_is_corrected(
    app, client, phone, version, process, people, field, value
):
    phone.submit(household_xml(version, village="V9", gps=VILLAGE_GPS["V2"]))
    process()
    sub = held(app)
    login(client, "olga")
    answer = client.post(
        f"/submissions/{sub.id}/correct",
        data={"field": field, "value": value, "reason": "r"},
        follow_redirects=True,
    )
    assert "Corrected" not in answer.get_data(as_text=True)
    assert count(app, Submission) == 1 and count(app, SubmissionReview) == 0


@pytest.mark.parametrize("value", ["a\x0bb", "a\x1fb", "a\x00b"])
def test_a_control_character_in_a_correction_is_refused_not_a_server_error(
    app, client, phone, version, process, people, value
):
    phone.submit(household_xml(version, village="V9", gps=VILLAGE_GPS["V2"]))
    process()
    sub = held(app)
    login(client, "olga")
    answer = client.post(
        f"/submissions/{sub.id}/correct",
        data={"field": "household_head", "value": value, "reason": "typo"},
        follow_redirects=True,
    )
    # the page, saying why (a NUL is refused before, by the check of every form's input)
    said = "NUL character" if "\x00" in value else "control character"
    assert answer.status_code == (400 if "\x00" in value else 200)
    assert said in answer.get_data(as_text=True)
    assert count(app, Submission) == 1


def test_a_reviewer_places_a_visit_only_in_one_of_their_villages(
    app, client, phone, version, process, people
):
    phone.submit(household_xml(version, village="V9", gps=VILLAGE_GPS["V2"]))
    process()
    sub = held(app)
    login(client, "olga")  # CI-D1: V1 and V2
    answer = client.post(
        f"/submissions/{sub.id}/correct",
        data={"field": "village", "value": "V3", "reason": "moved to Omar's village"},
        follow_redirects=True,
    )
    assert "not one of your villages" in answer.get_data(as_text=True)
    assert count(app, Submission) == 1 and count(app, SubmissionReview) == 0


def test_a_decision_settles_the_notices_that_the_submission_waits(
    app, client, phone, version, process, people
):
    from clms.models import Notice

    phone.submit(household_xml(version, village="V1", gps=VILLAGE_GPS["V3"]))
    process()
    sub = held(app)
    with session_scope(app) as s:
        told = s.scalars(select(Notice).where(Notice.kind == "submission_held")).all()
        assert {n.subject_id for n in told} == {sub.id} and all(n.read_at is None for n in told)
    login(client, "olga")
    client.post(f"/submissions/{sub.id}/accept", data={"reason": "Farm across the river"})
    with session_scope(app) as s:
        told = s.scalars(select(Notice).where(Notice.kind == "submission_held")).all()
        assert told and all(n.read_at is not None for n in told)
