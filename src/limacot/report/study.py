"""Everything the report reads from a study folder, read-only and tolerant of a partial study.

    STUDY_DIR/results.sqlite          cells, jobs (the plan), stage_runs, metrics, comparisons, judgments,
                                      grades, provenance (`limacot.study.store.read_store`)
    STUDY_DIR/study.resolved.yaml     the study config (optional: a missing or broken one is noted)
    STUDY_DIR/data/manifest.json      data build hashes and counts (optional)
    STUDY_DIR/data/card.md            the dataset card (optional)
    <stage output>/limacot-stage.json each finished job's inputs (fallback for stage_runs.config)

`load_study` never writes: the SQLite file is opened with `mode=ro`, so a running `limacot run`
and the report can look at the same store. A folder without `results.sqlite` is not a study
(LimacotInputError, exit code 2); anything else missing or unreadable becomes a line in
`Study.notes` and an empty part of the report, never a crash.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import yaml

from limacot.errors import LimacotInputError
from limacot.study.cells import REFERENCE, Cell
from limacot.study.store import (MARKER, STORE, CellRow, ComparisonRow, GradeRow, JobRow, JudgmentRow, MetricRow,
                                 StageRun, as_cell, read_store)

CONFIG = "study.resolved.yaml"


@dataclass
class Study:
    """The study's contents. Rows are the store's (`limacot.study.store`: plain dicts with its
    column names); `jobs` is None when the store holds no plan. `cells` holds the grid's cells and
    the reference systems' (backbone `reference`); `grid_cells` and `reference_cells` split them."""

    dir: Path
    config: dict = field(default_factory=dict)        # study.resolved.yaml ({} when absent)
    config_text: str | None = None
    cells: list[CellRow] = field(default_factory=list)
    jobs: list[JobRow] | None = None
    stage_runs: list[StageRun] = field(default_factory=list)
    metrics: list[MetricRow] = field(default_factory=list)
    comparisons: list[ComparisonRow] = field(default_factory=list)
    judgments: list[JudgmentRow] = field(default_factory=list)
    grades: list[GradeRow] = field(default_factory=list)
    provenance: dict[str, str] = field(default_factory=dict)
    manifest: dict | None = None
    card: str | None = None
    notes: list[str] = field(default_factory=list)    # what could not be read, in words

    @property
    def name(self) -> str:
        return str(self.config.get("name") or self.dir.name)

    @cached_property
    def _cells_by_id(self) -> dict[str, Cell]:
        return {row["cell_id"]: as_cell(row) for row in self.cells}

    @property
    def grid_cells(self) -> list[CellRow]:
        """The cells of the grid (backbone x variant x size x seed), without the reference systems."""
        return [row for row in self.cells if row["backbone"] != REFERENCE]

    @property
    def reference_cells(self) -> list[CellRow]:
        """The reference systems' cells, in the study config's `references:` order, then by name."""
        order = list(self.config.get("references") or {})
        rows = [row for row in self.cells if row["backbone"] == REFERENCE]
        return sorted(rows, key=lambda r: (order.index(r["variant"]) if r["variant"] in order else len(order),
                                           r["variant"]))

    @property
    def reference_names(self) -> set[str]:
        """The reference systems' names: those the store lists and those the config declares."""
        return {r["variant"] for r in self.reference_cells} | set(self.config.get("references") or {})

    @property
    def data_seed(self) -> str:
        """How training data was selected across training seeds: 'fixed' or 'per_seed'."""
        return str(self.config.get("data_seed") or "fixed")

    @property
    def configured_kinds(self) -> dict[str, str | None]:
        """'B vs A' -> what the config says the comparison measures (its `asks`, None when not
        given), in the config's order; a comparison is [A, B] or {a, b, asks}."""
        kinds: dict[str, str | None] = {}
        for entry in self.config.get("comparisons") or []:
            if isinstance(entry, dict) and entry.get("a") and entry.get("b"):
                kinds[f"{entry['b']} vs {entry['a']}"] = entry.get("asks")
            elif isinstance(entry, (list, tuple)) and len(entry) == 2:
                kinds[f"{entry[1]} vs {entry[0]}"] = None
        return kinds

    def cell(self, cell_id: str) -> Cell | None:
        """The cell `cell_id` names, from the cells table (None when the table lacks it): its
        backbone, variant, size and seed are read there, never parsed out of the id."""
        return self._cells_by_id.get(cell_id)

    def cell_order(self, cell_id: str) -> tuple:
        """Sort key of a cell id: its cell's backbone, variant, size (numerically) and seed; ids
        the cells table lacks come after those, by the id."""
        cell = self.cell(cell_id)
        return (0, cell.sort_key) if cell else (1, cell_id)

    def reference_source(self, name: str) -> str | None:
        """What the reference system `name` answered from: the `openai:MODEL[@BASE_URL]` spec or the
        answers file its generate job read (its recorded inputs), else the study config's
        `references:` entry; None when neither says."""
        cell_id = Cell.reference(name).id
        runs = sorted((r for r in self.stage_runs if r["stage"] == "generate" and r["cell_id"] == cell_id),
                      key=lambda r: (r["status"] == "done", r["started"] or 0))
        for run in reversed(runs):
            inputs = self.inputs(run)
            if inputs.get("spec") or inputs.get("answers"):
                return str(inputs.get("spec") or inputs.get("answers"))
        source = (self.config.get("references") or {}).get(name)
        return str(source) if source else None

    def inputs(self, run: dict) -> dict:
        """A stage run's inputs: stage_runs.config, else its output's marker, else {}."""
        if run.get("config"):
            try:
                inputs = json.loads(run["config"])
            except (TypeError, ValueError):
                inputs = None
            if isinstance(inputs, dict) and inputs:
                return inputs
        marker = self.resolve(run["output"]) / MARKER if run.get("output") else None
        if marker and marker.is_file():
            try:
                inputs = json.loads(marker.read_text(encoding="utf-8")).get("inputs")
            except (OSError, ValueError, AttributeError):
                inputs = None
            return inputs if isinstance(inputs, dict) else {}
        return {}

    def resolve(self, output: str) -> Path:
        """A stage output path, found again when the study folder was moved: an absolute path
        that no longer exists is looked up by its `stages/...` tail under this folder."""
        path = Path(output)
        if path.exists() or "stages" not in path.parts:
            return path if path.is_absolute() else self.dir / path
        tail = path.parts[len(path.parts) - 1 - path.parts[::-1].index("stages"):]
        return self.dir.joinpath(*tail)

    def judge_name(self, spec: str) -> str:
        """A judge as the report names it: an API or hub judge by its spec, a local judge folder by
        its path inside the study folder or its name (no machine paths in reports)."""
        if spec.startswith(("openai:", "hf:")) or "/" not in spec:
            return spec
        return self.relative(spec)

    def relative(self, output: str | None) -> str:
        """`output` relative to the study folder when it lies inside it (no machine paths in reports)."""
        if not output:
            return ""
        path = self.resolve(output)
        try:
            return path.resolve().relative_to(self.dir.resolve()).as_posix()
        except ValueError:
            return path.name


def load_study(study_dir: str | Path) -> Study:
    """Read a study folder (see the module docstring). Raises LimacotInputError if `study_dir`
    is not a study folder (no readable results.sqlite)."""
    study_dir = Path(study_dir)
    store = study_dir / STORE
    if not study_dir.is_dir():
        raise LimacotInputError(f"{study_dir}: no such folder; expected a study folder written by `limacot run`")
    if not store.is_file():
        raise LimacotInputError(f"{study_dir}: not a study folder (no {STORE}); `limacot report` reads the "
                                f"folder that `limacot run --out` wrote")
    study = Study(dir=study_dir)
    _read_store(store, study)
    _read_config(study)
    _read_data(study)
    return study


def _read_store(path: Path, study: Study) -> None:
    contents = read_store(path)
    for table in contents.missing:
        why = {"jobs": " (the plan was not recorded: a store from an older limacot)",
               "grades": " (a store from before absolute grades were recorded)"}.get(table, "")
        study.notes.append(f"the results store has no `{table}` table{why}")
    study.cells, study.jobs, study.stage_runs = contents.cells, contents.jobs, contents.stage_runs
    study.metrics, study.comparisons, study.judgments = contents.metrics, contents.comparisons, contents.judgments
    study.grades = contents.grades
    study.provenance = contents.provenance
    for row in [*study.judgments, *study.grades]:
        row["judge"] = study.judge_name(row["judge"])


def _read_config(study: Study) -> None:
    path = study.dir / CONFIG
    if not path.is_file():
        study.notes.append(f"no `{CONFIG}` (the study config); configured parts are inferred from the store")
        return
    study.config_text = path.read_text(encoding="utf-8")
    try:
        config = yaml.safe_load(study.config_text)
    except yaml.YAMLError as err:
        study.notes.append(f"`{CONFIG}` is not valid YAML ({str(err).splitlines()[0]})")
        return
    study.config = config if isinstance(config, dict) else {}


def _read_data(study: Study) -> None:
    data = study.dir / "data"
    try:
        study.manifest = json.loads((data / "manifest.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        study.notes.append("no `data/manifest.json` (the data build did not finish)")
    except ValueError as err:
        study.notes.append(f"`data/manifest.json` is not valid JSON ({err})")
    try:
        study.card = (data / "card.md").read_text(encoding="utf-8")
    except FileNotFoundError:
        study.notes.append("no `data/card.md` (the dataset card)")
