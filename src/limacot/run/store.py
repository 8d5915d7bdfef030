"""The results store: one SQLite file per study (`STUDY_DIR/results.sqlite`).

Every write is one transaction, so a run killed at any point leaves either the old state
or the new one, never a partial row. Tables:

    cells(cell_id PK, backbone, variant, size, seed)                 one model of the grid
    stage_runs(stage, key PK, cell_id, status, output, started, finished, seconds, error, config)
                                                                     one stage execution, keyed by
                                                                     its content hash; status is
                                                                     running | done | failed
    metrics(cell_id, stage_key, task, metric, value, stderr, n, fewshot_seed)
                                                                     benchmark numbers (eval stage)
    comparisons(kind, task, a_cell, b_cell, metric, delta, ci_low, ci_high, p_value, p_holm, n)
                                                                     paired statistics (eval compare):
                                                                     each metric's delta, CI and p of
                                                                     its own test; p_holm on the
                                                                     task's primary metric only
    judgments(a_cell, b_cell, judge, wins, ties, losses, unparseable, rate, ci_low, ci_high, n, flipped)
                                                                     pairwise judge outcomes; flipped:
                                                                     prompts whose verdict changed with
                                                                     the order (counted as ties)
    provenance(key PK, value)                                        git commit, package versions...

`comparison_rows` and `judgment_rows` turn a stage's output (compare.json, the judge's
summary.json) into the rows `finish_stage` writes.
"""

from __future__ import annotations

import json
import sqlite3
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from limacot.errors import LimacotInputError

SCHEMA = """
CREATE TABLE IF NOT EXISTS cells (
    cell_id TEXT PRIMARY KEY, backbone TEXT NOT NULL, variant TEXT NOT NULL, size TEXT NOT NULL, seed INTEGER NOT NULL);
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
CREATE TABLE IF NOT EXISTS provenance (key TEXT PRIMARY KEY, value TEXT);
"""
ADDED_COLUMNS = {"judgments": {"flipped": "INTEGER"}}  # added to a store created before they existed
COMPARISON_COLUMNS = ("kind", "task", "a_cell", "b_cell", "metric", "delta", "ci_low", "ci_high", "p_value",
                      "p_holm", "n")
JUDGMENT_COLUMNS = ("a_cell", "b_cell", "judge", "wins", "ties", "losses", "unparseable", "rate", "ci_low",
                    "ci_high", "n", "flipped")
Rows = list[tuple[str, tuple]]


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
    judges one B per job), with the order flips beside the counts."""
    sql = _insert("judgments", JUDGMENT_COLUMNS)
    rows = []
    for run in summary["runs"]:
        low, high = run.get("ci95") or (None, None)
        rows.append((sql, (a_cell, b_cell, summary["judge"], run["win"], run["tie"], run["loss"], run["unparseable"],
                           run["b_equal_or_better"], low, high, run["n"], run.get("flipped"))))
    return rows


class ResultsStore:
    """Thin, transactional access to the study's SQLite file."""

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

    # --- cells and stage runs ------------------------------------------------------------

    def add_cell(self, cell_id: str, backbone: str, variant: str, size: str, seed: int) -> None:
        with self.transaction() as db:
            db.execute("INSERT OR IGNORE INTO cells VALUES (?, ?, ?, ?, ?)", (cell_id, backbone, variant, size, seed))

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

    # --- reading ---------------------------------------------------------------------------

    def rows(self, sql: str, params: tuple = ()) -> list[dict]:
        return [dict(r) for r in self.db.execute(sql, params).fetchall()]

    def set_provenance(self, values: dict[str, str]) -> None:
        with self.transaction() as db:
            db.executemany("INSERT OR REPLACE INTO provenance VALUES (?, ?)", list(values.items()))
