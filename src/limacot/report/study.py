"""Everything the report reads from a study folder, read-only and tolerant of a partial study.

    STUDY_DIR/results.sqlite          cells, stage_runs, metrics, comparisons, judgments, provenance
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
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from limacot.errors import LimacotInputError

STORE = "results.sqlite"
CONFIG = "study.resolved.yaml"
MARKER = "limacot-stage.json"
TABLES = ("cells", "stage_runs", "metrics", "comparisons", "judgments", "provenance")


@dataclass
class Study:
    """The study's contents. Rows are plain dicts with the store's column names."""

    dir: Path
    config: dict = field(default_factory=dict)        # study.resolved.yaml ({} when absent)
    config_text: str | None = None
    cells: list[dict] = field(default_factory=list)
    stage_runs: list[dict] = field(default_factory=list)
    metrics: list[dict] = field(default_factory=list)
    comparisons: list[dict] = field(default_factory=list)
    judgments: list[dict] = field(default_factory=list)
    provenance: dict[str, str] = field(default_factory=dict)
    manifest: dict | None = None
    card: str | None = None
    notes: list[str] = field(default_factory=list)    # what could not be read, in words

    @property
    def name(self) -> str:
        return str(self.config.get("name") or self.dir.name)

    def cell(self, cell_id: str) -> dict | None:
        return next((c for c in self.cells if c["cell_id"] == cell_id), None)

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
    try:
        db = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True, timeout=30)
    except sqlite3.Error as err:
        raise LimacotInputError(f"{path}: cannot open the results store ({err})") from None
    db.row_factory = sqlite3.Row
    try:
        present = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        rows = {}
        for table in TABLES:
            if table not in present:
                study.notes.append(f"the results store has no `{table}` table")
                rows[table] = []
                continue
            rows[table] = [dict(r) for r in db.execute(f"SELECT * FROM {table}")]
    except sqlite3.DatabaseError as err:
        raise LimacotInputError(f"{path}: not a readable results store ({err})") from None
    finally:
        db.close()
    study.cells, study.stage_runs, study.metrics = rows["cells"], rows["stage_runs"], rows["metrics"]
    study.comparisons, study.judgments = rows["comparisons"], rows["judgments"]
    study.provenance = {r["key"]: r["value"] for r in rows["provenance"]}


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
