"""lm-eval's own tasks, found by name without indexing all of them.

lm-eval's `TaskManager` with its defaults parses every task YAML it ships (about 14,000 in
lm-eval 0.4.13, 12-18 s on a CPU) before it can load one. A run names a few, so
`lm_eval_entries` reads the files as text (about 0.4 s), parses only the YAML files that name
a wanted name or include (directly or through other includes) a file that does, and indexes
them with lm-eval's own `TaskIndex.process_cfg`, in the order lm-eval's full index uses. A task
or group YAML names itself and a tag reaches its tasks through their files or their includes,
so each entry found is the one lm-eval's full index holds. Names the entries reference (group
and tag members) are looked up the same way until nothing new is named.

    lm_eval_entries(["click"]) -> {"click": Entry(GROUP), "click_lang": Entry(GROUP), ...,
                                   "click_cul_tasks": Entry(TAG), "click_cul_economy": Entry(TASK), ...}

Names in `known` (the names limacot's task pack defines, which take precedence) are not looked
up: a built-in group that lists one of them runs limacot's definition.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
from collections import defaultdict
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Collection, Iterable

import yaml

log = logging.getLogger(__name__)
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_IGNORED_DIRS = {"__pycache__", ".ipynb_checkpoints"}  # as lm-eval's TaskIndex
_INCLUDE = re.compile(r"^include:.*(?:\n(?:[ \t]+.*|-.*)?)*", re.MULTILINE)  # the top-level include: block
_SCALAR_INCLUDE = re.compile(r"include:[ \t]*(['\"]?)([^\s'\"#\[]+)\1[ \t]*(?:#.*)?\s*")
_DEFINED = re.compile(r"^(?:task|group):[ \t]*['\"]?([\w.\-]+)", re.MULTILINE)


def lm_eval_tasks_dir() -> Path:
    """lm-eval's task folder, found without importing lm-eval."""
    spec = importlib.util.find_spec("lm_eval")
    return Path(list(spec.submodule_search_locations)[0]) / "tasks"


@dataclass
class TaskTexts:
    """lm-eval's task tree as text: every YAML file, the files they include, who includes whom."""

    root: Path
    texts: dict[Path, str] = field(default_factory=dict)
    yaml_files: list[Path] = field(default_factory=list)  # in lm-eval's index order
    included_by: dict[Path, set[Path]] = field(default_factory=lambda: defaultdict(set))

    @classmethod
    def read(cls, root: Path) -> "TaskTexts":
        tree = cls(root)
        tree.yaml_files = sorted((p for p in root.glob("**/*.yaml") if not _IGNORED_DIRS & set(p.parts)),
                                 key=lambda p: p.as_posix())
        todo = list(tree.yaml_files)
        while todo:
            path = todo.pop()
            if path in tree.texts or not path.is_file():
                continue
            tree.texts[path] = path.read_text(encoding="utf-8", errors="replace")
            for target in _includes(path, tree.texts[path]):
                tree.included_by[target].add(path)
                todo.append(target)
        return tree

    def files_naming(self, names: Iterable[str]) -> set[Path]:
        """The YAML files that name one of `names`, or include (at any depth) a file that does."""
        pattern = re.compile(r"(?<![\w.\-])(?:" + "|".join(map(re.escape, sorted(names, key=len, reverse=True)))
                             + r")(?![\w.\-])")
        hits = {path for path, text in self.texts.items() if pattern.search(text)}
        todo = list(hits)
        while todo:
            for parent in self.included_by.get(todo.pop(), ()):
                if parent not in hits:
                    hits.add(parent)
                    todo.append(parent)
        return {path for path in hits if path.suffix == ".yaml"}

    def defined_names(self) -> list[str]:
        """Every task and group name the YAML files state (for suggesting a name; tags not included)."""
        return sorted({m for path in self.yaml_files for m in _DEFINED.findall(self.texts.get(path, ""))})


def _includes(path: Path, text: str) -> list[Path]:
    """The files `path` includes at its top level, as lm-eval's load_yaml resolves them."""
    block = _INCLUDE.search(text)
    if not block:
        return []
    scalar = _SCALAR_INCLUDE.fullmatch(block.group(0))
    try:  # a list of includes: read by YAML (libyaml where installed)
        value = scalar.group(2) if scalar else (yaml.load(block.group(0), Loader=_LOADER) or {}).get("include")
    except yaml.YAMLError:
        return []
    values = value if isinstance(value, list) else [value] if value else []
    return [Path(os.path.normpath(path.parent / str(v))) for v in values]


def task_texts(root: Path | None = None) -> TaskTexts:
    """The text of lm-eval's task tree (or of `root`), read once per process."""
    return _read_tree(Path(root or lm_eval_tasks_dir()).resolve())


@lru_cache(maxsize=2)
def _read_tree(root: Path) -> TaskTexts:
    return TaskTexts.read(root)


def referenced(entry) -> list[str]:
    """The names an index entry points at: a tag's tasks, a group's members (an inline member
    dict is named by its `group` or `task` key; an inline group's own members count too)."""
    if entry.kind.name == "TAG":
        return sorted(entry.tags)
    return list(_member_names((entry.cfg or {}).get("task"))) if entry.kind.name == "GROUP" else []


def _member_names(members) -> Iterable[str]:
    for member in members if isinstance(members, list) else []:
        if isinstance(member, str):
            yield member
        elif isinstance(member, dict):
            yield str(member.get("group", member.get("task")))
            if "group" in member:
                yield from _member_names(member.get("task"))


def lm_eval_entries(names: Iterable[str], known: Collection[str] = (), root: Path | None = None) -> dict:
    """lm-eval index entries (name -> `lm_eval.tasks._index.Entry`) for `names` and every name
    they reference, except `known` names. A name lm-eval does not define is absent."""
    from lm_eval.tasks._index import TaskIndex
    from lm_eval.tasks._yaml_loader import load_yaml

    tree = task_texts(root)
    wanted = {n for n in names if n not in known}
    searched: set[str] = set()
    files: set[Path] = set()
    parsed: dict[Path, dict | None] = {}
    index: dict = {}
    while wanted - searched:
        new = wanted - searched
        searched |= new
        files |= tree.files_naming(new)
        index = {}
        for path in sorted(files, key=lambda p: p.as_posix()):
            if path not in parsed:
                try:
                    parsed[path] = load_yaml(path, resolve_func=False, recursive=True)
                except Exception as err:  # lm-eval's own index skips such a file the same way
                    log.debug("skip %s (%s)", path, err)
                    parsed[path] = None
            if parsed[path] is not None:
                try:
                    TaskIndex.process_cfg(parsed[path], path, index)
                except ValueError as err:
                    log.debug("skip %s (%s)", path, err)
        wanted |= {ref for name in wanted if name in index for ref in referenced(index[name]) if ref not in known}
    return {name: index[name] for name in wanted if name in index}
