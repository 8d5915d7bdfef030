"""Judge-based checkpoint selection: the scorers `limacot train` imports by name (`selection:`).

    selection: limacot.judge.selection:absolute_grade          # score: mean 1-6 grade of the dev answers
    selection: limacot.judge.selection:pairwise_vs_reference   # score: share equal or better than a reference
    selection_judge: {judge: "openai:gpt-4o", samples: 3, reference: out/dev-reference}

Training calls `scorer(candidates) -> {epoch: score}` (higher is better) with the candidates of
limacot.train.selection: dicts with epoch, path, dev_loss and dev_generations (the epoch's answers
to the dev prompts). Training never imports the judge and passes nothing else, so the settings are
the run's own `selection_judge:` block, read from RUN_DIR/config.resolved.yaml (RUN_DIR holds
dev_generations/); a library caller may pass them as `settings`.

All epochs are judged in one call of the grading (`limacot.judge.absolute`) or the pairwise
protocol (`limacot.judge.pairwise`; the reference is A, each epoch a B run), whose outputs and
judge cache go to RUN_DIR/selection_judge/, so a resumed run asks the judge only what it has not
answered. Each candidate gains a `judge` entry (score, 95% CI, n, unparseable, the summary's
path), which selection.json records with the candidates. An epoch without a single readable
judgment stops the selection with NoJudgment: leaving it out would silently change the pick.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import yaml

from limacot.errors import LimacotInputError
from limacot.judge.absolute import GradeConfig, grade_runs
from limacot.judge.config import JudgeConfig
from limacot.judge.pairwise import judge_pairwise

OUT = "selection_judge"
RESOLVED_CONFIG = "config.resolved.yaml"  # what `limacot train` saves in RUN_DIR
SETTINGS = ("judge", "reference", "samples", "lang", "seed", "concurrency", "api_key_env", "max_tokens")


class NoJudgment(RuntimeError):
    """The judge gave no readable grade or verdict for some epoch, so no epoch can be picked."""


def absolute_grade(candidates: Sequence[dict], settings: dict | None = None, *, judge=None) -> dict[int, float]:
    """{epoch: mean 1-6 grade of its dev answers} (`limacot.judge.absolute.grade_runs`); `judge`
    replaces the one the settings name (an object like limacot.judge.clients' judges)."""
    settings, files = _settings(candidates, settings), _dev_files(candidates)
    config = GradeConfig(**_judge_fields(settings), samples=settings.get("samples", 1))
    out = _run_dir(candidates) / OUT
    summary = grade_runs(list(files.values()), out, config, judge=judge)
    return _scores(candidates, files, summary, "mean", out / "summary.json", "absolute_grade",
                   ("graded", "distribution"))


def pairwise_vs_reference(candidates: Sequence[dict], settings: dict | None = None, *,
                          judge=None) -> dict[int, float]:
    """{epoch: share of its dev answers judged equal or better than the reference's}, every pair
    judged in both orders (`limacot.judge.pairwise.judge_pairwise`, the reference as A)."""
    settings, files = _settings(candidates, settings), _dev_files(candidates)
    if not settings.get("reference"):
        raise LimacotInputError("selection pairwise_vs_reference needs `selection_judge.reference:` (answers to "
                                "the dev prompts to compare each epoch's with)")
    if settings.get("samples", 1) != 1:
        raise LimacotInputError("selection_judge.samples is for absolute_grade only")
    config = JudgeConfig(**_judge_fields(settings))
    out = _run_dir(candidates) / OUT
    summary = judge_pairwise(settings["reference"], list(files.values()), out, config, judge=judge)
    return _scores(candidates, files, summary, "b_equal_or_better", out / "summary.json", "pairwise_vs_reference",
                   ("win", "tie", "loss", "flipped"))


def _settings(candidates: Sequence[dict], given: dict | None) -> dict:
    """The scorer's settings: `given`, else the run's `selection_judge:` block."""
    if given is None:
        path = _run_dir(candidates) / RESOLVED_CONFIG
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) if path.is_file() else None
        given = (raw or {}).get("selection_judge")
        if not given:
            raise LimacotInputError(f"{path}: a judge-based selection needs the run's `selection_judge:` block "
                                    f"(judge, reference, samples, ...) in the train config")
    unknown = sorted(set(given) - set(SETTINGS))
    if unknown or not given.get("judge"):
        raise LimacotInputError(f"selection_judge: {'unknown keys ' + ', '.join(unknown) if unknown else 'no judge'}"
                                f" (expected keys: {', '.join(SETTINGS)}; judge is required)")
    return {key: value for key, value in given.items() if value is not None}


def _judge_fields(settings: dict) -> dict:
    """The judge command's own settings among the scorer's."""
    return {key: settings[key] for key in ("judge", "lang", "seed", "concurrency", "api_key_env", "max_tokens")
            if key in settings}


def _run_dir(candidates: Sequence[dict]) -> Path:
    """RUN_DIR: the folder holding dev_generations/, the same for every candidate."""
    if not candidates:
        raise LimacotInputError("no candidate epochs to score")
    folders = {Path(c["dev_generations"]).parent.parent for c in candidates}
    if len(folders) != 1:
        raise LimacotInputError(f"candidates from several runs: {sorted(map(str, folders))}")
    return folders.pop()


def _dev_files(candidates: Sequence[dict]) -> dict[int, Path]:
    """{epoch: its dev answers}; every candidate must have them."""
    files = {int(c["epoch"]): Path(c["dev_generations"]) for c in candidates}
    missing = sorted(epoch for epoch, file in files.items() if not file.is_file())
    if missing:
        raise LimacotInputError(f"no dev answers for epoch(s) {missing} ({files[missing[0]]}): a judge-based "
                                f"selection judges the answers to `dev_prompts:`; set them in the train config")
    return files


def _scores(candidates: Sequence[dict], files: dict[int, Path], summary: dict, key: str, detail: Path,
            scorer: str, extra: tuple[str, ...]) -> dict[int, float]:
    """{epoch: the summary's `key` for that epoch's run}; each candidate gains its `judge` entry
    (the score, its interval, n, unparseable and the summary's `extra` keys).
    Raises NoJudgment when an epoch has no score (every judgment of it unreadable)."""
    runs = {Path(run["path"]).resolve(): run for run in summary["runs"]}
    found = {epoch: runs[file.resolve()] for epoch, file in files.items()}
    empty = sorted(epoch for epoch, run in found.items() if run[key] is None)
    if empty:
        raise NoJudgment(f"selection scorer {scorer}: the judge ({summary['judge']}) gave no readable judgment for "
                         f"epoch(s) {empty} (e.g. {found[empty[0]]['unparseable']} unreadable replies for epoch "
                         f"{empty[0]}; raw replies in {detail.parent}); refusing to pick an epoch without its score. "
                         f"Check that the judge follows the instruction (and max_tokens leaves room for its answer)")
    for candidate in candidates:
        run = found[int(candidate["epoch"])]
        candidate["judge"] = {"scorer": scorer, "score": run[key], "ci95": run["ci95"], "n": run["n"],
                              "unparseable": run["unparseable"], **{name: run[name] for name in extra},
                              "summary": str(detail)}
    return {epoch: float(run[key]) for epoch, run in found.items()}
