"""The scheduled jobs: their registry (:mod:`clms.jobs.registry`), the scheduler that runs them on
time in one process (:mod:`clms.jobs.scheduler`) and its command line (:mod:`clms.jobs.cli`).

A job orchestrates the features (the intake of submissions, pulls, alerts, cases, records): it is
the transaction boundary of what it runs.
"""
