"""Remediation cases: the workflow (pure, :mod:`clms.cases.workflow`), the operations that change
cases (:mod:`clms.cases.operations`), what the visits do to cases (:mod:`clms.cases.findings`),
possible duplicate children (:mod:`clms.cases.duplicates`) and the service catalogue
(:mod:`clms.cases.catalogue`)."""
