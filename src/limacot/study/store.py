"""The results store: one SQLite file per study (`STUDY_DIR/results.sqlite`), written by
`limacot run` (`ResultsStore`) and read by the report and `limacot run --status` (`read_store`).

Every write is one transaction, so a run killed at any point leaves either the old state
or the new one, never a partial row. Tables (each row type below is its TypedDict):

    cells(cell_id PK, backbone, variant, size, seed)                 one model of the grid, or a reference
                                                                     system's answers (backbone
                                                                     'reference', `Cell.reference`) (CellRow)
    jobs(label PK, key, stage, cell_id, a_cell, b_cell, deps, output, position)
                                                                     the plan as `limacot run` made it
                                                                     (JobRow): one row per job, its key,
                                                                     its cell or compared pair, the keys
                                                                     it waits for (deps, a JSON list) and
                                                                     its output folder; position: plan order
    stage_runs(stage, key PK, cell_id, status, output, started, finished, seconds, error, config)
                                                                     one stage execution, keyed by
                                                                     its content hash; status is
                                                                     running | done | failed (StageRun)
    metrics(cell_id, stage_key, task, metric, value, stderr, n, fewshot_seed)
                                                                     benchmark numbers (eval stage)
    comparisons(kind, task, a_cell, b_cell, metric, delta, ci_low, ci_high, p_value, p_holm, n)
                                                                     paired statistics (eval compare):
                                                                     each metric's delta, CI and p of
                                                                     its own test; p_holm on the
                                                                     task's primary metric only
    judgments(a_cell, b_cell, judge, wins, ties, losses, unparseable, rate, ci_low, ci_high, n, flipped,
              single_*, half_tie_*, flip_rate*, first_*, length_*, lc_*)
                                                                     pairwise judge outcomes (JudgmentRow);
                                                                     flipped: prompts whose verdict changed
                                                                     with the order (counted as ties); the
                                                                     single-order table, win + tie/2, flip
                                                                     rate, position and length bias
    grades(cell_id, judge, samples, mean, ci_low, ci_high, n, graded, unparseable, distribution)
                                                                     absolute grades (LIMA's 1-6 scale) of
                                                                     a cell's answers (GradeRow)
    provenance(key PK, value)                                        git commit, package versions...

A pair's compare and judge runs have the pair's id ('A vs B', `limacot.study.cells.Pair.id`) as
their stage_runs.cell_id. A store made by an older limacot may lack a table (`jobs`, say):
`read_store` names it in `StoreContents.missing` and returns no rows for it.

`comparison_rows`, `judgment_rows` and `grade_rows` turn a stage's output (compare.json, the
judge's and the grader's summary.json) into the rows `finish_stage` writes.
"""

from __future__ import annotations

import json
import sqlite3
import time
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, TypedDict

from limacot.errors import LimacotInputError
from limacot.study.cells import Cell

STORE = "results.sqlite"  # STUDY_DIR/results.sqlite
MARKER = "limacot-stage.json"  # in a stage's output folder, written when it is done: stage, key, inputs
STAGES = ("data", "train", "eval", "generate", "compare", "judge", "grade")  # stage_runs.stage, in pipeline order
SCHEMA = """
CREATE TABLE IF NOT EXISTS cells (
    cell_id TEXT PRIMARY KEY, backbone TEXT NOT NULL, variant TEXT NOT NULL, size TEXT NOT NULL, seed INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS jobs (
    label TEXT PRIMARY KEY, key TEXT NOT NULL, stage TEXT NOT NULL, cell_id TEXT, a_cell TEXT, b_cell TEXT,
    deps TEXT NOT NULL, output TEXT NOT NULL, position INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS stage_runs (
    key TEXT PRIMARY KEY, stage TEXT NOT NULL, cell_id TEXT, status TEXT NOT NULL, output TEXT,
    started REAL, finished REAL, seconds REAL, error TEXT, config TEXT);
CREATE TABLE IF NOT EXISTS metrics (
    cell_id TEXT NOT NULL, stage_key TEXT NOT NULL, task TEXT NOT NULL, metric TEXT NOT NULL,
    value REAL, stderr REAL, n INTEGER, fewshot_seed INTEGER,
    PRIMARY KEY (cell_id, task, metric, fewshot_seed));
CREATE TABLE IF NOT EXISTS comparisons (
    kind TEXT NOT NULL, task TEXT NOT NULL, a_cell TEXT NOT NULL, b_cell TEXT NOT NULL, metric TEXT NOT NULL,
    delta REAL, ci_low REAL, ci_high REAL, p_value REAL, p_holm REAL, n INTEGER,
    PRIMARY KEY (kind, task, a_cell, b_cell, metric));
CREATE TABLE IF NOT EXISTS judgments (
    a_cell TEXT NOT NULL, b_cell TEXT NOT NULL, judge TEXT NOT NULL, wins INTEGER, ties INTEGER, losses INTEGER,
    unparseable INTEGER, rate REAL, ci_low REAL, ci_high REAL, n INTEGER, flipped INTEGER,
    PRIMARY KEY (a_cell, b_cell, judge));
CREATE TABLE IF NOT EXISTS grades (
    cell_id TEXT NOT NULL, judge TEXT NOT NULL, samples INTEGER, mean REAL, ci_low REAL, ci_high REAL, n INTEGER,
    graded INTEGER, unparseable INTEGER, distribution TEXT, PRIMARY KEY (cell_id, judge));
CREATE TABLE IF NOT EXISTS provenance (key TEXT PRIMARY KEY, value TEXT);
"""
TABLES = ("cells", "jobs", "stage_runs", "metrics", "comparisons", "judgments", "grades", "provenance")
# judgments columns after the first ones, added to a store created before they existed (None there)
JUDGMENT_ADDED = {"flipped": "INTEGER", "single_wins": "INTEGER", "single_ties": "INTEGER",
                  "single_losses": "INTEGER", "single_unparseable": "INTEGER", "single_rate": "REAL",
                  "single_ci_low": "REAL", "single_ci_high": "REAL", "half_tie_rate": "REAL", "half_tie_ci_low": "REAL",
                  "half_tie_ci_high": "REAL", "flip_rate": "REAL", "flip_ci_low": "REAL", "flip_ci_high": "REAL",
                  "first_share": "REAL", "first_ci_low": "REAL", "first_ci_high": "REAL", "first_n": "INTEGER",
                  "length_n": "INTEGER", "length_intercept": "REAL", "length_slope": "REAL",
                  "length_slope_low": "REAL", "length_slope_high": "REAL", "length_p": "REAL",
                  "length_raw_rate": "REAL", "lc_rate": "REAL", "lc_ci_low": "REAL", "lc_ci_high": "REAL",
                  "length_bins": "TEXT", "length_note": "TEXT"}
ADDED_COLUMNS = {"judgments": JUDGMENT_ADDED}  # added to a store created before they existed
COMPARISON_COLUMNS = ("kind", "task", "a_cell", "b_cell", "metric", "delta", "ci_low", "ci_high", "p_value",
                      "p_holm", "n")
JUDGMENT_COLUMNS = ("a_cell", "b_cell", "judge", "wins", "ties", "losses", "unparseable", "rate", "ci_low",
                    "ci_high", "n") + tuple(JUDGMENT_ADDED)
JOB_COLUMNS = ("label", "key", "stage", "cell_id", "a_cell", "b_cell", "deps", "output", "position")
GRADE_COLUMNS = ("cell_id", "judge", "samples", "mean", "ci_low", "ci_high", "n", "graded", "unparseable",
                 "distribution")
Rows = list[tuple[str, tuple]]


# --- row types ---------------------------------------------------------------------------------


class CellRow(TypedDict):
    cell_id: str
    backbone: str
    variant: str
    size: str
    seed: int


class JobRow(TypedDict):
    """One job of the recorded plan (see `limacot.run.plan.Job`)."""

    label: str                 # 'train smol/lima/10/s0', 'compare A vs B', 'data'
    key: str                   # the content hash (full)
    stage: str
    cell_id: str | None        # a cell's job
    a_cell: str | None         # a pair's job (compare, judge)
    b_cell: str | None
    deps: list[str]            # the keys of the jobs it waits for
    output: str                # its output folder


class StageRun(TypedDict):
    key: str
    stage: str
    cell_id: str | None        # a cell id, a pair id ('A vs B') or None (data)
    status: str                # running | done | failed
    output: str | None
    started: float | None
    finished: float | None
    seconds: float | None
    error: str | None
    config: str | None         # the job's inputs, JSON


class MetricRow(TypedDict):
    cell_id: str
    stage_key: str
    task: str
    metric: str
    value: float | None
    stderr: float | None
    n: int | None
    fewshot_seed: int | None   # -1: the main number; >= 0: one few-shot seed's


class ComparisonRow(TypedDict):
    kind: str
    task: str
    a_cell: str
    b_cell: str
    metric: str
    delta: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    p_holm: float | None
    n: int | None


class JudgmentRow(TypedDict):
    a_cell: str
    b_cell: str
    judge: str
    wins: int | None
    ties: int | None
    losses: int | None
    unparseable: int | None
    rate: float | None
    ci_low: float | None
    ci_high: float | None
    n: int | None
    # None in a store written before they were recorded, or from a summary.json that lacks them:
    flipped: int | None        # prompts whose verdict changed with the order
    single_wins: int | None    # the single-order table (each prompt judged in one order, LIMA's setting)
    single_ties: int | None
    single_losses: int | None
    single_unparseable: int | None
    single_rate: float | None  # B equal or better in a single order: comparable with LIMA's 43/58/65%
    single_ci_low: float | None
    single_ci_high: float | None
    half_tie_rate: float | None  # (win + tie/2) / decided, both orders
    half_tie_ci_low: float | None
    half_tie_ci_high: float | None
    flip_rate: float | None    # flipped / decided
    flip_ci_low: float | None
    flip_ci_high: float | None
    first_share: float | None  # decisive verdicts preferring the first-shown answer (position bias)
    first_ci_low: float | None
    first_ci_high: float | None
    first_n: int | None        # decisive verdicts
    length_n: int | None       # decided prompts in the length fit
    length_intercept: float | None
    length_slope: float | None  # log-odds of B preferred per doubling of B's length over A's
    length_slope_low: float | None
    length_slope_high: float | None
    length_p: float | None
    length_raw_rate: float | None  # win + tie/2 over the fitted prompts
    lc_rate: float | None      # the fit at equal lengths: length-controlled win + tie/2
    lc_ci_low: float | None
    lc_ci_high: float | None
    length_bins: str | None    # JSON [[mean log2 length ratio, mean outcome, prompts], ...]
    length_note: str | None    # why the length numbers are missing (too few prompts, ...), else None


class GradeRow(TypedDict):
    cell_id: str
    judge: str
    samples: int               # judge replies per answer
    mean: float | None         # mean over prompts of each prompt's mean grade (1-6)
    ci_low: float | None       # 95% bootstrap interval over prompts
    ci_high: float | None
    n: int                     # prompts
    graded: int                # prompts with a readable grade
    unparseable: int           # replies without one
    distribution: str          # JSON: {"1": count, ..., "6": count} of the readable sample grades


def cell_row(cell: Cell) -> CellRow:
    return CellRow(cell_id=cell.id, backbone=cell.backbone, variant=cell.variant, size=cell.size, seed=cell.seed)


def as_cell(row: CellRow) -> Cell:
    """The cell a cells row describes."""
    return Cell(row["backbone"], row["variant"], str(row["size"]), int(row["seed"]))


def last_line(error: str | None) -> str:
    """The last non-empty line of a stage run's error, at most 200 characters."""
    lines = [line.strip() for line in (error or "").splitlines() if line.strip()]
    text = lines[-1] if lines else ""
    return text if len(text) <= 200 else text[:197] + "..."


# --- row builders ------------------------------------------------------------------------------


def _insert(table: str, columns: tuple[str, ...]) -> str:
    return f"INSERT OR REPLACE INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"


def comparison_rows(kind: str, a_cell: str, b_cell: str, result: dict) -> Rows:
    """The comparisons rows of one `limacot.eval.compare.compare_runs` result: per task and metric,
    that metric's delta, CI and p-value (of its own test) and, for the task's primary metric, the
    Holm-corrected p."""
    sql = _insert("comparisons", COMPARISON_COLUMNS)
    return [(sql, (kind, task["task"], a_cell, b_cell, metric, m["diff"], m["ci_low"], m["ci_high"], m["p_value"],
                   m.get("p_holm"), task["n"]))
            for task in result["tasks"] for metric, m in task["metrics"].items()]


def judgment_rows(a_cell: str, b_cell: str, summary: dict) -> Rows:
    """The judgments rows of one `limacot judge` summary.json (one per B run; `limacot run`
    judges one B per job): the counts and rate of both orders, the order flips, the single-order
    table, win + tie/2, the flip rate and the judge's position and length bias. Keys a summary
    lacks (one written before they existed) become NULL."""
    sql = _insert("judgments", JUDGMENT_COLUMNS)
    rows = []
    for run in summary["runs"]:
        values = {"a_cell": a_cell, "b_cell": b_cell, "judge": summary["judge"], **_judgment_values(run)}
        rows.append((sql, tuple(values[column] for column in JUDGMENT_COLUMNS)))
    return rows


def grade_rows(cell_id: str, summary: dict) -> Rows:
    """The grades row of one `limacot judge grade` summary.json of a cell's answers (one run)."""
    sql = _insert("grades", GRADE_COLUMNS)
    rows = []
    for run in summary["runs"]:
        low, high = run.get("ci95") or (None, None)
        rows.append((sql, (cell_id, summary["judge"], summary["samples"], run["mean"], low, high, run["n"],
                           run["graded"], run["unparseable"], json.dumps(run["distribution"]))))
    return rows


def _judgment_values(run: dict) -> dict:
    """A summary run's values by judgments column (all but a_cell, b_cell and judge)."""
    single = run.get("single_order") or {}
    position = run.get("position_bias") or {}
    length = run.get("length_bias") or {}
    bins = length.get("bins")
    return {"wins": run["win"], "ties": run["tie"], "losses": run["loss"], "unparseable": run["unparseable"],
            "rate": run["b_equal_or_better"], **_interval("ci", run.get("ci95")), "n": run["n"],
            "flipped": run.get("flipped"), "single_wins": single.get("win"), "single_ties": single.get("tie"),
            "single_losses": single.get("loss"), "single_unparseable": single.get("unparseable"),
            "single_rate": single.get("b_equal_or_better"), **_interval("single_ci", single.get("ci95")),
            "half_tie_rate": run.get("b_win_half_tie"), **_interval("half_tie_ci", run.get("b_win_half_tie_ci95")),
            "flip_rate": run.get("flip_rate"), **_interval("flip_ci", run.get("flip_rate_ci95")),
            "first_share": position.get("share_first"), **_interval("first_ci", position.get("ci95")),
            "first_n": position.get("decisive"), "length_n": length.get("n"),
            "length_intercept": length.get("intercept"), "length_slope": length.get("slope"),
            **_interval("length_slope", length.get("slope_ci95")), "length_p": length.get("p_value"),
            "length_raw_rate": length.get("raw_rate"), "lc_rate": length.get("lc_rate"),
            **_interval("lc_ci", length.get("lc_ci95")), "length_bins": json.dumps(bins) if bins is not None else None,
            "length_note": length.get("note")}


def _interval(prefix: str, bounds) -> dict:
    """{"<prefix>_low": lo, "<prefix>_high": hi} of [lo, hi], None for both when there is none."""
    low, high = bounds or (None, None)
    return {f"{prefix}_low": low, f"{prefix}_high": high}


# --- writing -----------------------------------------------------------------------------------


class ResultsStore:
    """Thin, transactional access to the study's SQLite file (creates it and any missing table)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        self.db.row_factory = sqlite3.Row
        try:
            self.db.execute("PRAGMA journal_mode=WAL")
        except sqlite3.DatabaseError as err:  # a file there that is no SQLite database
            self.db.close()
            raise LimacotInputError(f"{self.path}: not a readable results store ({err}); a study folder's "
                                    "results.sqlite is written by `limacot run`") from None
        with self.transaction() as db:
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)
            for table, columns in ADDED_COLUMNS.items():
                present = {r["name"] for r in db.execute(f"PRAGMA table_info({table})")}
                for name, kind in columns.items():
                    if name not in present:
                        db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def close(self) -> None:
        self.db.close()

    # --- cells, the plan and stage runs ------------------------------------------------------

    def add_cell(self, cell: Cell) -> None:
        row = cell_row(cell)
        with self.transaction() as db:
            db.execute("INSERT OR IGNORE INTO cells VALUES (?, ?, ?, ?, ?)",
                       (row["cell_id"], row["backbone"], row["variant"], row["size"], row["seed"]))

    def record_plan(self, jobs: list[JobRow], *, replace: bool) -> None:
        """Record the plan's jobs, in order. `replace`: they are the whole plan (every other
        recorded job goes); else (a plan of some cells, `--only`) they replace the recorded jobs
        of the same label and the others stay."""
        rows = [(j["label"], j["key"], j["stage"], j["cell_id"], j["a_cell"], j["b_cell"], json.dumps(j["deps"]),
                 j["output"], position) for position, j in enumerate(jobs)]
        with self.transaction() as db:
            if replace:
                db.execute("DELETE FROM jobs")
            db.executemany(_insert("jobs", JOB_COLUMNS), rows)

    def stage_status(self, key: str) -> sqlite3.Row | None:
        return self.db.execute("SELECT * FROM stage_runs WHERE key = ?", (key,)).fetchone()

    def start_stage(self, stage: str, key: str, cell_id: str | None, config: dict) -> None:
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO stage_runs (key, stage, cell_id, status, started, config) "
                       "VALUES (?, ?, ?, 'running', ?, ?)", (key, stage, cell_id, time.time(), json.dumps(config)))

    def finish_stage(self, key: str, output: str, records: Iterator | None = None) -> None:
        """Mark `key` done and, in the same transaction, write the rows `records` yields:
        (sql, params) pairs, so a stage's numbers appear exactly when the stage is done."""
        with self.transaction() as db:
            for sql, params in records or ():
                db.execute(sql, params)
            db.execute("UPDATE stage_runs SET status = 'done', output = ?, finished = ?, seconds = ? - started, "
                       "error = NULL WHERE key = ?", (output, time.time(), time.time(), key))

    def fail_stage(self, key: str, error: str) -> None:
        with self.transaction() as db:
            db.execute("UPDATE stage_runs SET status = 'failed', finished = ?, error = ? WHERE key = ?",
                       (time.time(), error[-4000:], key))

    def rows(self, sql: str, params: tuple = ()) -> list[dict]:
        return [dict(r) for r in self.db.execute(sql, params).fetchall()]

    def set_provenance(self, values: dict[str, str]) -> None:
        with self.transaction() as db:
            db.executemany("INSERT OR REPLACE INTO provenance VALUES (?, ?)", list(values.items()))


# --- reading -----------------------------------------------------------------------------------


@dataclass
class StoreContents:
    """What a store holds; `jobs` is None when the plan was not recorded (a store from before the
    jobs table, or one no `limacot run` planned into)."""

    cells: list[CellRow] = field(default_factory=list)
    jobs: list[JobRow] | None = None
    stage_runs: list[StageRun] = field(default_factory=list)
    metrics: list[MetricRow] = field(default_factory=list)
    comparisons: list[ComparisonRow] = field(default_factory=list)
    judgments: list[JudgmentRow] = field(default_factory=list)
    grades: list[GradeRow] = field(default_factory=list)
    provenance: dict[str, str] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)   # tables the store does not have


def read_store(path: str | Path, tables: tuple[str, ...] = TABLES) -> StoreContents:
    """The `tables` of the store at `path`, read-only (`mode=ro`: a running `limacot run` and a
    reader can look at the same store). Raises LimacotInputError when it is no readable store."""
    path = Path(path)
    try:
        db = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True, timeout=30)
    except sqlite3.Error as err:
        raise LimacotInputError(f"{path}: cannot open the results store ({err})") from None
    contents = StoreContents()
    with closing(db):
        db.row_factory = sqlite3.Row
        try:
            present = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            for table in tables:
                if table not in present:
                    contents.missing.append(table)
                    continue
                order = " ORDER BY position, label" if table == "jobs" else ""
                rows = [dict(r) for r in db.execute(f"SELECT * FROM {table}{order}")]
                _set(contents, table, rows)
        except sqlite3.DatabaseError as err:
            raise LimacotInputError(f"{path}: not a readable results store ({err})") from None
    return contents


def _set(contents: StoreContents, table: str, rows: list[dict]) -> None:
    if table == "provenance":
        contents.provenance = {r["key"]: r["value"] for r in rows}
    elif table == "jobs":
        contents.jobs = [JobRow(label=r["label"], key=r["key"], stage=r["stage"], cell_id=r["cell_id"],
                                a_cell=r["a_cell"], b_cell=r["b_cell"], deps=_json_list(r["deps"]),
                                output=r["output"]) for r in rows] or None
    else:
        setattr(contents, table, rows)


def _json_list(text: str | None) -> list[str]:
    try:
        value = json.loads(text or "[]")
    except ValueError:
        return []
    return [str(v) for v in value] if isinstance(value, list) else []
