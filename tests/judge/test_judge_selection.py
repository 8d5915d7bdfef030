"""Judge-based checkpoint selection (limacot.judge.selection): the scorers train imports by name
read the run's `selection_judge:` block, judge every epoch's dev answers, pick the epoch the judge
prefers, and leave their scores in selection.json; a judge that reads nothing is an error."""

from __future__ import annotations

import json

import pytest

from limacot.errors import LimacotInputError
from limacot.io.yaml_config import dump_config, load_config
from limacot.judge import selection as judge_selection
from limacot.train import selection
from limacot.train.config import SelectionJudge, TrainConfig
from test_judge_absolute import split_grade_request
from test_judge_support import split_request

ABSOLUTE = "limacot.judge.selection:absolute_grade"
PAIRWISE = "limacot.judge.selection:pairwise_vs_reference"
PROMPTS = {"d1": "Name a fruit.", "d2": "사과는 무슨 색?", "d3": "What is 2+2?"}
QUALITY = {"bad": 1, "fine": 2, "good": 3}  # what the scripted judges see in an answer


@pytest.fixture()
def server(server_factory):
    """make(reply(messages) -> text): a scripted chat server (`fault_server.FaultServer`)."""
    return lambda reply: server_factory(reply=lambda body: reply(body["messages"]))


def make_run(tmp_path, policy: str, judge: dict, answers: dict[int, str]):
    """A run folder as training leaves it before selection: config.resolved.yaml, one checkpoint
    folder per window epoch and its dev answers ("<quality> answer <n>" to each dev prompt)."""
    run = tmp_path / "run"
    config = TrainConfig(data="train.jsonl", selection=policy, selection_judge=judge)
    (run / "dev_generations").mkdir(parents=True)
    (run / "config.resolved.yaml").write_text(dump_config(config), encoding="utf-8")
    for epoch, quality in answers.items():
        (run / "checkpoints" / f"epoch-{epoch}").mkdir(parents=True)
        (run / "checkpoints" / f"epoch-{epoch}" / "model.safetensors").write_bytes(b"weights")
        rows = [{"id": pid, "prompt": text, "answer": f"{quality} answer {n}", "tokens": 3}
                for n, (pid, text) in enumerate(PROMPTS.items())]
        (run / "dev_generations" / f"epoch-{epoch}.jsonl").write_text(
            "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return run, selection.candidates(run, {}, range(min(answers), max(answers) + 1))


def grader(messages) -> str:
    """Grades by the quality word in the answer: bad 2, fine 4, good 6."""
    answer = split_grade_request(messages)[1]
    return f"Assessed.\nRating: {2 * QUALITY[answer.split()[0]]}"


def comparer(messages) -> str:
    """Prefers the answer of higher quality; a tie when equal."""
    _, one, two = split_request(messages)
    first, second = QUALITY[one.split()[0]], QUALITY[two.split()[0]]
    return json.dumps({"verdict": "1" if first > second else "2" if second > first else "tie"})


def test_absolute_grade_picks_the_epoch_whose_answers_grade_highest(tmp_path, server):
    chat = server(grader)
    run, found = make_run(tmp_path, ABSOLUTE, {"judge": f"openai:grader@{chat.url}", "samples": 2},
                          {5: "fine", 6: "good", 7: "bad"})
    chosen, reason, scores = selection.choose(ABSOLUTE, found)
    assert chosen["epoch"] == 6 and scores == {5: 4.0, 6: 6.0, 7: 2.0} and "scorer" in reason
    assert len(chat.requests) == 3 * 3 * 2  # epochs x prompts x samples
    selection.publish_final(run, chosen, reason, scores, found)
    written = json.loads((run / "selection.json").read_text())
    assert written["chosen_epoch"] == 6 and written["scores"] == {"5": 4.0, "6": 6.0, "7": 2.0}
    detail = {c["epoch"]: c["judge"] for c in written["candidates"]}
    assert detail[6]["scorer"] == "absolute_grade" and detail[6]["ci95"] == [6.0, 6.0]
    assert (detail[5]["score"], detail[5]["n"], detail[5]["unparseable"]) == (4.0, 3, 0)
    assert detail[7]["distribution"] == {"1": 0, "2": 6, "3": 0, "4": 0, "5": 0, "6": 0}
    summary = json.loads((run / "selection_judge" / "summary.json").read_text())
    assert detail[7]["summary"] == str(run / "selection_judge" / "summary.json") and summary["samples"] == 2
    again = selection.choose(ABSOLUTE, selection.candidates(run, {}, range(5, 8)))
    assert again[2] == scores and len(chat.requests) == 18  # a resumed selection asks the judge nothing


def test_pairwise_vs_reference_picks_the_epoch_most_often_equal_or_better(tmp_path, server):
    chat = server(comparer)
    reference = tmp_path / "reference.jsonl"
    reference.write_text("".join(json.dumps({"id": pid, "prompt": text, "answer": f"fine reference {pid}"},
                                            ensure_ascii=False) + "\n" for pid, text in PROMPTS.items()),
                         encoding="utf-8")
    run, found = make_run(tmp_path, PAIRWISE, {"judge": f"openai:judge@{chat.url}", "reference": str(reference)},
                          {2: "bad", 3: "good", 4: "fine"})
    chosen, reason, scores = selection.choose(PAIRWISE, found)
    # bad loses to the reference, good wins, fine ties (a tie counts as equal or better)
    assert scores == {2: 0.0, 3: 1.0, 4: 1.0} and chosen["epoch"] == 3  # the first of the best, as for any scorer
    assert found[0]["judge"]["scorer"] == "pairwise_vs_reference" and found[0]["judge"]["n"] == 3
    outcomes = [(c["judge"]["win"], c["judge"]["tie"], c["judge"]["loss"]) for c in found]
    assert outcomes == [(0, 0, 3), (3, 0, 0), (0, 3, 0)]
    assert len(chat.requests) == 3 * 3 * 2  # epochs x prompts x both orders
    assert (run / "selection_judge" / "records.jsonl").is_file()


def test_a_judge_that_reads_nothing_stops_the_selection(tmp_path, server):
    chat = server(lambda messages: "I would rather not say.")
    run, found = make_run(tmp_path, ABSOLUTE, {"judge": f"openai:grader@{chat.url}"}, {1: "good", 2: "bad"})
    with pytest.raises(judge_selection.NoJudgment, match=r"no readable judgment for epoch\(s\) \[1, 2\]"):
        selection.choose(ABSOLUTE, found)
    assert not (run / "selection.json").exists()
    graded = [json.loads(line) for line in (run / "selection_judge" / "grades.jsonl").read_text().splitlines()]
    assert {(r["grade"], r["raw"]) for r in graded} == {(None, "I would rather not say.")}


def test_one_epoch_without_a_readable_grade_is_an_error_not_a_smaller_choice(tmp_path, server):
    chat = server(lambda messages: "Rating: 5" if "good" in split_grade_request(messages)[1] else "Rating: 9")
    _, found = make_run(tmp_path, ABSOLUTE, {"judge": f"openai:grader@{chat.url}"}, {1: "good", 2: "bad"})
    with pytest.raises(judge_selection.NoJudgment, match=r"epoch\(s\) \[2\]"):
        selection.choose(ABSOLUTE, found)


def test_scorer_settings_missing_or_wrong_are_input_errors(tmp_path):
    run, found = make_run(tmp_path, ABSOLUTE, {"judge": "openai:m@http://127.0.0.1:9"}, {1: "good"})
    (run / "config.resolved.yaml").write_text("selection: last\n", encoding="utf-8")
    with pytest.raises(LimacotInputError, match="selection_judge"):
        judge_selection.absolute_grade(found)
    with pytest.raises(LimacotInputError, match="unknown keys mode"):
        judge_selection.absolute_grade(found, {"judge": "embedded", "mode": "absolute"})
    with pytest.raises(LimacotInputError, match="reference"):
        judge_selection.pairwise_vs_reference(found, {"judge": "embedded"})
    (run / "dev_generations" / "epoch-1.jsonl").unlink()
    with pytest.raises(LimacotInputError, match=r"no dev answers for epoch\(s\) \[1\].*dev_prompts"):
        judge_selection.absolute_grade(found, {"judge": "embedded"})


def test_train_config_selection_judge_block(tmp_path):
    """The block is checked when the train config loads (long before selection), its paths are
    relative to the YAML, and its keys are exactly the ones the scorers read."""
    assert tuple(SelectionJudge.model_fields) == judge_selection.SETTINGS
    with pytest.raises(ValueError, match="needs a `selection_judge:` block"):
        TrainConfig(selection=ABSOLUTE)
    with pytest.raises(ValueError, match="needs `selection_judge.reference:`"):
        TrainConfig(selection=PAIRWISE, selection_judge={"judge": "embedded"})
    with pytest.raises(ValueError, match="samples is for absolute_grade"):
        TrainConfig(selection=PAIRWISE, selection_judge={"judge": "embedded", "reference": "r.jsonl", "samples": 3})
    with pytest.raises(ValueError, match="judge"):
        TrainConfig(selection=ABSOLUTE, selection_judge={"samples": 3})
    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg" / "train.yaml").write_text(
        f"selection: {PAIRWISE}\nselection_judge:\n  judge: openai:gpt-4o\n  reference: ref/answers.jsonl\n",
        encoding="utf-8")
    loaded = load_config(tmp_path / "cfg" / "train.yaml", TrainConfig)
    assert loaded.selection_judge.reference == str(tmp_path / "cfg" / "ref" / "answers.jsonl")
    assert loaded.selection_judge.judge == "openai:gpt-4o" and TrainConfig().selection_judge is None


def test_training_selects_with_the_judge_scorer_by_name(tmp_path, tiny_model, tiny_tokenizer, server):
    """`limacot train` end to end on the tiny model: the scorer is imported by name at selection
    time, reads the run's own settings, and its scores land in selection.json."""
    from limacot.train.recipe import train

    chat = server(lambda messages: "Rating: 4")
    tiny_model.save_pretrained(tmp_path / "tiny")
    tiny_tokenizer.save_pretrained(tmp_path / "tiny")
    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps({"conversations": [f"Question {i}?", f"Answer {i}."]}) + "\n"
                            for i in range(4)), encoding="utf-8")
    config = TrainConfig(model=str(tmp_path / "tiny"), data=str(data), epochs=2, save_window=(1, 2),
                         effective_batch_size=4, per_device_batch_size=2, max_length=64, report_to=[],
                         dev_prompts=["Hello", "사과?"], dev_max_new_tokens=4, selection=ABSOLUTE,
                         selection_judge={"judge": f"openai:grader@{chat.url}"})
    result = train(config, tmp_path / "run", progress=False)
    assert result.selection["scores"] == {"1": 4.0, "2": 4.0} and ABSOLUTE in result.selection["reason"]
    assert [c["judge"]["score"] for c in result.selection["candidates"]] == [4.0, 4.0]
    assert len(chat.requests) <= 4 and (tmp_path / "run" / "selection_judge" / "grades.jsonl").is_file()
