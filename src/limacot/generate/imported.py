"""Answers made elsewhere (LIMA's published outputs, a vendor's batch run), imported as a
generations folder, so `limacot judge --a OUT` compares with them like with any model.

    limacot generate --import answers.jsonl --prompts prompts.jsonl --out OUT

The answers file has one {"id", "answer"} per line ("prompt" optional; JSONL, or any data file
`limacot.data.files` reads); the ids are the prompts file's (`limacot.data.sources.read_prompts`:
its `id` field, else the content id of the prompt). OUT/generations.jsonl gets {"id", "prompt",
"answer", "tokens": null, "finish_reason": null} per answered prompt, in prompt order, with the
prompts file's text as "prompt"; OUT/settings.json records the file, its sha256 and the counts.

Checked, each an input error naming the file and line: an id missing, given twice or not in the
prompts file, an answer that is missing or empty, a prompt that differs from the prompts file's
(judging pairs answers by id and refuses a prompt whose text differs). Prompts without an answer
are not an error here: they are counted and listed (`ImportReport.missing`), and the judge
refuses a run that lacks prompts unless its --min-coverage allows it. With `limit`, only the
first `limit` prompts are kept, and answers to the others are counted as left out.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from limacot.data.files import iter_rows
from limacot.data.sources import read_prompts
from limacot.errors import DataError, LimacotInputError
from limacot.generate.generation import GENERATIONS, SETTINGS, check_unique_ids
from limacot.io.atomic import atomic_write_json, atomic_write_jsonl
from limacot.io.fingerprint import input_fingerprint

IMPORT_KIND = "import"  # settings.json model.kind of an imported answer set

log = logging.getLogger(__name__)


@dataclass
class ImportReport:
    """What an import wrote: the rows, and the prompts it has no answer for."""

    rows: list[dict]
    prompts: int                                        # prompts in the (limited) prompts file
    missing: list[str] = field(default_factory=list)    # their ids without an answer, in prompt order
    left_out: int = 0                                   # answers to prompts past `limit`

    def as_dict(self) -> dict:
        return {"answered": len(self.rows), "prompts": self.prompts, "missing": len(self.missing),
                "missing_ids": self.missing, "left_out_by_limit": self.left_out}


def import_answers(answers_path: str | Path, prompts_path: str | Path, out_dir: str | Path, *,
                   limit: int | None = None) -> ImportReport:
    """Write the answers of `answers_path` to OUT as a generations folder (see the module
    docstring); returns what was written and what is missing. Raises LimacotInputError (a
    DataError naming the line) on a bad row."""
    every = read_prompts(prompts_path)
    check_unique_ids(every, prompts_path)
    kept = every[:limit]
    position = {pid: i for i, (pid, _) in enumerate(every)}
    answers = _read_answers(answers_path, dict(every))
    rows = [{"id": pid, "prompt": messages[-1]["content"], "answer": answers[pid], "tokens": None,
             "finish_reason": None} for pid, messages in kept if pid in answers]
    report = ImportReport(rows, len(kept), [pid for pid, _ in kept if pid not in answers],
                          sum(position[pid] >= len(kept) for pid in answers))
    if not rows:
        raise LimacotInputError(f"{answers_path}: none of its answers is for one of the {len(kept)} prompts used "
                                f"from {prompts_path} (limit {limit}); nothing to import")
    if report.missing:
        shown = ", ".join(report.missing[:5]) + (", ..." if len(report.missing) > 5 else "")
        log.warning("%s answers %d of the %d prompts; %d have no answer (ids %s)", answers_path, len(rows),
                    len(kept), len(report.missing), shown)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out_dir / SETTINGS, {"model": {"kind": IMPORT_KIND, "answers": str(answers_path),
                                                     "sha256": input_fingerprint(answers_path)},
                                           "prompts": str(prompts_path), "limit": limit,
                                           "imported": report.as_dict()})
    atomic_write_jsonl(out_dir / GENERATIONS, rows)
    return report


def _read_answers(path: str | Path, prompts: dict[str, list[dict]]) -> dict[str, str]:
    """{id: answer} of the answers file, each row checked (see the module docstring)."""
    answers: dict[str, str] = {}
    lines: dict[str, str] = {}
    for location, row in iter_rows(path):
        pid = row.get("id")
        if not isinstance(pid, (str, int)) or isinstance(pid, bool) or not str(pid).strip():
            raise DataError(str(path), location, "id", "the prompt's id (text or integer; the prompts file's ids)",
                            "bad_row", got=_shown(pid))
        pid = str(pid)
        if pid in lines:
            raise DataError(str(path), location, "id", f"each prompt id once; '{pid}' is also on {lines[pid]} (which "
                            "answer to judge would be a guess)", "duplicate_id", got=repr(pid))
        if pid not in prompts:
            raise DataError(str(path), location, "id", "an id of the prompts file (judging pairs answers by id)",
                            "unknown_id", got=repr(pid))
        answer = row.get("answer")
        if not isinstance(answer, str) or not answer.strip():
            raise DataError(str(path), location, "answer", "the answer's text, not empty", "empty_answer",
                            got=_shown(answer))
        given = row.get("prompt")
        expected = prompts[pid][-1]["content"]
        if given is not None and (not isinstance(given, str) or given.strip() != expected.strip()):
            raise DataError(str(path), location, "prompt", f"the prompts file's text for id '{pid}' (or no prompt "
                            f"field): {_shown(expected)}", "prompt_differs", got=_shown(given))
        answers[pid], lines[pid] = answer, location
    if not answers:
        raise LimacotInputError(f"{path}: no answers in the file; expected one {{\"id\", \"answer\"}} per line")
    return answers


def _shown(value) -> str:
    text = "nothing" if value is None else f"{type(value).__name__} {value!r}"
    return text[:80] + ("..." if len(text) > 80 else "")
