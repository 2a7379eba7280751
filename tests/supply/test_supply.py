"""Supply chains: the CSV import (all or nothing, every problem named), cycles refused with their
path, the administrators' edits and pages, and the ``clms supply`` commands."""

from __future__ import annotations

import io

import pytest
from sqlalchemy import func, select

from clms.db import session_scope
from clms.models import (
    Brand,
    BrandSupplier,
    Household,
    Supplier,
    SupplierLink,
    SupplierVillage,
)
from clms.supply.csvfiles import ChainImportError, ChainRows, file_kind, read_chain_csv
from clms.supply.graph import find_cycles
from clms.supply.imports import import_chain
from clms.supply.operations import (
    SupplierInput,
    attach_village,
    brand_supplier_ids,
    detach_village,
    link,
    save_supplier,
    unlink,
)
from clms.supply.tree import chain_tree, check_chain, tree_lines
from tests.conftest import PASSWORD

BRANDS = "code,name\nBR-X,Brand X\nBR-Y,Brand Y\n"
SUPPLIERS = (
    "code,name,tier,kind\n"
    "X1,Exporter X,1,exporter\n"
    "X2,Coop X,2,cooperative\n"
    "X3,Group X,3,farmer group\n"
    "Y1,Grinder Y,1,grinder\n"
)
LINKS = "buyer,seller\nBR-X,X1\nBR-Y,Y1\nX1,X2\nX2,X3\nY1,X3\n"
VILLAGES = "supplier,village\nX3,V1\nX3,V2\nX2,V3\n"
HOUSEHOLDS = "household,supplier\nHH-1,X3\nHH-2,X3\nHH-3,X2\n"


def files(**overrides) -> list[tuple[str, bytes]]:
    """The good files, some replaced (a value of None drops the file)."""
    chosen = {"brands.csv": BRANDS, "suppliers.csv": SUPPLIERS, "links.csv": LINKS,
              "villages.csv": VILLAGES, "households.csv": HOUSEHOLDS}  # fmt: skip
    for name, text in overrides.items():
        chosen[f"{name}.csv"] = text
    return [(name, text.encode()) for name, text in chosen.items() if text is not None]


@pytest.fixture
def households(app, places):
    with session_scope(app) as s:
        s.add_all([Household(code=f"HH-{i}") for i in (1, 2, 3)])


def snapshot(s) -> tuple:
    """Everything an import may change, to compare before and after."""
    return (
        sorted(s.execute(select(Brand.code, Brand.name)).all()),
        sorted(s.execute(select(Supplier.code, Supplier.name, Supplier.tier, Supplier.kind)).all()),
        sorted(s.execute(select(BrandSupplier.brand_id, BrandSupplier.supplier_id)).all()),
        sorted(s.execute(select(SupplierLink.buyer_id, SupplierLink.seller_id)).all()),
        sorted(s.execute(select(SupplierVillage.supplier_id, SupplierVillage.village_id)).all()),
        sorted(s.execute(select(Household.code, Household.supplier_id)).all()),
    )


def codes(s, ids) -> set[str]:
    return set(s.scalars(select(Supplier.code).where(Supplier.id.in_(ids))))


def brand_scope(s, brand_code: str) -> set[str]:
    brand_id = s.scalar(select(Brand.id).where(Brand.code == brand_code))
    return codes(s, brand_supplier_ids(s, brand_id))


# --- reading (pure) ------------------------------------------------------------------------------


def test_the_header_says_what_a_file_holds():
    assert file_kind(["code", "name"]) == "brands"
    assert file_kind(["code", "name", "tier"]) == "suppliers"
    assert file_kind(["buyer", "seller"]) == "links"
    assert file_kind(["supplier", "village"]) == "villages"
    assert file_kind(["household", "supplier"]) == "households"
    assert file_kind(["code"]) is None


@pytest.mark.parametrize(
    ("text", "where", "words"),
    [
        ("code,name,tier\nA,Alpha,0\n", "f.csv, line 2, column tier", "whole number of 1 or more"),
        ("code,name,tier\nA,Alpha,two\n", "f.csv, line 2, column tier", "'two'"),
        ("code,name,tier\nA,,1\n", "f.csv, line 2, column name", "is required"),
        ("code,name,tier\nA B,Alpha,1\n", "f.csv, line 2, column code", "letters, digits"),
        ("code,name,tier\nA,Alpha\n", "f.csv, line 2", "2 values for 3 columns"),
        ("code,name,tier,colour\nA,Alpha,1,red\n", "f.csv, line 1", "unexpected column(s) colour"),
        ("id,label\nA,Alpha\n", "f.csv, line 1", "name no kind of supply-chain file"),
        (b"code,name\nA,\xe9\n", "f.csv, line 2", "character 3: not UTF-8 text (byte 0xe9)"),
    ],
)
def test_bad_values_are_named_by_file_line_and_column(text, where, words):
    rows = ChainRows()
    issues = read_chain_csv("f.csv", text, rows)
    assert len(issues) == 1
    assert str(issues[0].where) == where and words in str(issues[0]), str(issues[0])
    assert rows.suppliers == [] and rows.brands == []


def test_cycles_are_found_with_their_path():
    assert find_cycles([("A", "B"), ("B", "C"), ("C", "A"), ("C", "D"), ("D", "E")]) == [
        ["A", "B", "C", "A"]
    ]
    # a diamond is no cycle; two separate cycles are both found
    assert find_cycles([("A", "B"), ("A", "C"), ("B", "D"), ("C", "D")]) == []
    assert find_cycles([("A", "B"), ("B", "A"), ("P", "Q"), ("Q", "P")]) == [
        ["A", "B", "A"],
        ["P", "Q", "P"],
    ]


# --- import --------------------------------------------------------------------------------------


def test_import_builds_the_chain_and_brands_reach_their_suppliers(app, households):
    with session_scope(app) as s:
        summary = import_chain(s, files())
    assert (summary.brands_added, summary.suppliers_added, summary.links_added) == (2, 4, 5)
    assert (summary.villages_added, summary.households_updated) == (3, 3)
    assert summary.warnings == []
    with session_scope(app) as s:
        assert brand_scope(s, "BR-X") == {"X1", "X2", "X3"}
        assert brand_scope(s, "BR-Y") == {"Y1", "X3"}  # a farmer group serving two brands
        assert brand_scope(s, "BRAND-A") == set()
        hh = dict(s.execute(select(Household.code, Supplier.code).join(Household.supplier)).all())
        assert hh == {"HH-1": "X3", "HH-2": "X3", "HH-3": "X2"}
        before = snapshot(s)
    # again: nothing changes; a new name and tier are updated in place
    with session_scope(app) as s:
        again = import_chain(s, files())
        assert again.suppliers_added == again.links_added == again.households_updated == 0
        assert snapshot(s) == before
    renamed = SUPPLIERS.replace("Coop X,2,", "Coop X United,2,")
    with session_scope(app) as s:
        summary = import_chain(s, files(suppliers=renamed, links="buyer,seller\nX1,X3\n"))
        assert (summary.suppliers_updated, summary.links_added) == (1, 1)
        assert s.scalar(select(Supplier.name).where(Supplier.code == "X2")) == "Coop X United"


def test_a_seller_not_deeper_than_its_buyer_is_a_warning_not_a_refusal(app, places):
    with session_scope(app) as s:
        summary = import_chain(s, files(links="buyer,seller\nX2,Y1\n", villages=None,
                                        households=None))  # fmt: skip
        assert summary.links_added == 1
        (warning,) = summary.warnings
        assert str(warning.where) == "links.csv, line 2, column seller"
        assert "'Y1' (tier 1) is not at a deeper tier than its buyer 'X2' (tier 2)" in str(warning)


def test_replace_drops_the_links_the_file_does_not_list(app, households):
    with session_scope(app) as s:
        import_chain(s, files())
    with session_scope(app) as s:
        summary = import_chain(
            s,
            files(links="buyer,seller\nBR-X,X1\nX1,X2\n", villages="supplier,village\nX3,V1\n"),
            replace=True,
        )
        assert (summary.links_removed, summary.links_added) == (3, 0)
        # X3 keeps V1 only; X2 (not in the villages file) and T2-COOP keep theirs
        assert summary.villages_removed == 1
    with session_scope(app) as s:
        assert brand_scope(s, "BR-X") == {"X1", "X2"}
        assert brand_scope(s, "BR-Y") == set()


BAD_FILES = {
    "unknown seller": (
        {"links": LINKS + "X1,NOPE\n"},
        "links.csv, line 7, column seller",
        "names no known supplier ('NOPE')",
    ),
    "unknown buyer": (
        {"links": LINKS + "WHO,X1\n"},
        "links.csv, line 7, column buyer",
        "names no known brand or supplier ('WHO')",
    ),
    "unknown village": (
        {"villages": VILLAGES + "X3,V99\n"},
        "villages.csv, line 5, column village",
        "names no known village ('V99')",
    ),
    "unknown household": (
        {"households": HOUSEHOLDS + "HH-404,X3\n"},
        "households.csv, line 5, column household",
        "names no known household ('HH-404')",
    ),
    "bad tier": (
        {"suppliers": SUPPLIERS + "Z9,Zed,-1,\n"},
        "suppliers.csv, line 6, column tier",
        "must be a whole number of 1 or more (got '-1')",
    ),
    "duplicate with another tier": (
        {"suppliers": SUPPLIERS + "X2,Coop X,3,cooperative\n"},
        "suppliers.csv, line 6, column tier",
        "supplier 'X2' is given again with a different tier ('3'; '2' at suppliers.csv, line 3)",
    ),
    "duplicate brand with another name": (
        {"brands": BRANDS + "BR-X,Brand Ex\n"},
        "brands.csv, line 4, column name",
        "brand 'BR-X' is given again with a different name",
    ),
    "household given two suppliers": (
        {"households": HOUSEHOLDS + "HH-1,X2\n"},
        "households.csv, line 5, column supplier",
        "household 'HH-1' is given again with a different supplier",
    ),
    "cycle through new rows": (
        {"links": LINKS + "X3,X1\n"},
        "links.csv, line 7, column seller",
        "this link closes a cycle: X3 -> X1 -> X2 -> X3",
    ),
    "a supplier buying from itself": (
        {"links": LINKS + "X2,X2\n"},
        "links.csv, line 7, column seller",
        "a supplier cannot buy from itself ('X2')",
    ),
    "a brand as seller": (
        {"links": LINKS + "X1,BR-Y\n"},
        "links.csv, line 7, column seller",
        "'BR-Y' is a brand: a brand buys, it does not sell",
    ),
    "a code both brand and supplier": (
        {"brands": BRANDS + "X1,Brand X1\n"},
        "brands.csv, line 4, column code",
        "'X1' is both a brand and a supplier code",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_a_bad_row_refuses_every_file_and_says_where(app, households, case):
    overrides, where, words = BAD_FILES[case]
    with session_scope(app) as s:
        before = snapshot(s)
    with session_scope(app) as s, pytest.raises(ChainImportError) as e:
        import_chain(s, files(**overrides))
    assert [str(i.where) for i in e.value.issues] == [where], e.value.issues
    assert words in str(e.value.issues[0]), str(e.value.issues[0])
    with session_scope(app) as s:
        assert snapshot(s) == before


def test_a_cycle_through_stored_and_new_links_is_refused_with_its_path(app, places):
    # stored: T1-EXP -> T2-COOP -> T3-GRP; the file's link T3-GRP -> T1-EXP would close it
    with session_scope(app) as s:
        ids = dict(s.execute(select(Supplier.code, Supplier.id)).all())
        s.add_all([SupplierLink(buyer_id=ids["T1-EXP"], seller_id=ids["T2-COOP"]),
                   SupplierLink(buyer_id=ids["T2-COOP"], seller_id=ids["T3-GRP"])])  # fmt: skip
    with session_scope(app) as s:
        before = snapshot(s)
    text = "buyer,seller\nBRAND-A,T1-EXP\nT3-GRP,T1-EXP\n"
    with session_scope(app) as s, pytest.raises(ChainImportError) as e:
        import_chain(s, [("more-links.csv", text.encode())])
    (issue,) = e.value.issues
    assert str(issue) == (
        "more-links.csv, line 3, column seller: this link closes a cycle: "
        "T3-GRP -> T1-EXP -> T2-COOP -> T3-GRP"
    )
    with session_scope(app) as s:
        assert snapshot(s) == before
    # with --replace the stored links go, so the same link closes no cycle
    with session_scope(app) as s:
        summary = import_chain(s, [("more-links.csv", text.encode())], replace=True)
        assert (summary.links_added, summary.links_removed) == (2, 2)


def test_every_problem_of_every_file_is_listed_at_once(app, households):
    bad = files(links=LINKS + "X1,NOPE\n", suppliers=SUPPLIERS + "Z9,Zed,0,\n")
    with session_scope(app) as s, pytest.raises(ChainImportError) as e:
        import_chain(s, bad)
    assert [str(i.where) for i in e.value.issues] == [
        "links.csv, line 7, column seller",
        "suppliers.csv, line 6, column tier",
    ]


# --- editing -------------------------------------------------------------------------------------


def test_admin_edits_refuse_a_cycle_with_its_path(app, places):
    with session_scope(app) as s:
        assert link(s, "BRAND-A", "T1-EXP").changed
        assert link(s, "T1-EXP", "T2-COOP").changed
        assert link(s, "T2-COOP", "T3-GRP").changed
        assert not link(s, "T2-COOP", "T3-GRP").changed
        with pytest.raises(Exception) as e:
            link(s, "T3-GRP", "T1-EXP")
        assert e.value.status == 409
        assert "T3-GRP -> T1-EXP -> T2-COOP -> T3-GRP" in e.value.message
        with pytest.raises(Exception) as e:
            link(s, "T1-EXP", "NOPE")
        assert e.value.status == 422 and "seller" in e.value.fields
        result = link(s, "T1-EXP", "T3-GRP")
        assert result.changed and result.warning is None
        # a link the wrong way round by tier is written, with a warning
        s.add(Supplier(code="T1-B", name="Other exporter", tier=1))
        s.flush()
        result = link(s, "T2-COOP", "T1-B")
        assert result.changed and "is not at a deeper tier" in str(result.warning)
        assert unlink(s, "T2-COOP", "T1-B").changed
        assert brand_scope(s, "BRAND-A") == {"T1-EXP", "T2-COOP", "T3-GRP"}
        assert unlink(s, "T1-EXP", "T2-COOP").changed
        assert unlink(s, "T1-EXP", "T3-GRP").changed
        assert brand_scope(s, "BRAND-A") == {"T1-EXP"}
        assert unlink(s, "BRAND-A", "T1-EXP").changed
        assert brand_scope(s, "BRAND-A") == set()


def test_admin_saves_suppliers_and_their_villages(app, places):
    with session_scope(app) as s:
        with pytest.raises(Exception) as e:
            save_supplier(s, SupplierInput("T1-EXP", "", "0"), new=True)
        assert set(e.value.fields) == {"code", "name", "tier"}
        added = save_supplier(s, SupplierInput("T4-HW", "Homeworkers", "4", "homeworkers"),
                              new=True)  # fmt: skip
        assert (added.tier, added.kind) == (4, "homeworkers")
        assert attach_village(s, "T4-HW", "V2") and not attach_village(s, "T4-HW", "V2")
        assert detach_village(s, "T2-COOP", "V1") and not detach_village(s, "T2-COOP", "V1")
        with pytest.raises(Exception) as e:
            attach_village(s, "T4-HW", "V99")
        assert set(e.value.fields) == {"village"}


def test_the_tree_shows_each_brand_down_the_tiers_and_the_suppliers_no_brand_reaches(
    app, households
):
    with session_scope(app) as s:
        import_chain(s, files())
        s.add(Supplier(code="LOST", name="Nobody's", tier=2))
    with session_scope(app) as s:
        tree = chain_tree(s)
        found = check_chain(s)
    x, y, a = tree.brands
    assert (a.code, a.suppliers, a.roots) == ("BRAND-A", 0, [])
    assert (x.code, x.suppliers, x.villages, x.households) == ("BR-X", 3, 3, 3)
    assert [n.code for n in x.roots] == ["X1"]
    assert [c.code for c in x.roots[0].children] == ["X2"]
    assert [c.code for c in x.roots[0].children[0].children] == ["X3"]
    # the places fixture's suppliers, and LOST, belong to no brand's chain
    assert [n.code for n in tree.unreached] == ["T1-EXP", "LOST", "T2-COOP", "T3-GRP"]
    lines = tree_lines(tree)
    assert "      X3  Group X  [tier 3, farmer group]  villages 2, households 2" in lines
    assert found.unreached == ["LOST", "T1-EXP", "T2-COOP", "T3-GRP"]
    assert found.cycles == [] and not found.ok


# --- web -----------------------------------------------------------------------------------------


def login(client, username: str) -> None:
    r = client.post("/login", data={"username": username, "password": PASSWORD})
    assert r.status_code == 302


@pytest.mark.parametrize(("username", "role"), [("olu", "officer"), ("bea", "brand"),
                                                ("mo", "monitor")])  # fmt: skip
def test_only_admins_see_or_change_the_chain(client, places, make_user, app, username, role):
    make_user(username, role, areas=["CI-D1"] if role != "brand" else (),
              brand="BRAND-A" if role == "brand" else None)  # fmt: skip
    login(client, username)
    assert client.get("/supply").status_code == 403
    assert client.get("/supply/suppliers/T1-EXP/edit").status_code == 403
    r = client.post("/supply/links", data={"buyer": "BRAND-A", "seller": "T1-EXP"})
    assert r.status_code == 403
    r = client.post("/supply/import", data={"files": (io.BytesIO(BRANDS.encode()), "b.csv")})
    assert r.status_code == 403
    with session_scope(app) as s:
        assert s.scalar(select(func.count()).select_from(BrandSupplier)) == 0
        assert s.scalar(select(func.count(Brand.id))) == 1


def test_admin_builds_the_chain_on_the_web_and_a_cycle_is_refused(client, places, make_user, app):
    make_user("ada", "admin")
    login(client, "ada")
    for buyer, seller in [("BRAND-A", "T1-EXP"), ("T1-EXP", "T2-COOP"), ("T2-COOP", "T3-GRP")]:
        r = client.post("/supply/links", data={"buyer": buyer, "seller": seller})
        assert r.status_code == 303
    page = client.get("/supply").get_data(as_text=True)
    assert "Brand A Chocolate" in page and "Groupement Méagui Sud" in page
    assert "1 villages, 0 households" in page  # T3-GRP buys in V4
    r = client.post("/supply/links", data={"buyer": "T3-GRP", "seller": "T1-EXP"})
    assert r.status_code == 409
    assert "T3-GRP -&gt; T1-EXP -&gt; T2-COOP -&gt; T3-GRP" in r.get_data(as_text=True)
    french = client.post("/supply/links", data={"buyer": "T3-GRP", "seller": "T1-EXP"},
                         headers={"Accept-Language": "fr"})  # fmt: skip
    assert french.status_code == 409 and "cycle" in french.get_data(as_text=True)
    r = client.post("/supply/links", data={"buyer": "T3-GRP", "seller": "NOPE"})
    assert r.status_code == 422
    # a supplier added and edited, a village attached
    r = client.post("/supply/suppliers/new", data={"code": "T4-HW", "name": "Homeworkers",
                                                   "tier": "4", "kind": ""})  # fmt: skip
    assert r.status_code == 303
    r = client.post("/supply/suppliers/new", data={"code": "T4-HW", "name": "", "tier": "x"})
    assert r.status_code == 422 and "is already used by" in r.get_data(as_text=True)
    r = client.post("/supply/suppliers/T4-HW/edit", data={"name": "Home workers", "tier": "3"})
    assert r.status_code == 303
    assert (
        client.post("/supply/suppliers/T4-HW/villages", data={"village": "V1"}).status_code == 303
    )
    assert (
        client.post("/supply/suppliers/T4-HW/villages", data={"village": "V9"}).status_code == 422
    )
    page = client.get("/supply/suppliers/T4-HW/edit").get_data(as_text=True)
    assert "Gnamagui" in page
    with session_scope(app) as s:
        assert s.execute(
            select(Supplier.name, Supplier.tier).where(Supplier.code == "T4-HW")
        ).one() == ("Home workers", 3)
        assert brand_scope(s, "BRAND-A") == {"T1-EXP", "T2-COOP", "T3-GRP"}
    r = client.post("/supply/links/remove", data={"buyer": "T1-EXP", "seller": "T2-COOP"})
    assert r.status_code == 303
    with session_scope(app) as s:
        assert brand_scope(s, "BRAND-A") == {"T1-EXP"}


def test_a_web_import_lists_every_problem_and_writes_nothing(client, places, make_user, app):
    make_user("ada", "admin")
    login(client, "ada")
    with session_scope(app) as s:
        before = snapshot(s)
    bad = {"files": [(io.BytesIO(SUPPLIERS.encode()), "suppliers.csv"),
                     (io.BytesIO((LINKS + "X3,X1\nX1,NOPE\n").encode()), "links.csv")]}  # fmt: skip
    r = client.post("/supply/import", data=bad, content_type="multipart/form-data")
    assert r.status_code == 422
    html = r.get_data(as_text=True)
    assert "links.csv, line 7, column seller" in html and "X3 -&gt; X1 -&gt; X2 -&gt; X3" in html
    assert "links.csv, line 8, column seller" in html and "NOPE" in html
    with session_scope(app) as s:
        assert snapshot(s) == before
    good = {"files": [(io.BytesIO(BRANDS.encode()), "brands.csv"),
                      (io.BytesIO(SUPPLIERS.encode()), "suppliers.csv"),
                      (io.BytesIO(LINKS.encode()), "links.csv")]}  # fmt: skip
    r = client.post("/supply/import", data=good, content_type="multipart/form-data",
                    follow_redirects=True)  # fmt: skip
    assert r.status_code == 200
    assert "Imported: 2 brand(s) and 4 supplier(s) added or updated, 5 link(s)" in r.get_data(
        as_text=True
    )
    with session_scope(app) as s:
        assert brand_scope(s, "BR-Y") == {"Y1", "X3"}


# --- command line --------------------------------------------------------------------------------


def test_cli_import_show_and_check(runner, app, households, tmp_path):
    paths = []
    for name, data in files():
        (tmp_path / name).write_bytes(data)
        paths.append(str(tmp_path / name))
    dry = runner.invoke(args=["supply", "import", "--dry-run", *paths])
    assert dry.exit_code == 0, dry.output
    assert "Suppliers: 4 added, 0 updated." in dry.output and "Dry run" in dry.output
    with session_scope(app) as s:
        assert s.scalar(select(func.count(Brand.id))) == 1  # BRAND-A only
    done = runner.invoke(args=["supply", "import", *paths])
    assert done.exit_code == 0, done.output
    assert "Links: 5 added, 0 removed." in done.output
    assert "Households: 3 given a new supplier." in done.output

    (tmp_path / "cycle.csv").write_text("buyer,seller\nX3,X1\n")
    refused = runner.invoke(args=["supply", "import", str(tmp_path / "cycle.csv")])
    assert refused.exit_code == 1
    assert "cycle.csv, line 2, column seller: this link closes a cycle: X3 -> X1 -> X2 -> X3" in (
        refused.output
    )

    shown = runner.invoke(args=["supply", "show", "--brand", "BR-Y"])
    assert shown.exit_code == 0, shown.output
    assert shown.output.splitlines() == [
        "BR-Y  Brand Y: 2 suppliers, 2 villages, 2 households",
        "  Y1  Grinder Y  [tier 1, grinder]  villages 0, households 0",
        "    X3  Group X  [tier 3, farmer group]  villages 2, households 2",
    ]
    assert runner.invoke(args=["supply", "show", "--brand", "NOPE"]).exit_code == 1

    # the places fixture's suppliers belong to no brand yet
    check = runner.invoke(args=["supply", "check"])
    assert check.exit_code == 1
    assert "Suppliers no brand reaches (3): T1-EXP, T2-COOP, T3-GRP" in check.output
    links = "buyer,seller\nBRAND-A,T1-EXP\nT1-EXP,T2-COOP\nT1-EXP,T3-GRP\n"
    (tmp_path / "more.csv").write_text(links)
    assert runner.invoke(args=["supply", "import", str(tmp_path / "more.csv")]).exit_code == 0
    check = runner.invoke(args=["supply", "check"])
    assert check.exit_code == 0, check.output
    assert "sound" in check.output
    # a cycle stored by other means is found
    with session_scope(app) as s:
        ids = dict(s.execute(select(Supplier.code, Supplier.id)).all())
        s.add(SupplierLink(buyer_id=ids["X3"], seller_id=ids["X1"]))
    check = runner.invoke(args=["supply", "check"])
    assert check.exit_code == 1 and "Cycle: X1 -> X2 -> X3 -> X1" in check.output
