"""Cells and pairs as types: ids built from them, the grid, the compared pairs."""

from __future__ import annotations

from limacot.study.cells import BASE, Cell, Pair, expand, pairs


def test_grid_and_pairs():
    """The grid of configs/demo.yaml: base once per backbone, a compared pair at the same size
    and seed (or against base)."""
    cells = expand(["smollm2-135m"], ["base", "lima", "lima+cot"], [8, 16], [0])
    assert [c.id for c in cells] == ["smollm2-135m/base/-/s0", "smollm2-135m/lima/8/s0", "smollm2-135m/lima/16/s0",
                                     "smollm2-135m/lima+cot/8/s0", "smollm2-135m/lima+cot/16/s0"]
    compared = [(a.id, b.id) for a, b in pairs([("base", "lima+cot"), ("lima", "lima+cot")], cells)]
    assert ("smollm2-135m/base/-/s0", "smollm2-135m/lima+cot/16/s0") in compared
    assert ("smollm2-135m/lima/8/s0", "smollm2-135m/lima+cot/8/s0") in compared
    assert ("smollm2-135m/lima/8/s0", "smollm2-135m/lima+cot/16/s0") not in compared  # same size only
    assert len(compared) == 4


def test_pairs_stay_within_a_backbone_and_seed():
    cells = expand(["a", "b"], ["base", "lima"], ["all", 10], [0, 1])
    assert len(cells) == 2 * (1 + 2 * 2)
    found = pairs([("base", "lima")], cells)
    assert all(p.a.backbone == p.b.backbone and p.a.is_base for p in found) and len(found) == 2 * 4
    tuned = pairs([("lima", "lima")], cells)
    assert all((p.a.size, p.a.seed) == (p.b.size, p.b.seed) for p in tuned) and len(tuned) == 2 * 4


def test_pair_id_and_kind_come_from_the_cells():
    base, tuned = Cell("smol", BASE, "-", 0), Cell("smol", "lima+cot", "250", 2)
    pair = Pair(base, tuned)
    assert pair.id == "smol/base/-/s0 vs smol/lima+cot/250/s2"
    assert pair.kind == "lima+cot vs base"
    a, b = pair  # a pair unpacks as (A, B)
    assert (a, b) == (base, tuned) and pair.a is base


def test_sort_key_orders_sizes_by_number():
    cells = [Cell("m", "lima", size, seed) for size in ("all", "1000", "250") for seed in (10, 2)]
    assert [c.id for c in sorted(cells, key=lambda c: c.sort_key)] == [
        "m/lima/250/s2", "m/lima/250/s10", "m/lima/1000/s2", "m/lima/1000/s10", "m/lima/all/s2", "m/lima/all/s10"]


def test_a_reference_is_a_cell_outside_the_grid_compared_with_every_cell_of_the_other_side():
    cells = expand(["a", "b"], ["base", "lima"], [10, 20], [0, 1])
    ref = Cell.reference("gpt-4o")
    assert ref.id == "reference/gpt-4o" and ref.is_reference and not ref.is_base and ref.variant == "gpt-4o"
    assert not any(c.is_reference for c in cells)
    found = pairs([("gpt-4o", "lima")], cells + [ref])
    assert [p.a for p in found] == [ref] * 8  # every backbone, size and seed of lima
    assert {p.b.id for p in found} == {c.id for c in cells if c.variant == "lima"}
    assert found[0].id == "reference/gpt-4o vs a/lima/10/s0" and found[0].kind == "lima vs gpt-4o"
    assert len(pairs([("gpt-4o", "base")], cells + [ref])) == 2 and not pairs([("gpt-4o", "lima")], cells)


def test_a_reference_cell_round_trips_through_the_store(tmp_path):
    from limacot.study.store import ResultsStore, as_cell, read_store

    store = ResultsStore(tmp_path / "results.sqlite")
    store.add_cell(Cell.reference("lima-paper"))
    store.close()
    row = read_store(tmp_path / "results.sqlite").cells[0]
    assert row == {"cell_id": "reference/lima-paper", "backbone": "reference", "variant": "lima-paper", "size": "-",
                   "seed": 0}
    assert as_cell(row) == Cell.reference("lima-paper") and as_cell(row).id == row["cell_id"]
