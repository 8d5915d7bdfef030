"""`limacot judge`: registered on the main app by `register`."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from limacot.io.cli_common import (ATTN_FLAG, DEVICE_FLAG, DTYPE_FLAG, check_out_dir, compute_flags, handled_errors,
                                out_console, print_json, progress_bars)
from limacot.io.yaml_config import validate_config
from limacot.judge.clients import HttpOptions
from limacot.judge.pairwise import JudgeConfig, dry_run, judge_pairwise, results_table
from limacot.models.compute import ComputeOptions


def register(app: typer.Typer) -> None:
    app.command("judge")(judge)


def judge(
    a: Path = typer.Option(..., "--a", help="The reference run A (a `limacot generate` folder or its .jsonl)."),
    b: List[Path] = typer.Option(..., "--b", help="A run to compare with A; repeat --b for several runs."),
    judge_spec: str = typer.Option(..., "--judge", help="openai:MODEL or openai:MODEL@BASE_URL (any OpenAI-compatible "
                                   "server), or a local model spec (embedded | dir | hf:org/name)."),
    out: Path = typer.Option(..., "--out", help="Output folder (summary.json, records.jsonl, table.md, PNG, cache)."),
    concurrency: int = typer.Option(4, "--concurrency", min=1, help="Requests in flight (API) or batch size "
                                    "(local judge)."),
    lang: str = typer.Option("auto", "--lang", help="Instruction language: auto (ko for Hangul prompts) | ko | en."),
    api_key_env: str = typer.Option("OPENAI_API_KEY", "--api-key-env", help="Environment variable holding the key."),
    max_tokens: int = typer.Option(256, "--max-tokens", min=1, help="Longest judge reply, in tokens (API judges "
                                   "and --json-mode off)."),
    timeout: float = typer.Option(120.0, "--timeout", help="Seconds to wait for one API response."),
    max_retries: int = typer.Option(5, "--max-retries", min=0, help="Retries per request on 429/5xx/timeouts/"
                                    "dropped connections."),
    max_total_wait: float = typer.Option(600.0, "--max-total-wait", min=0, help="Seconds one API request may take "
                                         "in all, retries and backoff included; no retry starts past it."),
    json_mode: str = typer.Option("auto", "--json-mode", help="auto | on: API judges are asked for JSON, local "
                                  "judges choose 1/2/tie by likelihood; off: free text, read by the parser."),
    min_coverage: float = typer.Option(1.0, "--min-coverage", min=0.0, max=1.0, help="Share of A's prompts each "
                                       "B run must answer (0..1); a B run below it is refused (exit 2). Below 1, "
                                       "only the shared prompts are judged and each run's coverage is reported."),
    resamples: int = typer.Option(2000, "--bootstrap", min=1, help="Bootstrap resamples for the 95% CI."),
    seed: int = typer.Option(0, "--seed", help="Bootstrap seed."),
    cache: Optional[Path] = typer.Option(None, "--cache", help="Judge cache file (default OUT/judge-cache.jsonl)."),
    dry_run_: bool = typer.Option(False, "--dry-run", help="Count the calls and tokens; call nothing."),
    token_counter: Optional[str] = typer.Option(None, "--token-counter", help="Tokenizer spec for --dry-run counts."),
    device: Optional[str] = DEVICE_FLAG,
    dtype: Optional[str] = DTYPE_FLAG,
    attn: Optional[str] = ATTN_FLAG,
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Pairwise preference (LIMA protocol): every pair judged in both orders; win/tie/loss and
    "B equal or better than A" with a 95% bootstrap CI, per B run."""
    with handled_errors():
        check_out_dir(out)
        http = HttpOptions(api_key_env=api_key_env, timeout=timeout, max_retries=max_retries, json_mode=json_mode,
                           max_tokens=max_tokens, max_total_wait=max_total_wait)
        compute = validate_config(compute_flags(device, dtype, attn), ComputeOptions, origin="flags")
        config = JudgeConfig(judge=judge_spec, lang=lang, concurrency=concurrency, http=http, resamples=resamples,
                             seed=seed, cache=cache, compute=compute, min_coverage=min_coverage)
        if dry_run_:
            estimate = dry_run(a, b, config, out=out, token_counter=token_counter)
        else:
            with progress_bars(show=not as_json) as update:
                summary = judge_pairwise(a, b, out, config,
                                         progress=lambda done, total: update("judge requests", done, total))
    if dry_run_:
        if as_json:
            print_json(estimate)
        else:
            _show_estimate(estimate)
    elif as_json:
        print_json(summary)
    else:
        _show_summary(summary, out)


def _show_summary(summary: dict, out: Path) -> None:
    out_console.print(results_table(summary), highlight=False, markup=False, soft_wrap=True)
    calls = summary["calls"]
    out_console.print(f"judge calls: {calls['made']} made, {calls['from_cache']} from the cache "
                      f"({calls['requests']} distinct requests); results in {out}",
                      highlight=False, markup=False, soft_wrap=True)


def _show_estimate(estimate: dict) -> None:
    note = " (estimate: pass --token-counter with your judge's tokenizer)" if estimate["token_counter_is_estimate"] \
        else ""
    out_console.print(
        f"{estimate['pairs']} pairs x 2 orders = {estimate['requests']} requests, {estimate['cached']} cached: "
        f"{estimate['calls_to_make']} calls to make\n"
        f"input tokens: {estimate['input_tokens']:,} for those calls "
        f"(mean {estimate['mean_input_tokens_per_call']:,} per call; counted with {estimate['token_counter']}){note}\n"
        f"output tokens: at most {estimate['max_output_tokens']:,} (calls x --max-tokens)", highlight=False,
        markup=False)
