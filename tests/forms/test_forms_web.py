"""The forms pages: administrators list forms, publish by upload and read a form's versions."""

from __future__ import annotations

import io

import pytest
from sqlalchemy import func, select

from clms.db import session_scope
from clms.models import Form, FormVersion
from forms.publish import XLSFORM_DIR
from tests.conftest import PASSWORD, SHARED
from tests.forms.test_forms_publish import BAD_SPREADSHEETS, without_public_key


def login(client, username):
    response = client.post("/login", data={"username": username, "password": PASSWORD})
    assert response.status_code == 302, response.data
    return response


def upload(client, filename, data):
    return client.post(
        "/forms/publish",
        data={"file": (io.BytesIO(data), filename)},
        content_type="multipart/form-data",
    )


def form_count(app) -> int:
    with session_scope(app) as s:
        return s.scalar(select(func.count(Form.id)))


def test_admin_publishes_by_upload(app, client, make_user):
    make_user("ada", "admin")
    login(client, "ada")
    page = client.get("/forms")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'enctype="multipart/form-data"' in html and 'name="file"' in html
    assert '<label for="file">' in html and 'action="/forms/publish"' in html

    source = (XLSFORM_DIR / "clms_household_visit.md").read_bytes()
    response = upload(client, "clms_household_visit.md", source)
    assert response.status_code == 302
    assert response.headers["Location"] == "/forms/clms_household_visit"
    detail = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Published clms_household_visit version 2026112201." in detail
    assert "villages.csv" in detail and "suppliers.csv" in detail
    assert ">live<" in detail

    listing = client.get("/forms").get_data(as_text=True)
    assert "clms_household_visit" in listing and "CLMS household visit" in listing
    with session_scope(app) as s:
        version = s.scalar(select(FormVersion))
        assert version.published_by_id is not None and version.source == source


def test_pyxform_warnings_are_shown(app, client, make_user):
    make_user("ada", "admin")
    login(client, "ada")
    path = SHARED / "xlsforms" / "xlsform_spec_test.xlsx"
    refused = upload(client, path.name, path.read_bytes())  # its key is not held here
    assert refused.status_code == 400 and "holds no key for form" in refused.get_data(as_text=True)
    response = upload(client, path.name, without_public_key(path.read_bytes()))
    assert response.status_code == 302
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert 'class="flash warning"' in page
    assert "Choices should have a label" in page
    assert "no version" in page  # the assigned version is a warning too


def test_bad_file_shows_the_error_and_publishes_nothing(app, client, make_user):
    make_user("ada", "admin")
    login(client, "ada")
    response = upload(client, "survey.xlsx", BAD_SPREADSHEETS["unknown_type"][0])
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert 'class="flash error"' in html and 'role="alert"' in html
    assert "Sheet &#39;survey&#39;, row 3: unknown question type &#39;txet&#39;" in html
    garbage = upload(client, "form.xlsx", b"\x00not a workbook at all")
    assert garbage.status_code == 400 and "is not a spreadsheet" in garbage.get_data(as_text=True)
    missing = client.post("/forms/publish", data={}, content_type="multipart/form-data")
    assert missing.status_code == 400 and "Choose an XLSForm" in missing.get_data(as_text=True)
    assert form_count(app) == 0


def test_same_version_again_is_refused_on_the_page(app, client, make_user):
    make_user("ada", "admin")
    login(client, "ada")
    source = (XLSFORM_DIR / "clms_report.md").read_bytes()
    assert upload(client, "clms_report.md", source).status_code == 302
    again = upload(client, "clms_report.md", source)
    assert again.status_code == 400
    assert "does not increase on the live version" in again.get_data(as_text=True)


def test_unknown_form_is_404(client, make_user):
    make_user("ada", "admin")
    login(client, "ada")
    assert client.get("/forms/nope").status_code == 404


@pytest.mark.parametrize("role", ["monitor", "officer", "supervisor", "provider"])
def test_other_roles_are_forbidden(client, make_user, places, role):
    make_user("someone", role, areas=["CI-D1"] if role != "provider" else [])
    login(client, "someone")
    assert client.get("/forms").status_code == 403
    assert client.get("/forms/clms_report").status_code == 403
    assert upload(client, "x.md", b"| survey |").status_code == 403


def test_anonymous_is_sent_to_login(client):
    response = client.get("/forms")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=/forms")
    assert upload(client, "x.md", b"| survey |").status_code == 302
