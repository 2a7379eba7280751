"""Classification of children against the ILO rules and national law, the alerts it raises, and
the work that keeps their deadlines (escalations, reminders, digests, KPI snapshots), which the
scheduled jobs (:mod:`clms.jobs`) run.

The rules (:mod:`alerts.rules`) are pure: plain data in, plain data out, no database, no Flask.
"""
