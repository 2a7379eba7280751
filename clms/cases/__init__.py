"""Remediation cases, one module per step of the workflow.

- :mod:`clms.cases.workflow`: the case as a pure state machine (no Flask, no database);
- :mod:`clms.cases.records`: reading a case and the writing core every step shares (the version
  check, the timeline); :mod:`clms.cases.inputs` checks a form's values and
  :mod:`clms.cases.notices` mails the officers, supervisors and providers of a case;
- the steps: :mod:`clms.cases.opening` (a case from an alert, the verification),
  :mod:`clms.cases.assessment`, :mod:`clms.cases.plan` (the action plan and its approval),
  :mod:`clms.cases.services` (services delivered or closed), :mod:`clms.cases.referrals` (consent,
  referrals and the provider's side), :mod:`clms.cases.closure`, :mod:`clms.cases.transfer`
  (transfers, assignment, notes);
- :mod:`clms.cases.findings`: what the visits do to cases;
- :mod:`clms.cases.queries`: reading cases for the pages (the list, a case, a provider's
  referrals);
- :mod:`clms.cases.duplicates`: possible duplicate children, and :mod:`clms.cases.merge`:
  merging two records of one child (or marking them different children);
- :mod:`clms.cases.catalogue`: the service catalogue and the providers.
"""
