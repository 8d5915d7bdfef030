"""The study's state: what ran, what failed, what never started. A partial study (a run killed
midway, a failed stage) is reported as such, so a reader knows which numbers are missing and why.

Expected jobs come from the store's cells and the study config, by the plan's rules: `train`
per fine-tuned cell, `eval` per cell, `generate` per cell when a judge is configured, `compare`
(and `judge`) per compared pair, one `data` build.
"""

from __future__ import annotations

from types import SimpleNamespace

from limacot.report import stats
from limacot.report.doc import Bullets, Heading, Para, Table
from limacot.report.study import Study
from limacot.run.queue import load_submissions, submission_of
from limacot.run.status import last_line

STAGES = ("data", "train", "eval", "generate", "compare", "judge")


def expected_jobs(study: Study) -> list[tuple[str, str | None]]:
    """(stage, cell id or 'A vs B' or None for data) of every job the plan would have."""
    from limacot.run.grid import Cell, pairs

    cells = [Cell(c["backbone"], c["variant"], str(c["size"]), int(c["seed"])) for c in study.cells]
    judge = bool(study.config.get("judge"))
    jobs: list[tuple[str, str | None]] = [("data", None)]
    for cell in cells:
        jobs += [("train", cell.id)] * (not cell.is_base) + [("eval", cell.id)] + [("generate", cell.id)] * judge
    comparisons = [tuple(p) for p in study.config.get("comparisons") or []]
    for a, b in pairs(SimpleNamespace(comparisons=comparisons), cells):
        jobs += [("compare", f"{a.id} vs {b.id}")] + [("judge", f"{a.id} vs {b.id}")] * judge
    return jobs


def not_started(study: Study) -> list[tuple[str, str | None]]:
    recorded = {(r["stage"], r["cell_id"]) for r in study.stage_runs}
    return [job for job in expected_jobs(study) if job not in recorded]


def overview_section(study: Study) -> list:
    """Title, what the study is, and a one-line state."""
    cells = study.cells
    tuned = [c for c in cells if c["variant"] != stats.BASE]
    seeds = sorted({c["seed"] for c in tuned})
    blocks: list = [Heading(1, f"limacot report: {study.name}")]
    blocks.append(Para(f"Backbones: {', '.join(stats.backbones(study)) or 'none'}; variants: "
                       f"{', '.join(stats.variants(study)) or 'none'}; training sizes: "
                       f"{', '.join(stats.sizes(study)) or 'none'}; training seeds: "
                       f"{', '.join(map(str, seeds)) or 'none'}; {len(cells)} cells (a cell is one model: "
                       f"backbone/variant/size/seed; base = the backbone without fine-tuning)."))
    counts = _status_counts(study)
    missing = len(not_started(study))
    state = ("complete: every planned stage is done" if not missing and counts.get("failed", 0) == 0
             and counts.get("running", 0) == 0 else
             f"PARTIAL: {counts.get('done', 0)} stages done, {counts.get('failed', 0)} failed, "
             f"{counts.get('running', 0)} interrupted or running, {missing} not started; the numbers below are "
             f"what the finished stages produced (details under Study status)")
    blocks.append(Para(f"Study state: {state}."))
    if study.notes:
        blocks += [Para("Could not read:"), Bullets(study.notes)]
    return blocks


def _status_counts(study: Study) -> dict[str, int]:
    counts: dict[str, int] = {}
    for run in study.stage_runs:
        counts[run["status"]] = counts.get(run["status"], 0) + 1
    return counts


def status_section(study: Study) -> list:
    blocks: list = [Heading(2, "Study status")]
    missing = not_started(study)
    rows = []
    for stage in STAGES + tuple(sorted({r["stage"] for r in study.stage_runs} - set(STAGES))):
        runs = [r for r in study.stage_runs if r["stage"] == stage]
        absent = sum(1 for s, _ in missing if s == stage)
        if not runs and not absent:
            continue
        seconds = sum(r["seconds"] or 0 for r in runs if r["status"] == "done")
        rows.append([stage] + [str(sum(r["status"] == s for r in runs)) for s in ("done", "failed", "running")]
                    + [str(absent), f"{seconds:.0f}"])
    blocks.append(Table(["stage", "done", "failed", "running / interrupted", "not started", "seconds (done)"],
                        rows, [False] + [True] * 5))
    unfinished = [r for r in study.stage_runs if r["status"] != "done"]
    if unfinished:
        blocks.append(Para("Stages not done (their numbers are missing from the tables):"))
        blocks.append(_unfinished_table(study, sorted(unfinished, key=lambda r: (r["stage"], r["cell_id"] or ""))))
    if missing:
        blocks.append(Para(f"Planned but not started ({len(missing)}):"))
        blocks.append(Bullets([f"{stage} {cell or ''}".strip() for stage, cell in missing]))
    if not unfinished and not missing:
        blocks.append(Para("Every planned stage is done."))
    return blocks


def _unfinished_table(study: Study, runs: list[dict]) -> Table:
    """One row per stage run not done; with the Slurm job id and log of the job that ran it
    when the study was submitted with `--launcher slurm` (STUDY_DIR/slurm/submitted.json)."""
    submissions = load_submissions(study.dir / "slurm")
    rows = []
    for r in runs:
        error = last_line(r["error"]) or "(no error recorded: interrupted or still running)"
        row = [r["stage"], r["cell_id"] or "", r["status"], f"`{r['key'][:12]}`", error]
        if submissions:
            submission = submission_of(submissions, r["key"])
            row.append(f"{submission.job_id}: `{submission.log}`" if submission else "")
        rows.append(row)
    header = ["stage", "cell", "status", "key", "error (last line)"] + ["slurm job: log"] * bool(submissions)
    return Table(header, rows)
