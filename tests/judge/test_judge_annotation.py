"""Humans in the loop: a real judge output (scripted judge, both orders) -> blinded sheets ->
sheets filled here by hand, from the answers' text alone (as a person would) -> human.json,
with every agreement number computed by hand below; blinding, the X/Y draw undone, bad sheets."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from sklearn.metrics import cohen_kappa_score
from typer.testing import CliRunner

from limacot.cli import app
from limacot.errors import DataError, LimacotInputError
from limacot.judge.annotation import COLUMNS, export_sheets, import_sheets, sheet_csv
from limacot.judge.config import JudgeConfig
from limacot.judge.pairwise import judge_pairwise
from test_judge_support import ScriptedJudge, write_generations

runner = CliRunner()
A_RUN, B_RUN, B2_RUN = "gpt4-reference", "lima-cot-7b", "lima-plain-7b"
PROMPTS = [f"p{i:02d}" for i in range(1, 11)]
W, T, L = "win", "tie", "loss"
# The judge's outcome for B_RUN per prompt (4 wins, 3 ties, 3 losses) ...
JUDGE = [W, W, W, W, T, T, T, L, L, L]
# ... and what three annotators say (None: left empty). Human 1 vs the judge, prompt by prompt:
# agree on 1-3, 5, 6, 8, 9 (7 of 10); (tie, win) on 4, (loss, tie) on 7, (tie, loss) on 10.
HUMAN_1 = [W, W, W, T, T, T, L, L, L, T]
HUMAN_2 = [W, W, T, T, T, L, L, L, L, None]
HUMAN_3 = list(HUMAN_1)


def tagged(tag: str, run: str, pid: str) -> str:
    """B's answers carry the judge's cue and which B it is, never a run name: '[win] one: p03'."""
    return f"[{tag}] {'one' if run == B_RUN else 'two'}: {pid}"


def decide(prompt: str, one: str, two: str) -> str:
    """The judge reads the tag in B's answer: [win] prefers B, [loss] prefers A, [tie] neither,
    [junk] gets an unreadable reply; in both orders, so the combined outcome is the tag."""
    b_first = one.startswith("[")
    tag = (one if b_first else two).split("]")[0][1:]
    if tag == "junk":
        return "I cannot tell."
    if tag == "tie":
        return '{"verdict": "tie"}'
    b_position = "1" if b_first else "2"
    return f'{{"verdict": "{b_position if tag == "win" else ("2" if b_first else "1")}"}}'


@pytest.fixture(scope="module")
def judge_out(tmp_path_factory) -> Path:
    """`limacot judge` output: A vs B_RUN (the JUDGE outcomes) and vs B2_RUN (wins, p01 unreadable)."""
    root = tmp_path_factory.mktemp("judged")
    a = write_generations(root / A_RUN, {p: f"- reference answer to {p} (사과 3개)" for p in PROMPTS})
    b = write_generations(root / B_RUN, {p: tagged(o, B_RUN, p) for p, o in zip(PROMPTS, JUDGE)})
    b2 = write_generations(root / B2_RUN, {p: tagged("junk" if p == "p01" else W, B2_RUN, p) for p in PROMPTS})
    summary = judge_pairwise(a, [b, b2], root / "J", JudgeConfig(judge="scripted", resamples=200),
                             judge=ScriptedJudge(decide))
    assert [(r["win"], r["tie"], r["loss"], r["unparseable"]) for r in summary["runs"]] == [(4, 3, 3, 0), (9, 0, 0, 1)]
    return root / "J"


def read_csv(path: Path) -> list[dict]:
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # UTF-8 with a BOM, for Excel
    return list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"), newline="")))


def write_csv(path: Path, rows: list[dict], fields=COLUMNS, delimiter: str = ",", encoding: str = "utf-8-sig") -> Path:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields, delimiter=delimiter, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    path.write_bytes(buffer.getvalue().encode(encoding))
    return path


def label_for(row: dict, wanted: str | None) -> str:
    """The label an annotator writes to give B's run the outcome `wanted`, knowing B's answer
    only by its text (it carries a [tag]; A's never does)."""
    if wanted is None:
        return ""
    if wanted == T:
        return "tie"
    b_is_x = row["answer_x"].startswith("[")
    assert b_is_x != row["answer_y"].startswith("[")
    return "X" if (wanted == W) == b_is_x else "Y"


def fill(sheet: Path, out: Path, outcomes: dict[str, list]) -> Path:
    """A filled copy of `sheet`: per B run (read from the answer's text) the annotator's outcome
    for each prompt (by the prompt's text); B2_RUN's answer is always picked."""
    rows = read_csv(sheet)
    for row in rows:
        b_text = row["answer_x"] if row["answer_x"].startswith("[") else row["answer_y"]
        pid = row["prompt"].removeprefix("Question ").rstrip("?")
        wanted = outcomes[B_RUN][PROMPTS.index(pid)] if "] one:" in b_text else W
        row["label"] = label_for(row, wanted)
    return write_csv(out, rows)


@pytest.fixture(scope="module")
def filled(judge_out, tmp_path_factory):
    """Three sheets exported, filled by three annotators, imported."""
    root = tmp_path_factory.mktemp("humans")
    export_sheets(judge_out, root / "sheets", annotators=3, seed=7)
    files = [fill(root / "sheets" / f"sheet-{k}.csv", root / f"{name}.csv", {B_RUN: human})
             for k, name, human in ((1, "kim", HUMAN_1), (2, "lee", HUMAN_2), (3, "park", HUMAN_3))]
    result = import_sheets(root / "sheets", files, root / "human", resamples=300, seed=0)
    return root, result


def test_export_writes_blinded_sheets_and_the_key(judge_out, tmp_path):
    summary = export_sheets(judge_out, tmp_path / "S", annotators=2, seed=3)
    assert summary["items"] == 20 and summary["prompts"] == 10 and summary["b_runs"] == [B_RUN, B2_RUN]
    for k in (1, 2):
        rows = read_csv(tmp_path / "S" / f"sheet-{k}.csv")
        assert list(rows[0]) == COLUMNS and len(rows) == 20
        assert all(r["label"] == "" and r["comment"] == "" for r in rows)
        jsonl = [json.loads(line) for line in (tmp_path / "S" / f"sheet-{k}.jsonl").read_text("utf-8").splitlines()]
        assert [r["item"] for r in jsonl] == [r["item"] for r in rows]
        assert jsonl[0]["answer_x"].startswith(("[", "- reference")) and "사과" in (tmp_path / "S" / f"sheet-{k}.csv"
                                                                                    ).read_text("utf-8-sig")
    # blinding: no run name, nothing of the judge in what annotators see
    for name in ("sheet-1.csv", "sheet-1.jsonl", "sheet-2.csv", "sheet-2.jsonl", "instructions.md"):
        text = (tmp_path / "S" / name).read_text("utf-8-sig")
        assert not any(word in text for word in (A_RUN, B_RUN, B2_RUN, "gpt4", "lima", "verdict", "judge")), name
    key = json.loads((tmp_path / "S" / "key.json").read_text())
    assert key["a"] == A_RUN and key["b_runs"] == [B_RUN, B2_RUN] and len(key["items"]) == 40
    first = read_csv(tmp_path / "S" / "sheet-1.csv")[0]
    entry = key["items"][first["item"]]
    assert entry["sheet"] == 1 and entry["x"] in ("a", "b") and entry["judge"] in ("win", "tie", "loss", "unparseable")
    # each sheet draws its own X/Y: the two sheets differ on some item, and the draw varies within a sheet
    by_pair = {}
    for e in key["items"].values():
        by_pair.setdefault((e["b_run"], e["prompt_id"]), []).append(e["x"])
    assert any(len(set(xs)) == 2 for xs in by_pair.values())
    assert {e["x"] for e in key["items"].values() if e["sheet"] == 1} == {"a", "b"}
    # same seed: the same bytes; another seed: other ids
    export_sheets(judge_out, tmp_path / "again", annotators=2, seed=3)
    assert (tmp_path / "again" / "sheet-2.csv").read_bytes() == (tmp_path / "S" / "sheet-2.csv").read_bytes()
    export_sheets(judge_out, tmp_path / "other", annotators=2, seed=4)
    assert not set(json.loads((tmp_path / "other" / "key.json").read_text())["items"]) & set(key["items"])


def test_n_samples_prompts_with_every_b_run(judge_out, tmp_path):
    summary = export_sheets(judge_out, tmp_path / "S", n=4, seed=1)
    key = json.loads((tmp_path / "S" / "key.json").read_text())
    prompts = {e["prompt_id"] for e in key["items"].values()}
    assert summary["items"] == 8 and len(prompts) == 4 and summary["prompts_available"] == 10
    assert {(e["b_run"], e["prompt_id"]) for e in key["items"].values()} == {(b, p) for b in (B_RUN, B2_RUN)
                                                                             for p in prompts}
    export_sheets(judge_out, tmp_path / "S2", n=4, seed=1)
    assert json.loads((tmp_path / "S2" / "key.json").read_text())["items"] == key["items"]
    with pytest.raises(LimacotInputError, match="--n 0"):
        export_sheets(judge_out, tmp_path / "S3", n=0)


def test_always_picking_b_gives_b_every_win_whatever_the_draw(judge_out, tmp_path):
    export_sheets(judge_out, tmp_path / "S", seed=11)
    rows = read_csv(tmp_path / "S" / "sheet-1.csv")
    assert {r["answer_x"].startswith("[") for r in rows} == {True, False}  # B's answer is X on some items, Y on others
    for row in rows:
        row["label"] = label_for(row, W)
    result = import_sheets(tmp_path / "S", [write_csv(tmp_path / "mine.csv", rows)], tmp_path / "H", resamples=100)
    for pair in result["pairs"]:
        human = pair["human"]["per_annotator"]["mine"]
        assert (human["n"], human["win"], human["tie"], human["loss"]) == (10, 10, 0, 0)
        assert human["b_equal_or_better"] == human["b_better"] == 1.0


def test_agreement_with_the_judge_by_hand(filled):
    _, result = filled
    pair = result["pairs"][0]
    assert (pair["a_run"], pair["b_run"], pair["prompts"]) == (A_RUN, B_RUN, 10)
    kim = pair["judge_human"]["per_annotator"]["kim"]
    # rows: kim's win/tie/loss, columns: the judge's
    assert kim["confusion"] == [[3, 0, 0], [1, 2, 1], [0, 1, 2]] and kim["n"] == kim["items"] == 10
    assert kim["agreement_3way"]["value"] == 0.7
    # equal-or-better (win, tie) vs worse: kim [1]*6 + [0]*3 + [1], judge [1]*7 + [0]*3 -> differ on 7 and 10
    assert kim["agreement_2way"]["value"] == 0.8
    # LIMA's tie-discounted: 7 agreements + 1/2 for each of (tie, win), (loss, tie), (tie, loss)
    assert kim["tie_discounted"]["value"] == 0.85
    # kappa: p_o = 0.7, kim's shares (.3, .4, .3), the judge's (.4, .3, .3): p_e = .12 + .12 + .09 = .33
    assert kim["kappa_3way"]["value"] == round(0.37 / 0.67, 4)
    assert kim["kappa_3way"]["value"] == round(cohen_kappa_score(HUMAN_1, JUDGE), 4)
    lo, hi = kim["agreement_3way"]["ci95"]
    assert 0.3 <= lo <= 0.7 <= hi <= 1.0
    # pooled: kim 7 + lee 5 (of her 9) + park 7 agreements over 29 labels; CI resamples prompts
    pooled = pair["judge_human"]["pooled"]
    assert pooled["n"] == 29 and pooled["items"] == 10 and pooled["agreement_3way"]["value"] == round(19 / 29, 4)
    assert pooled["judge_unparseable"] == 0


def test_human_preference_per_annotator_and_pooled(filled):
    _, result = filled
    pair = result["pairs"][0]
    lee = pair["human"]["per_annotator"]["lee"]
    assert (lee["n"], lee["win"], lee["tie"], lee["loss"], lee["not_annotated"]) == (9, 2, 3, 4, 1)
    assert lee["b_equal_or_better"] == pytest.approx(5 / 9) and lee["ci95"][0] < 5 / 9 < lee["ci95"][1]
    pooled = pair["human"]["pooled"]
    assert (pooled["n"], pooled["items"], pooled["win"], pooled["tie"], pooled["loss"]) == (29, 10, 8, 11, 10)
    assert pooled["b_equal_or_better"] == round(19 / 29, 4)
    judge = pair["judge"]
    assert (judge["win"], judge["tie"], judge["loss"], judge["b_equal_or_better"]) == (4, 3, 3, 0.7)
    annotators = {a["name"]: a for a in result["annotators"]}
    assert annotators["lee"]["sheet"] == 2 and annotators["lee"]["not_annotated"] == 1
    assert annotators["lee"]["labelled"] == 19 and annotators["kim"]["missing"] == 0


def test_agreement_between_humans_by_hand(filled):
    _, result = filled
    between = result["pairs"][0]["human_human"]
    kim_lee = next(p for p in between["pairs"] if p["annotators"] == ["kim", "lee"])
    # prompts 1-9 (lee left 10 empty): agree on 1, 2, 4, 5, 7, 8, 9; (win, tie) on 3, (tie, loss) on 6
    assert kim_lee["items"] == 9 and kim_lee["agreement_3way"]["value"] == round(7 / 9, 4)
    assert kim_lee["tie_discounted"]["value"] == round(8 / 9, 4)
    assert kim_lee["agreement_2way"]["value"] == round(8 / 9, 4)
    # shares over the 9: kim (3, 3, 3)/9, lee (2, 3, 4)/9: p_e = 27/81 = 1/3; kappa = (7/9 - 1/3) / (2/3) = 2/3
    assert kim_lee["kappa_3way"]["value"] == round(2 / 3, 4)
    kim_park = next(p for p in between["pairs"] if p["annotators"] == ["kim", "park"])
    assert kim_park["agreement_3way"]["value"] == 1.0 and kim_park["kappa_3way"]["value"] == 1.0
    # Fleiss on the 9 prompts all three labelled: per-prompt counts (win, tie, loss) are
    # [3,0,0] x2, [2,1,0], [0,3,0] x2, [0,2,1], [0,0,3] x3 -> P = (7 + 2/3) / 9 = 23/27;
    # p = (8, 9, 10)/27 -> P_e = 245/729; kappa = (621 - 245) / (729 - 245) = 94/121
    fleiss = between["fleiss_kappa"]
    assert (fleiss["raters"], fleiss["items"]) == (3, 9) and fleiss["value"] == round(94 / 121, 4)


def test_unreadable_judge_verdicts_and_undefined_kappa(filled):
    _, result = filled
    plain = result["pairs"][1]  # B2_RUN: every human picks B; the judge says win, p01 unreadable
    assert plain["b_run"] == B2_RUN and plain["judge"]["unparseable"] == 1
    vs = plain["judge_human"]["per_annotator"]["kim"]
    assert vs["judge_unparseable"] == 1 and vs["n"] == 9 and vs["agreement_3way"]["value"] == 1.0
    assert vs["kappa_3way"] == {"value": None, "ci95": None}  # both raters said "win" only: undefined


def test_outputs_of_import(filled):
    root, result = filled
    saved = json.loads((root / "human" / "human.json").read_text())
    assert saved == json.loads(json.dumps(result)) and saved["format"] == "limacot-human/1"
    labels = [json.loads(x) for x in (root / "human" / "labels.jsonl").read_text().splitlines()]
    assert len(labels) == 60 and {x["annotator"] for x in labels} == {"kim", "lee", "park"}
    first = next(x for x in labels if x["annotator"] == "kim" and x["b_run"] == B_RUN and x["prompt_id"] == "p04")
    assert (first["human"], first["judge"]) == ("tie", "win")
    table = (root / "human" / "table.md").read_text()
    assert f"| {B_RUN} | 3 | 29 | 8 | 11 | 10 |" in table and "Fleiss' kappa of 3 annotators on 9 prompts" in table


def test_labels_any_case_full_width_and_jsonl(judge_out, tmp_path):
    export_sheets(judge_out, tmp_path / "S")
    rows = [json.loads(x) for x in (tmp_path / "S" / "sheet-1.jsonl").read_text("utf-8").splitlines()]
    spellings = ["x", " Y ", "TIE", "Ｘ", "ｙ", "Tie", None, ""]
    for row, label in zip(rows, spellings * 3):
        row["label"] = label
    path = tmp_path / "filled.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    result = import_sheets(tmp_path / "S", [path], tmp_path / "H", resamples=50)
    info = result["annotators"][0]
    assert info["rows"] == 20 and info["not_annotated"] == 4 and info["labelled"] == 16  # 2 cycles + 4
    labels = [json.loads(x)["label"] for x in (tmp_path / "H" / "labels.jsonl").read_text().splitlines()]
    assert labels[:8] == ["x", "y", "tie", "x", "y", "tie", None, None]


def test_semicolon_csv_from_another_locale(judge_out, tmp_path):
    export_sheets(judge_out, tmp_path / "S")
    rows = read_csv(tmp_path / "S" / "sheet-1.csv")
    rows[0]["label"] = "x"
    path = write_csv(tmp_path / "semi.csv", rows, delimiter=";")
    assert import_sheets(tmp_path / "S", [path], tmp_path / "H", resamples=50)["annotators"][0]["labelled"] == 1


def test_formula_cells_get_a_leading_space():
    data = sheet_csv([{"item": "1-a", "prompt": "=1+1", "answer_x": "- 사과", "answer_y": "@x", "label": "",
                       "comment": ""}])
    row = next(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
    assert (row["prompt"], row["answer_x"], row["answer_y"]) == (" =1+1", " - 사과", " @x")


def _sheet(judge_out: Path, folder: Path, annotators: int = 1) -> list[dict]:
    export_sheets(judge_out, folder, annotators=annotators)
    return read_csv(folder / "sheet-1.csv")


BAD_SHEETS = {
    "bad label": (lambda rows, other: [{**rows[0], "label": "X!"}] + rows[1:],
                  ["bad.csv:row 2", "field 'label'", "X, Y or tie", "'X!'"]),
    "unknown item": (lambda rows, other: rows[:3] + [{**rows[3], "item": "1-0000000000"}],
                     ["bad.csv:row 5", "field 'item'", "an item id of this export", "'1-0000000000'"]),
    "duplicate item": (lambda rows, other: rows[:4] + [rows[1]],
                       ["bad.csv:row 6", "field 'item'", "is also on row 3"]),
    "two sheets in one file": (lambda rows, other: rows[:2] + other[:1],
                               ["bad.csv:row 4", "field 'item'", "items of one sheet", "sheet-2"]),
    "empty item": (lambda rows, other: [{**rows[0], "item": " "}], ["bad.csv:row 2", "field 'item'"]),
}


@pytest.mark.parametrize("case", BAD_SHEETS)
def test_bad_sheets_name_file_row_field(judge_out, tmp_path, case):
    rows = _sheet(judge_out, tmp_path / "S", annotators=2)
    other = read_csv(tmp_path / "S" / "sheet-2.csv")
    for row in rows:
        row["label"] = "tie"
    change, named = BAD_SHEETS[case]
    bad = write_csv(tmp_path / "bad.csv", change(rows, other))
    result = runner.invoke(app, ["judge", "import", str(tmp_path / "S"), str(bad), "--out", str(tmp_path / "H")])
    text = " ".join(result.output.split())
    assert result.exit_code == 2 and "Traceback" not in text, result.output
    assert all(part in text for part in named), text
    assert not (tmp_path / "H").exists()


def test_missing_column_wrong_encoding_and_no_labels(judge_out, tmp_path):
    rows = _sheet(judge_out, tmp_path / "S")
    no_label = write_csv(tmp_path / "cols.csv", rows, fields=["item", "prompt", "answer_x", "answer_y"])
    with pytest.raises(DataError, match=r"cols.csv:row 1: field 'label': expected a column named 'label'"):
        import_sheets(tmp_path / "S", [no_label], tmp_path / "H")
    rows[0]["label"] = "동점"  # a Korean word for tie is not one of the labels
    with pytest.raises(DataError, match=r"row 2: field 'label': expected X, Y or tie"):
        import_sheets(tmp_path / "S", [write_csv(tmp_path / "ko.csv", rows)], tmp_path / "H")
    rows[0]["label"] = ""
    cp949 = write_csv(tmp_path / "cp949.csv", [{**r, "label": "x"} for r in rows], encoding="cp949")
    with pytest.raises(DataError, match="cp949.csv: expected UTF-8 text"):
        import_sheets(tmp_path / "S", [cp949], tmp_path / "H")
    with pytest.raises(LimacotInputError, match="no labels"):
        import_sheets(tmp_path / "S", [write_csv(tmp_path / "empty.csv", rows)], tmp_path / "H")
    with pytest.raises(LimacotInputError, match="no key.json"):
        import_sheets(tmp_path, [no_label], tmp_path / "H")
    good = write_csv(tmp_path / "good.csv", [{**rows[0], "label": "x"}])
    with pytest.raises(LimacotInputError, match="good.csv: given twice"):
        import_sheets(tmp_path / "S", [good, good], tmp_path / "H")
    with pytest.raises(LimacotInputError, match="expected a folder written by `limacot judge`"):
        export_sheets(tmp_path, tmp_path / "S4")
    long = write_csv(tmp_path / "long.csv", [{**rows[0], "answer_x": "가" * 200_000, "label": "x"}])
    assert import_sheets(tmp_path / "S", [long], tmp_path / "H")["annotators"][0]["labelled"] == 1  # > csv's 128 KiB
    judged = tmp_path / "judged"
    judged.mkdir()
    (judged / "records.jsonl").write_text("{}\n", encoding="utf-8")
    (judged / "summary.json").write_text("{}", encoding="utf-8")
    with pytest.raises(DataError, match="summary.json: field 'a.name': expected a judge summary naming run A"):
        export_sheets(judged, tmp_path / "S5")


def test_cli_export_then_import(judge_out, tmp_path):
    sheets = tmp_path / "sheets"
    result = runner.invoke(app, ["judge", "export", str(judge_out), "--out", str(sheets), "--n", "5",
                                 "--annotators", "2", "--seed", "2", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["items"] == 10 and "key.json" in summary["files"]
    filled = [fill(sheets / f"sheet-{k}.csv", tmp_path / f"ann{k}.csv", {B_RUN: HUMAN_1}) for k in (1, 2)]
    result = runner.invoke(app, ["judge", "import", str(sheets), *map(str, filled), "--out", str(tmp_path / "H"),
                                 "--bootstrap", "100"])
    assert result.exit_code == 0, result.output
    assert "B equal or better (humans)" in result.output and "ann1 vs ann2" in result.output
    human = json.loads((tmp_path / "H" / "human.json").read_text())
    assert human["bootstrap"]["resamples"] == 100 and len(human["annotators"]) == 2
    both = human["pairs"][0]["human_human"]["pairs"][0]
    assert both["agreement_3way"]["value"] == 1.0 and human["pairs"][0]["human_human"]["fleiss_kappa"] is None
    missing = runner.invoke(app, ["judge", "export", str(tmp_path), "--out", str(tmp_path / "x")])
    assert missing.exit_code == 2 and "records.jsonl" in missing.output


def test_texts_longer_than_an_excel_cell_are_counted(tmp_path):
    """A hand-made judge output (the fields records.jsonl has): one answer over Excel's 32,767 characters."""
    out = tmp_path / "J"
    out.mkdir()
    records = [{"b_run": "b", "id": str(i), "prompt": f"q{i}", "answer_a": "a" * (40_000 if i == 1 else 10),
                "answer_b": "b", "outcome": "tie", "orders": {"ab": {"prefers": "a"}, "ba": {"prefers": "b"}}}
               for i in range(3)]
    (out / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    (out / "summary.json").write_text(json.dumps({"judge": "x", "a": {"name": "a"}}), encoding="utf-8")
    summary = export_sheets(out, tmp_path / "S", annotators=2)
    assert summary["over_excel_cell_limit"] == 1
    result = runner.invoke(app, ["judge", "export", str(out), "--out", str(tmp_path / "S2")])
    assert result.exit_code == 0 and "1 texts exceed Excel's 32,767-character cell" in " ".join(result.output.split())
    (out / "records.jsonl").write_text(json.dumps({**records[0], "outcome": "won"}) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"records.jsonl:line 1: field 'outcome': expected one of win, tie, loss"):
        export_sheets(out, tmp_path / "S3")
