"""Hotspots: child-labour figures per village, administrative area, supplier and tier.

:func:`geo.hotspots.tables.hotspot_tables` computes every table a page or a map needs from ONE
aggregation (one ranking of the children, one SQL statement) and, for a brand, protects them in
one pass; :func:`geo.hotspots.tables.hotspot_table` (one table of it) is what an API answer or an
export calls.
For a brand it always passes through :func:`geo.privacy.protect` (thresholds, secondary
suppression, an allow-list of keys); for an officer or a supervisor the figures are exact but only
over the villages of their areas (:func:`clms.scope.village_scope_condition`). Anyone else (an
administrator without a scope, a monitor, a provider) gets an empty table, as for the KPIs.

Definitions
-----------
Period
    Whole days in UTC: by default the ``months`` (12) months ending today, i.e. the half-open
    interval ``[end + 1 day - months, end + 1 day)``; ``end`` (a date, inclusive) and ``months``
    may be given. The previous period has the same length and ends where the period starts.
Which visit places a child
    A child counts in a cell when their *latest* current classified child visit of the period
    (latest ``visited_at``, then highest visit id; current visits and current classifications only,
    as :func:`alerts.kpis.classified_in_windows` defines them) lies in it, among the visits the
    caller may see and the filters keep. Village: the visit's village. Area: the village's area and
    every area above it (one row per area, or only the areas of ``area_level``). Supplier: the
    visit's ``supplier_id`` (ingestion fills it from the household when the form names none) and
    every supplier whose sub-chain contains it, so that a tier-1 supplier's figures cover its
    whole chain. Tier: the tier of the visit's own supplier. So each child counts once in a
    village, a tier and the total, and in every area and supplier above.
Scope
    Brand: the visits whose ``supplier_id`` is reachable from the brand
    (:func:`clms.supply.operations.brand_supplier_ids_query`). Officer, supervisor (and an
    administrator with a scope): the visits in the villages of their areas. The latest visit is
    chosen among these.
Filters
    ``tier`` keeps the children whose latest visit's supplier is of that tier, ``supplier_id``
    those whose latest visit's supplier is in that supplier's sub-chain: a filter picks cells'
    children, it does not choose another visit, so the tiers' tables add up to the whole.
    A brand's layers pass the same gate as every unfiltered table
    (:func:`geo.hotspots.gate._protect_brand`), so that no layer of a map can be subtracted from
    the others or from the whole.

Figures of a cell (``geo.hotspots.figures.FIGURES``)
    ``households`` (distinct households of the children counted), ``children``,
    ``child_labour`` (latest category worst form, hazardous or other child labour),
    ``hazardous`` (latest category hazardous work), ``worst_forms`` (latest category worst forms
    other than hazardous work), ``prevalence`` = child_labour / children (a share, 0-1, four
    decimals) with ``prevalence_low``/``prevalence_high``, its 95% Wilson score interval;
    ``previous_prevalence`` (the same over the previous period, for the children whose latest
    visit of *that* period is in the cell) and ``change`` = prevalence - previous_prevalence in
    percentage points (one decimal); ``identified`` (children with any visit of the period
    classified as child labour) and ``remediation_coverage`` = the share of them who received at
    least one remediation service before the period's end (:func:`alerts.kpis.first_remediation`).

Everything is aggregated in SQL (``GROUP BY`` over one ranked common table expression): child
rows never reach Python. Cost at 1,000,000 children (2 cores): the ranking of the children's
latest visits dominates (about 2 s on either database; SQLite ranks with ``GROUP BY``, PostgreSQL
with window functions), each grouping adds a fraction of a second; a page asks for one
aggregation, the standalone map with every layer for one as well.

Modules
-------
:mod:`geo.hotspots.figures`
    The figures of a cell and the tables that hold them (pure: plain data in and out).
:mod:`geo.hotspots.gate`
    A brand's privacy gate over its released cells (pure).
:mod:`geo.hotspots.settings`
    The privacy thresholds and the reporting grid, read from the application by the roof and
    passed down as ``settings=`` (pure).
:mod:`geo.hotspots.aggregate`
    The SQL: every cell's counts in one statement, and what a brand's release is made of.
:mod:`geo.hotspots.tables`
    The tables a caller may see: live for staff, from the brand's release for a brand.
:mod:`geo.hotspots.releases`
    A brand's figures of a reporting period, released once and never changed.
:mod:`geo.hotspots.request`
    What a request asks for, and the answers: JSON, CSV, GeoJSON.
"""
