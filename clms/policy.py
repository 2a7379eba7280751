"""Who may do what: the declared policy of every route, for every role and every kind of person.

:data:`POLICY` maps each endpoint to what each identity of :data:`IDENTITIES` gets from it. The
views enforce it (``clms.auth.allow`` and the scope checks of each operation);
``tests/people/test_policy.py`` walks every registered route with every identity, against a world in
which the objects a route names (an alert, a case, a child, a referral, a submission...) lie in
CI-D1 and belong to brand A and to the provider SCH-GN, and checks each answer against this
table. A route missing from the table fails that test: a new page is declared here first.

Identities
    ``anonymous``; ``monitor`` (CI-D1); ``officer`` (CI-D1, the objects' area);
    ``officer_other_area`` (CI-D2); ``supervisor`` (CI-R1, above both); ``provider`` (SCH-GN, the
    referral's provider); ``provider_other`` (another organisation); ``brand`` (brand A, whose
    chain holds the objects' supplier); ``brand_other`` (brand B); ``admin`` (no area).
Outcomes
    ``ok``: the request is served (a page, a download, or, for a form sent empty, a clear
    refusal of its content: 400, 409, 422); ``login``: sign in first (a web page redirects to
    the sign-in page; the API and OpenRosa answer 401); ``forbidden``: 403, the role may not;
    ``hidden``: 404, the same answer as for something that does not exist, because the object is
    outside the person's scope.
"""

from __future__ import annotations

IDENTITIES = (
    "anonymous",
    "monitor",
    "officer",
    "officer_other_area",
    "supervisor",
    "provider",
    "provider_other",
    "brand",
    "brand_other",
    "admin",
)
ROLE_OF = {
    "anonymous": None,
    "monitor": "monitor",
    "officer": "officer",
    "officer_other_area": "officer",
    "supervisor": "supervisor",
    "provider": "provider",
    "provider_other": "provider",
    "brand": "brand",
    "brand_other": "brand",
    "admin": "admin",
}
OK, LOGIN, FORBIDDEN, HIDDEN = "ok", "login", "forbidden", "hidden"
OUTCOMES = (OK, LOGIN, FORBIDDEN, HIDDEN)

PUBLIC = ("public",)
STAFF = ("officer", "supervisor", "admin")
SCOPED_STAFF = ("officer", "supervisor")
PHONES = ("monitor", "officer", "supervisor")
SIGNED_IN = ("monitor", "officer", "supervisor", "provider", "brand", "admin")
MAP_ROLES = ("brand", "officer", "supervisor", "admin")
HOTSPOT_ROLES = ("brand", "officer", "supervisor")
NOTICE_ROLES = ("officer", "supervisor", "provider")


def rule(roles: tuple, *, hidden: tuple = ()) -> dict[str, str]:
    """Each identity's outcome: ``ok`` for the ``roles`` (``public``: everyone), ``hidden`` for the
    identities in ``hidden`` (out of scope), ``forbidden`` for the other roles, ``login`` for
    the anonymous."""
    out = {}
    for identity in IDENTITIES:
        role = ROLE_OF[identity]
        if "public" in roles:
            out[identity] = OK
        elif role is None:
            out[identity] = LOGIN
        elif role not in roles:
            out[identity] = FORBIDDEN
        elif identity in hidden:
            out[identity] = HIDDEN
        else:
            out[identity] = OK
    return out


#: an object of CI-D1: hidden from the officer of CI-D2, and from an administrator (no area)
AREA_OBJECT = rule(STAFF, hidden=("officer_other_area", "admin"))
#: a list or a page of one's own area: everyone of the staff, each seeing their own
STAFF_PAGE = rule(STAFF)
ADMIN = rule(("admin",))


def everyone(outcome: str) -> dict[str, str]:
    """The same outcome for every identity."""
    return dict.fromkeys(IDENTITIES, outcome)


POLICY: dict[str, dict[str, str]] = {
    # signing in, languages, home: the home page sends the anonymous to sign in
    "web.home": {**rule(PUBLIC), "anonymous": LOGIN},
    # notifications: each person their own (the world's notice is the provider's referral)
    "notifications.index": rule(NOTICE_ROLES),
    "notifications.read_all": rule(NOTICE_ROLES),
    "notifications.settings": rule(NOTICE_ROLES),
    "notifications.open": rule(
        NOTICE_ROLES, hidden=("officer", "officer_other_area", "supervisor", "provider_other")
    ),
    "web.login": rule(PUBLIC),
    # a load balancer's health check: this worker and the primary database answer
    "web.health": rule(PUBLIC),
    "web.logout": everyone(LOGIN),  # ends at the sign-in page
    "web.set_language": rule(PUBLIC),
    "static": rule(PUBLIC),
    # alerts
    "web.alerts_index": STAFF_PAGE,
    "web.alerts_bulk": STAFF_PAGE,  # each alert is checked for the person's scope
    "web.alert_detail": AREA_OBJECT,
    "web.alert_acknowledge": AREA_OBJECT,
    "web.alert_assign": AREA_OBJECT,
    "web.alert_dismiss": AREA_OBJECT,
    "web.case_open": AREA_OBJECT,
    "web.child_detail": AREA_OBJECT,
    # cases
    "web.cases_index": STAFF_PAGE,
    "web.cases_export": STAFF_PAGE,
    "web.case_detail": AREA_OBJECT,
    "web.case_assess": AREA_OBJECT,
    "web.case_assign": AREA_OBJECT,
    "web.case_closure": AREA_OBJECT,
    "web.case_consent": AREA_OBJECT,
    "web.case_consent_withdraw": AREA_OBJECT,
    "web.case_note": AREA_OBJECT,
    "web.case_entity_conflict_resolve": AREA_OBJECT,
    "web.case_plan": AREA_OBJECT,
    "web.case_plan_decide": AREA_OBJECT,
    "web.case_plan_remove": AREA_OBJECT,
    "web.case_plan_submit": AREA_OBJECT,
    "web.case_propose_closure": AREA_OBJECT,
    "web.case_refer": AREA_OBJECT,
    "web.case_referral_revoke": AREA_OBJECT,
    "web.case_service_outcome": AREA_OBJECT,
    "web.case_transfer": AREA_OBJECT,
    "web.case_verify": AREA_OBJECT,
    "web.case_withdrawal_acknowledge": AREA_OBJECT,
    # possible duplicates
    "web.duplicates_index": STAFF_PAGE,
    "web.duplicates_different": STAFF_PAGE,
    "web.duplicates_merge": STAFF_PAGE,
    # referrals, for the provider they were sent to
    "web.referrals_index": rule(("provider",)),
    "web.referral_detail": rule(("provider",), hidden=("provider_other",)),
    # indicators and exports
    "web.kpis_index": STAFF_PAGE,
    "web.kpis_export": STAFF_PAGE,
    "web.child_visits_export": STAFF_PAGE,
    # hotspots and maps
    "web.hotspots_export": rule(HOTSPOT_ROLES),
    # an administrator without an area has a map page that says so, and no figures
    "web.map_index": rule(MAP_ROLES),
    "web.map_frame": rule(MAP_ROLES),
    "web.map_layer": {**rule(MAP_ROLES), "admin": FORBIDDEN},
    "web.map_export": {**rule(MAP_ROLES), "admin": FORBIDDEN},
    # submissions
    "web.submissions_index": STAFF_PAGE,
    "web.submission_detail": rule(STAFF, hidden=("officer_other_area",)),
    "web.review_queue": STAFF_PAGE,
    # the XML as received: administrators too (each opening recorded as a read)
    "web.submission_xml": rule(STAFF, hidden=("officer_other_area",)),
    # decisions on a held submission: who reads its answers (an administrator sees it, may not)
    "web.submission_correct": rule(SCOPED_STAFF, hidden=("officer_other_area",)),
    "web.submission_accept": rule(SCOPED_STAFF, hidden=("officer_other_area",)),
    "web.submission_reject": rule(SCOPED_STAFF, hidden=("officer_other_area",)),
    # country profiles
    "web.profiles_index": STAFF_PAGE,
    "web.profile_detail": STAFF_PAGE,
    "web.profile_update": ADMIN,
    # administration
    "web.forms_index": ADMIN,
    "web.form_detail": ADMIN,
    "web.forms_publish": ADMIN,
    "web.form_keygen": ADMIN,
    "web.form_decrypt": ADMIN,
    "web.services_index": ADMIN,
    "web.service_new": ADMIN,
    "web.service_edit": ADMIN,
    "web.provider_new": ADMIN,
    "web.provider_edit": ADMIN,
    "web.providers_import": ADMIN,
    "web.sources_index": ADMIN,
    "web.source_new": ADMIN,
    "web.source_edit": ADMIN,
    "web.source_enabled": ADMIN,
    "web.source_pull": ADMIN,
    "web.places_index": ADMIN,
    "web.places_boundaries": ADMIN,
    "web.places_villages": ADMIN,
    "web.places_cells": ADMIN,
    "web.supply_index": ADMIN,
    "web.supply_import": ADMIN,
    "web.supply_link": ADMIN,
    "web.supply_unlink": ADMIN,
    "web.supply_supplier_new": ADMIN,
    "web.supply_supplier_edit": ADMIN,
    "web.supply_village_attach": ADMIN,
    "web.supply_village_detach": ADMIN,
    "web.audit_index": ADMIN,
    "web.audit_verify": ADMIN,
    # data protection: a child's export and erasure (administrators, with a reason)
    "web.data_protection": ADMIN,
    "web.data_protection_export": ADMIN,
    "web.data_protection_erase": ADMIN,
    # people and their phones (clms/web/users_views.py); one's own profile
    "web.users_index": ADMIN,
    "web.user_new": ADMIN,
    "web.user_detail": ADMIN,
    "web.user_role": ADMIN,
    "web.user_scope": ADMIN,
    "web.user_password": ADMIN,
    "web.user_unlock": ADMIN,
    "web.user_state": ADMIN,
    "web.user_token": ADMIN,
    "web.user_token_renew": ADMIN,
    "web.user_tokens_revoke": ADMIN,
    "web.own_profile": rule(SIGNED_IN),
    "web.own_password": rule(SIGNED_IN),
    "web.own_language": rule(SIGNED_IN),
    "web.own_phone": rule(("monitor",)),
    # the JSON API
    "api.create_session": rule(PUBLIC),
    "api.end_session": rule(SIGNED_IN),
    "api.me": rule(SIGNED_IN),
    "api.alerts_list": STAFF_PAGE,
    "api.alert_get": AREA_OBJECT,
    "api.alert_acknowledge": AREA_OBJECT,
    "api.alert_assign": AREA_OBJECT,
    "api.alert_dismiss": AREA_OBJECT,
    "api.child_get": AREA_OBJECT,
    "api.kpis_get": STAFF_PAGE,
    "api.hotspots_get": rule(HOTSPOT_ROLES),
    # OpenRosa, for phones (HTTP Digest, or a device token in the URL)
    "openrosa.form_list": rule(PHONES),
    "openrosa.form_xml": rule(PHONES),
    "openrosa.manifest": rule(PHONES),
    "openrosa.media": rule(PHONES),
    # which entities of the person's list were deleted (Central's dataset integrity URL)
    "openrosa.entity_integrity": rule(PHONES),
    "openrosa.submission_probe": rule(PHONES),
    "openrosa.submission": rule(PHONES),
    # a device token in the URL: a wrong one is refused (there is no challenge to answer)
    **{
        f"openrosa_key.{name}": {**rule(PHONES), "anonymous": FORBIDDEN}
        for name in (
            "form_list",
            "form_xml",
            "manifest",
            "media",
            "entity_integrity",
            "submission_probe",
            "submission",
        )
    },
    # under the person's own username, KoboCollect's way (asked with each identity's own name)
    **{
        f"openrosa_user.{name}": rule(PHONES)
        for name in (
            "form_list", "form_xml", "manifest", "media", "entity_integrity", "submission_probe",
            "submission",
        )  # fmt: skip
    },
}

#: where a method of a route answers otherwise than the route: (endpoint, method) -> outcomes
BY_METHOD: dict[tuple[str, str], dict[str, str]] = {
    # a sign-in form with wrong credentials is refused (401), whoever sends it
    ("web.login", "POST"): everyone(LOGIN),
}


def outcome(endpoint: str, method: str, identity: str) -> str | None:
    """What ``identity`` gets from ``method`` on ``endpoint`` (None: the endpoint is not
    declared)."""
    declared = BY_METHOD.get((endpoint, method)) or POLICY.get(endpoint)
    return None if declared is None else declared[identity]


#: The actions that cannot be undone, and which button of the form does it: ``None`` when the
#: form's submit button does, or ``"field=value"`` when one form carries several decisions (the
#: button's name and value, or a hidden field's). Every form posting to one of these is held by
#: ``tests/web/test_destructive.py`` to the ``danger_button`` of ``_forms.html``: it says what it
#: does, is styled as dangerous and asks a question naming the thing affected. The gravest
#: (erasure, deactivation, revoking tokens, rejecting a submission) also carry a confirmation in
#: the form that holds without JavaScript. Left out on purpose: what a later action restores
#: (disabling a pull source, changing a role or a scope, publishing a new form version) and what
#: creates (encrypting a form asks for its passphrase twice).
DESTRUCTIVE: dict[str, str | None] = {
    "web.alert_dismiss": None,  # final: a dismissed alert cannot be reopened
    "web.case_consent_withdraw": None,  # the provider loses sight of the child
    "web.case_referral_revoke": None,
    "web.case_service_outcome": "outcome=closed",  # closed without delivery
    "web.case_plan_remove": None,
    "web.case_closure": "decision=approve",  # the case is closed
    "web.referral_detail": "action=reject",
    "web.submission_reject": None,
    "web.supply_unlink": None,
    "web.supply_village_detach": None,
    "web.user_tokens_revoke": None,
    "web.user_state": None,  # deactivation (reactivating, the same form, is not grave)
    "web.data_protection_erase": None,
    "web.duplicates_merge": None,
}
