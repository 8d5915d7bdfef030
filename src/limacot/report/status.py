"""The study's state: what ran, what failed, what never started. A partial study (a run killed
midway, a failed stage) is reported as such, so a reader knows which numbers are missing and why.

Planned jobs come from the plan `limacot run` recorded in the store (its jobs table); a job whose
key has no stage run never started. A store without a recorded plan (written by an older
limacot) is reported from its stage runs alone, saying that jobs never started cannot be listed.
"""

from __future__ import annotations

from limacot.report import aggregate
from limacot.report.provenance import source_label
from limacot.report.doc import Bullets, Heading, Para, Table
from limacot.report.study import Study
from limacot.study.cells import BASE
from limacot.study.store import STAGES, JobRow, StageRun, last_line
from limacot.study.submissions import SLURM_DIR, load_submissions, submission_of

NO_PLAN = ("The results store holds no plan (a store written by an older limacot, or by a run stopped before "
           "it planned), so jobs that never started cannot be listed.")


def not_started(study: Study) -> list[JobRow] | None:
    """The recorded plan's jobs with no stage run (None when no plan was recorded)."""
    if study.jobs is None:
        return None
    recorded = {r["key"] for r in study.stage_runs}
    return [job for job in study.jobs if job["key"] not in recorded]


DATA_SEED_TEXT = {
    "fixed": "Training data: every training seed trains on the same selection of examples (`data_seed: fixed`), "
             "so the spread over seeds is training randomness only, not the choice of examples.",
    "per_seed": "Training data: each training seed trains on examples selected with that seed (`data_seed: "
                "per_seed`), so the spread over seeds covers both training randomness and the choice of examples.",
}


def overview_section(study: Study) -> list:
    """Title, what the study is, and a one-line state."""
    cells = study.grid_cells
    tuned = [c for c in cells if c["variant"] != BASE]
    seeds = sorted({c["seed"] for c in tuned})
    blocks: list = [Heading(1, f"limacot report: {study.name}")]
    if study.config.get("description"):
        blocks.append(Para(str(study.config["description"]).strip()))
    blocks.append(Para(f"Backbones: {', '.join(aggregate.backbones(study)) or 'none'}; variants: "
                       f"{', '.join(aggregate.variants(study)) or 'none'}; training sizes: "
                       f"{', '.join(aggregate.sizes(study)) or 'none'}; training seeds: "
                       f"{', '.join(map(str, seeds)) or 'none'}; {len(cells)} cells (a cell is one model: "
                       f"backbone/variant/size/seed; base = the backbone without fine-tuning)."))
    references = aggregate.references(study)
    if references:
        named = ", ".join(f"{name} ({source_label(study.reference_source(name))})" for name in references)
        blocks.append(Para(f"References: {named}: systems outside the grid whose answers are judged against the "
                           f"cells (`reference/<name>`; no benchmark numbers, so no paired deltas)."))
    if len(seeds) > 1:
        blocks.append(Para(DATA_SEED_TEXT[study.data_seed]))
    counts = _status_counts(study)
    missing = not_started(study)
    unfinished = counts.get("failed", 0) or counts.get("running", 0)
    if missing is None and not unfinished:
        state = (f"{counts.get('done', 0)} stages done, none failed or running; the store holds no plan, so "
                 f"whether any stage never started is unknown")
    elif not missing and not unfinished:
        state = "complete: every planned stage is done"
    else:
        state = (f"PARTIAL: {counts.get('done', 0)} stages done, {counts.get('failed', 0)} failed, "
                 f"{counts.get('running', 0)} interrupted or running, "
                 f"{'an unknown number' if missing is None else len(missing)} not started; the numbers below are "
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
        absent = sum(1 for job in missing or () if job["stage"] == stage)
        if not runs and not absent:
            continue
        seconds = sum(r["seconds"] or 0 for r in runs if r["status"] == "done")
        rows.append([stage] + [str(sum(r["status"] == s for r in runs)) for s in ("done", "failed", "running")]
                    + [str(absent) if missing is not None else "?", f"{seconds:.0f}"])
    blocks.append(Table(["stage", "done", "failed", "running / interrupted", "not started", "seconds (done)"],
                        rows, [False] + [True] * 5))
    unfinished = [r for r in study.stage_runs if r["status"] != "done"]
    if unfinished:
        blocks.append(Para("Stages not done (their numbers are missing from the tables):"))
        blocks.append(_unfinished_table(study, sorted(unfinished, key=lambda r: (r["stage"], r["cell_id"] or ""))))
    if missing is None:
        blocks.append(Para(NO_PLAN))
    elif missing:
        blocks.append(Para(f"Planned but not started ({len(missing)}):"))
        blocks.append(Bullets([job["label"] for job in missing]))
    elif not unfinished:
        blocks.append(Para("Every planned stage is done."))
    return blocks


def _unfinished_table(study: Study, runs: list[StageRun]) -> Table:
    """One row per stage run not done; with the Slurm job id and log of the job that ran it
    when the study was submitted with `--launcher slurm` (STUDY_DIR/slurm/submitted.json)."""
    submissions = load_submissions(study.dir / SLURM_DIR)
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
