"""Supply chains: which suppliers a brand reaches, and the links that may be written.

brand -> tier 1 -> tier 2 -> tier 3 and deeper -> household (domain.md section 6). A brand buys
from its direct suppliers (``brand_suppliers``); a supplier buys from others (``supplier_links``,
buyer -> seller). The links form a directed graph without cycles; a supplier may serve several
buyers and several brands. A brand's scope is every supplier reachable from its direct suppliers.

Here too: the CSV import of a whole chain (:func:`clms.supply.imports.import_chain`, all or
nothing, every problem named by file, line and column), the edits an administrator makes
(:mod:`clms.supply.operations`: ``save_supplier``, ``link``, ``unlink``, ``attach_village``,
``detach_village``), the chain as a tree and its health (:mod:`clms.supply.tree`: ``chain_tree``,
``check_chain``), and what the pages read besides (:mod:`clms.supply.queries`). Reading the files
(:mod:`clms.supply.csvfiles`) and finding cycles and reach (:mod:`clms.supply.graph`) are pure
functions; only the import and the edits write, and they only flush: the caller commits.
``clms supply`` is :mod:`clms.supply.cli`.
"""
