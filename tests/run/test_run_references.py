"""Reference systems in a study (`references:`): validated with the config, planned as one
generate job each (an API model or an imported answers file; no compare job, no GPU), judged
against every cell of the compared variant, recorded in the store like every other judgment;
and the dry run's cost estimate, checked to the token."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from conftest import table, write_study

from limacot.errors import LimacotInputError
from limacot.io.yaml_config import load_config
from limacot.judge.instructions import INSTRUCTIONS
from limacot.models.api import estimate_tokens
from limacot.run.config import StudyConfig
from limacot.run.cost import cost_lines, plan_cost
from limacot.run.plan import build_plan
from limacot.run.runner import run_study
from limacot.run.slurm import slurm_jobs

CONFIGS = Path(__file__).resolve().parents[2] / "configs"

PROMPTS = [{"id": "p1", "prompt": "Hello?"}, {"id": "p2", "prompt": "사과?"}]
API = "openai:ref-model@http://127.0.0.1:9"  # never called while planning


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture()
def ref_study(tiny_study):
    """The tiny study with prompts that have ids, an imported reference answering one of them."""
    write_jsonl(tiny_study / "prompts.jsonl", PROMPTS)
    write_jsonl(tiny_study / "paper.jsonl", [{"id": "p1", "answer": "Hi there, friend."}])
    return tiny_study


def study(folder, **changes) -> StudyConfig:
    return load_config(write_study(folder, "refs.yaml", **changes), StudyConfig)


def test_references_are_planned_as_generate_jobs_and_judged_against_every_cell_of_the_variant(ref_study):
    config = study(ref_study, references={"gpt-4o": API, "lima-paper": "paper.jsonl"},
                   comparisons=[["base", "lima"], ["gpt-4o", "lima"], ["gpt-4o", "lima+cot"], ["lima-paper", "base"]])
    plan = build_plan(config, ref_study / "out")
    refs = [j for j in plan.jobs if j.is_reference]
    assert [(j.stage, j.cell.id, j.deps) for j in refs] == [("generate", "reference/gpt-4o", []),
                                                             ("generate", "reference/lima-paper", [])]
    assert refs[0].inputs["spec"] == API and refs[1].inputs["answers"] == str(ref_study / "paper.jsonl")
    assert [c.id for c in plan.cells if c.is_reference] == ["reference/gpt-4o", "reference/lima-paper"]
    judged = {j.pair.id: j for j in plan.of("judge")}
    assert set(judged) == {"tiny/base/-/s0 vs tiny/lima/4/s0", "reference/gpt-4o vs tiny/lima/4/s0",
                           "reference/gpt-4o vs tiny/lima+cot/4/s0", "reference/lima-paper vs tiny/base/-/s0"}
    assert judged["reference/gpt-4o vs tiny/lima/4/s0"].deps[0] is refs[0]
    assert [j.pair.id for j in plan.of("compare")] == ["tiny/base/-/s0 vs tiny/lima/4/s0"]  # no eval for references
    finish = slurm_jobs(plan, ref_study / "refs.yaml")[-1]
    own = {job.key for script in slurm_jobs(plan, ref_study / "refs.yaml")[:-1] for job in script.jobs}
    assert finish.final and all(r in finish.jobs and r.key not in own for r in refs)  # made in the final job
    renamed = study(ref_study, references={"gpt-4o-2024": API, "lima-paper": "paper.jsonl"},
                    comparisons=[["gpt-4o-2024", "lima"]])
    assert build_plan(renamed, ref_study / "out").of("generate")[-2].key == refs[0].key  # content, not names
    write_jsonl(ref_study / "paper.jsonl", [{"id": "p1", "answer": "Hello to you."}])
    assert build_plan(config, ref_study / "out").of("generate")[-1].key != refs[1].key


@pytest.mark.parametrize("changes, expected", [
    ({"references": {"lima": API}}, r"references: \['lima'\] are also variants"),
    ({"references": {"gpt-4o": API}, "comparisons": [["gpt-5", "lima"]]},
     r"comparison \(gpt-5, lima\) names 'gpt-5', which is not in variants .* or references \['gpt-4o'\]"),
    ({"references": {"gpt-4o": API}, "judge": None}, r"add a judge: section"),
    ({"references": {"paper": "nowhere.jsonl"}}, r"references: paper: .*nowhere.jsonl: expected openai:MODEL"),
    ({"references": {"gpt-4o": "openai:gpt-4o@http://user:sk-abc@host/v1"}}, r"references: gpt-4o: .*no credentials"),
    ({"references": {"a": API, "b": API}}, r"reference source .* is given twice"),
    ({"references": {"a/b": API}}, r"a reference name is a non-empty word without '/'"),
    ({"backbones": {"reference": "tiny"}}, r"'reference' is the backbone name of the reference systems' cells"),
])
def test_bad_references_are_config_errors(ref_study, changes, expected):
    with pytest.raises(LimacotInputError, match=expected):
        study(ref_study, **changes)


def test_the_dry_run_cost_counts_calls_and_estimated_tokens_exactly(ref_study):
    """2 prompts, answers at max_new_tokens 4: the API reference answers each prompt once; each judged
    pair costs 2 calls per prompt both sides answered, each the instruction with the prompt and both
    answers; the imported reference answers p1 only, counted at its own length."""
    config = study(ref_study, references={"gpt-4o": API, "lima-paper": "paper.jsonl"},
                   judge={"prompts": "prompts.jsonl", "max_new_tokens": 4, "greedy": True,
                          "judge": "openai:judge@http://127.0.0.1:9", "max_tokens": 50},
                   comparisons=[["base", "lima"], ["gpt-4o", "lima"], ["lima-paper", "base"]])
    cost = plan_cost(build_plan(config, ref_study / "out"))
    chat = 3 + 4
    prompt_tokens = math.ceil(6 / 4) + math.ceil(2 * 0.8 + 1 / 4)  # "Hello?", "사과?"
    assert prompt_tokens == 4
    assert [(c.what, c.api, c.jobs, c.calls, c.input_tokens, c.output_tokens) for c in cost.lines][0] == \
        ("reference answers", True, 1, 2, 2 * chat + prompt_tokens, 2 * 4)

    def instruction(prompt: str, lang: str) -> int:
        return estimate_tokens(INSTRUCTIONS[lang].format(prompt=prompt, first="", second=""))

    both = 2 * (chat + instruction("Hello?", "en") + 4 + 4) + 2 * (chat + instruction("사과?", "ko") + 4 + 4)
    paper = 2 * (chat + instruction("Hello?", "en") + estimate_tokens("Hi there, friend.") + 4)  # p1 only
    judging = cost.lines[1]
    assert (judging.what, judging.api, judging.jobs, judging.calls) == ("pairwise judging", True, 3, 4 + 4 + 2)
    assert judging.input_tokens == 2 * both + paper and judging.output_tokens == 10 * 50
    assert (cost.prompts, cost.api_calls, cost.api_input_tokens) == (2, 12, 2 * chat + 4 + 2 * both + paper)
    text = "\n".join(cost_lines(cost, build_plan(config, ref_study / "out")))
    assert "cost (estimated: tokens are characters / 4, Hangul at 0.8" in text and "upper bound" in text
    assert f"API total: 12 calls, {cost.api_input_tokens:,} input tokens, at most {8 + 500:,} output tokens" in text


def test_cost_says_when_the_prompts_cannot_be_read_and_counts_a_local_judge_apart(ref_study, hub_cache):
    local = plan_cost(build_plan(study(ref_study, references={"gpt-4o": API}, comparisons=[["gpt-4o", "lima"]]),
                                 ref_study / "out"))
    assert [(c.what, c.api) for c in local.lines] == [("reference answers", True), ("pairwise judging", False)]
    assert local.api_calls == 2  # the tiny local judge's calls cost nothing
    hub = study(ref_study, references={"gpt-4o": API}, comparisons=[["gpt-4o", "lima"]],
                judge={"prompts": "hf:org/none/test.jsonl", "judge": "tiny"})
    unknown = plan_cost(build_plan(hub, ref_study / "out"))
    assert unknown.prompts is None and "HF_HUB_OFFLINE" in unknown.unknown and not unknown.lines
    assert "unknown here: the judge's prompts cannot be read" in "\n".join(cost_lines(unknown, build_plan(
        hub, ref_study / "out")))


def test_a_study_judges_its_references_and_records_them_like_any_judgment(ref_study, server_factory):
    """A base-only study: an API reference (the scripted server) and an imported one, each judged
    against the base cell by the tiny local judge; the store lists both as cells and has their
    judgments rows; a rerun asks the server nothing."""
    server = server_factory(reply=lambda body: f"Reference answer to {body['messages'][-1]['content']}")
    config = study(ref_study, variants=["base"], references={"gpt-4o": f"openai:ref@{server.url}",
                                                             "lima-paper": "paper.jsonl"},
                   comparisons=[["gpt-4o", "base"], ["lima-paper", "base"]])
    plan = run_study(config, ref_study / "out", stages={"generate", "judge"})
    assert len(server.requests) == 2 and server.requests[0]["body"]["temperature"] == 0
    db = ref_study / "out" / "results.sqlite"
    cells = {dict(r)["cell_id"]: dict(r) for r in table(db, "cells")}
    assert cells["reference/gpt-4o"] == {"cell_id": "reference/gpt-4o", "backbone": "reference",
                                         "variant": "gpt-4o", "size": "-", "seed": 0}
    judgments = {(dict(r)["a_cell"], dict(r)["b_cell"]): dict(r) for r in table(db, "judgments")}
    assert set(judgments) == {("reference/gpt-4o", "tiny/base/-/s0"), ("reference/lima-paper", "tiny/base/-/s0")}
    assert judgments[("reference/gpt-4o", "tiny/base/-/s0")]["n"] == 2
    assert judgments[("reference/lima-paper", "tiny/base/-/s0")]["n"] == 1  # the file answers p1 only
    reference = next(j for j in plan.jobs if j.is_reference and j.cell.variant == "gpt-4o")
    rows = [json.loads(line) for line in (reference.out / "generations.jsonl").read_text().splitlines()]
    assert [r["answer"] for r in rows] == ["Reference answer to Hello?", "Reference answer to 사과?"]
    states = []
    run_study(config, ref_study / "out", stages={"generate", "judge"}, on_job=lambda j, s: states.append(s))
    assert set(states) == {"cached"} and len(server.requests) == 2

    from limacot.report import write_report

    report = write_report(ref_study / "out")["markdown"].read_text(encoding="utf-8")
    judging = report[report.index("## Pairwise judgments"):]
    assert "reference/gpt-4o" in judging and "reference/lima-paper" in judging


def _cache_lima_test_prompts(hub_cache, shared_data) -> None:
    """The Hugging Face cache holding GAIR/lima's test.jsonl (the paper config's judge prompts): the
    300 LIMA test prompts of the shared data, so the dry run can count them offline."""
    import shutil

    repo, commit = hub_cache / "datasets--GAIR--lima", "0123456789abcdef0123456789abcdef01234567"
    (repo / "snapshots" / commit).mkdir(parents=True)
    shutil.copy(shared_data / "lima" / "test_prompts_from_just_eval.jsonl", repo / "snapshots" / commit / "test.jsonl")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)


@pytest.mark.shared_data
def test_paper_config_dry_run_prints_the_api_cost(tmp_path, shared_data, hub_cache):
    """The seed study as shipped: gpt-4o's reference answers, 198 judged pairs x the prompts x 2
    orders with gpt-4o as judge, every cell and the reference graded once."""
    from typer.testing import CliRunner

    from limacot.cli import app

    _cache_lima_test_prompts(hub_cache, shared_data)
    n = len((shared_data / "lima" / "test_prompts_from_just_eval.jsonl").read_text(encoding="utf-8").splitlines())
    paper = CONFIGS / "paper" / "lima-cot-llama.yaml"
    shipped = CliRunner().invoke(app, ["run", "--config", str(paper), "--out", str(tmp_path / "a"), "--dry-run"],
                                 env={"COLUMNS": "250"})
    assert shipped.exit_code == 0, shipped.output
    text = shipped.stdout
    assert "cost (estimated: tokens are characters / 4" in text and f"prompts: {n} (hf:GAIR/lima/test.jsonl)" in text
    # 2 backbones x (5 + 4) comparisons x 9 cells, plus gpt-4o vs the 2 x 9 lima and the 2 x 9 lima+cot cells
    assert f"pairwise judging: {162 + 36} jobs, {198 * 2 * n:,} calls (API)" in text
    assert f"at most {198 * 2 * n * 256:,} output tokens" in text  # judge max_tokens 256
    assert f"reference answers: 1 job, {n} calls (API)" in text and "reference gpt-4o: answers from openai:gpt-4o" in text
    assert f"absolute grading: {92 + 1} jobs, {93 * n:,} calls (API)" in text  # 92 cells and the reference, 1 sample
    assert f"API total: {n + 396 * n + 93 * n:,} calls" in text


def test_grade_jobs_grade_every_cell_and_reference_and_are_in_the_cost(ref_study):
    from limacot.judge.instructions import GRADE_INSTRUCTIONS

    config = study(ref_study, references={"gpt-4o": API, "lima-paper": "paper.jsonl"}, comparisons=[],
                   judge={"prompts": "prompts.jsonl", "max_new_tokens": 4, "greedy": True,
                          "judge": "openai:judge@http://127.0.0.1:9"}, grade={"samples": 2, "max_tokens": 100})
    plan = build_plan(config, ref_study / "out")
    graded = {j.cell.id: j for j in plan.of("grade")}
    assert set(graded) == {"tiny/base/-/s0", "tiny/lima/4/s0", "tiny/lima+cot/4/s0", "reference/gpt-4o",
                           "reference/lima-paper"}
    assert all(j.deps == [g] for j in graded.values() for g in plan.of("generate") if g.cell == j.cell)
    more = study(ref_study, references={"gpt-4o": API, "lima-paper": "paper.jsonl"}, comparisons=[],
                 judge={"prompts": "prompts.jsonl", "max_new_tokens": 4, "greedy": True,
                        "judge": "openai:judge@http://127.0.0.1:9"}, grade={"samples": 3, "max_tokens": 100})
    assert all(j.key != graded[j.cell.id].key for j in build_plan(more, ref_study / "out").of("grade"))
    line = next(c for c in plan_cost(plan).lines if c.what == "absolute grading")

    def rubric(prompt: str, lang: str) -> int:
        return 3 + 4 + estimate_tokens(GRADE_INSTRUCTIONS[lang].format(prompt=prompt, answer=""))

    per_cell = rubric("Hello?", "en") + 4 + rubric("사과?", "ko") + 4  # generated answers at max_new_tokens 4
    paper = rubric("Hello?", "en") + estimate_tokens("Hi there, friend.")  # the file answers p1 only
    assert (line.api, line.jobs, line.calls) == (True, 5, 2 * (4 * 2 + 1))
    assert line.input_tokens == 2 * (4 * per_cell + paper) and line.output_tokens == 18 * 100
    with pytest.raises(LimacotInputError, match="grade: the judge grades the answers to its prompts"):
        study(ref_study, judge=None, comparisons=[], grade={"samples": 1})


def judge_server_reply(body: dict) -> str:
    """A scripted API model that answers prompts, judges pairs and grades answers."""
    text = body["messages"][-1]["content"]
    if "[Answer 1]" in text or "[답변 1]" in text:
        return '{"reason": "fine", "verdict": "tie"}'
    if "Rating" in text or "평점" in text:
        return "Helpful enough.\nRating: 5"
    return f"Reference answer to {text}"


def test_a_study_grades_cells_and_references_with_an_api_judge(ref_study, server_factory):
    server = server_factory(reply=judge_server_reply)
    config = study(ref_study, variants=["base"], references={"gpt-4o": f"openai:ref@{server.url}"},
                   comparisons=[["gpt-4o", "base"]], grade={"samples": 1},
                   judge={"prompts": "prompts.jsonl", "max_new_tokens": 4, "greedy": True,
                          "judge": f"openai:judge@{server.url}"})
    run_study(config, ref_study / "out", stages={"generate", "judge", "grade"})
    db = ref_study / "out" / "results.sqlite"
    grades = {dict(r)["cell_id"]: dict(r) for r in table(db, "grades")}
    assert set(grades) == {"tiny/base/-/s0", "reference/gpt-4o"}
    assert all((g["mean"], g["n"], g["graded"], g["unparseable"], g["samples"]) == (5.0, 2, 2, 0, 1)
               for g in grades.values())
    assert json.loads(grades["reference/gpt-4o"]["distribution"])["5"] == 2
    judgment = dict(table(db, "judgments")[0])
    assert (judgment["a_cell"], judgment["b_cell"], judgment["ties"]) == ("reference/gpt-4o", "tiny/base/-/s0", 2)
    calls = len(server.requests)
    assert calls == 2 + 4 + 2 * 2  # reference answers, 2 orders x 2 prompts, 2 cells x 2 prompts graded
    run_study(config, ref_study / "out", stages={"generate", "judge", "grade"})
    assert len(server.requests) == calls
