"""A person's working day: what needs them now, by role (:mod:`clms.workday.home`).

It reads the work of the other features (alerts, cases, referrals, submissions, pulls, jobs,
mail, sign-in locks) and changes nothing.
"""
