"""The fast backend on the embedded SmolLM2-135M: the same loglikelihoods and accuracy as
lm-eval's hf backend on real KoBEST docs (kept short: COPA and SentiNeg, 1-shot, 2 docs)."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from limacot.cli import app

runner = CliRunner()


@pytest.mark.embedded
@pytest.mark.shared_data
def test_embedded_fast_equals_hf_on_kobest(shared_data, tmp_path):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for backend in ("fast", "hf"):
            result = runner.invoke(app, ["eval", "--model", "embedded", "--tasks", "kobest_copa,kobest_sentineg",
                                         "--num-fewshot", "1", "--limit", "2", "--data-dir", str(shared_data),
                                         "--backend", backend, "--out", str(tmp_path / backend), "--json"])
            assert result.exit_code == 0, result.output
    finally:
        torch.set_num_threads(threads)
    for task in ("kobest_copa", "kobest_sentineg"):
        fast, hf = ([json.loads(line) for line in (tmp_path / b / "samples" / f"{task}.jsonl").read_text().splitlines()]
                    for b in ("fast", "hf"))
        assert [r["prompt_hash"] for r in fast] == [r["prompt_hash"] for r in hf]
        for a, b in zip(fast, hf):
            assert max(abs(x - y) for x, y in zip(a["loglikelihoods"], b["loglikelihoods"])) < 1e-4
            assert (a["pred"], a["pred_norm"], a.get("acc_norm")) == (b["pred"], b["pred_norm"], b.get("acc_norm"))
    scores = {b: json.loads((tmp_path / b / "results.json").read_text())["results"] for b in ("fast", "hf")}
    for task in ("kobest_copa", "kobest_sentineg"):
        for metric in ("acc,none", "f1,none"):
            assert scores["fast"][task][metric] == scores["hf"][task][metric]
