"""`limacot generate` and `limacot eval` under `accelerate launch --num_processes 2` (gloo, CPU):
one merged output, byte-identical to a one-process run, and resume across a killed
multi-process run. These run the real CLI in subprocesses (a few seconds each)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EVAL_DATA = REPO / "examples" / "eval_data"
pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def limacot(*args: str, processes: int = 1, cwd: Path) -> subprocess.CompletedProcess:
    """The real CLI, in one process or under `accelerate launch` with `processes` processes."""
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(processes),
              "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
              "--main_process_port", str(free_port()), "-m", "limacot"]
    command = (launch if processes > 1 else [sys.executable, "-m", "limacot"]) + list(args)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-4000:]
    return done


@pytest.fixture(scope="module")
def chat_dir(tmp_path_factory):
    """The tiny random LLaMA with a chat template, saved as a local checkpoint."""
    from conftest import build_tiny_llama, build_tiny_tokenizer

    from limacot.data.templates import get_template, prepare_tokenizer

    tokenizer = build_tiny_tokenizer()
    prepare_tokenizer(tokenizer, "chatml")
    tokenizer.chat_template = get_template("chatml").jinja
    model = build_tiny_llama(len(tokenizer))
    model.config.max_position_embeddings = 4096
    path = tmp_path_factory.mktemp("tiny-chat")
    model.save_pretrained(path, safe_serialization=True)
    tokenizer.save_pretrained(path)
    return path


def write_prompts(path: Path, n: int) -> Path:
    texts = ["What is the capital of France?", "민수는 사과 3개를 가지고 있었습니다.", "Hello world", "So the answer is"]
    path.write_text("".join(json.dumps({"prompt": f"{texts[i % 4]} ({i})"}, ensure_ascii=False) + "\n"
                            for i in range(n)), encoding="utf-8")
    return path


def generate_args(model: Path, prompts: Path, out: Path) -> list[str]:
    return ["generate", "--model", str(model), "--prompts", str(prompts), "--out", str(out), "--max-new-tokens", "8",
            "--batch-size", "2", "--seed", "5", "--device", "cpu"]


def test_generate_two_processes_writes_the_one_process_bytes(chat_dir, tmp_path):
    prompts = write_prompts(tmp_path / "prompts.jsonl", 7)
    limacot(*generate_args(chat_dir, prompts, tmp_path / "one"), cwd=tmp_path)
    limacot(*generate_args(chat_dir, prompts, tmp_path / "two"), processes=2, cwd=tmp_path)
    one = (tmp_path / "one" / "generations.jsonl").read_bytes()
    assert one.count(b"\n") == 7
    assert (tmp_path / "two" / "generations.jsonl").read_bytes() == one
    assert not (tmp_path / "two" / "parts").exists()  # the per-process journals were merged and removed


def test_resume_after_a_killed_two_process_run(chat_dir, tmp_path):
    """A killed 2-process run leaves settings.json and per-process journals (one with a torn
    tail); --resume keeps those answers (marked here, so a regenerated one would show) and
    answers only the rest, in prompt order."""
    prompts = write_prompts(tmp_path / "prompts.jsonl", 6)
    limacot(*generate_args(chat_dir, prompts, tmp_path / "one"), cwd=tmp_path)
    rows = [json.loads(line) for line in (tmp_path / "one" / "generations.jsonl").read_text().splitlines()]
    killed = tmp_path / "killed"
    (killed / "parts").mkdir(parents=True)
    (killed / "settings.json").write_text((tmp_path / "one" / "settings.json").read_text())
    (killed / "generations.jsonl").write_text("")
    kept = [dict(rows[0], answer="kept-0"), dict(rows[2], answer="kept-2")]
    (killed / "parts" / "rank-0.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in kept)
                                                   + '{"id": "torn", "ans')
    (killed / "parts" / "rank-1.jsonl").write_text(json.dumps(dict(rows[1], answer="kept-1")) + "\n")
    limacot(*generate_args(chat_dir, prompts, killed), "--resume", processes=2, cwd=tmp_path)
    resumed = [json.loads(line) for line in (killed / "generations.jsonl").read_text().splitlines()]
    assert [r["answer"] for r in resumed[:3]] == ["kept-0", "kept-1", "kept-2"]
    assert resumed[3:] == rows[3:] and not (killed / "parts").exists()


def eval_args(model: Path, out: Path, backend: str) -> list[str]:
    return ["eval", "--model", str(model), "--tasks", "kobest_copa,kobest_sentineg", "--data-dir", str(EVAL_DATA),
            "--num-fewshot", "2", "--limit", "5", "--backend", backend, "--device", "cpu", "--out", str(out)]


@pytest.mark.parametrize("backend", ["fast", "hf"])
def test_eval_two_processes_score_like_one(chat_dir, tmp_path, backend):
    limacot(*eval_args(chat_dir, tmp_path / "one", backend), cwd=tmp_path)
    limacot(*eval_args(chat_dir, tmp_path / "two", backend), processes=2, cwd=tmp_path)
    for task in ("kobest_copa", "kobest_sentineg"):
        one = (tmp_path / "one" / "samples" / f"{task}.jsonl").read_bytes()
        assert one.count(b"\n") == 5
        assert (tmp_path / "two" / "samples" / f"{task}.jsonl").read_bytes() == one, task
    one, two = (json.loads((tmp_path / run / "results.json").read_text()) for run in ("one", "two"))
    assert one["results"] == two["results"]
    assert one["limacot"]["requests_per_process"] is None
    shares = two["limacot"]["requests_per_process"]  # both processes scored a share
    assert len(shares) == 2 and min(shares) > 0
