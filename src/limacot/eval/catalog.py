"""The task pack as lm-eval sees it, and the plan for one run: which leaf tasks run, which are
skipped and why, which do not depend on the few-shot seed.

    plan_tasks(manager, ["seed-study"], data_dir="../shared/data")
    -> leaves [kobest_boolq, ..., kmmlu_criminal_law, haerae_general_knowledge, ...]
       skipped {kmmlu_accounting: "no local data (kmmlu/Accounting-test.json)", ...}

Rules: an unknown name is an input error listing close names. A task named explicitly must
have its data. Inside a group, a subject task (MMLU/KMMLU/HAE-RAE subjects) whose local files
are absent is skipped and reported, as long as its group keeps at least one member; any other
missing file is an input error naming the expected path and format.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path

from limacot.errors import LimacotInputError
from limacot.eval.task_data import OPTIONAL_SPLITS, SOURCES, local_files, missing_files, missing_message

TASKS_DIR = Path(__file__).parent / "tasks"
DATA_DIR_KEY = "limacot_data_dir"


def task_manager(data_dir: str | Path | None = None):
    """An lm-eval TaskManager over limacot's task pack only (built-in tasks are not indexed)."""
    from lm_eval.tasks import TaskManager

    resolved = str(Path(data_dir).expanduser().resolve()) if data_dir else None
    return TaskManager(include_path=str(TASKS_DIR), include_defaults=False, metadata={DATA_DIR_KEY: resolved})


@dataclass
class TaskPlan:
    requested: list[str]
    leaves: list[str]
    skipped: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    seed_independent: set[str] = field(default_factory=set)


def split_names(text: str | list[str]) -> list[str]:
    """'kobest, mmlu_anatomy' -> ['kobest', 'mmlu_anatomy'] (lists pass through, split too)."""
    parts = text if isinstance(text, list) else [text]
    return [name.strip() for part in parts for name in str(part).split(",") if name.strip()]


def close_names(name: str, known: list[str], n: int = 6) -> list[str]:
    """Names a typo probably meant: difflib matches first, then names sharing a prefix."""
    lowered = {k.lower(): k for k in known}
    found = [lowered[m] for m in difflib.get_close_matches(name.lower(), list(lowered), n=n, cutoff=0.6)]
    stem = name.lower().split("_")[0][:4]
    found += [k for k in known if stem and k.lower().startswith(stem) and k not in found]
    return found[:n]


def _unknown(name: str, manager) -> LimacotInputError:
    near = close_names(name, manager.all_tasks)
    hint = f" Close names: {', '.join(near)}." if near else ""
    return LimacotInputError(f"unknown task or group '{name}'.{hint} Groups: {', '.join(manager.all_groups)}. "
                             f"`limacot eval list` prints every task.")


def leaves_of(manager, name: str) -> list[str]:
    """The leaf tasks a task or group name stands for, in YAML order."""
    entry = manager.task_index.get(name)
    if entry is None:
        raise _unknown(name, manager)
    if entry.cfg and "group" in entry.cfg:
        out: list[str] = []
        for child in entry.cfg.get("task", []):
            out += leaves_of(manager, child if isinstance(child, str) else child["task"])
        return out
    return [name]


def plan_tasks(manager, names: list[str], data_dir: str | Path | None) -> TaskPlan:
    """Resolve names to leaf tasks and check their data (see module docstring)."""
    if not names:
        raise LimacotInputError("no tasks given: pass --tasks NAME[,NAME...] (a task or a group such as kobest)")
    per_name = {name: leaves_of(manager, name) for name in names}
    seen: dict[str, str] = {}
    for name, leaves in per_name.items():
        for leaf in leaves:
            if leaf in seen:
                raise LimacotInputError(f"task '{leaf}' is named twice (in '{seen[leaf]}' and '{name}'); "
                                        f"name each task or group once")
            seen[leaf] = name
    plan = TaskPlan(requested=list(names), leaves=list(seen))
    for leaf in plan.leaves:
        cfg = manager.task_index[leaf].cfg or {}
        if _seed_independent(cfg):
            plan.seed_independent.add(leaf)
    if data_dir:
        _check_local_data(manager, plan, Path(data_dir))
    else:
        _check_hub(manager, plan)
    return plan


def _source(manager, leaf: str) -> tuple[str, str | None]:
    kwargs = (manager.task_index[leaf].cfg or {}).get("dataset_kwargs") or {}
    return kwargs.get("source", leaf), kwargs.get("subject")


def _seed_independent(cfg: dict) -> bool:
    fewshot = cfg.get("fewshot_config") or {}
    return fewshot.get("sampler") == "first_n" or bool(fewshot.get("samples"))


def _check_hub(manager, plan: TaskPlan) -> None:
    for leaf in plan.leaves:
        source, _ = _source(manager, leaf)
        if SOURCES[source].hub_path is None:
            raise LimacotInputError(f"task '{leaf}' has no hub dataset; run it with --data-dir DIR "
                                    f"holding {SOURCES[source].layout}")


def _check_local_data(manager, plan: TaskPlan, data_dir: Path) -> None:
    if not data_dir.is_dir():
        raise LimacotInputError(f"--data-dir {data_dir}: not a directory (expected the layout of "
                                f"../shared/data: kobest/, kmmlu/, haerae/, mmlu/, arc/, gsm8k/, ko_gsm8k/)")
    for leaf in list(plan.leaves):
        source, subject = _source(manager, leaf)
        if not missing_files(source, data_dir, subject):
            _note_fallbacks(plan, source, data_dir, subject)
            continue
        if leaf in plan.requested or subject is None:
            raise LimacotInputError(missing_message(leaf, source, data_dir, subject))
        plan.skipped[leaf] = "no local data: " + ", ".join(str(p) for p in missing_files(source, data_dir, subject))
        plan.leaves.remove(leaf)
    if plan.skipped:
        _drop_from_groups(manager, plan)


def _note_fallbacks(plan: TaskPlan, source: str, data_dir: Path, subject: str | None) -> None:
    for split, path in local_files(source, data_dir, subject).items():
        note = OPTIONAL_SPLITS.get((source, split))
        if note and not path.is_file() and note not in plan.notes:
            plan.notes.append(note)


def _drop_from_groups(manager, plan: TaskPlan) -> None:
    """Rewrite the index entries of groups that lost members, so lm-eval aggregates the rest."""
    from lm_eval.tasks._index import Entry, Kind

    relevant = _groups_under(manager, plan.requested)
    for name in relevant:
        cfg = manager.task_index[name].cfg or {}
        members = [m for m in cfg.get("task", []) if not (isinstance(m, str) and m in plan.skipped)]
        if len(members) == len(cfg.get("task", [])):
            continue
        if not members:
            expected = "; ".join(f"{t}: {plan.skipped[t]}" for t in cfg["task"][:3])
            raise LimacotInputError(f"group '{name}': none of its tasks has local data under the --data-dir "
                                    f"({expected} ...)")
        manager.task_index[name] = Entry(name=name, kind=Kind.GROUP, yaml_path=None, cfg={**cfg, "task": members})


def _groups_under(manager, names: list[str]) -> list[str]:
    """Every group name reachable from `names` (themselves included), parents first."""
    out: list[str] = []
    for name in names:
        cfg = manager.task_index[name].cfg or {}
        if "group" in cfg and name not in out:
            out.append(name)
            out += [g for g in _groups_under(manager, [m for m in cfg.get("task", []) if isinstance(m, str)])
                    if g not in out]
    return out
