"""The English words for the codes of the forms and of the audit log, by family (pure).

A code is stored as the form or the code wrote it (``sharp_tools``, ``case.read``); a person reads
its word. The words of a family are here, each marked with :func:`~clms.i18n.N_` so the
translation test finds it and the French catalogue gives it; :func:`clms.vocabulary.say`
translates them for a page, and pure code (:mod:`alerts.reasons`) translates them with the
function its caller hands it. A family is needed where one code means different things in two
lists (``debt`` as a root cause, ``debt`` as a sign of bonded labour).

Each family's codes come from their source of truth (:mod:`clms.codes` for the forms' choice
lists, the audit calls of the code for the audit actions); ``tests/web/test_code_words.py``
enumerates them from there and fails for a code without a word or without French.

>>> word("sharp_tools", "hazard")
'Using a machete or cutlass to harvest or break pods'
>>> word("debt", "worst_form_sign")
'debt bondage: working to pay off a debt'
>>> word("lava", "hazard") is None
True
"""

from __future__ import annotations

from clms.i18n import N_

#: hazard code -> the form's English label (the household visit's ``hazards`` choices)
HAZARD = {
    "land_clearing": N_("Land clearing: felling trees, clearing with a machete"),
    "bush_burning": N_("Bush burning"),
    "agrochemicals": N_(
        "Spraying or applying agrochemicals, carrying the sprayer, or present during spraying"
    ),
    "heavy_loads": N_("Carrying heavy loads, or loads carried far"),
    "sharp_tools": N_("Using a machete or cutlass to harvest or break pods"),
    "climbing_heights": N_("Climbing trees or structures higher than 3 m"),
    "motorised_tools": N_("Using a chainsaw or other motorised equipment"),
    "working_alone_remote": N_("Working alone in a remote place"),
    "dust_fumes_gas": N_("Dust, fumes or gas"),
    "extreme_temperature": N_("Extreme cold or heat"),
    "loud_noise_vibration": N_("Loud noise or vibration"),
    "chemicals_explosives": N_("Dangerous chemicals or explosives"),
    "underwater_or_at_sea": N_("Working under water or at sea"),
    "underground": N_("Working underground"),
    "heavy_machinery": N_("Operating heavy machinery"),
    "abuse_at_work": N_("Shouted at, beaten or otherwise abused at work"),
    "none": N_("none"),
}

#: signs of a worst form of child labour (C182 art. 3 a-c), including those of trafficking
WORST_FORM_SIGN = {
    "cannot_leave": N_("cannot leave the work or the employer"),
    "debt": N_("debt bondage: working to pay off a debt"),
    "recruited_by_third_party": N_("recruited or brought by a third party"),
    "separated_from_family": N_("living and working away from the family"),
    "sexual_exploitation": N_("sexual exploitation"),
    "illicit_activities": N_("used in illicit activities"),
    "none": N_("none"),
}

RELATIONSHIP = {
    "son_daughter": N_("son or daughter"),
    "grandchild": N_("grandchild"),
    "niece_nephew": N_("niece or nephew"),
    "other_relative": N_("other relative"),
    "not_related": N_("not related"),
}

WORK_ACTIVITY = {
    "own_farm": N_("on the household's farm"),
    "family_business": N_("in a family business"),
    "sell_goods": N_("selling goods"),
    "paid_work": N_("paid work for someone else"),
    "none": N_("none"),
}

MIGRANT_STATUS = {
    "national": N_("national"),
    "migrant_documented": N_("migrant with documents"),
    "migrant_undocumented": N_("migrant without documents"),
    "unknown": N_("unknown"),
}

REPORTER_TYPE = {
    "child": N_("the child"),
    "worker": N_("a worker"),
    "teacher": N_("a teacher"),
    "community_member": N_("a member of the community"),
    "monitor": N_("a monitor"),
    "other": N_("someone else"),
}

CONCERN = {
    "child_working": N_("a child is working"),
    "hazardous_work": N_("hazardous work"),
    "not_in_school": N_("a child is not in school"),
    "violence_abuse": N_("violence or abuse"),
    "trafficking": N_("trafficking"),
    "sexual_exploitation": N_("sexual exploitation"),
    "other": N_("something else"),
}

#: what each audit action the code writes means (``case.<event>``: the case timeline's words)
AUDIT_ACTION = {
    "alert.read": N_("read an alert"),
    "alert.acknowledged": N_("acknowledged an alert"),
    "alert.assigned": N_("assigned an alert"),
    "alert.dismissed": N_("dismissed an alert"),
    "alert.withdrawn": N_("closed an alert whose submissions were all withdrawn"),
    "alert.source_withdrawn": N_("recomputed an alert without a withdrawn submission"),
    "alert.restored": N_("reopened or recomputed an alert for a restored submission"),
    "alerts.list": N_("listed alerts"),
    "audit.search": N_("searched the audit log"),
    "audit.verify": N_("checked the audit chain"),
    "auth.locked": N_("sign-in locked after failed attempts"),
    "auth.login": N_("signed in"),
    "auth.login_failed": N_("failed sign-in"),
    "auth.logout": N_("signed out"),
    "case.consent_override": N_("shared without consent (override)"),
    "case.read": N_("read a case"),
    "case_entity.conflict": N_("found phones that updated a case without seeing each other"),
    "case_entity.conflict_resolved": N_("resolved a conflict between phones' updates of a case"),
    "case_entity.refused": N_("refused a phone's update of a case it could not apply"),
    "cases.csv.read": N_("exported cases (CSV)"),
    "cases.list": N_("listed cases"),
    "cases.export": N_("exported the case list"),
    "child.anonymise": N_("anonymised a child's record"),
    "child.erase": N_("erased a child's record"),
    "child.export": N_("exported a child's data (subject access)"),
    "child.read": N_("read a child's record"),
    "database.backup": N_("backed up the database"),
    "database.restore": N_("restored the database"),
    "duplicates.read": N_("read possible duplicate children"),
    "form.decrypt": N_("decrypted submissions"),
    "form.decrypt_refused": N_("decryption refused"),
    "form.key_generate": N_("generated a form's encryption key"),
    "home.read": N_("read the home page"),
    "hotspots.export": N_("exported hotspot figures"),
    "hotspots.map_export": N_("exported a hotspot map"),
    "kpis.export": N_("exported the indicators"),
    "child_visits.export": N_("exported the visits of children (indicators)"),
    "map.households": N_("read the households map"),
    "notices.preferences": N_("changed notification preferences"),
    "referral.read": N_("read a referral"),
    "referrals.list": N_("listed referrals"),
    "retention.run": N_("applied the retention rules"),
    "submission.accept": N_("accepted a held submission"),
    "submission.correct": N_("corrected a held submission"),
    "submission.read": N_("read a submission"),
    "submission.read_raw": N_("read a submission's raw XML"),
    "submission.reject": N_("rejected a held submission"),
    "submission.withdrawn": N_("withdrew a submission its server deleted or rejected"),
    "submission.restored": N_("counted again a submission its server restored"),
    "user.activate": N_("reactivated a user"),
    "user.add": N_("added a user"),
    "user.areas": N_("changed a user's villages"),
    "user.deactivate": N_("deactivated a user"),
    "user.language": N_("changed a user's language"),
    "user.password": N_("changed a password"),
    "user.role": N_("changed a user's role"),
    "user.token_issued": N_("issued a phone token"),
    "user.token_renewed": N_("renewed a phone token"),
    "user.tokens_revoked": N_("revoked phone tokens"),
    "user.unlock": N_("unlocked a user's sign-in"),
}

FAMILIES: dict[str, dict[str, str]] = {
    "hazard": HAZARD,
    "worst_form_sign": WORST_FORM_SIGN,
    "relationship": RELATIONSHIP,
    "work_activity": WORK_ACTIVITY,
    "migrant_status": MIGRANT_STATUS,
    "reporter_type": REPORTER_TYPE,
    "concern": CONCERN,
    "audit_action": AUDIT_ACTION,
}

#: the family of the codes held by a fact of a classification's reason, or by a form's question
FAMILY_OF_FIELD = {
    "hazards": "hazard",
    "signs": "worst_form_sign",
    "worst_form_signs": "worst_form_sign",
    "relationship": "relationship",
    "work_activities": "work_activity",
    "migrant_status": "migrant_status",
    "reporter_type": "reporter_type",
    "concern": "concern",
}


def word(code: str, family: str) -> str | None:
    """The English word for ``code`` in ``family`` (None: the family has no such code, e.g. free
    text an administrator typed into a country profile's hazard list)."""
    return FAMILIES[family].get(code)
