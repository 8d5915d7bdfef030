"""The plan and its keys, its record in the store, the shipped study configs, and the slurm scripts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from limacot.io.yaml_config import load_config
from limacot.errors import LimacotInputError
from limacot.run.config import StudyConfig
from limacot.run.plan import build_plan, record_plan
from limacot.run.slurm import submit_study
from limacot.study.store import ResultsStore, read_store

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def test_plan_of_the_demo_grid():
    config = load_config(CONFIGS / "demo.yaml", StudyConfig)
    plan = build_plan(config, Path("study"))
    assert plan.whole and [c.id for c in plan.cells] == [
        "smollm2-135m/base/-/s0", "smollm2-135m/lima/8/s0", "smollm2-135m/lima/16/s0",
        "smollm2-135m/lima+cot/8/s0", "smollm2-135m/lima+cot/16/s0"]
    compared = [job.pair for job in plan.of("compare")]
    assert [p.id for p in compared] == [j.pair.id for j in plan.of("judge")] and len(compared) == 4
    assert {p.kind for p in compared} == {"lima+cot vs base", "lima+cot vs lima"}
    assert not build_plan(config, Path("study"), lambda cell: cell.variant == "base").whole


def test_plan_is_recorded_in_the_store(tmp_path):
    """The jobs table holds the plan as built: label, key, cell or pair, dependency keys, output;
    a plan of some cells (`--only`) replaces only those cells' jobs."""
    config = load_config(CONFIGS / "demo.yaml", StudyConfig)
    plan = build_plan(config, tmp_path)
    store = ResultsStore(tmp_path / "results.sqlite")
    record_plan(plan, store)
    jobs = read_store(tmp_path / "results.sqlite").jobs
    assert [(j["label"], j["key"], j["stage"], j["output"]) for j in jobs] == \
        [(j.label, j.key, j.stage, str(j.out)) for j in plan.jobs]
    assert [j["deps"] for j in jobs] == [[d.key for d in j.deps] for j in plan.jobs]
    judge = next(j for j in jobs if j["stage"] == "judge")
    assert (judge["cell_id"], judge["a_cell"], judge["b_cell"]) == (None, *(c.id for c in plan.of("judge")[0].pair))
    assert [row["cell_id"] for row in read_store(tmp_path / "results.sqlite").cells] == [c.id for c in plan.cells]
    changed = config.model_copy(update={"eval": config.eval.model_copy(update={"limit": 3})})
    some = build_plan(changed, tmp_path, lambda cell: cell.variant == "base")
    record_plan(some, store)
    store.close()
    keys = {j["label"]: j["key"] for j in read_store(tmp_path / "results.sqlite").jobs}
    assert len(keys) == len(plan.jobs) and keys["eval smollm2-135m/base/-/s0"] == some.of("eval")[0].key
    assert keys["eval smollm2-135m/lima/8/s0"] == next(j.key for j in plan.of("eval") if j.cell.variant == "lima")


@pytest.mark.shared_data
@pytest.mark.parametrize("name", ["lima-cot-llama.yaml", "lima-cot-llama-lora.yaml"])
def test_paper_config_plans_offline(tmp_path, name, shared_data):
    """The seed study (full and one-GPU LoRA) validates and plans without network (hub ids are only
    named): five fine-tuned variants x three sizes x three seeds per backbone, one data build per
    training seed, the rationale and Korean-data comparisons, the CoT math tasks in the eval suite.
    Its data config decontaminates against the eval files under the shared data folder."""
    config = load_config(CONFIGS / "paper" / name, StudyConfig)
    plan = build_plan(config, tmp_path)
    stages = [j.stage for j in plan.jobs]
    assert stages.count("train") == 2 * 5 * 3 * 3 and stages.count("eval") == 2 * (1 + 45)
    assert stages.count("data") == 3 and plan.sizes == ["250", "500", "lima-1000+kocot-2000"]
    kinds = {job.pair.kind for job in plan.of("compare")}
    assert {"lima+cot vs lima+answer-only", "lima+answer-only vs lima", "lima+cot vs lima"} <= kinds
    assert {"ko_gsm8k", "gsm8k"} <= set(config.eval.tasks)
    assert len({j.key for j in plan.jobs}) == len(plan.jobs)
    assert not any(j.is_done() for j in plan.jobs)


def test_keys_are_stable_and_follow_inputs(tmp_path):
    config = load_config(CONFIGS / "demo.yaml", StudyConfig)
    first = {j.label: j.key for j in build_plan(config, tmp_path).jobs}
    assert first == {j.label: j.key for j in build_plan(config, tmp_path).jobs}
    moved = {j.label: j.key for j in build_plan(config, tmp_path / "elsewhere").jobs}
    assert first == moved  # keys hash contents, not where the study folder is
    changed = config.model_copy(update={"eval": config.eval.model_copy(update={"limit": 3})})
    second = {j.label: j.key for j in build_plan(changed, tmp_path).jobs}
    assert all(second[k] == v for k, v in first.items() if k.startswith(("train", "generate", "data")))
    assert all(second[k] != v for k, v in first.items() if k.startswith(("eval", "compare")))
    train = config.train.model_copy(update={"overrides": {**config.train.overrides, "dev_batch_size": 3}})
    batched = {j.label: j.key for j in build_plan(config.model_copy(update={"train": train}), tmp_path).jobs}
    assert batched == first  # how dev answers are batched changes no weight or answer
    train = config.train.model_copy(update={"overrides": {**config.train.overrides, "learning_rate": 1e-3}})
    faster = {j.label: j.key for j in build_plan(config.model_copy(update={"train": train}), tmp_path).jobs}
    assert all(faster[k] != v for k, v in first.items() if k.startswith("train"))
    asked = config.judge.model_copy(update={"api_key_env": "OTHER_KEY", "timeout": 5, "concurrency": 1})
    assert {j.label: j.key for j in build_plan(config.model_copy(update={"judge": asked}), tmp_path).jobs} == first
    korean = config.judge.model_copy(update={"lang": "ko"})  # the instructions change: so do the verdicts
    judged = {j.label: j.key for j in build_plan(config.model_copy(update={"judge": korean}), tmp_path).jobs}
    assert all((judged[k] != v) == k.startswith("judge") for k, v in first.items())


def test_study_sizes_must_be_built(tmp_path):
    raw = yaml.safe_load((CONFIGS / "demo.yaml").read_text())
    raw["sizes"] = [8, 30]
    raw["data"] = str(CONFIGS / "data" / "demo.yaml")
    raw["train"]["preset"] = str(CONFIGS / "train" / "demo.yaml")
    raw["eval"]["data_dir"] = None
    raw["judge"]["prompts"] = str(CONFIGS.parent / "examples" / "data" / "dev_prompts.jsonl")
    (tmp_path / "study.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(LimacotInputError, match=r"sizes \['30'\] are not built"):
        build_plan(load_config(tmp_path / "study.yaml", StudyConfig), tmp_path / "out")


@pytest.mark.shared_data
def test_slurm_scripts_chain_jobs(tmp_path, shared_data):
    config = load_config(CONFIGS / "paper" / "lima-cot-llama.yaml", StudyConfig)
    plan = build_plan(config, tmp_path, lambda cell: cell.backbone == "llama3-8b" and cell.seed == 0
                      and cell.size in ("-", "250"))
    actions = submit_study(plan, CONFIGS / "paper" / "lima-cot-llama.yaml", partition="gpu", submit=False)
    assert [a.action for a in actions] == ["submit"] * len(actions) and not any(a.job_id for a in actions)
    folder = tmp_path / "slurm"
    assert not (folder / "submitted.json").exists()  # nothing was submitted, so nothing is recorded
    train = sorted(folder.glob("train-*.sbatch"))
    assert len(train) == 5  # lima, lima+answer-only, lima+cot, cot-answer-only, cot at size 250
    script = train[0].read_text()
    assert "#SBATCH --nodes=1" in script and "#SBATCH --gpus-per-node=8" in script and "--partition=gpu" in script
    assert "accelerate launch --config_file" in script and "zero3.yaml" in script and "--job " in script
    assert len(list(folder.glob("data-*.sbatch"))) == 3  # data_seed per_seed: one build per training seed
    data = (folder / f"data-{plan.jobs[0].key[:16]}.sbatch").read_text()
    assert "--gpus-per-node" not in data and "--cpus-per-task" not in data and f"--job {plan.jobs[0].key}" in data
    submit = (folder / "submit.sh").read_text().splitlines()
    assert next(line for line in submit if line.startswith("J")).startswith("J0=$(sbatch --parsable data-")
    trains = [line for line in submit if "train-" in line]
    assert len(trains) == 5 and all("--dependency=afterok:$J0 --kill-on-invalid-dep=yes" in line for line in trains)
    evals = [line for line in submit if "eval-" in line]
    assert len(evals) == 6 and sum("--dependency=afterok:$J" in line for line in evals) == 5  # base has no train
    assert submit[-1].startswith("J") and "--dependency=afterok:" in submit[-1] and submit[-1].endswith("finish.sbatch)")


@pytest.mark.shared_data
def test_slurm_on_cpu_requests_no_gpu(tmp_path, shared_data):
    raw = yaml.safe_load((CONFIGS / "paper" / "lima-cot-llama.yaml").read_text())
    raw.update(compute={"device": "cpu"}, data=str(CONFIGS / "data" / "seed-study.yaml"),
               train={"preset": str(CONFIGS / "train" / "lima-llama3-8b.yaml")}, data_seed="fixed")
    raw["eval"]["data_dir"] = str(shared_data)
    (tmp_path / "study.yaml").write_text(yaml.safe_dump(raw))
    config = load_config(tmp_path / "study.yaml", StudyConfig)
    plan = build_plan(config, tmp_path / "out", lambda cell: cell.id == "llama3-8b/lima/250/s0")
    actions = submit_study(plan, tmp_path / "study.yaml", submit=False)
    assert [a.slurm.gpus for a in actions] == [0] * len(actions) == [0] * 5  # data, train, eval, generate, finish
    for path in (tmp_path / "out" / "slurm").glob("*.sbatch"):
        text = path.read_text()
        assert "--gpus-per-node" not in text and "accelerate launch" not in text and " -m limacot run " in text


@pytest.mark.shared_data
def test_dry_run_shows_what_each_job_waits_for(tmp_path, shared_data):
    from typer.testing import CliRunner

    from limacot.cli import app

    paper = str(CONFIGS / "paper" / "lima-cot-llama.yaml")
    local = CliRunner().invoke(app, ["run", "--config", paper, "--out", str(tmp_path), "--dry-run", "--json",
                                     "--only", "llama3-8b/*/250/s0"])
    assert local.exit_code == 0, local.output
    rows = json.loads(local.stdout)
    data = next(r for r in rows if r["stage"] == "data")
    trains = [r for r in rows if r["stage"] == "train"]
    assert len(trains) == 5 and all(r["depends_on"] == [f"data {data['key']}"] for r in trains)
    slurm = CliRunner().invoke(app, ["run", "--config", paper, "--out", str(tmp_path), "--dry-run", "--json",
                                     "--only", "llama3-8b/*/250/s0", "--launcher", "slurm"])
    assert slurm.exit_code == 0, slurm.output
    scripts = json.loads(slurm.stdout)["slurm"]
    assert scripts[0]["script"] == f"data-{data['key']}" and scripts[0]["gpus_per_node"] == 0
    assert [s["after"] for s in scripts if s["script"].startswith("train-")] == [[scripts[0]["script"]]] * 5
    assert {s["action"] for s in scripts} == {"submit"} and not (tmp_path / "slurm").exists()  # nothing written
    table = CliRunner().invoke(app, ["run", "--config", paper, "--out", str(tmp_path), "--dry-run",
                                     "--only", "llama3-8b/lima/250/s0"], env={"COLUMNS": "200"})
    assert f"data {data['key']}" in table.stdout and "depends on" in table.stdout


# (case, top-level changes of demo.yaml, what the message must say after "<file>: ")
BAD_STUDIES = [
    ("variant_twice", {"variants": ["base", "lima", "lima", "lima+cot"]},
     r"variants: variant 'lima' is given twice"),
    ("size_twice", {"sizes": [8, 16, 8]}, r"sizes: size 8 is given twice"),
    ("size_zero", {"sizes": [0]}, r"sizes: size 0 is not a number of records >= 1"),
    ("seed_twice", {"seeds": [0, 0]}, r"seeds: seed 0 is given twice"),
    ("no_variants", {"variants": []}, r"variants: expected at least one entry"),
    ("no_tasks", {"eval": {"tasks": []}}, r"eval.tasks: expected at least 1 item, got 0"),
    ("eval_model", {"eval": {"tasks": ["kobest_copa"], "model": "embedded"}},
     r"eval.model: unknown key; valid keys: tasks, num_fewshot, limit, data_dir, backend, fewshot_seeds, batch_size$"),
    ("judge_lang", {"judge": {"prompts": "p.jsonl", "lang": "fr"}}, r"judge.lang: expected one of auto, en, ko"),
    ("judge_compute", {"judge": {"prompts": "p.jsonl", "dtype": "bf16"}}, r"judge.dtype: unknown key; valid keys: "
     r"prompts, max_new_tokens, greedy, limit, batch_size, api_key_env, .*\bmin_coverage\b"),
    ("comparison_twice", {"comparisons": [["lima", "lima+cot"], ["lima", "lima+cot"]]},
     r"comparisons: comparison \('lima', 'lima\+cot'\) is given twice"),
    ("unknown_override", {"train": {"preset": "train/demo.yaml", "overrides": {"epoch": 2}}},
     r"train.overrides: epoch: not a `limacot train` setting; valid keys: .*\bepochs\b.*\blearning_rate\b"),
    ("bad_override_value", {"train": {"preset": "train/demo.yaml", "overrides": {"lora": {"r": 0}}}},
     r"train.overrides: lora.r: expected greater than or equal to 1 \(got 0\)"),
    ("override_set_by_study", {"train": {"preset": "train/demo.yaml", "overrides": {"seed": 3}}},
     r"train.overrides: seed: set per cell by the study's seeds"),
    ("unknown_backbone_override", {"train": {"preset": "train/demo.yaml", "per_backbone": {"llama": {"epochs": 1}}}},
     r"train.per_backbone: \['llama'\] are not backbones of this study"),
    ("backbone_override_key", {"train": {"preset": "train/demo.yaml",
                                         "per_backbone": {"smollm2-135m": {"epochz": 1}}}},
     r"train.per_backbone: smollm2-135m: epochz: not a `limacot train` setting"),
]


@pytest.mark.parametrize("case, changes, expected", BAD_STUDIES, ids=[c[0] for c in BAD_STUDIES])
def test_bad_study_configs_name_the_file_and_key(tmp_path, case, changes, expected):
    """Duplicates planned duplicate jobs with equal keys; an unknown override failed only while
    planning, as raw pydantic text (exit 1). Each is refused when the study config loads."""
    raw = {**yaml.safe_load((CONFIGS / "demo.yaml").read_text()), **changes}
    path = tmp_path / f"{case}.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(LimacotInputError, match=rf"{case}.yaml: {expected}") as err:
        load_config(path, StudyConfig)
    assert "Config" not in str(err.value) and "Value error" not in str(err.value)


def test_study_inputs_must_exist_when_the_config_loads(tmp_path):
    """A missing data config, preset or prompts file, or a backbone that is no model, failed only
    when its stage started (the data config: while planning, without naming the study's key)."""
    raw = yaml.safe_load((CONFIGS / "demo.yaml").read_text())
    raw.update(data="gone.yaml", train={"preset": "train/missing.yaml"}, eval={**raw["eval"], "data_dir": "evals"},
               judge={**raw["judge"], "prompts": "prompts-missing.jsonl"},
               backbones={"smol": "embedded", "other": "checkpoints/none"})
    (tmp_path / "study.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(LimacotInputError) as err:
        load_config(tmp_path / "study.yaml", StudyConfig)
    message = str(err.value)
    assert message.startswith(f"{tmp_path / 'study.yaml'}: data: no such file {tmp_path / 'gone.yaml'}; ")
    assert f"train.preset: no such file {tmp_path / 'train' / 'missing.yaml'}" in message
    assert f"judge.prompts: no such file {tmp_path / 'prompts-missing.jsonl'}" in message
    assert f"eval.data_dir: {tmp_path / 'evals'} is not a folder" in message
    assert "backbones.other: model spec" in message and "backbones.smol" not in message


def test_train_files_of_a_study_are_checked_when_it_loads(tmp_path):
    """A dev prompts file that is not there failed after the first train job had trained."""
    raw = yaml.safe_load((CONFIGS / "demo.yaml").read_text())
    raw.update(data=str(CONFIGS / "data" / "demo.yaml"), eval={**raw["eval"], "data_dir": None},
               judge={**raw["judge"], "prompts": str(CONFIGS.parent / "examples" / "data" / "dev_prompts.jsonl")})
    (tmp_path / "preset.yaml").write_text("epochs: 1\ndev_prompts: typo.jsonl\n")
    (tmp_path / "prompts.jsonl").write_text('{"prompt": "hi"}\n')
    raw["train"] = {"preset": "preset.yaml", "overrides": {"dev_prompts": "prompts.jsonl"},
                    "per_backbone": {"smollm2-135m": {"dev_data": "held-out.jsonl"}}}
    (tmp_path / "study.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(LimacotInputError) as err:
        load_config(tmp_path / "study.yaml", StudyConfig)
    assert str(err.value) == (f"{tmp_path / 'study.yaml'}: train.per_backbone.smollm2-135m.dev_data: no such file "
                              f"{tmp_path / 'held-out.jsonl'}")  # the overrides' prompts.jsonl: beside the study
    del raw["train"]["per_backbone"], raw["train"]["overrides"]
    (tmp_path / "study.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(LimacotInputError, match=rf"train.preset {tmp_path / 'preset.yaml'}: dev_prompts: no such file "
                                                rf"{tmp_path / 'typo.jsonl'}"):
        load_config(tmp_path / "study.yaml", StudyConfig)
