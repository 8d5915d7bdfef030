"""Absolute grading (`limacot judge grade`): the 1-6 rubric, grades read in English and Korean
(unreadable ones recorded, never guessed), samples, the mean and its interval over prompts, the
cache, and the command end to end against a scripted server and against `transformers serve`."""

from __future__ import annotations

import json

import pytest
from serving import transformers_serve
from typer.testing import CliRunner

from limacot.cli import app
from limacot.errors import LimacotInputError
from limacot.judge.absolute import GradeConfig, grade_runs, prompt_grades
from limacot.judge.clients import JudgeReply
from limacot.judge.grades import parse_grade
from limacot.judge.instructions import grade_messages
from test_judge_support import save_verdict_model, write_generations

runner = CliRunner()
KEY = "sk-grade-SECRET-0123456789abcdef"


def split_grade_request(messages) -> tuple[str, str]:
    """(prompt, answer) back out of a grading request (English or Korean wording)."""
    text = messages[-1]["content"]
    for request, answer in (("[Request]\n", "\n\n[Answer]\n"), ("[요청]\n", "\n\n[답변]\n")):
        if request in text:
            prompt, rest = text.split(request, 1)[1].split(answer, 1)
            return prompt, rest.split("\n\n", 1)[0]
    raise AssertionError("not a grading request")


class GradingJudge:
    """A judge without a model: `reply(prompt, answer, n) -> text`, n counting the calls made
    for that answer so far (0, 1, ...). Counts calls; fails after `fail_after` calls."""

    def __init__(self, reply, fail_after: int | None = None):
        self.reply, self.fail_after, self.calls, self.seen, self.texts = reply, fail_after, 0, {}, []

    def identity(self) -> dict:
        return {"kind": "scripted-grader"}

    def complete_all(self, requests, on_reply, concurrency=4):
        for index, messages in enumerate(requests):
            if self.fail_after is not None and self.calls >= self.fail_after:
                raise RuntimeError("judge went away")
            prompt, answer = split_grade_request(messages)
            self.texts.append(messages[-1]["content"])
            n = self.seen.get(answer, 0)
            self.seen[answer], self.calls = n + 1, self.calls + 1
            on_reply(index, JudgeReply(self.reply(prompt, answer, n), {"prompt_tokens": 50, "completion_tokens": 5}))


def config(**settings) -> GradeConfig:
    return GradeConfig(**{"judge": "scripted", "resamples": 2000, **settings})


# --- the rubric and reading grades ------------------------------------------------------------

@pytest.mark.parametrize("text, grade", [
    ("The answer is accurate and complete.\nRating: 6", 6),
    ("Mostly right, a detail is missing.\n\nRating: 4", 4),
    ("**Rating:** 4", 4), ("**Rating: 5**", 5), ("Rating: **3**", 3), ("Final rating = 2", 2),
    ("Score: 5/6", 5), ("Rating: 5 out of 6", 5), ("rating: 1.", 1), ("[[5]]", 5), ("5", 5), ("5/6", 5),
    ("Rating: 5\n(I repeat) Rating: 5", 5),
    ('```json\n{"reason": "clear and correct", "rating": 6}\n```', 6), ('{"score": "4"}', 4),
    ("정확하고 충분합니다.\n평점: 5", 5), ("점수: 5점", 5), ("**평점:** 4", 4), ("평점은 3점입니다.", 3),
    ("최종 평점: 6", 6), ("6점 만점에 5점", 5), ("점수: 6점 만점에 2점", 2), ("5점", 5),
])
def test_grades_are_read_in_english_and_korean_formats(text, grade):
    assert parse_grade(text).value == grade


@pytest.mark.parametrize("text, how", [
    ("I cannot rate this answer.", "none"), ("", "none"), ("Use 1/2 cup of sugar.", "none"),
    ("Rating: 7", "out_of_range"), ("Rating: 0", "out_of_range"), ("Rating: -1", "out_of_range"),
    ("Rating: 4.5", "out_of_range"), ("Rating: 8/10", "out_of_range"), ("Score: 10", "out_of_range"),
    ("10점 만점에 8점", "out_of_range"), ("평점: 9", "out_of_range"), ('{"rating": 4.5}', "out_of_range"),
    ("Rating: 3\nOn reflection, Rating: 5", "conflict"), ("평점: 2\n점수: 4점", "conflict"),
    ("Score: 5/6 ... Rating: 2", "conflict"),
])
def test_garbage_out_of_range_and_conflicting_ratings_are_unparseable(text, how):
    grade = parse_grade(text)
    assert (grade.value, grade.how) == (None, how)


def test_the_rubric_asks_for_the_rating_line_in_english_and_korean():
    en = grade_messages("What is 2+2?", "4", "en")[0]["content"]
    assert "6 - Excellent" in en and "1 - Not helpful" in en and en.rstrip().endswith("from 1 to 6.")
    assert "\nRating: N\n" in en and "[Request]\nWhat is 2+2?\n\n[Answer]\n4\n\n" in en
    ko = grade_messages("사과는 몇 개?", "", "auto")[0]["content"]  # auto: Korean for Hangul
    assert "6 - 매우 훌륭함" in ko and "\n평점: N\n" in ko and "[답변]\n(빈 답변)" in ko
    assert split_grade_request(grade_messages("사과는 몇 개?", "세 개", "auto")) == ("사과는 몇 개?", "세 개")


# --- the library call ---------------------------------------------------------------------------

def hand_run(tmp_path):
    """p1 graded 5 then 3, p2 6 then garbage, p3 garbage twice (Korean prompt, Korean replies)."""
    replies = {"a1": ["Good.\nRating: 5", "Rating: 3"], "a2": ["**Rating:** 6", "I'd say it is fine."],
               "a3": ["잘 모르겠습니다.", "평점: 7"]}
    judge = GradingJudge(lambda prompt, answer, n: replies[answer][n])
    run = write_generations(tmp_path / "G", {"p1": "a1", "p2": "a2", "p3": "a3"},
                            {"p1": "Question 1?", "p2": "Question 2?", "p3": "질문 3?"})
    return run, judge


def test_mean_ci_distribution_and_unparseable_counts_on_a_hand_example(tmp_path):
    run, judge = hand_run(tmp_path)
    summary = grade_runs([run], tmp_path / "J", config(samples=2), judge=judge)
    (result,) = summary["runs"]
    # prompt means: p1 (5+3)/2 = 4, p2 6 (its garbage sample left out), p3 none readable -> not graded
    assert (result["n"], result["graded"], result["mean"], result["samples"]) == (3, 2, 5.0, 6)
    assert result["ci95"] == [4.0, 6.0]  # resampling two prompts {4, 6}: means 4, 5 and 6
    assert result["distribution"] == {"1": 0, "2": 0, "3": 1, "4": 0, "5": 1, "6": 1}
    assert (result["unparseable"], result["unparseable_prompts"]) == (3, 1)
    records = [json.loads(line) for line in (tmp_path / "J" / "grades.jsonl").read_text().splitlines()]
    assert [(r["id"], r["sample"], r["grade"]) for r in records] == [
        ("p1", 0, 5), ("p1", 1, 3), ("p2", 0, 6), ("p2", 1, None), ("p3", 0, None), ("p3", 1, None)]
    assert records[3]["raw"] == "I'd say it is fine." and records[3]["parsed_by"] == "none"
    assert (records[5]["raw"], records[5]["parsed_by"]) == ("평점: 7", "out_of_range")
    assert prompt_grades(records) == {"G": {"p1": 4.0, "p2": 6.0, "p3": None}}
    table = (tmp_path / "J" / "table.md").read_text()
    assert "| G | 3 | 2 | 5.00 | [4.00, 6.00] | 0 | 0 | 1 | 0 | 1 | 1 | 3 of 6 |" in table
    assert summary["calls"] == {"requests": 6, "made": 6, "from_cache": 0}
    assert summary["tokens"] == {"prompt_tokens": 300, "completion_tokens": 30}


def test_korean_prompts_get_the_korean_rubric_and_english_ones_the_english(tmp_path):
    judge = GradingJudge(lambda *_: "Rating: 4")
    run = write_generations(tmp_path / "G", {"p1": "a", "p2": "b"}, {"p1": "Question?", "p2": "질문?"})
    grade_runs([run], tmp_path / "J", config(), judge=judge)
    english, korean = judge.texts
    assert "[Request]\nQuestion?" in english and "\nRating: N\n" in english
    assert "[요청]\n질문?" in korean and "\n평점: N\n" in korean
    assert judge.calls == 2 and len(grade_runs([run], tmp_path / "J2", config(lang="en"), judge=judge)["runs"]) == 1
    assert all("\nRating: N\n" in text for text in judge.texts[2:])


def test_samples_are_separate_requests_and_a_rerun_is_served_from_the_cache(tmp_path):
    run, judge = hand_run(tmp_path)
    same = write_generations(tmp_path / "G-copy", {"p1": "a1"}, {"p1": "Question 1?"})  # an answer G also gave
    first = grade_runs([run, same], tmp_path / "J", config(samples=2), judge=judge)
    assert judge.calls == 6 and first["calls"] == {"requests": 6, "made": 6, "from_cache": 0}
    assert [r["mean"] for r in first["runs"]] == [5.0, 4.0]  # the copy's p1 reuses G's two samples
    again = grade_runs([run, same], tmp_path / "J", config(samples=2), judge=GradingJudge(lambda *_: "Rating: 1"))
    assert again["calls"] == {"requests": 6, "made": 0, "from_cache": 6}
    assert again["runs"] == first["runs"]
    replies = {"a1": "Rating: 2", "a2": "Rating: 2", "a3": "Rating: 2"}
    more = GradingJudge(lambda prompt, answer, n: replies[answer])
    third = grade_runs([run], tmp_path / "J", config(samples=3), judge=more)
    assert more.calls == 3 and third["calls"] == {"requests": 9, "made": 3, "from_cache": 6}  # only sample 2 asked
    assert third["runs"][0]["distribution"]["2"] == 3


def test_a_failed_run_keeps_the_replies_and_writes_no_results_then_resumes(tmp_path):
    run, _ = hand_run(tmp_path)
    broken = GradingJudge(lambda *_: "Rating: 4", fail_after=2)
    with pytest.raises(RuntimeError, match="judge went away"):
        grade_runs([run], tmp_path / "J", config(samples=2), judge=broken)
    assert not (tmp_path / "J" / "summary.json").exists() and not (tmp_path / "J" / "grades.jsonl").exists()
    resumed = GradingJudge(lambda *_: "Rating: 4")
    summary = grade_runs([run], tmp_path / "J", config(samples=2), judge=resumed)
    assert resumed.calls == 4 and summary["calls"]["from_cache"] == 2 and summary["runs"][0]["mean"] == 4.0


# --- the command --------------------------------------------------------------------------------

def test_grade_command_end_to_end_against_a_scripted_server(server_factory, tmp_path, monkeypatch):
    """Free-text requests (no JSON mode), two samples each, outputs on disk, a rerun from the cache,
    and a judge that quotes the API key leaves no trace of it in OUT."""
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    grades = {"Paris.": "Correct but terse.\nRating: 4", "The capital of France is Paris.": "평점: 6",
              "서울.": f"Fine (your key {KEY}).\nRating: 5", "한국의 수도는 서울입니다.": "**Rating:** 6"}
    server = server_factory(reply=lambda body: grades[split_grade_request(body["messages"])[1]])
    prompts = {"p1": "Capital of France?", "p2": "한국의 수도는?"}
    a = write_generations(tmp_path / "short", {"p1": "Paris.", "p2": "서울."}, prompts)
    b = write_generations(tmp_path / "long", {"p1": "The capital of France is Paris.", "p2": "한국의 수도는 서울입니다."},
                          prompts)
    out = tmp_path / "J"
    args = ["judge", "grade", str(a), str(b), "--judge", f"openai:grader@{server.url}", "--out", str(out),
            "--samples", "2", "--seed", "3", "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert [(r["run"], r["mean"], r["graded"]) for r in summary["runs"]] == [("short", 4.5, 2), ("long", 6.0, 2)]
    assert summary["samples"] == 2 and summary["bootstrap"]["seed"] == 3 and summary["lang"] == "auto"
    assert len(server.requests) == 8 and summary["calls"] == {"requests": 8, "made": 8, "from_cache": 0}
    assert all("response_format" not in r["body"] and r["body"]["temperature"] == 0.7 for r in server.requests)
    assert json.loads((out / "summary.json").read_text()) == summary
    assert len((out / "grades.jsonl").read_text().splitlines()) == 8
    for name in ("summary.json", "grades.jsonl", "table.md", "judge-cache.jsonl"):
        assert KEY not in (out / name).read_text(), name
    again = runner.invoke(app, args[:-1])
    assert again.exit_code == 0, again.output
    assert len(server.requests) == 8 and "0 made, 8 from the cache" in again.output
    assert "| short | 2 | 2 | 4.50 |" in again.output


def test_grade_command_input_errors_exit_2(tmp_path):
    run = write_generations(tmp_path / "G", {"p1": "a"})
    result = runner.invoke(app, ["judge", "grade", str(run), "--out", str(tmp_path / "J")])
    assert result.exit_code == 2 and "--judge" in result.output
    result = runner.invoke(app, ["judge", "grade", str(tmp_path / "nothing"), "--judge", "openai:m@http://127.0.0.1:9",
                                 "--out", str(tmp_path / "J")])
    assert result.exit_code == 2 and "no generations found" in result.output
    result = runner.invoke(app, ["judge", "grade", str(run), "--judge", "openai:m@http://127.0.0.1:9",
                                 "--samples", "0", "--out", str(tmp_path / "J")])
    assert result.exit_code == 2 and "samples" in result.output


@pytest.mark.slow
def test_grade_against_transformers_serve(tmp_path):
    """A real OpenAI-compatible server (`transformers serve` on 127.0.0.1) serving a checkpoint
    whose reply is always "Rating: 5": every answer graded 5, then all of it from the cache."""
    model = save_verdict_model(tmp_path / "grader", "Rating: 5")
    log = tmp_path / "serve.log"
    with transformers_serve(model, log) as url:
        run = write_generations(tmp_path / "G", {"p1": "Paris.", "p2": "서울입니다."},
                                {"p1": "Capital of France?", "p2": "한국의 수도는?"})
        args = ["judge", "grade", str(run), "--judge", f"openai:{model}@{url}", "--out", str(tmp_path / "J"),
                "--max-tokens", "16", "--json"]
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
        (graded,) = json.loads(result.stdout)["runs"]
        assert (graded["mean"], graded["distribution"]["5"], graded["unparseable"]) == (5.0, 2, 0)
        assert json.loads(runner.invoke(app, args).stdout)["calls"]["made"] == 0
        assert log.read_text().count("POST /v1/chat/completions") == 2


def test_several_samples_are_asked_at_a_temperature_and_one_at_zero():
    """K > 1 samples of an API judge differ only if it samples: they are asked at
    sample_temperature (in the request and in the judge's identity, so the cache keeps them apart
    from greedy grades); one sample is asked at 0; a local judge cannot sample and is refused."""
    from limacot.judge.absolute import GradeConfig
    from limacot.judge.judges import make_judge

    several = GradeConfig(judge="openai:grader@http://127.0.0.1:9/v1", samples=3)
    once = GradeConfig(judge="openai:grader@http://127.0.0.1:9/v1", samples=1)
    assert several.http().temperature == 0.7 and once.http().temperature == 0.0
    judges = [make_judge(c.judge, c.http()) for c in (several, once)]
    assert [j.identity()["temperature"] for j in judges] == [0.7, 0.0]
    sent = {}
    judges[0].client.complete = lambda messages, params: sent.update(params)
    judges[0].complete([{"role": "user", "content": "grade"}])
    assert sent["temperature"] == 0.7
    with pytest.raises(LimacotInputError, match="a local judge decodes greedily"):
        grade_runs([], "out", GradeConfig(judge="embedded", samples=2))
