"""lm-eval's own tasks next to the task pack's: found by name without indexing all of lm-eval
(the same entries as lm-eval's own index), the pack's names first, their data from the hub (or
the HF datasets cache offline: a missing one fails the plan before a model loads), and a
built-in group run end to end on the tiny model with stand-in datasets in that cache."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from limacot.errors import LimacotInputError
from limacot.eval.builtin import lm_eval_entries, lm_eval_tasks_dir
from limacot.eval.catalog import TASKS_DIR, leaves_of, plan_tasks, task_manager

pytestmark = pytest.mark.usefixtures("one_torch_thread")

HAERAE_BUILTIN = ["haerae_history", "haerae_loan_word", "haerae_rare_word", "haerae_standard_nomenclature"]


def _is_pack(manager, name: str) -> bool:
    return Path(manager.task_index[name].yaml_path).resolve().is_relative_to(TASKS_DIR.resolve())


@pytest.fixture()
def hub_reachable(monkeypatch):
    """The plan takes the hub as reachable (it downloads nothing; the hub libraries stay offline:
    they read the switches once, at import)."""
    import limacot.eval.catalog as catalog

    monkeypatch.setattr(catalog, "hub_offline", lambda: False)


def test_an_lm_eval_group_resolves_by_name(hub_reachable):
    """`click` (two subgroups, each built from a tag) plans to the tasks lm-eval's own index of
    its folder gives."""
    from lm_eval.tasks._index import TaskIndex

    plan = plan_tasks(task_manager(None, ["click"]), ["click"], None)
    index = TaskIndex.build([lm_eval_tasks_dir() / "click"])
    expected = sorted(index["click_lang_tasks"].tags) + sorted(index["click_cul_tasks"].tags)
    assert plan.leaves == expected and len(expected) == 11
    assert plan.lm_eval_tasks == plan.leaves and plan.skipped == {}


def test_the_pack_takes_precedence_over_lm_eval(hub_reachable, tmp_path):
    """lm-eval defines `kobest` and `haerae_general_knowledge` too; the pack's run, also inside
    lm-eval's `haerae` group, and the plan says so."""
    manager = task_manager(None, ["haerae", "kobest"])
    assert leaves_of(manager, "haerae") == ["haerae_general_knowledge", *HAERAE_BUILTIN]
    assert _is_pack(manager, "haerae_general_knowledge") and _is_pack(manager, "kobest")
    assert not _is_pack(manager, "haerae") and not _is_pack(manager, "haerae_history")
    plan = plan_tasks(manager, ["haerae"], None)
    assert plan.lm_eval_tasks == HAERAE_BUILTIN
    assert any("runs limacot's task pack definition of haerae_general_knowledge" in note for note in plan.notes)


def test_pack_names_never_look_at_lm_eval_tasks(monkeypatch):
    import limacot.eval.catalog as catalog

    def refuse(*args, **kwargs):
        raise AssertionError("lm-eval's tasks were searched for names the pack defines")

    monkeypatch.setattr(catalog, "lm_eval_entries", refuse)
    manager = task_manager(None, ["seed-study", "kobest_copa", "haerae_gk_rc", "gsm8k"])
    assert leaves_of(manager, "haerae_gk_rc") == ["haerae_general_knowledge", "haerae_reading_comprehension"]


def test_an_unknown_name_suggests_close_names_of_both():
    with pytest.raises(LimacotInputError, match="kormedmcqa") as err:
        task_manager(None, ["kormedmqca"])
    assert "neither limacot's task pack nor lm-eval's own tasks define it" in str(err.value)
    with pytest.raises(LimacotInputError, match="kobest_copa"):
        task_manager(None, ["kobest_cop"])


def _write(root: Path, rel: str, text: str) -> None:
    (root / rel).parent.mkdir(parents=True, exist_ok=True)
    (root / rel).write_text(text, encoding="utf-8")


def test_entries_equal_lm_eval_index_of_the_whole_tree(tmp_path):
    """A tag reached through an include (also from another folder), an inline group, a dict member
    and a duplicate name: what is found equals lm-eval's own index of the whole tree."""
    from lm_eval.tasks._index import TaskIndex

    _write(tmp_path, "a/_default_yaml", "tag: alpha_tasks\noutput_type: multiple_choice\n")
    _write(tmp_path, "a/a1.yaml", "include: _default_yaml\ntask: alpha_one\n")
    _write(tmp_path, "a/a2.yaml", "include: _default_yaml\ntask: alpha_two\n")
    _write(tmp_path, "a/group.yaml", "group: alpha\ntask:\n  - alpha_tasks\n  - task: beta_two\n    num_fewshot: 0\n"
                                     "  - group: inline_sub\n    task: [gamma]\n")
    _write(tmp_path, "b/b1.yaml", "include: ../a/_default_yaml\ntask: beta_one\n")
    _write(tmp_path, "b/b2.yaml", "include:\n  - ../a/a1.yaml\ntask: beta_two\n")
    _write(tmp_path, "c/dup.yaml", "task: alpha_one\ndataset_path: later/duplicate\n")
    _write(tmp_path, "g/gamma.yaml", "task: gamma\n")
    _write(tmp_path, "z/other.yaml", "task: unrelated\n")
    found = lm_eval_entries(["alpha"], root=tmp_path)
    full = TaskIndex.build([tmp_path])
    assert set(found) == {"alpha", "alpha_tasks", "alpha_one", "alpha_two", "beta_one", "beta_two", "gamma"}
    for name, entry in found.items():
        assert (entry.kind, entry.yaml_path, entry.tags) == (full[name].kind, full[name].yaml_path, full[name].tags)
    assert found["alpha_tasks"].tags == {"alpha_one", "alpha_two", "beta_one", "beta_two"}
    assert found["alpha_one"].yaml_path.name == "a1.yaml"  # the first in lm-eval's order wins
    assert lm_eval_entries(["alpha"], known={"alpha_one"}, root=tmp_path).keys() == found.keys() - {"alpha_one"}


# --- stand-in hub datasets in the HF datasets cache ------------------------------------------

def cache_standin(cache: Path, repo: str, config: str, rows: list[dict], split: str = "test") -> None:
    """Put `rows` where the HF datasets cache keeps `load_dataset(repo, config)` after a download,
    so that lm-eval's task loads them offline."""
    from datasets.naming import camelcase_to_snakecase
    from datasets.packaged_modules.json.json import Json

    source = cache / "_standins" / repo / f"{config}.jsonl"
    source.parent.mkdir(parents=True, exist_ok=True)
    source.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    namespace, name = repo.split("/")
    builder = Json(cache_dir=str(cache / "_build"), dataset_name=name, config_name=config, config_id=config,
                   data_files={split: str(source)}, hash="standin")
    builder.download_and_prepare(output_dir=str(cache / f"{namespace}___{camelcase_to_snakecase(name)}" / config /
                                                "0.0.0" / "standin"))


def _haerae_rows(subset: str) -> list[dict]:
    return [{"query": f"다음 질문을 읽고 정답을 고르시요.\n### 질문: {subset} 문제 {i}\n### 선택지: \n(A) 가\n(B) 나\n(C) 다"
                      f"\n(D) 라\n(E) 마\n\n### 정답:", "answer": f"({'ABCDE'[i + 1]})"} for i in range(4)]


@pytest.fixture()
def offline_cache(tmp_path, monkeypatch):
    import datasets

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-datasets")
    return tmp_path / "hf-datasets"


@pytest.fixture()
def gk_data_dir(tmp_path) -> Path:
    """A --data-dir with the pack's HAE-RAE general knowledge file: three items, the last with
    four options (the pack offers (A)-(D) for it, lm-eval's task always (A)-(E))."""
    path = tmp_path / "data" / "haerae" / "v1.0_general_knowledge.csv"
    path.parent.mkdir(parents=True)
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["question", "a", "b", "c", "d", "e", "answer", "split"])
        writer.writerow(["추석에 먹는 떡은?", "송편", "가래떡", "인절미", "백설기", "시루떡", "a", "KGK"])
        writer.writerow(["설날에 먹는 음식은?", "떡국", "냉면", "삼계탕", "팥죽", "송편", "a", "KGK"])
        writer.writerow(["한글을 만든 왕은?", "태조", "세종", "정조", "영조", "", "b", "KGK"])
    return tmp_path / "data"


def test_offline_without_cached_datasets_fails_before_a_model_loads(offline_cache, gk_data_dir, tmp_path, monkeypatch):
    import limacot.eval.harness as harness
    from limacot.eval.config import EvalConfig

    def no_model(*args, **kwargs):
        raise AssertionError("a model was loaded before the plan was checked")

    monkeypatch.setattr(harness, "build_lm", no_model)
    cache_standin(offline_cache, "HAERAE-HUB/HAE_RAE_BENCH", "history", _haerae_rows("history"))
    cfg = EvalConfig(model=str(tmp_path / "no-model"), tasks=["haerae"], data_dir=str(gk_data_dir))
    with pytest.raises(LimacotInputError) as err:
        harness.run_eval(cfg, tmp_path / "out")
    message = str(err.value)
    assert "3 of lm-eval's own tasks" in message and "HF_HUB_OFFLINE=1" in message
    for name in ("haerae_loan_word", "haerae_rare_word", "haerae_standard_nomenclature"):
        assert name in message
    assert "haerae_history" not in message and "haerae_general_knowledge" not in message  # cached / from --data-dir


def test_lm_eval_haerae_group_runs_end_to_end(offline_cache, gk_data_dir, tiny_model, tiny_tokenizer, tmp_path):
    """lm-eval's `haerae` on the tiny model: its four subsets from stand-ins in the HF datasets
    cache, general knowledge from the pack (local file, four choices where the item has four)."""
    from limacot.eval.config import EvalConfig
    from limacot.eval.harness import run_eval

    for task, entry in lm_eval_entries(HAERAE_BUILTIN).items():
        cache_standin(offline_cache, entry.cfg["dataset_path"], entry.cfg["dataset_name"], _haerae_rows(task))
    cfg = EvalConfig(tasks=["haerae"], num_fewshot=1, limit=3, data_dir=str(gk_data_dir), max_length=2048)
    run = run_eval(cfg, tmp_path / "out", model=tiny_model, tokenizer=tiny_tokenizer)
    assert set(run["results"]) == {"haerae", "haerae_general_knowledge", *HAERAE_BUILTIN}
    assert 0 <= run["results"]["haerae"]["acc,none"] <= 1 and run["limacot"]["lm_eval_tasks"] == HAERAE_BUILTIN
    assert any("not from --data-dir" in note for note in run["limacot"]["notes"])
    samples = tmp_path / "out" / "samples"
    ours = [json.loads(line) for line in (samples / "haerae_general_knowledge.jsonl").read_text().splitlines()]
    assert [len(r["choices"]) for r in ours] == [5, 5, 4]
    history = [json.loads(line) for line in (samples / "haerae_history.jsonl").read_text().splitlines()]
    assert len(history) == 3 and all(len(r["choices"]) == 5 for r in history)
    for record in history + ours:
        assert record["acc"] == float(record["pred"] == record["gold"]) and record["correct"] == bool(record["acc"])
    assert [r["gold"] for r in history] == [1, 2, 3]
    assert run["limacot"]["fast_backend"]["contexts"] > 0
