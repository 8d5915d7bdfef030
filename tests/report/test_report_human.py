"""The report's "Human judgments" section: labels imported into STUDY_DIR/human/<name> (through
`limacot judge export` / `import` on a judge output inside the study) are shown with the study's
cell ids and the numbers of human.json; without any, the section says how to add them."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from limacot.judge.annotation import COLUMNS, export_sheets, import_sheets
from limacot.report import write_report
from limacot.report.study import load_study
from test_report import _md_tables, build_study

A_CELL, B_CELL = "smol/base/-/s0", "smol/lima/10/s0"
# the judge's outcome for B per prompt, and two annotators' (in B's terms)
JUDGE = ["win", "win", "tie", "loss", "win", "tie"]
HUMANS = {"kim": ["win", "win", "tie", "loss", "loss", "tie"], "lee": ["win", "tie", "tie", "loss", "loss", "win"]}


def _judge_out(root: Path) -> Path:
    """A `limacot judge` output for A_CELL vs B_CELL where the study keeps it, its runs named after
    the cells' generate folders (as `limacot run` calls the judge)."""
    study = load_study(root)
    folder = {job["cell_id"]: Path(job["output"]).name for job in study.jobs if job["stage"] == "generate"}
    judge_job = next(j for j in study.jobs if j["stage"] == "judge" and (j["a_cell"], j["b_cell"]) == (A_CELL, B_CELL))
    out = Path(judge_job["output"])
    out.mkdir(parents=True)
    prefers = {"win": "b", "loss": "a", "tie": "tie"}
    records = [{"b_run": folder[B_CELL], "id": f"q{i}", "prompt": f"Question {i}?", "answer_a": f"A's answer {i}",
                "answer_b": f"B's answer {i}", "outcome": outcome, "flipped": False,
                "orders": {o: {"prefers": prefers[outcome]} for o in ("ab", "ba")}} for i, outcome in enumerate(JUDGE)]
    (out / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    (out / "summary.json").write_text(json.dumps({"judge": "embedded", "a": {"name": folder[A_CELL]}}),
                                      encoding="utf-8")
    return out


def _fill(sheets: Path, k: int, outcomes: list[str], out: Path) -> Path:
    key = json.loads((sheets / "key.json").read_text())
    text = (sheets / f"sheet-{k}.csv").read_bytes().decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    for row in rows:
        entry = key["items"][row["item"]]
        wanted = outcomes[int(entry["prompt_id"][1:])]
        row["label"] = "tie" if wanted == "tie" else "X" if (wanted == "win") == (entry["x"] == "b") else "Y"
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    out.write_bytes(buffer.getvalue().encode("utf-8-sig"))
    return out


@pytest.fixture(scope="module")
def study_with_labels(tmp_path_factory):
    root = build_study(tmp_path_factory.mktemp("study"))
    sheets = root / "sheets"
    export_sheets(_judge_out(root), sheets, annotators=2, seed=1)
    filled = [_fill(sheets, k, HUMANS[name], root / f"{name}.csv") for k, name in ((1, "kim"), (2, "lee"))]
    human = import_sheets(sheets, filled, root / "human" / "experts", resamples=200)
    return root, human, write_report(root)


def test_section_shows_human_rates_and_agreement(study_with_labels):
    _, human, paths = study_with_labels
    markdown = paths["markdown"].read_text(encoding="utf-8")
    section = markdown.split("## Human judgments", 1)[1].split("\n## ", 1)[0]
    assert "could not be built" not in section and "No human labels yet" not in section
    headings = [line for line in markdown.splitlines() if line.startswith("## ")]
    assert headings[headings.index("## Pairwise judgments") + 1] == "## Human judgments"
    preference, agreement = _md_tables(markdown)["Human judgments"]
    pair = human["pairs"][0]
    pooled = pair["human"]["pooled"]
    # 12 labels: kim 2 wins, 2 ties, 2 losses; lee 2, 2, 2 -> 4, 4, 4; B equal or better 8/12
    assert (pooled["win"], pooled["tie"], pooled["loss"]) == (4, 4, 4)
    lo, hi = pooled["ci95"]
    assert preference[1] == ["experts", A_CELL, B_CELL, "2", "12", "4", "4", "4", f"0.667 [{lo:.3f}, {hi:.3f}]",
                             f"0.833 [{pair['judge']['ci95'][0]:.3f}, {pair['judge']['ci95'][1]:.3f}]"]
    rows = {r[3]: r for r in agreement[1:]}
    assert set(rows) == {"judge vs humans (pooled)", "judge vs kim", "judge vs lee", "kim vs lee"}
    # kim agrees with the judge on q0-q3, q5 (5 of 6); lee on q0, q2, q3 (3 of 6): pooled 8/12
    assert rows["judge vs kim"][5].startswith("0.833 [") and rows["judge vs lee"][5].startswith("0.500 [")
    # kim's kappa with the judge is 0.75; some of the 200 resamples hold one label only (kappa undefined)
    assert rows["judge vs kim"][8] == "0.750 (no CI)"
    assert rows["judge vs humans (pooled)"][4] == "12" and rows["judge vs humans (pooled)"][5].startswith("0.667 [")
    # kim vs lee: agree on q0, q2, q3, q4 (4 of 6); (win, tie) q1 and (tie, win) q5 count 1/2 each
    assert rows["kim vs lee"][5].startswith("0.667 [") and rows["kim vs lee"][7].startswith("0.833 [")
    html = paths["html"].read_text(encoding="utf-8")
    assert 'id="human-judgments"' in html and "judge vs humans (pooled)" in html


def test_without_labels_the_section_says_how_to_add_them(tmp_path):
    root = build_study(tmp_path)
    markdown = write_report(root)["markdown"].read_text(encoding="utf-8")
    section = markdown.split("## Human judgments", 1)[1].split("\n## ", 1)[0]
    assert "No human labels yet" in section and "limacot judge export" in section
    assert "--out STUDY_DIR/human/<name>" in section


def test_an_unreadable_human_json_is_named_and_the_others_shown(study_with_labels, tmp_path):
    root, _, _ = study_with_labels
    broken = root / "human" / "broken"
    broken.mkdir(exist_ok=True)
    (broken / "human.json").write_text("{not json", encoding="utf-8")
    try:
        markdown = write_report(root, out=tmp_path / "report")["markdown"].read_text(encoding="utf-8")
    finally:
        (broken / "human.json").unlink()
    section = markdown.split("## Human judgments", 1)[1].split("\n## ", 1)[0]
    assert "Unreadable: `human/broken/human.json` (JSONDecodeError)" in section
    assert f"| experts | {A_CELL} | {B_CELL} |" in section
