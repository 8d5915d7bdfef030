"""Hostile input through the real CLI: every case is bad input, so every case must exit 2 with
one message that names the file (and the key or flag), never a traceback (exit 1 is for failures
that are not the user's input). Also: text from the user keeps its [brackets] (no rich markup).

In-process through typer's CliRunner (milliseconds each); one case runs the console entry point
as a subprocess, offline with an empty Hugging Face cache."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from conftest import REPO, write_study
from limacot.cli import app

runner = CliRunner()
GOOD = {"conversations": ["What is two plus two?", "It is four."], "source": "nlp"}
EVAL_DATA = str(REPO / "examples" / "eval_data")


@pytest.fixture()
def files(tmp_path) -> Path:
    """A folder of hostile inputs beside one good data file and one good data config."""
    (tmp_path / "good.jsonl").write_text(json.dumps(GOOD) + "\n", encoding="utf-8")
    (tmp_path / "empty.jsonl").write_text("", encoding="utf-8")
    (tmp_path / "bad.jsonl").write_text('{"conversations": 3}\n{"text": "no turns"}\n', encoding="utf-8")
    (tmp_path / "prompts.jsonl").write_text('{"prompt": "hi"}\n', encoding="utf-8")
    (tmp_path / "binary.yaml").write_bytes(b"\xff\xfe\x00\x01\x02 not text")
    (tmp_path / "folder").mkdir()
    (tmp_path / "a_file").write_text("I am a file, not a folder\n", encoding="utf-8")
    (tmp_path / "notes.gguf").write_text("a text file with a model's suffix\n", encoding="utf-8")
    data_config(tmp_path, "data.yaml")
    return tmp_path


def data_config(folder: Path, name: str, **changes) -> str:
    raw = {"sources": {"good": {"path": "good.jsonl"}}, "variants": {"v": {"mix": {"good": "all"}}}, **changes}
    (folder / name).write_text(yaml.safe_dump(raw), encoding="utf-8")
    return name


def invoke(folder: Path, args: list[str]):
    """Run `limacot ARGS` in `folder` (relative paths resolve there)."""
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        return runner.invoke(app, args)
    finally:
        os.chdir(cwd)


def assert_input_error(result, *named: str) -> None:
    text = " ".join(result.output.split())  # the console wraps long messages
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and text.startswith("error:"), result.output
    for part in named:
        assert part in text, (part, result.output)


# (case, how to make the data config (or None for data.yaml), extra args, what the message names)
DATA_BUILD = [
    ("size_zero", {"sizes": [0]}, [], ["size_zero.yaml", "sizes: size 0"]),
    ("size_twice", {"sizes": [1, 1]}, [], ["size_twice.yaml", "sizes: size 1 is given twice"]),
    ("no_variants", {"variants": {}}, [], ["no_variants.yaml", "variants: expected at least one"]),
    ("empty_source", {"sources": {"good": {"path": "empty.jsonl"}}}, [],
     ["empty_source.yaml", "sources.good:", "empty.jsonl holds no records"]),
    ("missing_source", {"sources": {"good": {"path": "gone.jsonl"}}}, [],
     ["missing_source.yaml", "sources.good.path: no such file", "gone.jsonl"]),
    ("folder_source", {"sources": {"good": {"path": "folder"}}}, [],
     ["folder_source.yaml", "sources.good.path:", "is a folder"]),
    ("missing_eval_file", {"decontamination": {"eval_files": {"copa": "copa.jsonl"}}}, [],
     ["missing_eval_file.yaml", "decontamination.eval_files.copa: no such file"]),
    ("skip_bad_drops_all", {"sources": {"good": {"path": "bad.jsonl", "format": "lima"}}}, ["--skip-bad"],
     ["skip_bad_drops_all.yaml", "sources.good: every record of", "bad.jsonl was malformed"]),
    ("unknown_key", {"sizess": [1]}, [], ["unknown_key.yaml", "sizess: unknown key; valid keys: sources, variants"]),
]


@pytest.mark.parametrize("case, changes, args, named", DATA_BUILD, ids=[c[0] for c in DATA_BUILD])
def test_data_build_refuses_bad_configs(files, case, changes, args, named):
    config = data_config(files, f"{case}.yaml", **changes)
    result = invoke(files, ["data", "build", "--config", config, "--out", "out", *args])
    assert_input_error(result, *named)
    assert not list(files.rglob("train.jsonl"))


# Unreadable configs and an --out that is a file, for every command that takes them.
CONFIG_COMMANDS = {
    "data build": ["data", "build", "--out", "o"],
    "train": ["train", "--out", "o"],
    "eval": ["eval", "--out", "o"],
    "generate": ["generate", "--out", "o"],
    "judge": ["judge", "--a", "prompts.jsonl", "--b", "prompts.jsonl", "--out", "o"],
    "run": ["run", "--out", "o"],
}


@pytest.mark.parametrize("command", CONFIG_COMMANDS)
@pytest.mark.parametrize("config, named", [("binary.yaml", "binary.yaml: not a UTF-8 text file"),
                                           ("folder", "folder: is a folder; expected a YAML config file"),
                                           ("missing.yaml", "missing.yaml: config file not found")])
def test_unreadable_config_files(files, command, config, named):
    assert_input_error(invoke(files, [*CONFIG_COMMANDS[command], "--config", config]), named)


OUT_IS_A_FILE = {
    "data build": ["data", "build", "--config", "data.yaml"],
    "train": ["train", "--data", "good.jsonl", "--max-steps", "1"],
    "eval": ["eval", "--tasks", "kobest_copa", "--data-dir", EVAL_DATA, "--limit", "1"],
    "generate": ["generate", "--prompts", "prompts.jsonl"],
    "judge": ["judge", "--a", "prompts.jsonl", "--b", "prompts.jsonl", "--judge", "embedded"],
    "run": ["run", "--config", "data.yaml"],
    "report": ["report", "folder"],
}


@pytest.mark.parametrize("command", OUT_IS_A_FILE)
@pytest.mark.parametrize("out, named", [("a_file", "--out a_file: is an existing file"),
                                        ("a_file/sub", "--out a_file/sub: is inside a_file, which is an existing file")])
def test_out_that_is_a_file_is_refused_before_any_work(files, command, out, named):
    assert_input_error(invoke(files, [*OUT_IS_A_FILE[command], "--out", out]), named, "expected a folder")


MODEL_COMMANDS = {
    "data inspect --tokenizer": ["data", "inspect", "good.jsonl", "--tokenizer", "notes.gguf"],
    "data render --tokenizer": ["data", "render", "good.jsonl", "--tokenizer", "notes.gguf"],
    "train": ["train", "--model", "notes.gguf", "--data", "good.jsonl", "--out", "o", "--max-steps", "1"],
    "eval": ["eval", "--model", "notes.gguf", "--tasks", "kobest_copa", "--data-dir", EVAL_DATA, "--limit", "1",
             "--out", "o"],
    "generate": ["generate", "--model", "notes.gguf", "--prompts", "prompts.jsonl", "--out", "o"],
}


@pytest.mark.parametrize("command", MODEL_COMMANDS)
def test_a_text_file_named_gguf_is_no_model(files, command):
    assert_input_error(invoke(files, MODEL_COMMANDS[command]), "notes.gguf': not a GGUF file")


def test_a_folder_is_no_data_file(files):
    assert_input_error(invoke(files, ["data", "inspect", "folder"]), "folder: is a folder, not a data file")
    assert_input_error(invoke(files, ["generate", "--prompts", "folder", "--out", "o"]), "folder: is a folder")


def test_eval_config_errors_speak_in_keys(files):
    (files / "eval.yaml").write_text("tasks: [kobest_copa]\nnum_fewshots: 2\nlimit: none\n", encoding="utf-8")
    result = invoke(files, ["eval", "--config", "eval.yaml", "--out", "o"])
    assert_input_error(result, "eval.yaml: ", "num_fewshots: unknown key; valid keys:", "num_fewshot,",
                       "limit: expected a valid integer, unable to parse string as an integer (got 'none')")
    assert "_Partial" not in result.output and "EvalConfig" not in result.output


@pytest.fixture()
def study(tiny_study) -> Path:
    return tiny_study


@pytest.mark.parametrize("changes, named", [
    ({"variants": ["base", "lima", "lima", "lima+cot"]}, "variants: variant 'lima' is given twice"),
    ({"sizes": [4, 4]}, "sizes: size 4 is given twice"),
    ({"train": {"preset": "train.yaml", "overrides": {"epoch": 2}}},
     "train.overrides: epoch: not a `limacot train` setting; valid keys:"),
], ids=["variant_twice", "size_twice", "unknown_override"])
def test_run_refuses_bad_study_configs(study, changes, named):
    write_study(study, "bad.yaml", **changes)
    result = invoke(study, ["run", "--config", "bad.yaml", "--out", "out", "--dry-run"])
    assert_input_error(result, "bad.yaml: " + named)
    assert not (study / "out").exists()


def test_generated_answers_keep_their_brackets(study):
    """Prompts, answers and paths that look like rich markup are printed as they are."""
    (study / "[red]prompts.jsonl").write_text('{"prompt": "Is [bold]this[/bold] bold?"}\n', encoding="utf-8")
    result = invoke(study, ["generate", "--model", "tiny", "--prompts", "[red]prompts.jsonl", "--out", "[red]gen",
                            "--max-new-tokens", "2", "--greedy"])
    assert result.exit_code == 0, result.output
    assert "Is [bold]this[/bold] bold?" in result.output and "[red]gen" in result.output


def test_data_build_and_inspect_keep_brackets(files):
    (files / "[red]good.jsonl").write_bytes((files / "good.jsonl").read_bytes())
    data_config(files, "[red]data.yaml", sources={"[b]lima": {"path": "[red]good.jsonl"}},
                variants={"[i]v": {"mix": {"[b]lima": "all"}}})
    result = invoke(files, ["data", "build", "--config", "[red]data.yaml", "--out", "[red]out"])
    assert result.exit_code == 0, result.output
    assert "read [b]lima: 1 records" in result.output and "[i]v/all/train.jsonl: 1 records" in result.output
    assert "under [red]out" in " ".join(result.output.split())

    (files / "[red]mixed.jsonl").write_text(json.dumps({**GOOD, "source": "[bold]src"}) + "\n{}\n", encoding="utf-8")
    result = invoke(files, ["data", "inspect", "[red]mixed.jsonl", "--skip-bad", "--format", "lima"])
    assert result.exit_code == 0 and "[red]mixed.jsonl: 1 records" in result.output
    assert "[bold]src" in result.output and "[red]mixed.jsonl:line 2" in result.output


def test_run_plan_tables_keep_brackets(study):
    write_study(study, "marked.yaml", backbones={"[red]tiny": "tiny"})
    result = invoke(study, ["run", "--config", "marked.yaml", "--out", "o", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "[red]tiny" in result.output  # in the plan table's job labels (a cell may wrap after it)


def test_offline_hub_model_fails_at_once_in_a_fresh_process(tmp_path):
    """The real entry point, offline with an empty Hugging Face cache: one clear message, exit 2,
    no retries and no traceback (transformers is never asked)."""
    (tmp_path / "prompts.jsonl").write_text('{"prompt": "hi"}\n', encoding="utf-8")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"), "LIMACOT_HOME": str(tmp_path)}
    env.pop("HF_HUB_CACHE", None)
    done = subprocess.run([sys.executable, "-m", "limacot", "generate", "--model", "hf:limacot-test/absent",
                           "--prompts", str(tmp_path / "prompts.jsonl"), "--out", str(tmp_path / "o")],
                          capture_output=True, text=True, env=env, timeout=120)
    message = " ".join(done.stderr.split())
    assert done.returncode == 2, done.stderr
    assert "could not find hub model 'limacot-test/absent' locally, and offline mode (HF_HUB_OFFLINE=1)" in message
    assert f"not in the Hugging Face cache {tmp_path / 'hf' / 'hub'}" in message
    assert "Traceback" not in done.stderr and "Retrying" not in done.stderr


def test_eval_progress_keeps_the_seed_label():
    """With --fewshot-seeds K each bar is labelled '[seed N] ...', which rich took for a style tag."""
    from rich.console import Console

    from limacot.eval.views import request_labels
    from limacot.io.cli_common import progress_bars

    console = Console(record=True, width=120, force_terminal=False)
    with progress_bars(console=console) as update:
        report = request_labels(update)
        report("seed 1235", 0, 2)
        report("loglikelihood", 1, 4)
    assert "[seed 1235] loglikelihood requests" in console.export_text()


def test_train_inputs_are_checked_before_training(files):
    """dev_prompts were read after the last epoch: a typo cost the whole run."""
    (files / "train.yaml").write_text("data: good.jsonl\ndev_prompts: dev-typo.jsonl\ndev_data: folder\n",
                                      encoding="utf-8")
    result = invoke(files, ["train", "--config", "train.yaml", "--out", "o", "--model", "notes.gguf"])
    assert_input_error(result, "train.yaml: dev_prompts: no such file", "dev-typo.jsonl",
                       "train.yaml: dev_data:", "folder is a folder, expected a file")
    result = invoke(files, ["train", "--data", "gone.jsonl", "--out", "o"])
    assert_input_error(result, "--data: no such file", "gone.jsonl")


def test_a_prompts_file_without_prompts_is_refused(files):
    """It wrote an empty generations.jsonl (exit 0) that judging then could not use."""
    result = invoke(files, ["generate", "--prompts", "empty.jsonl", "--out", "o"])
    assert_input_error(result, "empty.jsonl: no prompts in it; expected at least one row")
    assert not (files / "o" / "generations.jsonl").exists()


def test_judge_estimate_keeps_the_counter_name(study):
    import shutil

    shutil.copytree(study / "tiny", study / "[red]tok")
    row = {"id": "1", "prompt": "Hello?", "answer": "Hi."}
    for name in ("a", "b"):
        (study / f"{name}.jsonl").write_text(json.dumps(row) + "\n", encoding="utf-8")
    result = invoke(study, ["judge", "--a", "a.jsonl", "--b", "b.jsonl", "--judge", "openai:gpt-4o", "--out", "j",
                            "--dry-run", "--token-counter", "[red]tok"])
    assert result.exit_code == 0, result.output
    assert "counted with [red]tok" in " ".join(result.output.split())


def test_a_broken_results_store_is_an_input_error(study):
    """A study folder's results.sqlite that is no database (`run`, `run --status`)."""
    (study / "out").mkdir()
    (study / "out" / "results.sqlite").write_text("not a database\n", encoding="utf-8")
    for extra in (["--status"], []):
        result = invoke(study, ["run", "--config", "study.yaml", "--out", "out", *extra])
        assert_input_error(result, "out/results.sqlite: not a readable results store")
    assert not (study / "out" / "stages").exists()  # refused before any job ran


def test_a_broken_eval_run_is_an_input_error(files):
    """`eval compare` reads two eval output folders; a broken JSON file in one names file and line."""
    study = files
    run = study / "eval-run"
    (run / "samples").mkdir(parents=True)
    (run / "results.json").write_text('{"results": {}}', encoding="utf-8")
    (run / "samples" / "kobest_copa.jsonl").write_text('{"doc_id": 0}\n{"doc_id": 1,\n', encoding="utf-8")
    assert_input_error(invoke(study, ["eval", "compare", "eval-run", "eval-run"]),
                       "eval-run/samples/kobest_copa.jsonl:line 2: not valid JSON")
    (run / "results.json").write_text("{broken", encoding="utf-8")
    assert_input_error(invoke(study, ["eval", "compare", "eval-run", "eval-run"]),
                       "eval-run/results.json: not valid JSON")
