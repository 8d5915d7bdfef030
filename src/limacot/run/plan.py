"""The study's plan: one `Job` per stage execution, keyed by a content hash of its inputs.

    data      one build for the whole study (one per   key: the data build key (its config and the
              training seed with `data_seed: per_seed`)     content of every file it reads)
    train     per fine-tuned cell                      key: train config, data key/variant/size, model
    eval      per cell (base evaluates the backbone)   key: eval settings, eval data files, the model's key,
                                                            the task pack's YAMLs and the lm-eval version
    generate  per cell, when a judge is configured     key: prompts file, decoding, the model's key
              per reference (its answers, no GPU)      key: the API model and endpoint, prompts file and
                                                            decoding; or the answers file's and prompts' content
    judge     per compared pair                        key: both generate keys, judge settings
    grade     per cell and reference, with `grade:`    key: the generate key, the judge, grade settings
    compare   per compared pair of grid cells          key: both eval keys
              (paired statistics; none for a reference: it has no eval numbers)

Keys follow content, not names: a backbone is hashed by `limacot.models.loading.content_identity`
(a local folder by its files, a GGUF by its fingerprint, an `hf:` id by the commit its revision
resolves to, and the plan pins the backbone to that commit, so every job loads the same
weights), the eval `data_dir` by its files (`limacot.io.fingerprint.tree_fingerprint`), the data
build by `limacot.data.build.build_key`.

The eval, generate and judge keys also hash the study's `compute.dtype` and
`compute.attn_implementation`, and a train key its resolved config's (they change the numbers);
the device and the launcher (how many processes run a job) do not: the result is meant to be
the same, so switching them keeps every cached job.

A job's output lives in `STUDY_DIR/stages/<stage>/<key[:16]>/` (the data build too: a changed
data config or source gives a new folder, and `STUDY_DIR/data` links to the latest one); a
finished job leaves a `limacot-stage.json` marker there, holding its key, so a rerun skips it. Every key also hashes the limacot
version, so upgrading limacot reruns what it might compute differently.
"""

from __future__ import annotations

import json
import logging
from importlib import metadata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from limacot import __version__
from limacot.data.build import build_key
from limacot.data.config import DataBuildConfig, size_label
from limacot.errors import LimacotInputError
from limacot.eval.catalog import TASKS_DIR
from limacot.generate.prompt_format import prompt_format_of
from limacot.judge.clients import parse_judge_spec
from limacot.models.api import chat_endpoint, is_api_spec, parse_api_spec
from limacot.models.compute import ComputeOptions
from limacot.models.loading import content_identity
from limacot.io.yaml_config import load_config
from limacot.io.fingerprint import input_fingerprint, sha256_json, tree_fingerprint
from limacot.judge.config import JudgeConfig
from limacot.run.config import StudyConfig
from limacot.study.cells import Cell, Pair, expand, pairs
from limacot.study.store import MARKER, JobRow, ResultsStore
from limacot.train.config import TrainConfig, resolve_train_config

log = logging.getLogger(__name__)

GPU_STAGES = ("train", "eval", "generate")  # a reference's generate job excepted (`Job.is_reference`)
REFERENCE_SEED = 0  # a reference answers once, with generation seed 0
NOT_HASHED = {"device"}  # compute settings that place a model without changing its numbers
TRAIN_NOT_HASHED = {"dev_batch_size", "logging_steps", "report_to"}  # train settings that change no weight or answer


@dataclass
class Job:
    stage: str
    key: str
    out: Path
    inputs: dict                      # what the key hashes (saved with the output)
    cell: Cell | None = None
    pair: Pair | None = None
    deps: list["Job"] = field(default_factory=list)
    resumable: bool = False           # runs in place and continues itself (train, generate, judge)

    @property
    def is_reference(self) -> bool:
        """A reference's answers (an API or a file): no model of the study, no GPU, never launched."""
        return bool(self.cell and self.cell.is_reference)

    @property
    def label(self) -> str:
        if self.pair:
            return f"{self.stage} {self.pair.id}"
        return f"{self.stage} {self.cell.id}" if self.cell else self.stage

    def is_done(self) -> bool:
        """The completion marker is there and names this job's key (not an older job's)."""
        try:
            return json.loads((self.out / MARKER).read_text(encoding="utf-8")).get("key") == self.key
        except (OSError, ValueError, AttributeError):
            return False


def _key(stage: str, inputs: dict) -> str:
    return sha256_json({"stage": stage, "inputs": inputs, "limacot": __version__})


class _Backbones:
    """Each backbone spec's content identity, computed once per plan (an `hf:` id costs a hub
    request), and the spec pinned to what was identified: `hf:org/name@<commit>`."""

    def __init__(self) -> None:
        self._identity: dict[str, dict] = {}

    def identity(self, spec: str) -> dict:
        if spec not in self._identity:
            self._identity[spec] = content_identity(spec)
            if self._identity[spec].get("kind") == "hf" and not self._identity[spec].get("commit"):
                log.warning("%s: its revision could not be resolved to a commit (offline and not in the Hugging "
                            "Face cache, or no access); its jobs are keyed by the name, so a change on the hub "
                            "would not be noticed", spec)
        return self._identity[spec]

    def pinned(self, spec: str) -> str:
        identity = self.identity(spec)
        if identity.get("kind") == "hf" and identity.get("commit"):
            return f"hf:{identity['repo_id']}@{identity['commit']}"
        return spec


@dataclass
class Plan:
    config: StudyConfig
    study_dir: Path
    cells: list[Cell]
    jobs: list[Job]
    whole: bool = True                # every cell of the grid (no `--only` left one out)
    notes: list[str] = field(default_factory=list)  # what the plan decided that a reader should know
    sizes: list[str] = field(default_factory=list)  # the training sizes as the cells name them
    show_progress: bool = False       # stages draw progress bars (with time left) on stderr

    def of(self, stage: str) -> list[Job]:
        return [j for j in self.jobs if j.stage == stage]


def build_plan(config: StudyConfig, study_dir: Path, only: Callable[[Cell], bool] = lambda c: True) -> Plan:
    """Every job of the study in dependency order (cells filtered by `only`)."""
    stages = study_dir / "stages"
    data_config = load_config(config.data, DataBuildConfig)
    _check_sizes(config, data_config)
    data_of = _data_jobs(config, data_config, stages)
    jobs, model_of, backbones = list(data_of.values()), {}, _Backbones()
    sizes = [_built_label(size, data_config) for size in config.sizes]
    grid = expand(config.backbones, config.variants, sizes, config.seeds)
    cells = [c for c in grid if only(c)]
    references = [Cell.reference(name) for name in config.references]  # always planned: `only` picks grid cells
    for cell in cells:
        spec = backbones.pinned(config.backbones[cell.backbone])
        if cell.is_base:
            model_of[cell] = (spec, sha256_json(backbones.identity(spec)), None)
            continue
        data = data_of[cell.seed if config.data_seed == "per_seed" else None]
        train_inputs = _train_inputs(config, cell, data, backbones)
        key = _key("train", {k: v for k, v in train_inputs.items() if k != "config"})
        job = Job("train", key, stages / "train" / key[:16], train_inputs, cell, deps=[data], resumable=True)
        jobs.append(job)
        model_of[cell] = (str(job.out / "final"), key, job)
    eval_of, gen_of, numerics = {}, {}, numeric_settings(config.compute)
    eval_data = _eval_data_identity(config)
    harness = eval_harness_identity()
    for cell in cells:
        spec, model_key, producer = model_of[cell]
        deps = [producer] if producer else []
        inputs = {"eval": config.eval.model_dump(mode="json"), "compute": numerics, "model_key": model_key,
                  "model": spec, "harness": harness, **({"eval_data": eval_data} if eval_data else {})}
        eval_of[cell] = _job(stages, "eval", inputs, {k: v for k, v in inputs.items() if k != "model"}, cell, deps)
        jobs.append(eval_of[cell])
        if config.judge:
            inputs = {"prompts": input_fingerprint(config.judge.prompts), "prompts_path": config.judge.prompts,
                      "max_new_tokens": config.judge.max_new_tokens, "greedy": config.judge.greedy,
                      "limit": config.judge.limit, "seed": cell.seed, "compute": numerics, "model_key": model_key,
                      "model": spec}
            gen_of[cell] = _job(stages, "generate", inputs, {k: v for k, v in inputs.items()
                                                             if k not in ("model", "prompts_path")}, cell, deps, True)
            jobs.append(gen_of[cell])
    for ref in references:
        gen_of[ref] = _reference_job(config, ref, stages)
        jobs.append(gen_of[ref])
    judge_identity = _judge_identity(config.judge.judge, backbones) if config.judge else None
    for pair in pairs([c.pair for c in config.comparisons], cells + references):
        a, b = pair
        if not (a.is_reference or b.is_reference):
            compare = {"a": eval_of[a].key, "b": eval_of[b].key}
            jobs.append(_job(stages, "compare", compare, compare, None, [eval_of[a], eval_of[b]], pair=pair))
        if config.judge:
            judge = {"a": gen_of[a].key, "b": gen_of[b].key, "judge": judge_identity, "compute": numerics,
                     **verdict_settings(config.judge)}
            jobs.append(_job(stages, "judge", judge, judge, None, [gen_of[a], gen_of[b]], True, pair=pair))
    if config.grade:
        grading = {"judge": judge_identity, "compute": numerics, "lang": config.judge.lang, "resamples":
                   config.judge.resamples, "seed": config.judge.seed, **config.grade.model_dump()}
        for cell, gen in gen_of.items():
            inputs = {"generate": gen.key, **grading}
            jobs.append(_job(stages, "grade", inputs, inputs, cell, [gen], True))
    notes = _notes(config, data_config) + _prompt_format_notes(config, cells, backbones)
    return Plan(config, study_dir, cells + references, jobs, len(cells) == len(grid), notes, sizes)


def _reference_job(config: StudyConfig, ref: Cell, stages: Path) -> Job:
    """The generate job of a reference: its API model answers the judge's prompts (keyed by the
    model, its endpoint, the prompts' content and the decoding), or its answers file is imported
    (keyed by the file's and the prompts' content). The name is not hashed: content, not names."""
    source, judge = config.references[ref.variant], config.judge
    prompts = {"prompts": input_fingerprint(judge.prompts), "limit": judge.limit}
    if is_api_spec(source):
        _, model, base = parse_api_spec(source, "reference")
        hashed = {**prompts, "model": model, "endpoint": chat_endpoint(base, "reference"),
                  "max_new_tokens": judge.max_new_tokens, "greedy": judge.greedy, "seed": REFERENCE_SEED}
        inputs = {**hashed, "spec": source}
    else:
        hashed = {**prompts, "answers_sha256": input_fingerprint(source)}
        inputs = {**hashed, "answers": source}
    inputs = {"reference": ref.variant, "prompts_path": judge.prompts, **inputs}
    return _job(stages, "generate", inputs, hashed, ref, [], is_api_spec(source))


def _data_jobs(config: StudyConfig, data_config: DataBuildConfig, stages: Path) -> dict[int | None, Job]:
    """The data builds the train jobs read, by data seed: {None: one build} when the study's
    `data_seed` is fixed, else {training seed: a build selecting with that seed}. Each job's
    inputs name the `STUDY_DIR` links to it (`data`, and `data-s<seed>` per seed)."""
    jobs = {}
    for i, seed in enumerate(config.data_seeds()):
        built = data_config if seed is None else data_config.model_copy(update={"seed": seed})
        key = build_key(built)
        links = ["data"] if seed is None else ["data"] * (i == 0) + [f"data-s{seed}"]
        inputs = {"config": config.data, "links": links, **({} if seed is None else {"seed": seed})}
        jobs[seed] = Job("data", key, stages / "data" / key[:16], inputs)
    return jobs


def data_build_config(plan: Plan, job: Job) -> DataBuildConfig:
    """The data config a data job builds: the study's, with the job's selection seed."""
    config = load_config(plan.config.data, DataBuildConfig)
    return config if "seed" not in job.inputs else config.model_copy(update={"seed": job.inputs["seed"]})


def _notes(config: StudyConfig, data_config: DataBuildConfig) -> list[str]:
    """What a reader of the plan should know about its design."""
    compared = {name for c in config.comparisons for name in c.pair}
    notes = [f"reference {name} is in no comparison: its answers are made but judged against nothing"
             for name in config.references if name not in compared]
    if config.data_seed == "fixed" and len(config.seeds) > 1:
        notes.append(f"data_seed fixed: the {len(config.seeds)} training seeds train on the same examples "
                     f"(data config seed {data_config.seed}); seed variance is training randomness only")
    return notes


def _prompt_format_notes(config: StudyConfig, cells: list[Cell], backbones: _Backbones) -> list[str]:
    """How each judged base cell is prompted: a backbone without a chat template answers in the
    plain Question/Answer format (`limacot.generate.prompt_format`), told here rather than found
    out mid-grid."""
    if not config.judge:
        return []
    judge = config.judge.judge
    if parse_judge_spec(judge)[0] != "openai" and _known_format(judge) == "plain":
        raise LimacotInputError(f"judge.judge {judge}: its tokenizer has no chat template, so it is a base model, "
                                "not one that follows the judge's instructions; use an instruction-tuned model or "
                                "an API judge")
    notes = []
    for cell in (c for c in cells if c.is_base):
        spec = backbones.pinned(config.backbones[cell.backbone])
        try:
            plain = prompt_format_of(spec) == "plain"
        except LimacotInputError as err:
            notes.append(f"base {cell.backbone}: cannot tell yet whether it has a chat template ({err}); without "
                         "one it answers the judge's prompts in the plain Question/Answer format")
            continue
        if plain:
            notes.append(f"base {cell.backbone}: no chat template: answers the judge's prompts in the plain "
                         "Question/Answer format (limacot.generate.prompt_format), its fine-tuned cells in their "
                         "chat template")
    return notes


def _known_format(spec: str) -> str | None:
    """`prompt_format_of(spec)`, or None when it cannot be told yet (a hub model not cached)."""
    try:
        return prompt_format_of(spec)
    except LimacotInputError:
        return None


def job_row(job: Job) -> JobRow:
    """The plan's record of `job` in the store's jobs table."""
    return JobRow(label=job.label, key=job.key, stage=job.stage, cell_id=job.cell.id if job.cell else None,
                  a_cell=job.pair.a.id if job.pair else None, b_cell=job.pair.b.id if job.pair else None,
                  deps=[dep.key for dep in job.deps], output=str(job.out))


def record_plan(plan: Plan, store: ResultsStore) -> None:
    """Record the plan's cells and jobs in the store, so the report reads the plan (what never
    started, too) without the study config. A plan of some cells (`--only`) replaces only the
    recorded jobs it plans anew."""
    for cell in plan.cells:
        store.add_cell(cell)
    store.record_plan([job_row(job) for job in plan.jobs], replace=plan.whole)


def _job(stages: Path, stage: str, inputs: dict, hashed: dict, cell, deps, resumable=False, pair=None) -> Job:
    key = _key(stage, hashed)
    return Job(stage, key, stages / stage / key[:16], inputs, cell, pair, deps, resumable)


def numeric_settings(compute: ComputeOptions) -> dict:
    """The compute settings a key hashes: those that change the numbers (not the device)."""
    return compute.model_dump(mode="json", exclude=NOT_HASHED)


def verdict_settings(judge) -> dict:
    """{"settings": ...} with the study's judge settings that change a judgment
    (`JudgeConfig.VERDICT_FIELDS`) where they are not the default, so a study that leaves them
    keeps its keys; {} when all are the default."""
    changed = {key: getattr(judge, key) for key in JudgeConfig.VERDICT_FIELDS
               if getattr(judge, key) != JudgeConfig.model_fields[key].default}
    return {"settings": changed} if changed else {}


def _judge_identity(spec: str, backbones: _Backbones) -> str | dict:
    """An API judge by its spec (model and endpoint), a local judge model by its content."""
    return spec if parse_judge_spec(spec)[0] == "openai" else backbones.identity(spec)


def eval_harness_identity() -> dict:
    """What scores a document besides the model and the data: the task pack's YAMLs (prompts,
    exemplars, metrics) by content, and the lm-eval version that runs them."""
    try:
        lm_eval = metadata.version("lm_eval")
    except metadata.PackageNotFoundError:
        lm_eval = "not installed"
    return {"task_pack": tree_fingerprint(TASKS_DIR), "lm_eval": lm_eval}


def _eval_data_identity(config: StudyConfig) -> str | None:
    """The content of the eval `data_dir` (every file under it), None for hub data."""
    if not config.eval.data_dir:
        return None
    if not Path(config.eval.data_dir).is_dir():
        raise LimacotInputError(f"eval.data_dir {config.eval.data_dir}: not a directory (expected the layout of "
                                "../shared/data: kobest/, kmmlu/, haerae/, ...)")
    return tree_fingerprint(config.eval.data_dir)


def _train_inputs(config: StudyConfig, cell: Cell, data: Job, backbones: _Backbones) -> dict:
    """The resolved train config of a cell (as a dict) plus what identifies its data and model.
    Precedence: the study's `compute` < the preset's own values < overrides < per-backbone overrides."""
    preset = load_config(config.train.preset, TrainConfig)
    values = {**config.compute.model_dump(), **preset.model_dump(exclude_unset=True), **config.train.overrides,
              **config.train.per_backbone.get(cell.backbone, {}),
              "model": backbones.pinned(config.backbones[cell.backbone]), "seed": cell.seed,
              "data": str(data.out / cell.variant / cell.size / "train.jsonl")}
    resolved = resolve_train_config(TrainConfig.model_validate(values))
    hashed = resolved.model_dump(mode="json", exclude={"data", "model", *NOT_HASHED, *TRAIN_NOT_HASHED})
    return {"config": resolved.model_dump(mode="json"), "hashed": hashed, "data_key": data.key,
            "variant": cell.variant, "size": cell.size, "model": backbones.identity(resolved.model),
            "files": _train_file_contents(resolved, backbones)}


def _train_file_contents(config: TrainConfig, backbones: _Backbones) -> dict:
    """The content of the files a train job reads besides its data and model (dev prompts and
    data, the accelerate config, the selection judge's reference answers and a local selection
    judge), so that a changed file retrains instead of being served from cache."""
    files = {key: getattr(config, key) for key in ("dev_prompts", "dev_data", "accelerate_config")}
    judge = config.selection_judge
    if judge is not None:
        files["selection_judge.reference"] = judge.reference
    contents = {key: _content(path) for key, path in files.items() if path}
    if judge is not None and parse_judge_spec(judge.judge)[0] != "openai":
        contents["selection_judge.judge"] = backbones.identity(judge.judge)
    return contents


def _content(path: str) -> str:
    """A file by its bytes, a folder by every file under it (`limacot.io.fingerprint`)."""
    return tree_fingerprint(path) if Path(path).is_dir() else input_fingerprint(path)


def _built_label(size, data_config: DataBuildConfig) -> str:
    """A study size as the data build names its folder: a size spelled as counts takes the data
    config's label, whatever order the study lists the sources in."""
    built = [s for v in data_config.variants for s in data_config.sizes_for(v)]
    return size_label(next((s for s in built if s == size), size))


def _check_sizes(config: StudyConfig, data_config) -> None:
    """Every fine-tuned variant and size of the study must be built by its data config."""
    for variant in (v for v in config.variants if v != "base"):
        if variant not in data_config.variants:
            raise LimacotInputError(f"study variant '{variant}' is not a variant of the data config {config.data} "
                                    f"(it has {sorted(data_config.variants)})")
        built = data_config.sizes_for(variant)
        missing = [size_label(s) for s in config.sizes if s not in built]
        built = [size_label(s) for s in built]
        if missing:
            raise LimacotInputError(f"study sizes {missing} are not built for variant '{variant}' by {config.data} "
                                    f"(its sizes: {built})")
