"""`limacot judge` and its subcommands (`limacot judge grade|export|import`): registered on the main app by
`register`. `limacot judge` itself is the group's callback, run when no subcommand is named."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from limacot.errors import LimacotInputError
from limacot.io.cli_common import (ATTN_FLAG, DEVICE_FLAG, DTYPE_FLAG, check_out_dir, compute_flags, config_flag,
                                   handled_errors, out_console, print_json, progress_bars)
from limacot.io.yaml_config import load_config
from limacot.judge.absolute import GradeConfig, grade_runs, grades_table
from limacot.judge.agreement import summary_table
from limacot.judge.annotation import EXCEL_CELL_LIMIT, export_sheets, import_sheets
from limacot.judge.config import RESAMPLES, JudgeConfig
from limacot.judge.pairwise import dry_run, judge_pairwise, results_table
from limacot.stats.bootstrap import BOOTSTRAP_SEED


judge_app = typer.Typer(invoke_without_command=True, no_args_is_help=False,
                        help="Pairwise preference (LIMA protocol), and blinded sheets for human judges.")


def register(app: typer.Typer) -> None:
    app.add_typer(judge_app, name="judge")


@judge_app.callback()
def judge(
    ctx: typer.Context,
    a: Optional[Path] = typer.Option(None, "--a", help="The reference run A (a `limacot generate` folder or its "
                                     ".jsonl). Required."),
    b: Optional[List[Path]] = typer.Option(None, "--b", help="A run to compare with A; repeat --b for several runs. "
                                           "Required."),
    judge_spec: Optional[str] = config_flag(JudgeConfig, "judge", help=f"{JudgeConfig.model_fields['judge'].description}"
                                            ". Required (here or in the --config file)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Output folder (summary.json, records.jsonl, table.md, PNG, "
                                       "cache). Required."),
    config: Optional[Path] = typer.Option(None, "--config", help="Judge YAML (judge, protocol, HTTP and compute "
                                          "settings); flags override its keys."),
    concurrency: Optional[int] = config_flag(JudgeConfig, "concurrency"),
    lang: Optional[str] = config_flag(JudgeConfig, "lang"),
    api_key_env: Optional[str] = config_flag(JudgeConfig, "api_key_env"),
    max_tokens: Optional[int] = config_flag(JudgeConfig, "max_tokens"),
    timeout: Optional[float] = config_flag(JudgeConfig, "timeout"),
    max_retries: Optional[int] = config_flag(JudgeConfig, "max_retries"),
    max_total_wait: Optional[float] = config_flag(JudgeConfig, "max_total_wait"),
    json_mode: Optional[str] = config_flag(JudgeConfig, "json_mode"),
    min_coverage: Optional[float] = config_flag(JudgeConfig, "min_coverage"),
    resamples: Optional[int] = config_flag(JudgeConfig, "resamples"),
    seed: Optional[int] = config_flag(JudgeConfig, "seed"),
    cache: Optional[Path] = config_flag(JudgeConfig, "cache"),
    dry_run_: bool = typer.Option(False, "--dry-run", help="Count the calls and tokens; call nothing."),
    token_counter: Optional[str] = typer.Option(None, "--token-counter", help="Tokenizer spec for --dry-run counts."),
    device: Optional[str] = DEVICE_FLAG,
    dtype: Optional[str] = DTYPE_FLAG,
    attn: Optional[str] = ATTN_FLAG,
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Pairwise preference (LIMA protocol): every pair judged in both orders; win/tie/loss and
    "B equal or better than A" with a 95% bootstrap CI, per B run."""
    if ctx.invoked_subcommand is not None:
        return
    with handled_errors():
        missing = [flag for flag, value in (("--a", a), ("--b", b), ("--out", out)) if not value]
        if missing:
            raise LimacotInputError(f"limacot judge needs {', '.join(missing)} (the reference run A, one --b per run "
                                    f"to compare with it, and the output folder); `limacot judge --help` lists the "
                                    f"options and the subcommands (export, import)")
        check_out_dir(out)
        flags = {"judge": judge_spec, "concurrency": concurrency, "lang": lang, "api_key_env": api_key_env,
                 "max_tokens": max_tokens, "timeout": timeout, "max_retries": max_retries,
                 "max_total_wait": max_total_wait, "json_mode": json_mode, "min_coverage": min_coverage,
                 "resamples": resamples, "seed": seed, "cache": str(cache) if cache else None,
                 **compute_flags(device, dtype, attn)}
        config = load_config(config, JudgeConfig, flags, required=("judge",))
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


@judge_app.command("grade")
def grade(
    runs: List[Path] = typer.Argument(..., metavar="GENERATIONS", help="Generations to grade: `limacot generate` "
                                      "folders or .jsonl files."),
    judge_spec: Optional[str] = config_flag(GradeConfig, "judge", help=GradeConfig.model_fields["judge"].description
                                            + ". Required (here or in the --config file)."),
    out: Path = typer.Option(..., "--out", help="Output folder (summary.json, grades.jsonl, table.md, cache)."),
    config: Optional[Path] = typer.Option(None, "--config", help="Grading YAML (the `limacot judge` keys, less "
                                          "json_mode and min_coverage, plus samples); flags override its keys."),
    samples: Optional[int] = config_flag(GradeConfig, "samples"),
    lang: Optional[str] = config_flag(GradeConfig, "lang"),
    seed: Optional[int] = config_flag(GradeConfig, "seed"),
    resamples: Optional[int] = config_flag(GradeConfig, "resamples"),
    concurrency: Optional[int] = config_flag(GradeConfig, "concurrency"),
    api_key_env: Optional[str] = config_flag(GradeConfig, "api_key_env"),
    max_tokens: Optional[int] = config_flag(GradeConfig, "max_tokens"),
    timeout: Optional[float] = config_flag(GradeConfig, "timeout"),
    max_retries: Optional[int] = config_flag(GradeConfig, "max_retries"),
    max_total_wait: Optional[float] = config_flag(GradeConfig, "max_total_wait"),
    cache: Optional[Path] = config_flag(GradeConfig, "cache"),
    device: Optional[str] = DEVICE_FLAG,
    dtype: Optional[str] = DTYPE_FLAG,
    attn: Optional[str] = ATTN_FLAG,
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Absolute grading (LIMA's 1-6 helpfulness scale): each answer graded by the judge with a
    rubric, --samples times; per run the mean grade with a 95% bootstrap CI over prompts."""
    with handled_errors():
        check_out_dir(out)
        flags = {"judge": judge_spec, "samples": samples, "lang": lang, "seed": seed, "resamples": resamples,
                 "concurrency": concurrency, "api_key_env": api_key_env, "max_tokens": max_tokens, "timeout": timeout,
                 "max_retries": max_retries, "max_total_wait": max_total_wait,
                 "cache": str(cache) if cache else None, **compute_flags(device, dtype, attn)}
        settings = load_config(config, GradeConfig, flags, required=("judge",))
        with progress_bars(show=not as_json) as update:
            summary = grade_runs(runs, out, settings,
                                 progress=lambda done, total: update("grade requests", done, total))
    if as_json:
        print_json(summary)
    else:
        out_console.print(grades_table(summary), highlight=False, markup=False, soft_wrap=True)
        calls = summary["calls"]
        out_console.print(f"judge calls: {calls['made']} made, {calls['from_cache']} from the cache "
                          f"({calls['requests']} distinct requests); results in {out}",
                          highlight=False, markup=False, soft_wrap=True)


@judge_app.command("export")
def export(
    judge_out: Path = typer.Argument(..., help="A `limacot judge` output folder (records.jsonl, summary.json)."),
    out: Path = typer.Option(..., "--out", help="SHEET_DIR: sheet-K.csv/.jsonl for the annotators, key.json for you."),
    n: Optional[int] = typer.Option(None, "--n", help="Sample N prompts (seeded; all when N is larger); every B "
                                    "run's pair of a sampled prompt is an item. Default: all prompts."),
    seed: int = typer.Option(0, "--seed", help="Seed of the sample, the item order, the X/Y draw and the item ids."),
    annotators: int = typer.Option(1, "--annotators", help="K sheets (sheet-1 ... sheet-K), each with its own X/Y "
                                   "draw, so agreement between annotators can be measured."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Blinded annotation sheets from a judge output: prompt, answer X, answer Y, an empty `label`
    (X / Y / tie); which run is X is in SHEET_DIR/key.json only."""
    with handled_errors():
        check_out_dir(out)
        summary = export_sheets(judge_out, out, n=n, seed=seed, annotators=annotators)
    if as_json:
        print_json(summary)
        return
    over = summary["over_excel_cell_limit"]
    out_console.print(f"{summary['items']} items ({summary['prompts']} of {summary['prompts_available']} prompts x "
                      f"{len(summary['b_runs'])} B run(s)) on {summary['annotators']} sheet(s) in {out}: "
                      f"{', '.join(summary['files'])}. Give the annotators a sheet and instructions.md; keep key.json."
                      + (f" {over} texts exceed Excel's {EXCEL_CELL_LIMIT:,}-character cell: use the .jsonl sheets or another "
                         f"spreadsheet for them." if over else ""), highlight=False, markup=False, soft_wrap=True)


@judge_app.command("import")
def import_(
    sheet_dir: Path = typer.Argument(..., help="The SHEET_DIR `limacot judge export` wrote (its key.json)."),
    filled: List[Path] = typer.Argument(..., help="Filled sheets (.csv or .jsonl), one per annotator."),
    out: Path = typer.Option(..., "--out", help="HUMAN_OUT: human.json, labels.jsonl, table.md (in a study: "
                             "STUDY_DIR/human/<name>, which the report reads)."),
    resamples: int = typer.Option(RESAMPLES, "--bootstrap", min=1, help="Bootstrap resamples of each 95% CI."),
    seed: int = typer.Option(BOOTSTRAP_SEED, "--seed", help="Seed of the bootstrap."),
    as_json: bool = typer.Option(False, "--json", help="Print human.json."),
) -> None:
    """Filled sheets back: human win/tie/loss for B and "B equal or better" per annotator and
    pooled, agreement with the judge and between annotators, each with a 95% bootstrap CI."""
    with handled_errors():
        check_out_dir(out)
        result = import_sheets(sheet_dir, filled, out, resamples=resamples, seed=seed)
    if as_json:
        print_json(result)
    else:
        out_console.print(summary_table(result) + f"results in {out}", highlight=False, markup=False,
                          soft_wrap=True)
