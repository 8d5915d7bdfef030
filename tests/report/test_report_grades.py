"""The report's "Absolute grades (1-6)" section from the store's grades table (`grade:` in a
study): a table per backbone pooling the training seeds, the references as their own rows, the
counts of unparseable replies, every cell's own grade and distribution, and grades.png (the
scaling chart with the grade as its y-axis, base and the references as horizontal lines). A
store without grades says how to enable them; a store from before the table still reports."""

from __future__ import annotations

import json
import sqlite3
import statistics

import pytest
import yaml

from limacot.report import plots, write_report
from limacot.study.cells import Cell
from limacot.study.store import ResultsStore, grade_rows
from test_report import BACKBONE, SEEDS, SIZES, T975_DF1, _md_tables, build_study
from test_report_references import add_references

JUDGE = "openai:judge"
PROMPTS = 40


def _grade(variant: str, size: str, seed: int) -> float:
    lift = {"base": 0.0, "lima": 0.4, "lima+cot": 0.6, "gpt-4o": 2.2}[variant] + (0.2 if size == "20" else 0.0)
    return round(3.0 + lift + 0.1 * seed, 4)


def _summary(mean: float, unparseable: int) -> dict:
    """A `limacot judge grade` summary of one run graded twice per answer."""
    return {"judge": JUDGE, "samples": 2, "runs": [{
        "mean": mean, "ci95": [round(mean - 0.3, 4), round(mean + 0.3, 4)], "n": PROMPTS,
        "graded": PROMPTS - unparseable, "unparseable": unparseable,
        "distribution": {"1": 0, "2": 4, "3": 20, "4": 30, "5": 16, "6": 10 - unparseable}}]}


def add_grades(root):
    """Grade rows for every grid cell and for gpt-4o (lima-paper's answers were never made)."""
    store = ResultsStore(root / "results.sqlite")
    cells = [Cell(BACKBONE, "base", "-", 0)] + [Cell(BACKBONE, v, s, seed) for v in ("lima", "lima+cot")
                                                for s in SIZES for seed in SEEDS] + [Cell.reference("gpt-4o")]
    for i, cell in enumerate(cells):
        key = f"k{i:02d}".ljust(64, "0")
        store.start_stage("grade", key, cell.id, {"judge": JUDGE, "samples": 2})
        store.finish_stage(key, str(root / "stages" / "grade" / key[:16]),
                           grade_rows(cell.id, _summary(_grade(cell.variant, cell.size, cell.seed), cell.seed)))
    store.close()
    config = yaml.safe_load((root / "study.resolved.yaml").read_text(encoding="utf-8"))
    config["grade"] = {"samples": 2}
    (root / "study.resolved.yaml").write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = add_grades(add_references(build_study(tmp_path_factory.mktemp("graded"))))
    return root, write_report(root)


def _section(markdown: str) -> str:
    return markdown.split("## Absolute grades (1-6)\n\n")[1].split("\n## ")[0]


def test_the_grades_table_pools_seeds_and_lists_the_references(graded):
    _, paths = graded
    markdown = paths["markdown"].read_text(encoding="utf-8")
    assert "could not be built" not in markdown
    assert markdown.index("## Pairwise judgments") < markdown.index("## Human judgments") \
        < markdown.index("## Absolute grades (1-6)") < markdown.index("## Training data")
    table = _md_tables(markdown)[BACKBONE][0]
    assert table[0] == ["variant", "size", "training examples", "mean grade [95% CI]", "seeds", "graded prompts",
                        "unparseable replies"]
    rows = {(r[0], r[1]): r for r in table[1:]}
    assert list(rows) == [("base", "—")] + [(v, s) for v in ("lima", "lima+cot") for s in SIZES] + \
        [("gpt-4o (reference)", "—")]
    assert rows[("base", "—")][2:] == ["—", "3.000 [2.700, 3.300] ‡", "1", f"{PROMPTS} of {PROMPTS}",
                                       f"0 of {2 * PROMPTS}"]
    values = [_grade("lima", "20", seed) for seed in SEEDS]
    mean, half = statistics.fmean(values), T975_DF1 * statistics.stdev(values) / len(values) ** 0.5
    assert rows[("lima", "20")][2:] == ["20", f"{mean:.3f} [{mean - half:.3f}, {mean + half:.3f}]", "2",
                                        f"{2 * PROMPTS - 1} of {2 * PROMPTS}", f"1 of {4 * PROMPTS}"]
    assert rows[("gpt-4o (reference)", "—")][2:] == ["—", "5.200 [4.900, 5.500] ‡", "—",
                                                     f"{PROMPTS} of {PROMPTS}", f"0 of {2 * PROMPTS}"]
    section = _section(markdown)
    assert not any("lima-paper" in row[0] for row in table) and "reference/lima-paper" not in section  # not graded
    assert "the scale of LIMA's ablations (§5 of the LIMA paper" in section
    assert f"The judge (`{JUDGE}`) saw one prompt and one answer" in section and "graded 2 times" in section
    assert "‡ marks one seed or a reference system, whose interval is the 95% bootstrap over prompts" in section


def test_every_cell_has_its_own_row_with_the_grade_distribution(graded):
    _, paths = graded
    markdown = paths["markdown"].read_text(encoding="utf-8")
    assert "**Per cell: every training seed and reference (10)**" in _section(markdown)
    per_cell = _md_tables(markdown)[BACKBONE][1]  # the collapsible table under the backbone's
    assert per_cell[0][-6:] == ["1", "2", "3", "4", "5", "6"]
    rows = {r[0]: r for r in per_cell[1:]}
    assert list(rows)[-1] == "reference/gpt-4o"
    assert rows[f"{BACKBONE}/lima/10/s1"][1:] == [JUDGE, "2", "3.500 [3.200, 3.800]", f"{PROMPTS - 1} of {PROMPTS}",
                                                  f"1 of {2 * PROMPTS}", "0", "4", "20", "30", "16", "9"]


def test_the_grades_chart_is_the_scaling_chart_with_the_grade(graded, monkeypatch, tmp_path):
    root, paths = graded
    assert paths["grades"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "](grades.png)" in paths["markdown"].read_text(encoding="utf-8")
    drawn = []
    original = plots.scaling_chart
    monkeypatch.setattr(plots, "scaling_chart", lambda panels, *a: drawn.append(panels) or original(panels, *a))
    write_report(root, tmp_path / "report")
    (panel,) = drawn[-1]
    assert panel.metric == "mean grade (1-6)"
    lines = {line.variant: line for line in panel.lines}
    assert set(lines) == {"lima", "lima+cot"} and lines["lima"].xs == [10.0, 20.0]
    assert lines["lima+cot"].means == pytest.approx([statistics.fmean(_grade("lima+cot", s, seed) for seed in SEEDS)
                                                     for s in SIZES])
    assert [(ref.name, ref.mean, ref.low, ref.high) for ref in panel.refs] == [("base", 3.0, 2.7, 3.3),
                                                                              ("gpt-4o", 5.2, 4.9, 5.5)]


def test_without_grades_the_section_says_how_to_enable_them(graded, tmp_path):
    root, _ = graded
    out = tmp_path / "report"
    assert write_report(root, out)["grades"].is_file()
    db = sqlite3.connect(root / "results.sqlite")
    saved = db.execute("SELECT * FROM grades").fetchall()
    db.execute("DELETE FROM grades")
    db.commit()
    try:
        configured = write_report(root, out)["markdown"].read_text(encoding="utf-8")
        config = yaml.safe_load((root / "study.resolved.yaml").read_text(encoding="utf-8"))
        (root / "study.resolved.yaml").write_text(yaml.safe_dump({**config, "grade": None}), encoding="utf-8")
        unconfigured = write_report(root, out)
        (root / "study.resolved.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    finally:
        db.executemany(f"INSERT INTO grades VALUES ({', '.join('?' * len(saved[0]))})", saved)
        db.commit()
        db.close()
    section = _section(configured)
    assert "Grading is configured (`grade: {samples: 2}`), but no grades are recorded yet" in section
    section = _section(unconfigured["markdown"].read_text(encoding="utf-8"))
    assert section.startswith("No absolute grades in the store.") and "add `grade: {samples: 1}`" in section
    assert "grades" not in unconfigured and not (out / "grades.png").exists()  # the stale chart is removed


def test_a_store_from_before_the_grades_table_still_reports(tmp_path):
    root = add_references(build_study(tmp_path))
    db = sqlite3.connect(root / "results.sqlite")
    db.execute("DROP TABLE grades")
    db.commit()
    db.close()
    paths = write_report(root)
    markdown = paths["markdown"].read_text(encoding="utf-8")
    assert "could not be built" not in markdown
    assert "the results store has no `grades` table (a store from before absolute grades were recorded)" in markdown
    assert "add `grade: {samples: 1}` to the study config" in _section(markdown) and "grades" not in paths
    assert json.loads(json.dumps(_md_tables(markdown)["Pairwise judgments"]))  # the rest is there
