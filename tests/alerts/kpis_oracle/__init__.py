"""The indicators as computed before the kept facts (issue 19), from every row at each request:
the oracle the equality test holds the figures of alerts.kpis to. A copy, never imported by the
product."""
