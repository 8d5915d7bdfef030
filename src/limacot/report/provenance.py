"""Provenance: for every number, the cell it came from and what produced that cell.

Per cell: the model (backbone identity; a fine-tuned cell's model key is its train key; a
reference system: its source, and the key of its answers as model key), the
train key, the data build key and the training file's sha256 (from the train job's inputs and the
data manifest), the eval key; then the resolved train configs (one per distinct config, `data`
and `seed` aside), the eval settings, the store's provenance table (limacot and package
versions, python, git commit) and the study config. Inputs come from `stage_runs.config`, or
the stage output's `limacot-stage.json` marker when the store lacks them.
"""

from __future__ import annotations

import hashlib
import json
import urllib.parse
from pathlib import PurePath

import yaml

from limacot.models.api import is_api_spec, parse_api_spec
from limacot.report.doc import Code, Details, Heading, Para, Table
from limacot.report.results import DASH
from limacot.report.study import Study
from limacot.study.cells import BASE, REFERENCE, size_order

KEY_CHARS = 12


def _short(key: str | None) -> str:
    return f"`{key[:KEY_CHARS]}`" if key else DASH


def _latest(study: Study, stage: str, cell_id: str) -> dict | None:
    """The cell's run of `stage`: the done one if any, else the most recent attempt."""
    runs = [r for r in study.stage_runs if r["stage"] == stage and r["cell_id"] == cell_id]
    runs.sort(key=lambda r: (r["status"] == "done", r["started"] or 0))
    return runs[-1] if runs else None


def model_label(identity: dict | str | None) -> str:
    """A model identity without machine paths: 'hf: org/name@rev', 'gguf: file.gguf (fingerprint)'."""
    if not identity:
        return DASH
    if isinstance(identity, str):
        return identity if identity.startswith("hf:") or identity == "embedded" else PurePath(identity).name
    kind, source = identity.get("kind", "?"), str(identity.get("source", ""))
    name = source if kind == "hf" else identity.get("gguf_file") or PurePath(source).name
    rev = f"@{identity['revision']}" if identity.get("revision") else ""
    fingerprint = f" ({str(identity['fingerprint'])[:KEY_CHARS]})" if identity.get("fingerprint") else ""
    return f"{kind}: {name}{rev}{fingerprint}"


def source_label(source: str | None) -> str:
    """A reference system's source without machine paths: 'openai:gpt-4o' (with its server's host
    when one is named: 'openai:gpt-4o at api.openai.com'), or 'answers file answers.jsonl'."""
    if not source:
        return "source not recorded"
    if is_api_spec(source):
        _, model, base = parse_api_spec(source, "reference")
        host = urllib.parse.urlsplit(base).netloc if base else ""
        return f"openai:{model}" + (f" at {host}" if host else "")
    return f"answers file {PurePath(source).name}"


def cell_rows(study: Study) -> list[list[str]]:
    files = (study.manifest or {}).get("outputs", {})
    rows = []
    for cell in sorted(study.cells, key=lambda c: (c["backbone"] == REFERENCE, c["backbone"], c["variant"] != BASE,
                                                   c["variant"], size_order(str(c["size"])), c["seed"])):
        if cell["backbone"] == REFERENCE:
            generate = _latest(study, "generate", cell["cell_id"])
            rows.append([cell["cell_id"], f"reference: {source_label(study.reference_source(cell['variant']))}",
                         _short(generate and generate["key"]), DASH, DASH, DASH, DASH,
                         "none: a reference is judged, not evaluated"])
            continue
        train = _latest(study, "train", cell["cell_id"])
        evaluation = _latest(study, "eval", cell["cell_id"])
        train_in = study.inputs(train) if train else {}
        eval_in = study.inputs(evaluation) if evaluation else {}
        backbone = (study.config.get("backbones") or {}).get(cell["backbone"])
        model = model_label(train_in.get("model") or backbone or eval_in.get("model"))
        if cell["variant"] != BASE:
            model = f"{model} fine-tuned"
        data_file = files.get(f"{cell['variant']}/{cell['size']}/train.jsonl", {}).get("sha256")
        rows.append([cell["cell_id"], model, _short(eval_in.get("model_key")), _short(train and train["key"]),
                     _short(train_in.get("data_key")), _short(data_file),
                     _short(evaluation and evaluation["key"]), evaluation["status"] if evaluation else "not run"])
    return rows


def provenance_section(study: Study) -> list:
    blocks: list = [Heading(2, "Provenance"),
                    Para(f"Every number in this report comes from one cell below. Keys are content hashes (first "
                         f"{KEY_CHARS} characters): a stage's output lives in `stages/<stage>/<key[:16]>/` with a "
                         f"`limacot-stage.json` marker holding its full inputs; the model key of a fine-tuned cell is "
                         f"its train key, a reference system's the key of its answers (its generate job). Training "
                         f"file: sha256 of `data/<variant>/<size>/train.jsonl`.")]
    if study.cells:
        blocks.append(Table(["cell", "model", "model key", "train key", "data key", "training file", "eval key",
                             "eval"], cell_rows(study)))
    else:
        blocks.append(Para("No cells in the store."))
    blocks += _config_details(study)
    if study.provenance:
        blocks += [Heading(3, "Software"),
                   Table(["key", "value"], [[k, v] for k, v in sorted(study.provenance.items())])]
    else:
        blocks.append(Para("The store's provenance table is empty (no package versions or git commit recorded)."))
    if study.config_text:
        blocks.append(Details("Study config (`study.resolved.yaml`)", [Code(study.config_text)]))
    return blocks


def _config_details(study: Study) -> list:
    """The distinct resolved train configs (apart from data and seed) and eval settings."""
    trains: dict[str, tuple[dict, list[str]]] = {}
    evals: dict[str, tuple[dict, list[str]]] = {}
    for run in study.stage_runs:
        inputs = study.inputs(run)
        if run["stage"] == "train" and isinstance(inputs.get("config"), dict):
            config = {k: v for k, v in inputs["config"].items() if k not in ("data", "seed")}
            _group(trains, config, run["cell_id"])
        elif run["stage"] == "eval" and isinstance(inputs.get("eval"), dict):
            _group(evals, inputs["eval"], run["cell_id"])
    blocks = []
    for title, groups in (("Train config", trains), ("Eval settings", evals)):
        for i, (config, cells) in enumerate(groups.values(), 1):
            label = f"{title} {i} of {len(groups)}" if len(groups) > 1 else title
            shown = cells if len(cells) <= 6 else cells[:6] + [f"... {len(cells) - 6} more"]
            blocks.append(Details(f"{label} (cells: {', '.join(shown)})",
                                  [Code(yaml.safe_dump(config, allow_unicode=True, sort_keys=True))]))
    return blocks


def _group(groups: dict, config: dict, cell_id: str | None) -> None:
    digest = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()
    groups.setdefault(digest, (config, []))[1].append(cell_id or "?")
