"""`limacot run`: registered on the main app by `register`, which is handed the report writer
(`limacot.report` is the layer above `limacot.run`: run does not import it)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional

import typer
from rich.markup import escape
from rich.text import Text

from limacot.errors import LimacotInputError
from limacot.eval.scores import PRIMARY_METRICS, fewshot_label
from limacot.io.cli_common import check_out_dir, config_flag, err_console, handled_errors, out_console, print_json
from limacot.io.yaml_config import load_config
from limacot.models.api import is_api_spec
from limacot.run.config import LauncherSettings, StudyConfig
from limacot.run.cost import cost_lines, plan_cost
from limacot.run.runner import build_plan, cell_filter, describe, run_single_job, run_study, run_worker
from limacot.run.slurm import decide, slurm_jobs, submit_study
from limacot.run.status import counts, depends_on, study_status
from limacot.study.store import STAGES as STUDY_STAGES

STAGES = ",".join(STUDY_STAGES)
ReportWriter = Callable[[Path], dict]  # study folder -> the report's files by name (limacot.report.write_report)
_write_report: ReportWriter | None = None


def register(app: typer.Typer, write_report: ReportWriter) -> None:
    """Add `limacot run`; `write_report(study_dir)` writes the report once the study has run."""
    global _write_report
    _write_report = write_report
    app.command("run")(run_command)


def run_command(
    config: Path = typer.Option(..., "--config", help="Study YAML: backbones, variants, sizes, seeds, stages."),
    out: Path = typer.Option(..., "--out", help="Study folder: results.sqlite, stages/, report/."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the plan and what is cached; run nothing."),
    only: Optional[str] = typer.Option(None, "--only", help="Glob over cell ids, e.g. 'smol/lima*/*/*'."),
    launcher: Optional[str] = config_flag(LauncherSettings, "kind"),
    processes: Optional[str] = config_flag(LauncherSettings, "processes"),
    partition: Optional[str] = typer.Option(None, "--partition", help="slurm partition"),
    stages: Optional[str] = typer.Option(None, "--stages", help=f"Only these stages ({STAGES})."),
    job: Optional[str] = typer.Option(None, "--job", hidden=True, help="Run one job by key (slurm scripts)."),
    worker: bool = typer.Option(False, "--worker", hidden=True, help="With --job: one process of a launched "
                                "job; runs the stage only (no store, no marker)."),
    status: bool = typer.Option(False, "--status", help="Each job's state (done, failed, pending, running) "
                                "with its Slurm job id and log; run nothing."),
    as_json: bool = typer.Option(False, "--json", help="Print the plan (and report paths) as JSON."),
) -> None:
    """Run the whole study: data -> train -> eval -> generate -> judge -> report, each stage once."""
    with handled_errors():
        check_out_dir(out)
        study = load_config(config, StudyConfig, {"launcher.kind": launcher, "launcher.processes": processes})
        launcher = study.launcher.kind
        if worker and not job:
            raise LimacotInputError("--worker runs one job: give its --job KEY")
        if worker:
            _show_worker(run_worker(study, out, job))
            return
        if job:
            run_single_job(study, out, job)
            return
        selected = set(stages.split(",")) if stages else None
        if selected and not selected <= set(STAGES.split(",")):
            raise LimacotInputError(f"--stages: unknown {sorted(selected - set(STAGES.split(',')))}; use {STAGES}")
        if dry_run or status or launcher == "slurm":
            plan = build_plan(study, out, cell_filter(only))
            if status:
                _show_status(plan, as_json)
            elif launcher == "slurm":
                _slurm(plan, config, only=only, partition=partition, dry_run=dry_run, as_json=as_json)
            else:
                _show_plan(plan, as_json)
            return
        plan = run_study(study, out, only=only, stages=selected,
                         on_job=None if as_json else _show_job, progress=not as_json)
        report = _write_report(out)
    if as_json:
        print_json({"jobs": [j.__dict__ for j in describe(plan)], "report": {k: str(v) for k, v in report.items()}})
    else:
        _show_main_table(report["main_table"])
        out_console.print(f"[green]done[/]: results in {escape(str(out / 'results.sqlite'))}; report: "
                          f"{escape(str(report['html']))}")


def _show_worker(job) -> None:
    import os

    err_console.print(f"worker rank {os.environ.get('RANK', '0')} of {os.environ.get('WORLD_SIZE', '1')} "
                      f"done: {job.label}", highlight=False, markup=False)


SCORE_METRICS = (*PRIMARY_METRICS, "mcc")


CELL_WIDTH = 12  # "[0.00, 0.00]": the narrowest a score column is (negative scores widen it)


def _show_main_table(csv_path: Path) -> None:
    """The report's main table (main_table.csv), pivoted (`main_tables`), fitted to the terminal."""
    import csv

    with open(csv_path, encoding="utf-8", newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r["metric"] in SCORE_METRICS]
    if not rows:
        out_console.print("main table: no benchmark numbers yet")
        return
    for renderable in main_tables(rows, out_console.width):
        out_console.print(renderable)


def main_tables(rows: list[dict], width: int) -> list:
    """The main table as rich renderables no wider than `width`: one row per backbone, task and
    metric, one column per model (variant and size), each cell the mean over the 95% interval on
    a second line. Task names are never cut: models that do not fit go into a further table (the
    task column repeated), and a model whose name is wider than a score column is shown as M1,
    M2, ... with a legend."""
    from rich.table import Table

    models = list(dict.fromkeys(_model(r) for r in rows))
    backbones = list(dict.fromkeys(r["backbone"] for r in rows))
    several = len(backbones) > 1
    cells: dict[tuple, dict[str, str]] = {}
    for r in rows:
        ci = f"\n[{float(r['ci_low']):.2f}, {float(r['ci_high']):.2f}]" if r["ci_low"] else ""
        cells.setdefault((r["backbone"], r["task"], r["metric"]), {})[_model(r)] = f"{float(r['mean']):.3f}{ci}"
    cell_width = max([CELL_WIDTH] + [len(line) for values in cells.values() for text in values.values()
                                     for line in text.splitlines()])  # negative scores are wider
    names = {m: m if len(m) <= cell_width else f"M{i + 1}" for i, m in enumerate(models)}
    keys = [((k[0],) if several else ()) + k[1:] for k in cells]
    fixed = sum(max(len(h), *(len(k[i]) for k in keys)) + 3 for i, h in
                enumerate((("backbone",) if several else ()) + ("task", "metric"))) + 1
    per_table = max(1, (width - fixed) // (cell_width + 3))
    chunks = [models[i:i + per_table] for i in range(0, len(models), per_table)]
    title = "main table (mean, 95% CI)" + ("" if several else f": {backbones[0]}")
    out: list = []
    for n, chunk in enumerate(chunks, 1):
        part = f" ({n}/{len(chunks)})" if len(chunks) > 1 else ""
        table = Table(title=escape(title + part), title_justify="left", show_lines=True)
        for column in (("backbone",) if several else ()) + ("task", "metric"):
            table.add_column(escape(column), no_wrap=True)
        for model in chunk:
            table.add_column(escape(names[model]), justify="right", min_width=cell_width, no_wrap=True)
        for key, values in zip(keys, cells.values()):
            table.add_row(*map(Text, key + tuple(values.get(m, "") for m in chunk)))
        out.append(table)
    legend = [f"{names[m]} = {m}" for m in models if names[m] != m]
    if legend:
        out.append(Text("models: " + "; ".join(legend)))
    return out


def _model(row: dict) -> str:
    return f"{row['variant']} {row['size']}".replace(" -", "")


def _show_job(job, state: str) -> None:
    colour = {"cached": "dim", "run": "bold", "resume": "yellow", "done": "green"}.get(state, "")
    err_console.print(Text.assemble((f"{state:>6}", colour), " ", job.label), highlight=False)


def design_lines(plan) -> list[str]:
    """The study's design in words: what is trained, compared and measured, and the plan's notes."""
    config = plan.config
    data_seed = {"fixed": "fixed (every training seed trains on the same selection)",
                 "per_seed": "per_seed (training seed s trains on data selected with seed s)"}[config.data_seed]
    lines = [f"study {config.name}: backbones {', '.join(f'{k} ({v})' for k, v in config.backbones.items())}",
             f"  variants: {', '.join(config.variants)}",
             f"  sizes: {', '.join(plan.sizes)}; seeds: {', '.join(map(str, config.seeds))}; "
             f"data seed: {data_seed}",
             "  comparisons (B - A): " + ("none" if not config.comparisons else "")]
    lines += [f"    {c.b} vs {c.a}" + (f": {c.asks}" if c.asks else "") for c in config.comparisons]
    ev = config.eval
    lines.append(f"  eval: {', '.join(ev.tasks)}; {fewshot_label(ev.num_fewshot, ev.tasks)}; "
                 f"{ev.fewshot_seeds} few-shot seed(s); "
                 f"data: {ev.data_dir or 'the hub'}")
    if config.judge:
        lines.append(f"  judge: {config.judge.judge} on {config.judge.prompts}")
    if config.grade:
        lines.append(f"  grade: every cell's answers (references too) graded 1-6 by the judge, "
                     f"{config.grade.samples} sample(s) each")
    lines += [f"  reference {name}: " + ("answers from " if is_api_spec(source) else "answers imported from ")
              + source for name, source in config.references.items()]
    lines += [f"  note: {note}" for note in plan.notes]
    return lines


def _plan_rows(plan) -> list[dict]:
    return [{**row.__dict__, "depends_on": depends_on(job)} for row, job in zip(describe(plan), plan.jobs)]


def _show_plan(plan, as_json: bool) -> None:
    rows = _plan_rows(plan)
    if as_json:
        print_json(rows)
        return
    from rich.table import Table

    for line in design_lines(plan):
        out_console.print(line, markup=False, highlight=False)
    table = Table(title=f"plan: {len(rows)} jobs, {sum(r['cached'] for r in rows)} cached", title_justify="left")
    for column in ("stage", "job", "key", "depends on", "state"):
        table.add_column(column)
    for r in rows:
        table.add_row(*map(Text, (r["stage"], r["label"], r["key"], ", ".join(r["depends_on"]),
                                  "cached" if r["cached"] else "to run")))
    out_console.print(table)
    for line in cost_lines(plan_cost(plan), plan):
        out_console.print(line, markup=False, highlight=False, soft_wrap=True)


def _slurm(plan, config: Path, *, only, partition, dry_run: bool, as_json: bool) -> None:
    """--launcher slurm: submit what is neither done nor queued (or, with --dry-run, show it)."""
    if dry_run:
        actions = decide(plan, slurm_jobs(plan, config.resolve(), only))
    else:
        actions = submit_study(plan, config, only=only, partition=partition)
    submitted = any(a.job_id for a in actions if a.action == "submit")
    rows = [{"script": a.slurm.name, "runs": a.slurm.label, "nodes": a.slurm.nodes, "gpus_per_node": a.slurm.gpus,
             "after": [n for n in a.slurm.after if n in {b.slurm.name for b in actions if b.action != "done"}],
             "action": a.action, "job_id": a.job_id, "slurm_state": a.state} for a in actions]
    if as_json:
        print_json({"plan": _plan_rows(plan), "slurm": rows, "submitted": submitted})
        return
    _show_slurm(rows, dry_run)
    count = {k: sum(r["action"] == k for r in rows) for k in ("submit", "done", "queued")}
    folder = plan.study_dir / "slurm"
    kept = f"{count['done']} done, {count['queued']} still pending or running in Slurm (not resubmitted)"
    if dry_run:
        out_console.print(f"dry run: would submit {count['submit']} jobs; {kept}", markup=False)
    elif not count["submit"]:
        out_console.print(f"nothing to submit: {kept}")
    elif submitted:
        out_console.print(f"[green]submitted[/] {count['submit']} jobs; " + escape(
            f"{kept}. Scripts and logs in {folder}; follow them with `limacot run --config {config} --out "
            f"{plan.study_dir} --status`"))
    else:
        out_console.print(f"sbatch not found: scripts written to {folder}; submit them with `bash "
                          f"{folder / 'submit.sh'}` where Slurm is available ({kept})", markup=False)


def _show_slurm(rows: list[dict], dry_run: bool) -> None:
    from rich.table import Table

    table = Table(title="slurm jobs" + (" (dry run: nothing submitted)" if dry_run else ""), title_justify="left")
    for column in ("script", "runs", "nodes", "GPUs/node", "after (afterok)", "action"):
        table.add_column(column)
    for r in rows:
        after = ", ".join(r["after"]) if len(r["after"]) <= 3 else f"the {len(r['after'])} jobs above"
        action = {"submit": "submit" if dry_run else f"submitted {r['job_id'] or ''}",
                  "queued": f"queued {r['job_id']} {r['slurm_state']}"}.get(r["action"], r["action"])
        table.add_row(*map(Text, (r["script"], r["runs"], str(r["nodes"]), str(r["gpus_per_node"]), after, action)))
    out_console.print(table)


def _show_status(plan, as_json: bool) -> None:
    """--status: every job's state, Slurm job id and log."""
    from rich.table import Table

    statuses = study_status(plan)
    if as_json:
        print_json([s.__dict__ for s in statuses])
        return
    slurm = any(s.slurm_job for s in statuses)  # the Slurm columns only for a submitted study
    table = Table(title=escape(f"{plan.study_dir}: {counts(statuses)}"), title_justify="left")
    for column in ("stage", "job", "key", "state") + ("slurm job", "log") * slurm + ("detail",):
        table.add_column(column, overflow="fold", no_wrap=column in ("key", "state"))
    colour = {"done": "green", "failed": "bold red", "running": "yellow", "pending": "dim"}
    for s in statuses:
        row = [Text(s.stage), Text(s.label), Text(s.key), Text(s.state, colour[s.state])]
        if slurm:
            row += [Text(f"{s.slurm_job} {s.slurm_state or ''}".strip() if s.slurm_job else ""), Text(s.log or "")]
        table.add_row(*row, Text(s.detail or ""))
    out_console.print(table)
