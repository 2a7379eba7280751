"""Classification of children against the ILO rules and national law, the alerts it raises, and
the scheduled work that keeps deadlines (escalations, reminders, digests, pulls, KPI snapshots).

The rules (:mod:`alerts.rules`) are pure: plain data in, plain data out, no database, no Flask.
"""
