"""The codes our forms answer with (shared/design/data-dictionary.md): hazards, signs of the worst
forms, concerns, relationships... Shared by the forms' parsing (:mod:`forms.parse`), the
classification rules (:mod:`alerts.rules`) and the words people read (:mod:`clms.vocabulary`), so
that none of them imports another for its vocabulary. Pure: plain sets.
"""

from __future__ import annotations

SEX = {"female", "male"}
RELATIONSHIPS = {"son_daughter", "grandchild", "niece_nephew", "other_relative", "not_related"}
WORK_ACTIVITIES = {"own_farm", "family_business", "sell_goods", "paid_work", "none"}
HAZARDS = {
    "land_clearing", "bush_burning", "agrochemicals", "heavy_loads", "sharp_tools",
    "climbing_heights", "motorised_tools", "working_alone_remote", "dust_fumes_gas",
    "extreme_temperature", "loud_noise_vibration", "chemicals_explosives", "underwater_or_at_sea",
    "underground", "heavy_machinery", "abuse_at_work", "none",
}  # fmt: skip
WORST_FORM_SIGNS = {
    "cannot_leave", "debt", "recruited_by_third_party", "separated_from_family",
    "sexual_exploitation", "illicit_activities", "none",
}  # fmt: skip
MIGRANT_STATUS = {"national", "migrant_documented", "migrant_undocumented", "unknown"}
REPORTER_TYPES = {"child", "worker", "teacher", "community_member", "monitor", "other"}
CONCERNS = {
    "child_working", "hazardous_work", "not_in_school", "violence_abuse", "trafficking",
    "sexual_exploitation", "other",
}  # fmt: skip
