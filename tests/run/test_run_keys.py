"""Job keys follow the content that each job reads: the data build, the eval data files, the
backbone's weights (a local folder, or an `hf:` id pinned to the commit it resolves to)."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest
import yaml
from huggingface_hub import constants

from limacot.io import hub_files
from limacot.io.yaml_config import load_config
from limacot.run.config import StudyConfig
from limacot.run.plan import MARKER, build_plan
from limacot.run.runner import run_study
from conftest import write_study

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "configs"
COMMIT_A, COMMIT_B = "a" * 40, "b" * 40


@pytest.fixture
def study(tmp_path):
    """The demo study with its data config and eval data copied into tmp_path (so both can change)."""
    data = yaml.safe_load((CONFIGS / "data" / "demo.yaml").read_text())
    for source in data["sources"].values():
        source["path"] = str((CONFIGS / "data" / source["path"]).resolve())
    data["decontamination"]["eval_files"] = {k: str((CONFIGS / "data" / v).resolve())
                                             for k, v in data["decontamination"]["eval_files"].items()}
    (tmp_path / "data.yaml").write_text(yaml.safe_dump(data))
    shutil.copytree(REPO / "examples" / "eval_data", tmp_path / "eval_data")
    raw = yaml.safe_load((CONFIGS / "demo.yaml").read_text())
    raw.update(data=str(tmp_path / "data.yaml"), sizes=[8])
    raw["train"]["preset"] = str(CONFIGS / "train" / "demo.yaml")
    raw["eval"]["data_dir"] = str(tmp_path / "eval_data")
    raw["judge"]["prompts"] = str(REPO / "examples" / "data" / "dev_prompts.jsonl")
    (tmp_path / "study.yaml").write_text(yaml.safe_dump(raw))
    return tmp_path


def _config(study: Path, **changes) -> StudyConfig:
    raw = yaml.safe_load((study / "study.yaml").read_text())
    raw.update(changes)
    (study / "study.yaml").write_text(yaml.safe_dump(raw))
    return load_config(study / "study.yaml", StudyConfig)


def _keys(config: StudyConfig, out: Path) -> dict[str, str]:
    return {job.label: job.key for job in build_plan(config, out).jobs}


def _train_data(config: StudyConfig, out: Path, cell_id: str) -> Path:
    job = next(j for j in build_plan(config, out).of("train") if j.cell.id == cell_id)
    return Path(job.inputs["config"]["data"])


def test_a_changed_data_config_builds_anew_and_train_reads_the_new_build(study):
    config, out = _config(study), study / "out"
    run_study(config, out, stages={"data"})
    first = (out / "data" / "lima" / "8" / "train.jsonl").read_text()
    old_path = _train_data(config, out, "smollm2-135m/lima/8/s0")
    assert old_path.read_text() == first

    data = yaml.safe_load((study / "data.yaml").read_text())
    data["seed"] = 1  # another draw of 8 of the 12 LIMA sample examples
    (study / "data.yaml").write_text(yaml.safe_dump(data))
    config = _config(study)
    run_study(config, out, stages={"data"})
    new_path = _train_data(config, out, "smollm2-135m/lima/8/s0")
    assert new_path != old_path and new_path.is_file()
    assert new_path.read_text() != first  # the train job reads the new build ...
    assert (out / "data" / "lima" / "8" / "train.jsonl").read_text() == new_path.read_text()  # ... data/ shows it
    assert old_path.read_text() == first  # and the old build stays addressable by its key


def test_a_marker_left_by_another_key_is_not_done(study):
    config, out = _config(study), study / "out"
    job = build_plan(config, out).of("data")[0]
    job.out.mkdir(parents=True)
    (job.out / MARKER).write_text(json.dumps({"stage": "data", "key": "0" * 64}))
    assert not job.is_done()
    (job.out / MARKER).write_text(json.dumps({"stage": "data", "key": job.key}))
    assert job.is_done()


def test_eval_keys_follow_the_eval_data_files(study):
    config, out = _config(study), study / "out"
    first = _keys(config, out)
    copa = next((study / "eval_data").rglob("*copa*/*"))
    copa.write_text(copa.read_text().replace("0", "1", 1))
    second = _keys(config, out)
    assert all(second[k] != v for k, v in first.items() if k.startswith(("eval", "compare")))
    assert all(second[k] == v for k, v in first.items() if k.startswith(("data", "train", "generate")))


def test_eval_keys_follow_the_task_pack_and_the_lm_eval_version(tiny_study, monkeypatch):
    """A task YAML that changes (prompt, exemplars, metric) or another lm-eval reruns the evals."""
    import limacot.run.plan as plan_module

    config = load_config(tiny_study / "study.yaml", StudyConfig)
    first = _keys(config, tiny_study / "out")
    pack = tiny_study / "tasks"
    shutil.copytree(plan_module.TASKS_DIR, pack)
    monkeypatch.setattr(plan_module, "TASKS_DIR", pack)
    assert _keys(config, tiny_study / "out") == first  # the same content, elsewhere
    copa = next(pack.rglob("kobest_copa.yaml"))
    copa.write_text(copa.read_text(encoding="utf-8") + "\n# a changed prompt\n", encoding="utf-8")
    changed = _keys(config, tiny_study / "out")
    assert all((changed[k] != v) == k.startswith(("eval", "compare")) for k, v in first.items())
    real_version = plan_module.metadata.version
    monkeypatch.setattr(plan_module.metadata, "version",
                        lambda name: "0.0.1" if name == "lm_eval" else real_version(name))
    assert all((_keys(config, tiny_study / "out")[k] != v) == k.startswith(("eval", "compare"))
               for k, v in changed.items())


def test_a_local_backbone_is_keyed_by_its_files_not_its_path(tiny_study):
    def keys(backbone: Path) -> dict[str, str]:
        return _keys(load_config(write_study(tiny_study, backbones={"tiny": str(backbone)}), StudyConfig),
                     tiny_study / "out")

    first = keys(tiny_study / "tiny")
    shutil.copytree(tiny_study / "tiny", tiny_study / "moved")
    assert keys(tiny_study / "moved") == first
    config_json = json.loads((tiny_study / "tiny" / "config.json").read_text())
    config_json["rms_norm_eps"] = config_json.get("rms_norm_eps", 1e-6) * 10  # same path, another model
    (tiny_study / "tiny" / "config.json").write_text(json.dumps(config_json))
    changed = keys(tiny_study / "tiny")
    assert all(changed[k] != v for k, v in first.items() if k.startswith(("train", "eval", "generate")))


def _cache_ref(repo_id: str, commit: str) -> None:
    refs = Path(constants.HF_HUB_CACHE) / f"models--{repo_id.replace('/', '--')}" / "refs"
    refs.mkdir(parents=True, exist_ok=True)
    (refs / "main").write_text(commit)


def test_an_hf_backbone_is_pinned_to_its_commit(study, tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    config = _config(study, backbones={"llama": "hf:org/llama"})
    with caplog.at_level(logging.WARNING):
        unresolved = _keys(config, study / "out")
    assert "could not be resolved to a commit" in caplog.text  # said once, keyed by the name

    _cache_ref("org/llama", COMMIT_A)
    plan = build_plan(config, study / "out")
    train = plan.of("train")[0]
    assert train.inputs["config"]["model"] == f"hf:org/llama@{COMMIT_A}"  # every job loads that commit
    assert train.inputs["model"]["commit"] == COMMIT_A
    assert next(j for j in plan.of("eval") if j.cell.is_base).inputs["model"] == f"hf:org/llama@{COMMIT_A}"
    pinned = {j.label: j.key for j in plan.jobs}
    assert pinned != unresolved
    assert _keys(_config(study, backbones={"llama": f"hf:org/llama@{COMMIT_A}"}), study / "out") == pinned

    _cache_ref("org/llama", COMMIT_B)  # main moved
    moved = _keys(config, study / "out")
    assert all(moved[k] != v for k, v in pinned.items() if k.startswith(("train", "eval", "generate")))


def test_an_hf_backbone_is_resolved_online(study, monkeypatch):
    """Online, the hub itself says which commit a revision is (one metadata request)."""
    import huggingface_hub

    asked = []

    class Info:
        sha = COMMIT_B

    def repo_info(self, repo_id, revision=None, repo_type=None, timeout=None):
        asked.append((repo_id, revision, repo_type))
        return Info()

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(hub_files, "hub_unavailable", lambda: None)  # as if huggingface.co answered
    monkeypatch.setattr(huggingface_hub.HfApi, "repo_info", repo_info)
    plan = build_plan(_config(study, backbones={"llama": "hf:org/llama@v1"}), study / "out")
    assert plan.of("train")[0].inputs["config"]["model"] == f"hf:org/llama@{COMMIT_B}"
    assert asked == [("org/llama", "v1", "model")]


def test_train_keys_follow_the_files_a_train_job_reads(tiny_study):
    """Dev prompts and the selection judge's reference answers are keyed by content: the same
    path with other bytes retrains; the data, eval and generate keys stay."""
    (tiny_study / "dev.jsonl").write_text('{"prompt": "Hello?"}\n', encoding="utf-8")
    (tiny_study / "reference.jsonl").write_text('{"id": "1", "answer": "Hi."}\n', encoding="utf-8")
    train = {"preset": "train.yaml", "overrides": {
        "dev_prompts": "dev.jsonl", "selection": "limacot.judge.selection:pairwise_vs_reference",
        "selection_judge": {"judge": "openai:gpt-4o", "reference": "reference.jsonl"}}}
    path = write_study(tiny_study, train=train)
    first = _keys(load_config(path, StudyConfig), tiny_study / "out")
    for name in ("dev.jsonl", "reference.jsonl"):
        with open(tiny_study / name, "a", encoding="utf-8") as handle:
            handle.write('{"prompt": "More?", "id": "2", "answer": "More."}\n')
        changed = _keys(load_config(path, StudyConfig), tiny_study / "out")
        assert all((changed[k] != v) == k.startswith(("train", "eval", "generate", "compare", "judge"))
                   for k, v in first.items() if not k.startswith(("eval tiny/base", "generate tiny/base")))
        assert all(changed[k] == v for k, v in first.items() if k.startswith(("data", "eval tiny/base")))
        first = changed
