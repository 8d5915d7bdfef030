"""The study design in a study config: the rationale ablation (twins), sizes spelled as counts,
comparisons that say what they measure, data seeds per training seed, and what `--dry-run`
tells before anything runs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import STUDY, write_study

from limacot.errors import LimacotInputError

from limacot.io.yaml_config import load_config
from limacot.report import write_report
from limacot.run.config import StudyConfig
from limacot.run.plan import build_plan
from limacot.run.runner import run_study

MIXTURE = {"lima": 4, "kocot": 4}
ABLATION = [["base", "lima+cot"],
            {"a": "lima+answer-only", "b": "lima+cot", "asks": "the rationale (same KoCoT questions)"},
            {"a": "lima", "b": "lima+answer-only", "asks": "the Korean data, without rationales"}]


def _ablation_study(folder: Path, **changes) -> Path:
    """tiny_study's folder with the answer-only twin of the CoT source and the three variants
    the rationale question needs."""
    data = yaml.safe_load((folder / "data.yaml").read_text())
    data["sources"]["kocot_answer_only"] = {**data["sources"]["kocot"], "cot_style": "answer-only",
                                            "twin_of": "kocot"}
    data["variants"]["lima+answer-only"] = {"mix": {"lima": "all", "kocot_answer_only": "all"}}
    data["sizes"] = [4, MIXTURE]
    (folder / "data.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    values = {"variants": ["base", "lima", "lima+answer-only", "lima+cot"], "sizes": [MIXTURE],
              "comparisons": ABLATION, **changes}
    return write_study(folder, "design.yaml", **values)


def _questions(path: Path) -> list[str]:
    return sorted(json.loads(line)["messages"][0]["content"] for line in path.read_text().splitlines())


def test_the_rationale_ablation_runs_in_miniature(tiny_study):
    """Twins at a size spelled as counts: lima+cot and lima+answer-only train on the same questions;
    the report shows both ablation comparisons with what each measures."""
    config = load_config(_ablation_study(tiny_study), StudyConfig)
    out = tiny_study / "out"
    run_study(config, out)
    label = "lima-4+kocot-4"  # the data config's order, though the study lists kocot first
    cot, answer_only = (out / "data" / v / label / "train.jsonl" for v in ("lima+cot", "lima+answer-only"))
    assert _questions(cot) == _questions(answer_only) and len(_questions(cot)) == 8
    assert len(_questions(out / "data" / "lima" / label / "train.jsonl")) == 4  # the mixture's LIMA part only
    markdown = write_report(out)["markdown"].read_text(encoding="utf-8")
    for heading in ("lima+cot vs lima+answer-only (Δ = lima+cot − lima+answer-only)",
                    "lima+answer-only vs lima (Δ = lima+answer-only − lima)", "lima+cot vs base"):
        assert f"### {heading}" in markdown
    assert "What it measures: the rationale (same KoCoT questions)." in markdown
    assert markdown.index("### lima+cot vs lima+answer-only") < markdown.index("### lima+answer-only vs lima")
    twins = markdown[markdown.index("### Twin sources"):]
    assert "kocot / kocot_answer_only: 8 of 8 pairs kept" in twins  # the data section carries the card's pairs


def test_per_seed_data_builds_one_selection_per_training_seed(tiny_study):
    path = _ablation_study(tiny_study, sizes=[4], seeds=[0, 1], data_seed="per_seed", judge=None,
                           comparisons=[["lima", "lima+cot"]])
    config = load_config(path, StudyConfig)
    plan = build_plan(config, tiny_study / "out")
    data = plan.of("data")
    assert len(data) == 2 and data[0].key != data[1].key
    for job in plan.of("train"):
        assert job.deps == [data[job.cell.seed]] and f"/{data[job.cell.seed].out.name}/" in job.inputs["config"]["data"]
    run_study(config, tiny_study / "out", stages={"data"})
    picks = [_questions(tiny_study / "out" / f"data-s{seed}" / "lima" / "4" / "train.jsonl") for seed in (0, 1)]
    assert picks[0] != picks[1]  # 4 of 8 LIMA rows, chosen with seeds 0 and 1
    assert (tiny_study / "out" / "data").resolve() == (tiny_study / "out" / "data-s0").resolve()
    overview = write_report(tiny_study / "out")["markdown"].read_text(encoding="utf-8")
    assert "each training seed trains on examples selected with that seed (`data_seed: per_seed`)" in overview
    fixed = build_plan(config.model_copy(update={"data_seed": "fixed"}), tiny_study / "out")
    assert len(fixed.of("data")) == 1 and "seed variance is training randomness only" in " ".join(fixed.notes)


def _without_chat_template(model: Path, copy: Path) -> None:
    shutil.copytree(model, copy)
    config = json.loads((copy / "tokenizer_config.json").read_text())
    config.pop("chat_template", None)
    (copy / "tokenizer_config.json").write_text(json.dumps(config))
    (copy / "chat_template.jinja").unlink(missing_ok=True)


def test_a_local_judge_without_chat_template_is_refused_at_plan_time(tiny_study):
    _without_chat_template(tiny_study / "tiny", tiny_study / "plain")
    config = load_config(_ablation_study(tiny_study, judge={**STUDY["judge"], "judge": "plain"}), StudyConfig)
    with pytest.raises(LimacotInputError, match=r"judge.judge \S*plain: its tokenizer has no chat template"):
        build_plan(config, tiny_study / "out")


def test_dry_run_tells_the_design_and_the_plain_format_of_a_base_without_chat_template(tiny_study):
    """--dry-run names the variants, sizes, comparisons with what they measure, the eval suite, and
    that a base backbone without a chat template answers in the plain format (not a mid-grid failure)."""
    _without_chat_template(tiny_study / "tiny", tiny_study / "plain")
    path = _ablation_study(tiny_study, backbones={"tiny": "plain"})
    run = subprocess.run([sys.executable, "-m", "limacot", "run", "--config", str(path), "--out",
                          str(tiny_study / "out"), "--dry-run"], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "COLUMNS": "200"})
    assert run.returncode == 0, run.stderr
    text = run.stdout
    assert "variants: base, lima, lima+answer-only, lima+cot" in text
    assert "sizes: lima-4+kocot-4" in text and "data seed: fixed" in text
    assert "lima+cot vs lima+answer-only: the rationale (same KoCoT questions)" in text
    assert "eval: kobest_copa; 1-shot" in text
    assert "base tiny: no chat template: answers the judge's prompts in the plain Question/Answer format" in text
    assert not (tiny_study / "out" / "results.sqlite").exists()


def test_long_stages_show_progress_inside_run(tiny_study, capsys):
    """`limacot run` draws each in-process stage's progress (training steps, eval requests,
    answers, judge requests) with the time left, not only run/done lines; --json draws none."""
    config = load_config(tiny_study / "study.yaml", StudyConfig)
    run_study(config, tiny_study / "out", progress=True)
    shown = capsys.readouterr().err
    for label in ("train", "answers tiny/base/-/s0", "judge tiny/base/-/s0 vs tiny/lima/4/s0"):
        assert label in shown, label
    assert "requests" in shown  # the eval's loglikelihood requests
    run_study(config, tiny_study / "quiet")
    assert "answers tiny" not in capsys.readouterr().err
