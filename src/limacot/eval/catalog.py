"""The task pack as lm-eval sees it, and the plan for one run: which leaf tasks run, which are
skipped and why, which do not depend on the few-shot seed.

    plan_tasks(manager, ["seed-study"], data_dir="../shared/data")
    -> leaves [kobest_boolq, ..., kmmlu_criminal_law, haerae_general_knowledge, ...]
       skipped {kmmlu_accounting: "no local data (kmmlu/Accounting-test.json)", ...}

Rules: an unknown name is an input error listing close names. A task named explicitly must
have its data. Inside a group, a subject task (MMLU/KMMLU/HAE-RAE subjects) whose local files
are absent is skipped and reported, as long as its group keeps at least one member; any other
missing file is an input error naming the expected path and format.

lm-eval's own tasks and groups (`click`, `kmmlu_hard`, `haerae`, ...) can be named next to the
pack's: `task_manager(data_dir, names)` adds the lm-eval entries of the names the pack does
not define (`limacot.eval.builtin`: found in about 0.5 s, not the 12-18 s of indexing all of
lm-eval's tasks). A name the pack defines is the pack's, also as a member of an lm-eval group
(lm-eval's `haerae` runs the pack's `haerae_general_knowledge`). lm-eval's tasks read their
data from the hub, with `--data-dir` too; offline, their datasets must be in the HF datasets
cache, or the plan fails before a model loads.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import yaml

from limacot.errors import LimacotInputError
from limacot.eval.builtin import lm_eval_entries, task_texts
from limacot.eval.task_data import OPTIONAL_SPLITS, SOURCES, local_files, missing_files, missing_message

TASKS_DIR = Path(__file__).parent / "tasks"
DATA_DIR_KEY = "limacot_data_dir"
_OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")


class _PackLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    """Reads the task pack's YAML without importing anything: `!function x.y` stays the text."""


_PackLoader.add_constructor("!function", lambda loader, node: loader.construct_scalar(node))


@lru_cache(maxsize=1)
def pack_configs() -> dict[str, dict]:
    """name -> YAML config of every task and group the task pack defines (read as data, no
    lm-eval import: fast enough for deciding things before the hub libraries load)."""
    configs: dict[str, dict] = {}
    for path in sorted(TASKS_DIR.rglob("*.yaml")):
        cfg = yaml.load(path.read_text(encoding="utf-8"), Loader=_PackLoader) or {}
        name = cfg.get("group") or cfg.get("task")
        if isinstance(name, str):
            configs[name] = cfg
    return configs


def task_manager(data_dir: str | Path | None = None, names: list[str] | tuple[str, ...] = ()):
    """An lm-eval TaskManager over limacot's task pack, plus lm-eval's own entries for those of
    `names` the pack does not define (and everything they reference)."""
    from lm_eval.tasks import TaskManager

    resolved = str(Path(data_dir).expanduser().resolve()) if data_dir else None
    manager = TaskManager(include_path=str(TASKS_DIR), include_defaults=False, metadata={DATA_DIR_KEY: resolved})
    outside = [name for name in names if name not in manager.task_index]
    if outside:
        found = lm_eval_entries(outside, known=set(manager.task_index))
        for name in outside:
            if name not in found:
                raise _unknown(name, manager)
        manager.task_index.update(found)  # TaskManager.load builds from this index; all_tasks stays the pack's
    return manager


def from_pack(name: str) -> bool:
    """Whether `name` runs the task pack's definition (not one of lm-eval's own tasks)."""
    return name in pack_configs()


@dataclass
class TaskPlan:
    requested: list[str]
    leaves: list[str]
    skipped: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    seed_independent: set[str] = field(default_factory=set)
    lm_eval_tasks: list[str] = field(default_factory=list)  # leaves lm-eval defines (their data: the hub)


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
    ours = list(pack_configs())
    near = close_names(name, ours) or close_names(name, task_texts().defined_names())
    hint = f" Close names: {', '.join(near)}." if near else ""
    groups = ", ".join(n for n, cfg in pack_configs().items() if "group" in cfg)
    return LimacotInputError(f"unknown task or group '{name}': neither limacot's task pack nor lm-eval's own tasks "
                             f"define it.{hint} Groups of the pack: {groups}. `limacot eval list` prints the pack; "
                             f"`lm-eval ls tasks` lists lm-eval's.")


def leaves_of(manager, name: str) -> list[str]:
    """The leaf tasks a task, group or tag name stands for, in YAML order. A member lm-eval
    defines inline in a group is named as lm-eval names it (`group::task`)."""
    entry = manager.task_index.get(name)
    if entry is None:
        raise _unknown(name, manager)
    if entry.kind.name == "TAG":
        return [leaf for task in sorted(entry.tags) for leaf in leaves_of(manager, task)]
    if entry.kind.name == "GROUP":
        return _member_leaves(manager, name, (entry.cfg or {}).get("task", []))
    return [name]


def _member_leaves(manager, group: str, members) -> list[str]:
    out: list[str] = []
    for member in members if isinstance(members, list) else []:
        ref = member if isinstance(member, str) else member.get("group", member.get("task"))
        if isinstance(member, dict) and ref not in manager.task_index:
            inline = f"{group}::{ref}"
            out += _member_leaves(manager, inline, member.get("task")) if "group" in member else [inline]
        else:
            out += leaves_of(manager, ref)
    return out


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
    plan.lm_eval_tasks = [leaf for leaf in plan.leaves if not from_pack(leaf)]
    for leaf in plan.leaves:
        entry = manager.task_index.get(leaf)  # None: a task lm-eval defines inline in a group
        if _seed_independent((entry.cfg if entry else None) or {}):
            plan.seed_independent.add(leaf)
    _note_pack_members(manager, plan, per_name)
    if data_dir:
        _check_local_data(manager, plan, Path(data_dir))
    else:
        _check_hub(manager, plan)
    if plan.lm_eval_tasks:
        _check_lm_eval_data(manager, plan, data_dir)
    return plan


def _note_pack_members(manager, plan: TaskPlan, per_name: dict[str, list[str]]) -> None:
    """A note per lm-eval group that runs some of the pack's tasks in place of its own."""
    for name, leaves in per_name.items():
        ours = [leaf for leaf in leaves if from_pack(leaf)]
        if not from_pack(name) and ours:
            plan.notes.append(f"lm-eval's '{name}' runs limacot's task pack definition of {', '.join(ours)} (the "
                              f"pack's names take precedence; same prompt, data from --data-dir when given)")


def hub_offline() -> bool:
    """Whether HF_HUB_OFFLINE or HF_DATASETS_OFFLINE is set (as the hub libraries read them)."""
    return any(os.environ.get(var, "").strip().upper() in ("1", "ON", "YES", "TRUE") for var in _OFFLINE_VARIABLES)


def _check_lm_eval_data(manager, plan: TaskPlan, data_dir) -> None:
    """lm-eval's own tasks load their datasets from the hub; offline, each must be in the HF
    datasets cache, checked here so that a missing one fails before any model loads."""
    if data_dir:
        plan.notes.append(f"lm-eval's own tasks read their data from the hub (or the HF datasets cache), not from "
                          f"--data-dir: {_short(plan.lm_eval_tasks)}")
    if not hub_offline():
        return
    missing = {}
    for leaf in plan.lm_eval_tasks:
        entry = manager.task_index.get(leaf)
        cfg = (entry.cfg if entry else None) or {}
        if cfg.get("dataset_path") and not cfg.get("custom_dataset"):
            why = _not_cached(cfg)
            if why:
                missing[leaf] = f"{cfg['dataset_path']}" + (f" {cfg['dataset_name']}" if cfg.get("dataset_name") else "")
    if missing:
        shown = "; ".join(f"{leaf} ({source})" for leaf, source in list(missing.items())[:8])
        more = f" and {len(missing) - 8} more" if len(missing) > 8 else ""
        offline = ", ".join(f"{var}={os.environ[var]}" for var in _OFFLINE_VARIABLES if os.environ.get(var))
        raise LimacotInputError(
            f"{len(missing)} of lm-eval's own tasks need hub datasets that are not in the local HF datasets cache, "
            f"and the hub is off ({offline}): {shown}{more}. Run once with the hub reachable (the datasets are then "
            f"cached), or leave these tasks out; --data-dir serves only limacot's task pack (`limacot eval list`).")


def _not_cached(cfg: dict) -> str | None:
    """Why lm-eval's `load_dataset(dataset_path, dataset_name, **dataset_kwargs)` would fail offline (None: cached)."""
    import datasets

    try:
        datasets.load_dataset_builder(cfg["dataset_path"], cfg.get("dataset_name"), **(cfg.get("dataset_kwargs") or {}))
    except Exception as err:  # offline and not cached, or a local path that is not there
        return f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
    return None


def _short(names: list[str], n: int = 6) -> str:
    return ", ".join(names[:n]) + (f" ... ({len(names)} tasks)" if len(names) > n else "")


def _source(manager, leaf: str) -> tuple[str, str | None]:
    kwargs = (manager.task_index[leaf].cfg or {}).get("dataset_kwargs") or {}
    return kwargs.get("source", leaf), kwargs.get("subject")


def _seed_independent(cfg: dict) -> bool:
    fewshot = cfg.get("fewshot_config") or {}
    return fewshot.get("sampler") == "first_n" or bool(fewshot.get("samples"))


def _check_hub(manager, plan: TaskPlan) -> None:
    for leaf in _pack_leaves(plan):
        source, _ = _source(manager, leaf)
        if SOURCES[source].hub_path is None:
            raise LimacotInputError(f"task '{leaf}' has no hub dataset; run it with --data-dir DIR "
                                    f"holding {SOURCES[source].layout}")


def _check_local_data(manager, plan: TaskPlan, data_dir: Path) -> None:
    if not data_dir.is_dir():
        raise LimacotInputError(f"--data-dir {data_dir}: not a directory (expected the layout of "
                                f"../shared/data: kobest/, kmmlu/, haerae/, mmlu/, arc/, gsm8k/, ko_gsm8k/)")
    for leaf in _pack_leaves(plan):
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


def _pack_leaves(plan: TaskPlan) -> list[str]:
    return [leaf for leaf in plan.leaves if leaf not in plan.lm_eval_tasks]


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
