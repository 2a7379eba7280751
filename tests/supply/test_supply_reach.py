"""Which suppliers a brand reaches through the links (clms.supply.operations)."""

from __future__ import annotations

from clms.db import session_scope
from clms.models import Brand, BrandSupplier, Supplier, SupplierLink
from clms.supply.operations import brand_supplier_ids, subchain_ids, would_cycle


def test_a_brand_reaches_every_supplier_below_its_direct_suppliers_and_no_other(app):
    with session_scope(app) as s:
        a, b = Brand(code="BR-A", name="A"), Brand(code="BR-B", name="B")
        sup = {c: Supplier(code=c, name=c, tier=t) for c, t in
               [("T1", 1), ("T1B", 1), ("T2", 2), ("T2B", 2), ("T3", 3), ("T3X", 3)]}  # fmt: skip
        s.add_all([a, b, *sup.values()])
        s.flush()
        s.add_all([
            BrandSupplier(brand_id=a.id, supplier_id=sup["T1"].id),
            BrandSupplier(brand_id=b.id, supplier_id=sup["T1B"].id),
            SupplierLink(buyer_id=sup["T1"].id, seller_id=sup["T2"].id),
            SupplierLink(buyer_id=sup["T2"].id, seller_id=sup["T3"].id),
            # a cooperative that serves both brands, and a diamond back to T3
            SupplierLink(buyer_id=sup["T1B"].id, seller_id=sup["T2B"].id),
            SupplierLink(buyer_id=sup["T1"].id, seller_id=sup["T2B"].id),
            SupplierLink(buyer_id=sup["T2B"].id, seller_id=sup["T3"].id),
        ])  # fmt: skip
        s.flush()
        ids = {v.id: k for k, v in sup.items()}
        assert {ids[i] for i in brand_supplier_ids(s, a.id)} == {"T1", "T2", "T2B", "T3"}
        assert {ids[i] for i in brand_supplier_ids(s, b.id)} == {"T1B", "T2B", "T3"}
        assert {ids[i] for i in subchain_ids(s, [sup["T2"].id])} == {"T2", "T3"}
        assert subchain_ids(s, []) == set()
        # T3 -> T1 would close T1 -> T2 -> T3 -> T1; T1 -> T3 is a shortcut, not a cycle
        assert would_cycle(s, sup["T3"].id, sup["T1"].id)
        assert would_cycle(s, sup["T2"].id, sup["T2"].id)
        assert not would_cycle(s, sup["T1"].id, sup["T3"].id)
        assert not would_cycle(s, sup["T2"].id, sup["T3X"].id)
