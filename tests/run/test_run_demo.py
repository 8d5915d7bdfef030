"""`make demo`'s study (configs/demo.yaml with configs/data/demo.yaml, the bundled samples and
eval files) end to end with small limits, the tiny random LLaMA standing in for the embedded
model: every configured task is scored and compared, and the report opens with the study's
description and a Findings section. The full demo (minutes of CPU training) is not a test."""

from __future__ import annotations

from pathlib import Path

import yaml

from conftest import table

from limacot.io.yaml_config import load_config
from limacot.report import write_report
from limacot.run.config import StudyConfig
from limacot.run.runner import run_study

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "configs"


def _demo_with_small_limits(folder: Path) -> StudyConfig:
    """configs/demo.yaml as shipped (its data config, tasks, comparisons, train overrides and
    description), with the tiny model for the embedded one and small limits."""
    data = yaml.safe_load((CONFIGS / "data" / "demo.yaml").read_text(encoding="utf-8"))
    for source in data["sources"].values():
        source["path"] = str((CONFIGS / "data" / source["path"]).resolve())
    data["decontamination"]["eval_files"] = {k: str((CONFIGS / "data" / v).resolve())
                                             for k, v in data["decontamination"]["eval_files"].items()}
    (folder / "data.yaml").write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    raw = yaml.safe_load((CONFIGS / "demo.yaml").read_text(encoding="utf-8"))
    raw.update(data=str(folder / "data.yaml"), sizes=[8], backbones={"smollm2-135m": str(folder / "tiny")})
    raw["train"]["preset"] = str(CONFIGS / "train" / "demo.yaml")
    raw["train"]["overrides"].update(epochs=1, save_window=[1, 1], per_device_batch_size=4, effective_batch_size=4,
                                     max_length=96)
    raw["eval"].update(limit=3, num_fewshot=1, data_dir=str(REPO / "examples" / "eval_data"))
    raw["judge"].update(prompts=str(REPO / "examples" / "data" / "dev_prompts.jsonl"), judge=str(folder / "tiny"),
                        limit=1, max_new_tokens=4)
    (folder / "demo.yaml").write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return load_config(folder / "demo.yaml", StudyConfig)


def test_demo_configuration_runs_and_reports(tiny_study):
    config = _demo_with_small_limits(tiny_study)
    assert config.eval.tasks[0] == "kocot_heldout" and "DEMO-ONLY" in config.description
    run_study(config, tiny_study / "out")
    db = tiny_study / "out" / "results.sqlite"
    assert all(dict(r)["status"] == "done" for r in table(db, "stage_runs"))
    compared = {(dict(r)["kind"], dict(r)["task"], dict(r)["metric"]) for r in table(db, "comparisons")}
    for kind in ("lima+cot vs base", "lima+cot vs lima"):
        assert (kind, "kocot_heldout", "ll_per_char") in compared
        assert (kind, "kobest_copa", "f1") in compared and (kind, "kobest_sentineg", "f1") in compared

    report = write_report(tiny_study / "out")["markdown"].read_text(encoding="utf-8")
    headings = [line for line in report.splitlines() if line.startswith("## ")]
    assert headings[:3] == ["## Findings", "## Main results", "## Paired deltas"]
    assert "DEMO-ONLY TRAINING" in report.split("## Findings")[0]  # the description opens the report
    findings = report.split("## Findings")[1].split("## Main results")[0]
    assert "tests of a task's primary metric" in findings  # the significant ones, or that none is, of how many
    assert "kocot_heldout" in report.split("## Main results")[1].split("## Paired deltas")[0]
    assert "| kocot_heldout |" in report  # the held-out file is checked for overlap with the training pool
