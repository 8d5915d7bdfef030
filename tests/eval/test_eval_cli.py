"""`limacot eval` end to end on a tiny random LLaMA saved as a local checkpoint: the output
files, fast == hf, paired comparison and its refusals, seeds, bad input, no network."""

from __future__ import annotations

import json
import socket

import pytest
from typer.testing import CliRunner

from limacot.cli import app

runner = CliRunner()
TASKS = "kobest_copa,kobest_sentineg,kobest_hellaswag,gsm8k"
COMMON = ["--num-fewshot", "1", "--limit", "3", "--max-gen-toks", "4"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    from conftest import build_tiny_llama, build_tiny_tokenizer

    tokenizer = build_tiny_tokenizer()
    model = build_tiny_llama(len(tokenizer))
    model.config.max_position_embeddings = 4096  # RoPE: 5-shot Korean in a byte-level vocabulary is long
    path = tmp_path_factory.mktemp("tiny-llama")
    model.save_pretrained(path, safe_serialization=True)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def two_runs(tiny_dir, shared_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    for backend, extra in (("fast", ["--fewshot-seeds", "2"]), ("hf", [])):
        result = runner.invoke(app, ["eval", "--model", str(tiny_dir), "--tasks", TASKS, "--data-dir", str(shared_data),
                                     *COMMON, *extra, "--backend", backend, "--out", str(out / backend)])
        assert result.exit_code == 0, result.output
    return out


def _samples(folder, task):
    return [json.loads(line) for line in (folder / "samples" / f"{task}.jsonl").read_text().splitlines()]


@pytest.mark.shared_data
def test_outputs_and_fast_equals_hf(two_runs):
    fast, hf = two_runs / "fast", two_runs / "hf"
    for name in ("results.json", "summary.md", "config.resolved.yaml", "samples/kobest_copa.jsonl",
                 "samples/gsm8k.jsonl", "samples/seed-1235/kobest_copa.jsonl"):
        assert (fast / name).is_file(), name
    assert not (fast / "samples" / "seed-1235" / "gsm8k.jsonl").exists()  # fixed exemplars: seed-independent
    results = json.loads((fast / "results.json").read_text())
    assert results["results"]["kobest_copa"]["acc,none"] is not None and "f1,none" in results["results"]["kobest_copa"]
    info = results["limacot"]
    assert info["seeds"] == [1234, 1235] and info["fast_backend"]["contexts"] > 0
    assert info["seed_variance"]["kobest_copa"]["acc"]["n"] == 2
    assert info["seed_variance"]["gsm8k"]["exact_match_strict"]["n"] == 1 and "gsm8k" in info["seed_independent_tasks"]
    assert set(results["results"]["gsm8k"]) >= {"exact_match_strict,none", "exact_match_flexible,none"}
    for record in _samples(fast, "kobest_hellaswag"):  # pred_norm is what lm-eval's acc_norm scored
        assert (record["pred_norm"] == record["gold"]) == bool(record["acc_norm"])
    for task in ("kobest_copa", "kobest_sentineg", "kobest_hellaswag"):
        a, b = _samples(fast, task), _samples(hf, task)
        assert [r["prompt_hash"] for r in a] == [r["prompt_hash"] for r in b]
        assert [r["acc"] for r in a] == [r["acc"] for r in b] and [r["pred"] for r in a] == [r["pred"] for r in b]
        for ra, rb in zip(a, b):
            assert max(abs(x - y) for x, y in zip(ra["loglikelihoods"], rb["loglikelihoods"])) < 1e-4
            assert ra["correct"] == (ra["pred"] == ra["gold"])
    gen = _samples(fast, "gsm8k")[0]
    assert {"generation", "prediction", "prediction_flexible", "gold", "exact_match_strict",
            "exact_match_flexible"} <= set(gen) and gen["gold"] == "18"
    assert gen["correct"] == bool(gen["exact_match_strict"])
    summary = (fast / "summary.md").read_text()
    assert "| kobest_copa | acc |" in summary and "k=2" in summary
    assert "ran once" in next(line for line in summary.splitlines() if line.startswith("| gsm8k |"))


@pytest.mark.shared_data
def test_compare_prints_the_paired_table(two_runs):
    result = runner.invoke(app, ["eval", "compare", str(two_runs / "hf"), str(two_runs / "fast"), "--json",
                                 "--resamples", "500"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    rows = {row["task"]: row for row in report["tasks"]}
    assert set(rows) == {"kobest_copa", "kobest_sentineg", "kobest_hellaswag", "gsm8k"}
    assert set(rows["kobest_hellaswag"]["metrics"]) == {"acc", "acc_norm", "f1"}
    copa = rows["kobest_copa"]
    assert copa["n"] == 3 and copa["metrics"]["acc"]["test"] == "mcnemar"
    assert {k: copa["metrics"]["acc"][k] for k in ("a_only", "b_only", "p_value")} == \
        {"a_only": 0, "b_only": 0, "p_value": 1.0}
    assert set(copa["metrics"]) == {"acc", "f1"} and copa["metrics"]["acc"]["diff"] == 0.0
    assert copa["primary"] == "f1" and copa["metrics"]["f1"]["test"] == "permutation"
    assert copa["metrics"]["f1"]["p_value"] == copa["metrics"]["f1"]["p_holm"] == 1.0  # same predictions
    assert copa["metrics"]["acc"]["p_holm"] is None and rows["gsm8k"]["primary"] == "exact_match_strict"
    assert set(rows["gsm8k"]["metrics"]) == {"exact_match_strict", "exact_match_flexible"}
    assert rows["gsm8k"]["metrics"]["exact_match_flexible"]["test"] == "mcnemar"
    table = runner.invoke(app, ["eval", "compare", str(two_runs / "hf"), str(two_runs / "fast"), "--resamples", "200"])
    assert table.exit_code == 0 and "McNemar" in table.output and "95% CI" in table.output


@pytest.mark.shared_data
def test_compare_refuses_runs_with_different_prompts(two_runs, tiny_dir, shared_data, tmp_path):
    other = tmp_path / "seed99"
    result = runner.invoke(app, ["eval", "--model", str(tiny_dir), "--tasks", "kobest_copa", "--data-dir",
                                 str(shared_data), *COMMON, "--seed", "99", "--out", str(other)])
    assert result.exit_code == 0, result.output
    refused = runner.invoke(app, ["eval", "compare", str(two_runs / "fast"), str(other)])
    assert refused.exit_code == 2
    assert "kobest_copa" in refused.output and "different prompt" in refused.output
    fewer = tmp_path / "fewer"
    runner.invoke(app, ["eval", "--model", str(tiny_dir), "--tasks", "kobest_copa", "--data-dir", str(shared_data),
                        "--num-fewshot", "1", "--limit", "2", "--out", str(fewer)])
    refused = runner.invoke(app, ["eval", "compare", str(two_runs / "fast"), str(fewer)])
    assert refused.exit_code == 2 and "different docs" in refused.output


@pytest.mark.shared_data
def test_unknown_task_lists_close_names(tiny_dir, shared_data, tmp_path):
    result = runner.invoke(app, ["eval", "--model", str(tiny_dir), "--tasks", "kobest_cop", "--data-dir",
                                 str(shared_data), "--out", str(tmp_path / "x")])
    assert result.exit_code == 2
    assert "unknown task or group 'kobest_cop'" in result.output and "kobest_copa" in result.output
    assert "Traceback" not in result.output


def test_missing_data_file_names_path_and_format(tiny_dir, tmp_path):
    data = tmp_path / "data"
    (data / "kobest" / "copa").mkdir(parents=True)
    (data / "kobest" / "copa" / "train.tsv").write_text("ID\tsentence\tquestion\t1\t2\tAnswer\n", encoding="utf-8")
    result = runner.invoke(app, ["eval", "--model", str(tiny_dir), "--tasks", "kobest_copa", "--data-dir", str(data),
                                 "--out", str(tmp_path / "x")])
    assert result.exit_code == 2
    flat = " ".join(result.output.split())
    assert "kobest/copa/test.tsv" in flat and "KoBEST TSV" in flat


@pytest.mark.shared_data
def test_groups_skip_subjects_without_local_data(tiny_dir, shared_data, tmp_path):
    from limacot.eval.catalog import plan_tasks, task_manager

    manager = task_manager(shared_data)
    plan = plan_tasks(manager, ["kmmlu", "haerae_gk_rc"], shared_data)
    assert plan.leaves == ["kmmlu_criminal_law", "haerae_general_knowledge", "haerae_reading_comprehension"]
    assert len(plan.skipped) == 44 and "kmmlu/Accounting-test.json" in plan.skipped["kmmlu_accounting"]
    assert manager.task_index["kmmlu"].cfg["task"] == ["kmmlu_criminal_law"]
    assert any("first 5 test rows" in note for note in plan.notes)
    from limacot.errors import LimacotInputError

    with pytest.raises(LimacotInputError, match="mmlu_anatomy"):
        plan_tasks(task_manager(shared_data), ["mmlu_anatomy"], shared_data)  # named explicitly: no skipping
    with pytest.raises(LimacotInputError, match="named twice"):
        plan_tasks(task_manager(shared_data), ["kobest", "kobest_copa"], shared_data)


@pytest.mark.shared_data
def test_no_network_with_data_dir(tiny_model, tiny_tokenizer, shared_data, tmp_path, monkeypatch):
    from limacot.eval.config import EvalConfig
    from limacot.eval.harness import run_eval

    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    cfg = EvalConfig(tasks=["kobest_wic", "haerae_reading_comprehension"], num_fewshot=1, limit=2,
                     data_dir=str(shared_data), max_length=4096)
    run = run_eval(cfg, tmp_path / "out", model=tiny_model, tokenizer=tiny_tokenizer)
    assert set(run["results"]) == {"kobest_wic", "haerae_reading_comprehension"}


def test_config_file_and_flag_overrides(tmp_path):
    from limacot.errors import LimacotInputError
    from limacot.eval.config import EvalConfig
    from limacot.io.yaml_config import load_config

    (tmp_path / "eval.yaml").write_text("model: embedded\ntasks: kobest, haerae_gk_rc\ndata_dir: data\nfewshot_seeds: 3\n")
    cfg = load_config(tmp_path / "eval.yaml", EvalConfig, {"limit": 5, "tasks": None})
    assert cfg.tasks == ["kobest", "haerae_gk_rc"] and cfg.limit == 5 and cfg.fewshot_seeds == 3
    assert cfg.data_dir == str((tmp_path / "data").resolve()) and cfg.seeds() == [1234, 1235, 1236]
    flags = load_config(tmp_path / "eval.yaml", EvalConfig, {"data_dir": "other", "tasks": "kobest_copa"})
    assert flags.data_dir == "other" and flags.tasks == ["kobest_copa"]  # a flag's path is the shell's, as given
    (tmp_path / "bad.yaml").write_text("tasks: [kobest]\nnum_shots: 5\n")
    with pytest.raises(LimacotInputError, match="bad.yaml: num_shots: unknown key"):
        load_config(tmp_path / "bad.yaml", EvalConfig, {})
    with pytest.raises(LimacotInputError, match=r"^--limit: expected greater than or equal to 1 \(got 0\)$"):
        load_config(tmp_path / "eval.yaml", EvalConfig, {"limit": 0})
    (tmp_path / "no_tasks.yaml").write_text("limit: 2\n")
    with pytest.raises(LimacotInputError, match=r"no_tasks.yaml: tasks: required key missing \(or give --tasks\)"):
        load_config(tmp_path / "no_tasks.yaml", EvalConfig, {"tasks": None})


def test_shipped_eval_configs_load():
    from pathlib import Path

    from limacot.eval.catalog import leaves_of, task_manager
    from limacot.eval.config import EvalConfig
    from limacot.io.yaml_config import load_config

    configs = sorted((Path(__file__).resolve().parents[2] / "configs" / "eval").glob("*.yaml"))
    assert {p.name for p in configs} >= {"seed-study.yaml", "english.yaml", "kobest-demo.yaml"}
    manager = task_manager(None)
    for path in configs:
        cfg = load_config(path, EvalConfig)
        assert cfg.num_fewshot == 5 and cfg.data_dir.endswith(str(Path("shared") / "data"))
        for name in cfg.tasks:
            assert leaves_of(manager, name)


MC_TASKS = ["kobest_boolq", "kobest_wic", "kmmlu_criminal_law", "haerae_general_knowledge",
            "haerae_reading_comprehension", "mmlu_marketing", "arc_challenge"]


@pytest.mark.shared_data
def test_fast_equals_hf_on_every_multiple_choice_task(tiny_model, tiny_tokenizer, shared_data, tmp_path):
    """The tasks the CLI runs above plus these: identical metrics and per-doc predictions."""
    from limacot.eval.config import EvalConfig
    from limacot.eval.harness import run_eval

    runs = {}
    for backend in ("fast", "hf"):
        cfg = EvalConfig(tasks=MC_TASKS, num_fewshot=2, limit=2, data_dir=str(shared_data), max_length=8192,
                         backend=backend)
        runs[backend] = run_eval(cfg, tmp_path / backend, model=tiny_model, tokenizer=tiny_tokenizer)
    for task in MC_TASKS:
        fast, hf = runs["fast"]["results"][task], runs["hf"]["results"][task]
        assert {k: v for k, v in fast.items() if k != "alias"} == {k: v for k, v in hf.items() if k != "alias"}
        a, b = _samples(tmp_path / "fast", task), _samples(tmp_path / "hf", task)
        assert [(r["pred"], r["pred_norm"]) for r in a] == [(r["pred"], r["pred_norm"]) for r in b]
        for ra, rb in zip(a, b):
            assert max(abs(x - y) for x, y in zip(ra["loglikelihoods"], rb["loglikelihoods"])) < 1e-4
