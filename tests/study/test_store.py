"""The results store: typed writers and a read-only typed reader; the recorded plan (jobs table)
whole or per `--only`; an older store without a table still reads; the Slurm submission record."""

from __future__ import annotations

import sqlite3

import pytest

from limacot.errors import LimacotInputError
from limacot.study.cells import Cell, Pair
from limacot.study.store import JobRow, ResultsStore, as_cell, judgment_rows, last_line, read_store
from limacot.study.submissions import load_submissions, new_submission, record, submission_of

BASE, LIMA = Cell("smol", "base", "-", 0), Cell("smol", "lima", "10", 1)


def _job(label: str, key: str, stage: str, cell: Cell | None = None, pair: Pair | None = None,
         deps: tuple[str, ...] = ()) -> JobRow:
    return JobRow(label=label, key=key, stage=stage, cell_id=cell.id if cell else None,
                  a_cell=pair.a.id if pair else None, b_cell=pair.b.id if pair else None, deps=list(deps),
                  output=f"stages/{stage}/{key[:16]}")


PLAN = [_job("data", "d" * 64, "data"), _job(f"train {LIMA.id}", "t" * 64, "train", LIMA, deps=("d" * 64,)),
        _job(f"eval {BASE.id}", "e" * 64, "eval", BASE), _job(f"eval {LIMA.id}", "f" * 64, "eval", LIMA, deps=("t" * 64,)),
        _job(f"compare {Pair(BASE, LIMA).id}", "c" * 64, "compare", pair=Pair(BASE, LIMA), deps=("e" * 64, "f" * 64))]


def test_typed_rows_round_trip(tmp_path):
    store = ResultsStore(tmp_path / "results.sqlite")
    for cell in (BASE, LIMA, BASE):  # a cell added twice is one row
        store.add_cell(cell)
    store.record_plan(PLAN, replace=True)
    pair = Pair(BASE, LIMA)
    store.start_stage("judge", "j" * 64, pair.id, {"a": "x"})
    summary = {"judge": "embedded", "runs": [{"win": 3, "tie": 1, "loss": 2, "unparseable": 0,
                                              "b_equal_or_better": 4 / 6, "ci95": [0.3, 0.9], "n": 6, "flipped": 1}]}
    store.finish_stage("j" * 64, "stages/judge/j", judgment_rows(pair.a.id, pair.b.id, summary))
    store.close()

    contents = read_store(tmp_path / "results.sqlite")
    assert contents.missing == []
    assert [as_cell(row) for row in contents.cells] == [BASE, LIMA]
    assert contents.jobs == PLAN  # in plan order, deps decoded
    assert contents.jobs[-1]["a_cell"] == BASE.id and contents.jobs[-1]["b_cell"] == LIMA.id
    (run,) = contents.stage_runs
    assert (run["stage"], run["cell_id"], run["status"]) == ("judge", pair.id, "done")
    (judged,) = contents.judgments
    assert (judged["a_cell"], judged["b_cell"], judged["wins"], judged["flipped"]) == (BASE.id, LIMA.id, 3, 1)


def test_plan_is_replaced_whole_or_per_label(tmp_path):
    store = ResultsStore(tmp_path / "results.sqlite")
    store.record_plan(PLAN, replace=True)
    changed = _job(f"eval {LIMA.id}", "g" * 64, "eval", LIMA, deps=("t" * 64,))
    store.record_plan([changed], replace=False)  # `--only` one cell: its job's new key, the rest kept
    jobs = read_store(tmp_path / "results.sqlite").jobs
    assert [j["label"] for j in jobs if j["key"] == "g" * 64] == [f"eval {LIMA.id}"]
    assert len(jobs) == len(PLAN) and "f" * 64 not in {j["key"] for j in jobs}
    store.record_plan(PLAN[:2], replace=True)  # the whole plan again, now smaller
    assert [j["label"] for j in read_store(tmp_path / "results.sqlite").jobs] == ["data", f"train {LIMA.id}"]
    store.close()


def test_older_store_without_the_jobs_table_reads(tmp_path):
    """A store from before the plan was recorded: no jobs table; the reader names it and reads the rest."""
    db = sqlite3.connect(tmp_path / "results.sqlite")
    db.execute("CREATE TABLE cells (cell_id TEXT PRIMARY KEY, backbone TEXT NOT NULL, variant TEXT NOT NULL, "
               "size TEXT NOT NULL, seed INTEGER NOT NULL)")
    db.execute("INSERT INTO cells VALUES (?, 'smol', 'lima', '10', 1)", (LIMA.id,))
    db.commit()
    db.close()
    contents = read_store(tmp_path / "results.sqlite")
    assert contents.jobs is None and "jobs" in contents.missing and "stage_runs" in contents.missing
    assert [as_cell(row) for row in contents.cells] == [LIMA]
    assert not list(tmp_path.glob("*-wal"))  # read-only: nothing written beside it


def test_reader_refuses_a_file_that_is_no_store(tmp_path):
    (tmp_path / "results.sqlite").write_text("not a database\n", encoding="utf-8")
    with pytest.raises(LimacotInputError, match="not a readable results store"):
        read_store(tmp_path / "results.sqlite")


def test_last_line_of_an_error():
    assert last_line("Traceback ...\n  File x\nRuntimeError: CUDA out of memory\n\n") == "RuntimeError: CUDA out of memory"
    assert last_line(None) == "" and len(last_line("x" * 500)) == 200


def test_submission_record(tmp_path):
    assert load_submissions(tmp_path) == {}
    first = new_submission("41", tmp_path / "a.sbatch", tmp_path / "a.out", ["k1"])
    record(tmp_path, "data-k1", first)
    later = new_submission("42", tmp_path / "b.sbatch", tmp_path / "b.out", ["k1", "k2"])
    later.submitted = first.submitted + 1
    record(tmp_path, "finish", later)
    submissions = load_submissions(tmp_path)
    assert set(submissions) == {"data-k1", "finish"}
    assert submission_of(submissions, "k1").job_id == "42" and submission_of(submissions, "k3") is None
