"""Reference systems in the report: a study with `references:` (a reference is a cell outside the
grid: backbone `reference`, id `reference/<name>`, judged against cells and never evaluated).
The overview lists the grid without them and the references apart with their sources; the
deltas count no comparison with a reference; the LIMA paragraph says which pairs are LIMA's
setting; provenance does not call a reference fine-tuned."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import yaml

from limacot.report import write_report
from limacot.report.judging import lima_setting
from limacot.report.study import load_study
from limacot.study.cells import Cell, Pair
from limacot.study.store import JobRow, ResultsStore, judgment_rows
from test_report import BACKBONE, SEEDS, SIZES, _md_tables, build_study

GPT4O = "openai:gpt-4o@https://api.openai.com/v1"
REFERENCES = {"gpt-4o": GPT4O, "lima-paper": "answers/lima-65b.jsonl"}


def _verdicts(i: int) -> dict:
    """A judge summary of a reference (A) against a cell (B), with the single-order table."""
    wins, ties, losses = 12 + i, 8, 28 - i
    return {"judge": "openai:judge", "runs": [{
        "win": wins, "tie": ties, "loss": losses, "unparseable": 2, "b_equal_or_better": (wins + ties) / 48,
        "ci95": [0.3, 0.55], "n": 50, "flipped": 3,
        "single_order": {"win": 10 + i, "tie": 5, "loss": 33 - i, "unparseable": 2,
                         "b_equal_or_better": (15 + i) / 48, "ci95": [0.2, 0.45]}}]}


def add_references(root: Path) -> Path:
    """The study of `build_study` with two references: gpt-4o (an API model whose answers were made:
    its generate job's inputs name it) judged against every lima+cot cell, and lima-paper (an
    answers file, configured, its answers not made yet)."""
    store = ResultsStore(root / "results.sqlite")
    jobs = []
    gpt, paper = Cell.reference("gpt-4o"), Cell.reference("lima-paper")
    for ref in (gpt, paper):
        store.add_cell(ref)
    key = "r".ljust(64, "0")
    jobs.append(JobRow(label=f"generate {gpt.id}", key=key, stage="generate", cell_id=gpt.id, a_cell=None,
                       b_cell=None, deps=[], output=str(root / "stages" / "generate" / key[:16])))
    store.start_stage("generate", key, gpt.id, {"reference": "gpt-4o", "prompts_path": "prompts.jsonl",
                                                "model": "gpt-4o", "spec": GPT4O})
    store.finish_stage(key, jobs[-1]["output"])
    jobs.append(JobRow(label=f"generate {paper.id}", key="p".ljust(64, "0"), stage="generate", cell_id=paper.id,
                       a_cell=None, b_cell=None, deps=[], output=str(root / "stages" / "generate" / ("p" * 16))))
    cells = [Cell(BACKBONE, "lima+cot", size, seed) for size in SIZES for seed in SEEDS]
    for i, pair in enumerate(Pair(gpt, cell) for cell in cells):
        key = f"q{i:02d}".ljust(64, "0")
        jobs.append(JobRow(label=f"judge {pair.id}", key=key, stage="judge", cell_id=None, a_cell=pair.a.id,
                           b_cell=pair.b.id, deps=[], output=str(root / "stages" / "judge" / key[:16])))
        store.start_stage("judge", key, pair.id, {"judge": "openai:judge"})
        store.finish_stage(key, jobs[-1]["output"], judgment_rows(pair.a.id, pair.b.id, _verdicts(i)))
    store.record_plan(jobs, replace=False)
    store.close()
    config = yaml.safe_load((root / "study.resolved.yaml").read_text(encoding="utf-8"))
    config["references"] = REFERENCES
    config["comparisons"].append(["gpt-4o", "lima+cot"])
    (root / "study.resolved.yaml").write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def reference_report(tmp_path_factory):
    root = add_references(build_study(tmp_path_factory.mktemp("references")))
    return root, write_report(root)


def _section(markdown: str, title: str) -> str:
    return markdown.split(f"## {title}\n")[1].split("\n## ")[0]


def test_the_overview_lists_the_grid_and_the_references_apart(reference_report):
    _, paths = reference_report
    markdown = paths["markdown"].read_text(encoding="utf-8")
    assert "could not be built" not in markdown
    assert (f"Backbones: {BACKBONE}; variants: base, lima, lima+cot; training sizes: 10, 20; training seeds: 0, 1; "
            f"9 cells") in markdown
    assert ("References: gpt-4o (openai:gpt-4o at api.openai.com), lima-paper (answers file lima-65b.jsonl): "
            "systems outside the grid") in markdown
    assert "Training seeds in the store: 0, 1." in markdown
    for size in SIZES:  # no column for a reference in the main tables
        assert _md_tables(markdown)[f"{BACKBONE}: {size} training examples"][0][0] == \
            ["task", "metric", "base", "lima", "lima+cot"]
    assert not any(title.startswith("reference") for title in _md_tables(markdown))


def test_a_reference_source_is_read_from_its_answers_job(reference_report):
    """Without the study config, the source of a reference whose answers were made is still known."""
    root, _ = reference_report
    study = load_study(root)
    study.config = {}
    assert study.reference_source("gpt-4o") == GPT4O and study.reference_source("lima-paper") is None
    assert [c["cell_id"] for c in study.reference_cells] == ["reference/gpt-4o", "reference/lima-paper"]


def test_provenance_names_the_reference_not_a_fine_tuned_model(reference_report):
    _, paths = reference_report
    rows = {r[0]: r for r in _md_tables(paths["markdown"].read_text(encoding="utf-8"))["Provenance"][0][1:]}
    assert rows["reference/gpt-4o"][1:3] == ["reference: openai:gpt-4o at api.openai.com", "`r00000000000`"]
    assert rows["reference/lima-paper"][1] == "reference: answers file lima-65b.jsonl"
    assert all("fine-tuned" not in rows[ref][1] and rows[ref][-1].startswith("none: a reference is judged")
               for ref in ("reference/gpt-4o", "reference/lima-paper"))
    assert "fine-tuned" in rows[f"{BACKBONE}/lima/10/s0"][1]


def test_the_lima_paragraph_names_the_pairs_in_lima_setting(reference_report):
    _, paths = reference_report
    section = _section(paths["markdown"].read_text(encoding="utf-8"), "Pairwise judgments")
    lima = section.split("### Comparable to LIMA")[1]
    assert ("With a reference system as A (`reference/gpt-4o`), a pair is LIMA's setting: B, a model of this "
            "study, against a reference system") in lima
    assert "\"B equal or better, single order\" is the rate comparable to LIMA's 43/58/65%" in lima
    assert "Where A is a cell of this study, only the protocol is LIMA's." in lima
    assert "here A is a cell of this study, not GPT-4" not in lima
    rows = _md_tables(paths["markdown"].read_text(encoding="utf-8"))["Comparable to LIMA"][0][1:]
    first = next(r for r in rows if r[:2] == ["reference/gpt-4o", f"{BACKBONE}/lima+cot/10/s0"])
    assert first[3:7] == ["10", "5", "33", "0.312 [0.200, 0.450]"]


def test_the_lima_paragraph_for_cells_only_or_references_only(reference_report):
    root, _ = reference_report
    study = load_study(root)
    cells_only = [r for r in study.judgments if not r["a_cell"].startswith("reference/")]
    references_only = [r for r in study.judgments if r["a_cell"].startswith("reference/")]
    assert lima_setting(study, cells_only) == \
        "Only the protocol is LIMA's: here A is a cell of this study, not GPT-4, Bard or DaVinci003."
    text = lima_setting(study, references_only)
    assert text.startswith("With a reference system as A") and "cell of this study" not in text
    swapped = [{**r, "a_cell": r["b_cell"], "b_cell": r["a_cell"]} for r in references_only]
    assert "Where a reference system is B (`reference/gpt-4o`), the rate is the reference's" in \
        lima_setting(study, swapped)


def test_no_comparison_with_a_reference_is_counted_as_a_missing_delta(tmp_path):
    root = add_references(build_study(tmp_path))
    db = sqlite3.connect(root / "results.sqlite")
    db.execute("DELETE FROM comparisons")
    db.commit()
    db.close()
    section = _section(write_report(root)["markdown"].read_text(encoding="utf-8"), "Paired deltas")
    assert ("No paired comparisons in the store: 3 are configured but none has finished yet (see Study status); "
            "1 with a reference system is judged only (a reference has no benchmark numbers).") in section
    config = yaml.safe_load((root / "study.resolved.yaml").read_text(encoding="utf-8"))
    config["comparisons"] = [["gpt-4o", "lima+cot"], ["lima-paper", "base"]]
    (root / "study.resolved.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    section = _section(write_report(root)["markdown"].read_text(encoding="utf-8"), "Paired deltas")
    assert "none are configured between the grid's variants; 2 with a reference system are judged only" in section
