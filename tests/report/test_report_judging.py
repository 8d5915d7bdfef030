"""The report's judging section from real `limacot judge` summaries: the store keeps the
LIMA-comparable table and the judge's biases (new judgments columns, NULL in an older store),
and the section shows both tables, the sentence naming the number comparable with LIMA's, the
biases found, and the position and length charts."""

from __future__ import annotations

import json
import sqlite3

import pytest

from limacot.judge.clients import JudgeReply
from limacot.judge.config import JudgeConfig
from limacot.judge.pairwise import judge_pairwise
from limacot.report import write_report
from limacot.study.cells import Cell
from limacot.study.store import JUDGMENT_ADDED, ResultsStore, judgment_rows, read_store
from test_report import BACKBONE, _md_tables, _small_study

BASE, LIMA = f"{BACKBONE}/base/-/s0", f"{BACKBONE}/lima/10/s0"
PROMPTS = 60


class Judge:
    """A judge without a model: `decide(answer 1, answer 2) -> "1" | "2" | "tie"`."""

    def __init__(self, decide):
        self.decide = decide

    def identity(self) -> dict:
        return {"kind": "scripted", "decide": self.decide.__name__}

    def complete_all(self, requests, on_reply, concurrency=4):
        for index, messages in enumerate(requests):
            text = messages[-1]["content"]
            one = text.split("[Answer 1]\n", 1)[1].split("\n\n[Answer 2]\n", 1)[0]
            two = text.split("\n\n[Answer 2]\n", 1)[1].split("\n\n", 1)[0]
            on_reply(index, JudgeReply(json.dumps({"verdict": self.decide(one, two)}), {}))


def first(one: str, two: str) -> str:
    return "1"


def longer(one: str, two: str) -> str:
    return "1" if len(one) > len(two) else "2"


def _run(folder, lengths):
    folder.mkdir(parents=True)
    rows = [{"id": f"p{i:02d}", "prompt": f"Question {i}?", "answer": "w" * n} for i, n in enumerate(lengths)]
    (folder / "generations.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


def judged_summaries(tmp_path) -> dict[str, dict]:
    """{judge: summary} of two scripted judges on the same A and B (B longer in half the prompts)."""
    short, long = [40 + i for i in range(PROMPTS)], [200 + 3 * i for i in range(PROMPTS)]
    a = _run(tmp_path / "A", [long[i] if i % 2 else short[i] for i in range(PROMPTS)])
    b = _run(tmp_path / "B", [short[i] if i % 2 else long[i] for i in range(PROMPTS)])
    summaries = {}
    for decide in (first, longer):
        summary = judge_pairwise(a, [b], tmp_path / decide.__name__, JudgeConfig(resamples=300),
                                 judge=Judge(decide))
        summaries[decide.__name__] = {**summary, "judge": decide.__name__}
    return summaries


@pytest.fixture(scope="module")
def judged_study(tmp_path_factory):
    root = tmp_path_factory.mktemp("judged")
    summaries = judged_summaries(root / "runs")
    study = _small_study(root / "study", [("lima", "arc_challenge", "acc", 0.4, -1)],
                         judgments=[(BASE, LIMA, s) for s in summaries.values()])
    return study, summaries, write_report(study)


def test_the_store_keeps_the_lima_table_and_the_biases(judged_study):
    study, summaries, _ = judged_study
    rows = {r["judge"]: r for r in read_store(study / "results.sqlite").judgments}
    for name, summary in summaries.items():
        run, row = summary["runs"][0], rows[name]
        single, position, length = run["single_order"], run["position_bias"], run["length_bias"]
        assert (row["single_wins"], row["single_ties"], row["single_losses"], row["single_unparseable"]) == \
            (single["win"], single["tie"], single["loss"], single["unparseable"])
        assert (row["single_rate"], [row["single_ci_low"], row["single_ci_high"]]) == \
            (single["b_equal_or_better"], single["ci95"])
        assert (row["half_tie_rate"], [row["half_tie_ci_low"], row["half_tie_ci_high"]]) == \
            (run["b_win_half_tie"], run["b_win_half_tie_ci95"])
        assert (row["flip_rate"], [row["flip_ci_low"], row["flip_ci_high"]]) == \
            (run["flip_rate"], run["flip_rate_ci95"])
        assert (row["first_share"], [row["first_ci_low"], row["first_ci_high"]], row["first_n"]) == \
            (position["share_first"], position["ci95"], position["decisive"])
        assert (row["length_n"], row["length_intercept"], row["length_slope"], row["length_p"],
                row["length_raw_rate"], row["lc_rate"]) == (length["n"], length["intercept"], length["slope"],
                                                            length["p_value"], length["raw_rate"], length["lc_rate"])
        assert [row["length_slope_low"], row["length_slope_high"]] == length["slope_ci95"]
        assert [row["lc_ci_low"], row["lc_ci_high"]] == length["lc_ci95"]
        assert json.loads(row["length_bins"]) == length["bins"] and row["length_note"] is None
    assert rows["first"]["first_share"] == 1.0 and rows["first"]["flip_rate"] == 1.0 and rows["first"]["rate"] == 1.0
    assert rows["longer"]["length_p"] < 0.01 and rows["longer"]["length_slope"] > 0


def test_the_section_says_which_number_compares_with_lima(judged_study):
    _, summaries, paths = judged_study
    markdown = paths["markdown"].read_text(encoding="utf-8")
    section = markdown.split("## Pairwise judgments")[1].split("\n## ")[0]
    assert "43% against GPT-4, 58% against Bard, 65% against DaVinci003" in section
    assert "The number to set beside those is \"B equal or better, single order\"" in section
    assert "a verdict that flips when the answers swap places counts as a tie there" in section
    tables = _md_tables(markdown)
    lima = {r[2]: r for r in tables["Comparable to LIMA"][0][1:]}
    single = summaries["first"]["runs"][0]["single_order"]
    lo, hi = single["ci95"]
    assert lima["first"][3:10] == [str(single["win"]), "0", str(single["loss"]),
                                   f"{single['b_equal_or_better']:.3f} [{lo:.3f}, {hi:.3f}]", "1.000",
                                   "0.500 [0.500, 0.500]", "1.000 [1.000, 1.000]"]
    assert 0.3 < single["b_equal_or_better"] < 0.7  # always "1": B wins where its order showed B first
    biases = {r[2]: r for r in tables["Judge biases"][0][1:]}
    assert biases["first"][3:5] == ["1.000 [1.000, 1.000]", str(2 * PROMPTS)]
    length = summaries["longer"]["runs"][0]["length_bias"]
    assert biases["longer"][5] == "{:+.2f} [{:+.2f}, {:+.2f}]".format(length["slope"], *length["slope_ci95"])
    assert biases["longer"][6] == "<0.001" and biases["longer"][7] == "0.500"
    assert f"`{LIMA}` vs `{BASE}` (first): the judge prefers the answer shown first in 100%" in section
    assert f"`{LIMA}` vs `{BASE}` (longer): the judge prefers the longer answer" in section


def test_the_position_and_length_charts_are_drawn_and_referenced(judged_study):
    _, _, paths = judged_study
    markdown = paths["markdown"].read_text(encoding="utf-8")
    for name in ("judge", "judge_position", "judge_length"):
        assert paths[name].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"]({name}.png)" in markdown
    assert paths["html"].read_text(encoding="utf-8").count('<img alt="Judge') == 3


def test_an_older_store_gains_the_columns_and_the_report_says_what_is_missing(tmp_path):
    db = sqlite3.connect(tmp_path / "results.sqlite")
    db.execute("CREATE TABLE judgments (a_cell TEXT NOT NULL, b_cell TEXT NOT NULL, judge TEXT NOT NULL, "
               "wins INTEGER, ties INTEGER, losses INTEGER, unparseable INTEGER, rate REAL, ci_low REAL, "
               "ci_high REAL, n INTEGER, flipped INTEGER, PRIMARY KEY (a_cell, b_cell, judge))")
    db.execute(f"INSERT INTO judgments VALUES ('{BASE}', '{LIMA}', 'j', 1, 2, 3, 0, 0.5, 0.1, 0.9, 6, 1)")
    db.commit()
    db.close()
    (old,) = read_store(tmp_path / "results.sqlite").judgments  # read-only: read as it is
    assert "single_rate" not in old
    store = ResultsStore(tmp_path / "results.sqlite")
    for cell in (Cell(BACKBONE, "base", "-", 0), Cell(BACKBONE, "lima", "10", 0)):
        store.add_cell(cell)
    (row,) = store.rows("SELECT * FROM judgments")
    assert set(JUDGMENT_ADDED) <= set(row) and all(row[c] is None for c in JUDGMENT_ADDED if c != "flipped")
    store.finish_stage("j", "out", judgment_rows(BASE, LIMA, {"judge": "k", "runs": [  # a summary from before
        {"win": 1, "tie": 0, "loss": 0, "unparseable": 0, "b_equal_or_better": 1.0, "ci95": None, "n": 1}]}))
    store.close()
    paths = write_report(tmp_path)
    markdown = paths["markdown"].read_text(encoding="utf-8")
    assert "2 of 2 comparisons show — here: recorded by an older limacot" in markdown
    assert [r[6] for r in _md_tables(markdown)["Comparable to LIMA"][0][1:]] == ["—", "—"]
    assert "judge_position" not in paths and "judge_length" not in paths


def test_a_length_fit_that_could_not_be_made_says_why(tmp_path):
    """Two prompts: the length fit needs at least three; the table shows a dash and the reason."""
    a, b = _run(tmp_path / "A", [40, 300]), _run(tmp_path / "B", [300, 40])
    summary = judge_pairwise(a, [b], tmp_path / "J", JudgeConfig(resamples=50), judge=Judge(longer))
    study = _small_study(tmp_path / "study", [], judgments=[(BASE, LIMA, summary)])
    markdown = write_report(study)["markdown"].read_text(encoding="utf-8")
    assert f"`{LIMA}` vs `{BASE}` (embedded): length fit: no fit: 2 decided prompts" in markdown
    (row,) = _md_tables(markdown)["Judge biases"][0][1:]
    assert row[3] == "0.500 [0.500, 0.500]" and row[5] == "—" and row[7] == "0.500"


def test_bias_charts_of_an_earlier_report_are_removed_when_no_longer_drawn(judged_study, tmp_path):
    study, _, _ = judged_study
    out = tmp_path / "report"
    assert write_report(study, out)["judge_length"].is_file()
    db = sqlite3.connect(study / "results.sqlite")
    saved = db.execute("SELECT * FROM judgments").fetchall()
    db.execute("UPDATE judgments SET first_n = NULL")  # as if recorded before the bias columns
    db.commit()
    try:
        paths = write_report(study, out)
    finally:
        db.execute("DELETE FROM judgments")
        db.executemany(f"INSERT INTO judgments VALUES ({', '.join('?' * len(saved[0]))})", saved)
        db.commit()
        db.close()
    assert "judge" in paths and not (out / "judge_position.png").exists() and not (out / "judge_length.png").exists()


def test_a_judge_preferring_the_second_answer_is_said_with_the_second_answers_share():
    from limacot.report.judging import bias_warning

    row = {"first_share": 0.1, "first_ci_low": 0.02, "first_ci_high": 0.2, "length_p": None, "length_slope": None,
           "a_cell": "a", "b_cell": "b", "judge": "j"}
    assert "prefers the answer shown second in 90% of its decisive verdicts [80, 98]" in bias_warning(row)


def test_a_local_judge_folder_is_named_without_a_machine_path(tmp_path):
    from limacot.report.study import Study

    study = Study(dir=tmp_path / "study")
    assert study.judge_name(str(tmp_path / "models" / "judge-7b")) == "judge-7b"
    assert study.judge_name(str(tmp_path / "study" / "judges" / "j")) == "judges/j"
    assert [study.judge_name(s) for s in ("openai:gpt-4o@http://host/v1", "embedded", "hf:org/judge")] == \
        ["openai:gpt-4o@http://host/v1", "embedded", "hf:org/judge"]
