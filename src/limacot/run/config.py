"""`limacot run` configuration: the experiment grid and each stage's settings.

    name: seed-study
    description: LIMA vs LIMA+CoT on two backbones   # the report opens with it
    backbones: {llama2-7b: hf:meta-llama/Llama-2-7b-hf, llama3-8b: hf:meta-llama/Meta-Llama-3-8B}
    data: data/seed-study.yaml            # a `limacot data build` config
    variants: [base, lima, lima+cot, cot] # base = the backbone without fine-tuning
    sizes: [250, 500, 1000]
    seeds: [0]
    train: {preset: train/lima-llama3-8b.yaml, overrides: {epochs: 15}}
    eval: {tasks: [seed-study], num_fewshot: 5}   # `limacot eval` settings, less the model
    judge: {prompts: ../examples/data/dev_prompts.jsonl, judge: "openai:gpt-4o"}  # generate + judge settings
    references:                           # reference systems: answers judged against the cells
      gpt-4o: openai:gpt-4o               # an OpenAI-compatible model (openai:MODEL[@BASE_URL]), or
      lima-paper: lima-65b-answers.jsonl  # answers made elsewhere: {id, answer[, prompt]} per line
    comparisons:                          # (A, B): B - A; `asks` says what the pair measures
      - [base, lima]
      - {a: lima+answer-only, b: lima+cot, asks: "the rationale (same KoCoT questions)"}
      - [gpt-4o, lima]                    # a reference as A: judged against every lima cell
    grade: {samples: 1}                   # also grade every judged cell's answers 1-6 (LIMA's scale) with the judge
    data_seed: fixed                      # or per_seed: training seed s selects its data with seed s
    compute: {dtype: bfloat16}            # device / dtype / attention for every stage (see below)
    launcher: {kind: local, processes: auto}

`compute` (`limacot.models.compute.ComputeOptions`) places and types the models of eval, generate, a
local judge and train. For a train job, its train preset's own explicit values win over it, and
`train.overrides` then `train.per_backbone` win over both:
study `compute` < preset < `train.overrides` < `train.per_backbone`.

A reference answers `judge.prompts` once (`limacot generate` with the study's judge decoding, seed
0; an API reference is asked with the judge's `api_key_env`, `concurrency`, timeouts and retries),
or its file is imported (`limacot.generate.imported`). A comparison that names a reference pairs it
with every cell of the other side (`limacot.study.cells.pairs`); it is judged, never evaluated.

`launcher.processes` > 1 runs each train, eval and generate job as one
`accelerate launch --num_processes N` (see `limacot.run.launch`); `auto` is one process per
visible CUDA GPU (1 without GPUs, or when `compute.device` is cpu).
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal, Union

from pydantic import Field, ValidationError, field_validator, model_validator

from limacot.models.compute import ComputeOptions
from limacot.data.config import Size, check_sizes
from limacot.eval.config import EvalConfig
from limacot.generate.config import GenerateConfig
from limacot.io.yaml_config import StrictModel, is_local_path, load_config, missing_file, model_part
from limacot.judge.absolute import GradeConfig
from limacot.judge.config import JudgeConfig
from limacot.io.config_errors import describe_errors
from limacot.errors import LimacotInputError
from limacot.data.files import check_readable
from limacot.models.api import chat_endpoint, is_api_spec, parse_api_spec
from limacot.models.loading import resolve_model_spec
from limacot.study.cells import BASE, REFERENCE
from limacot.train.config import TrainConfig

SET_BY_STUDY = {"model": "backbones", "seed": "seeds", "data": "data, variants and sizes"}
TRAIN_FILES = ("dev_prompts", "dev_data", "accelerate_config")  # train settings that name a file


def check_train_overrides(values: dict) -> dict:
    """Train config values given by a study: each a `limacot train` key with a valid value, and
    none of the keys the study sets per cell itself (model, seed, data)."""
    valid = [key for key in TrainConfig.model_fields if key not in SET_BY_STUDY]
    for key in values:
        if key in SET_BY_STUDY:
            raise ValueError(f"{key}: set per cell by the study's {SET_BY_STUDY[key]}; remove it here")
        if key not in valid:
            raise ValueError(f"{key}: not a `limacot train` setting; valid keys: {', '.join(valid)}")
    try:
        TrainConfig.model_validate(values)
    except ValidationError as err:
        raise ValueError(describe_errors(err, TrainConfig)) from None
    return values


def reference_problem(source: str) -> str | None:
    """Why `source` cannot be a reference (None when it can): an `openai:MODEL[@BASE_URL]` spec
    with a usable URL, or an answers file that can be read (a local file, or an hf: hub file)."""
    try:
        if is_api_spec(source):
            chat_endpoint(parse_api_spec(source, "reference")[2], "reference")
        elif source.startswith("hf:") or Path(source).is_file():
            check_readable(source)
        else:
            return (f"{source}: expected openai:MODEL[@BASE_URL] or a file of answers ({{id, answer}} per line), "
                    f"and there is no such file" + (" (it is a folder)" if Path(source).is_dir() else ""))
    except LimacotInputError as err:
        return str(err)
    return None


def _unique(values: list, what: str) -> list:
    seen = []
    for value in values:
        if value in seen:
            raise ValueError(f"{what} {value!r} is given twice in {values}; give each once")
        seen.append(value)
    return values


class TrainSettings(StrictModel):
    preset: str = Field(description="a `limacot train` YAML")
    overrides: dict = Field(default_factory=dict, description="train config values for every cell")
    per_backbone: dict[str, dict] = Field(default_factory=dict, description="backbone name -> extra overrides")

    @field_validator("overrides")
    @classmethod
    def _overrides(cls, overrides: dict) -> dict:
        return check_train_overrides(overrides)

    @field_validator("per_backbone")
    @classmethod
    def _per_backbone(cls, per_backbone: dict[str, dict]) -> dict[str, dict]:
        for name, values in per_backbone.items():
            try:
                check_train_overrides(values)
            except ValueError as err:
                raise ValueError(f"{name}: {err}") from None
        return per_backbone


# A study's `eval:` and `judge:` are the stage configs' own fields (types, limits, defaults), less
# what the study sets per cell (the model, the generation seed) or once for all (`compute:`).
# `eval:` keeps the settings an eval job's key has always hashed (limacot.run.plan).
STUDY_EVAL = ("tasks", "num_fewshot", "limit", "data_dir", "backend", "fewshot_seeds", "batch_size")
STUDY_GENERATION = ("prompts", "max_new_tokens", "greedy", "limit", "batch_size")
STUDY_JUDGE = tuple(key for key in JudgeConfig.model_fields if key not in ComputeOptions.model_fields and key != "cache")

EvalSettings = model_part("EvalSettings", EvalConfig, STUDY_EVAL,
                          doc="`limacot eval` settings every cell is evaluated with (limacot.eval.config).")
JudgeSettings = model_part(
    "JudgeSettings", JudgeConfig, STUDY_JUDGE, doc="How every cell answers the prompts (`limacot generate`) and "
    "how each compared pair is judged (`limacot judge`).",
    base=model_part("StudyGeneration", GenerateConfig, STUDY_GENERATION, defaults={"batch_size": 8}))
GradeSettings = model_part(
    "GradeSettings", GradeConfig, ("samples", "max_tokens"),
    doc="Absolute grading (`limacot judge grade`, LIMA's 1-6 helpfulness scale) of every cell's answers to the "
        "judge's prompts, references included, by the study's judge (its spec, lang, key, concurrency, resamples "
        "and seed): `samples` replies per answer, each at most `max_tokens`.")


class Comparison(StrictModel):
    """Two variants compared: B against A (B - A), and what the pair measures, in words."""

    a: str
    b: str
    asks: str | None = Field(None, description="what B vs A measures, e.g. 'the rationale'")

    @model_validator(mode="before")
    @classmethod
    def _from_pair(cls, value):
        """[A, B] is short for {a: A, b: B}."""
        if isinstance(value, (list, tuple)):
            if len(value) != 2:
                raise ValueError(f"expected a pair [A, B] of variant names, got {list(value)}")
            return {"a": value[0], "b": value[1]}
        return value

    @property
    def pair(self) -> tuple[str, str]:
        return (self.a, self.b)


class LauncherSettings(StrictModel):
    kind: Literal["local", "slurm"] = Field("local", description="local: on this machine; slurm: sbatch scripts",
                                            json_schema_extra={"flag": "--launcher"})
    processes: Union[int, Literal["auto"]] = Field(1, description="processes per train/eval/generate job, or "
                                                   "auto: one per visible CUDA GPU")

    @field_validator("processes")
    @classmethod
    def _positive(cls, value: int | str) -> int | str:
        if value != "auto" and value < 1:
            raise ValueError(f"expected a number of processes >= 1 or auto, got {value}")
        return value


class StudyConfig(StrictModel):
    PATH_FIELDS: ClassVar[tuple[str, ...]] = ("data", "train.preset", "eval.data_dir", "judge.prompts",
                                              "judge.judge", "backbones.*", "references.*",
                                              *(f"train.overrides.{key}" for key in TRAIN_FILES),
                                              *(f"train.per_backbone.*.{key}" for key in TRAIN_FILES),
                                              *(f"train.{where}.selection_judge.{key}"
                                                for where in ("overrides", "per_backbone.*")
                                                for key in ("reference", "judge")))

    name: str = "study"
    description: str | None = Field(None, description="what the study is and what a reader must know (settings "
                                    "that depart from the paper, what to look at); the report opens with it")
    backbones: dict[str, str]
    data: str
    variants: list[str]
    sizes: list[Size]
    seeds: list[int] = Field(default_factory=lambda: [0])
    data_seed: Literal["fixed", "per_seed"] = Field(
        "fixed", description="fixed: every training seed trains on the data config's selection; per_seed: "
        "training seed s trains on data selected with seed s (one data build per seed)")
    train: TrainSettings
    eval: EvalSettings
    judge: JudgeSettings | None = None
    references: dict[str, str] = Field(default_factory=dict, description="reference system name -> "
                                       "openai:MODEL[@BASE_URL] or a file of answers ({id, answer} per line)")
    comparisons: list[Comparison] = Field(default_factory=list, description="(A, B) pairs of variants or "
                                          "references: B - A")
    grade: GradeSettings | None = Field(None, description="grade every cell's answers 1-6 with the judge")
    compute: ComputeOptions = Field(default_factory=ComputeOptions, description="device / dtype / attention")
    launcher: LauncherSettings = Field(default_factory=LauncherSettings)

    @field_validator("backbones")
    @classmethod
    def _some_backbone(cls, backbones: dict) -> dict:
        if not backbones:
            raise ValueError("expected at least one backbone, e.g. backbones: {smollm2-135m: embedded}")
        if REFERENCE in backbones:
            raise ValueError(f"'{REFERENCE}' is the backbone name of the reference systems' cells; name this "
                             "backbone otherwise")
        return backbones

    @field_validator("references")
    @classmethod
    def _reference_sources(cls, references: dict[str, str]) -> dict[str, str]:
        for name, source in references.items():
            if not name.strip() or "/" in name:
                raise ValueError(f"{name!r}: a reference name is a non-empty word without '/' (it names a cell)")
            if (why := reference_problem(source)):
                raise ValueError(f"{name}: {why}")
        _unique(list(references.values()), "reference source")
        return references

    @field_validator("variants", "seeds")
    @classmethod
    def _unique_entries(cls, values: list, info) -> list:
        if not values:
            raise ValueError(f"expected at least one entry in {info.field_name}")
        return _unique(values, info.field_name.removesuffix("s"))

    @field_validator("sizes")
    @classmethod
    def _sizes(cls, sizes: list) -> list:
        return check_sizes(sizes)

    @field_validator("comparisons")
    @classmethod
    def _distinct_pairs(cls, comparisons: list[Comparison]) -> list[Comparison]:
        for comparison in comparisons:
            if comparison.a == comparison.b:
                raise ValueError(f"({comparison.a}, {comparison.b}) compares a variant with itself")
        _unique([c.pair for c in comparisons], "comparison")
        return comparisons

    @model_validator(mode="after")
    def _sizes_for_fine_tuning(self) -> "StudyConfig":
        if not self.sizes and any(v != BASE for v in self.variants):
            raise ValueError(f"sizes: expected at least one size for the fine-tuned variants "
                             f"{[v for v in self.variants if v != BASE]}")
        unknown = sorted(set(self.train.per_backbone) - set(self.backbones))
        if unknown:
            raise ValueError(f"train.per_backbone: {unknown} are not backbones of this study "
                             f"(its backbones: {sorted(self.backbones)})")
        return self

    @model_validator(mode="after")
    def _inputs_exist(self) -> "StudyConfig":
        """The files the study names exist and each backbone is a model spec, checked when the
        config loads (not hours later, when the stage that reads one starts)."""
        files = {"data": self.data, "train.preset": self.train.preset,
                 "judge.prompts": self.judge and self.judge.prompts}
        problems = [f"{key}: {why}" for key, path in files.items()
                    if path and is_local_path(path) and (why := missing_file(path))]
        if self.eval.data_dir and not Path(self.eval.data_dir).is_dir():
            problems.append(f"eval.data_dir: {self.eval.data_dir} is not a folder (expected the eval files' folder)")
        for name, spec in self.backbones.items():
            try:
                resolve_model_spec(spec)
            except LimacotInputError as err:
                problems.append(f"backbones.{name}: {err}")
        if not problems and any(v != BASE for v in self.variants):
            problems = self._train_files_missing()
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def _train_files_missing(self) -> list[str]:
        """The files each backbone's train config names (dev prompts, dev data, accelerate config),
        which a train job reads only once it runs (the dev prompts after training), each named by
        the key that gave it: the preset, `train.overrides` or `train.per_backbone.<name>`."""
        preset = load_config(self.train.preset, TrainConfig)  # its own errors name the preset file
        problems: list[str] = []
        for name in self.backbones:
            layers = [(f"train.preset {self.train.preset}: ", preset.model_dump(exclude_unset=True)),
                      ("train.overrides.", self.train.overrides),
                      (f"train.per_backbone.{name}.", self.train.per_backbone.get(name, {}))]
            for key in TRAIN_FILES:
                given = [(where, values[key]) for where, values in layers if key in values]
                where, value = given[-1] if given else (None, None)  # the last layer wins
                if isinstance(value, str) and is_local_path(value) and (why := missing_file(value)):
                    problems.append(f"{where}{key}: {why}")
        return list(dict.fromkeys(problems))

    @model_validator(mode="after")
    def _comparisons_name_variants(self) -> "StudyConfig":
        clash = [name for name in self.references if name in self.variants]
        if clash:
            raise ValueError(f"references: {clash} are also variants; a reference needs a name of its own (a "
                             "comparison must say which one it means)")
        if self.references and not self.judge:
            raise ValueError(f"references: {sorted(self.references)} answer the judge's prompts and are judged "
                             "against the cells; add a judge: section (prompts, judge)")
        if self.grade and not self.judge:
            raise ValueError("grade: the judge grades the answers to its prompts; add a judge: section (prompts, "
                             "judge)")
        for comparison in self.comparisons:
            for name in comparison.pair:
                if name not in self.variants and name not in self.references:
                    known = f" or references {list(self.references)}" if self.references else ""
                    raise ValueError(f"comparison ({comparison.a}, {comparison.b}) names '{name}', which is not "
                                     f"in variants {self.variants}{known}")
        return self

    def data_seeds(self) -> list[int | None]:
        """The seeds data builds select with: [None] (the data config's own seed) when fixed, else
        the training seeds."""
        return list(self.seeds) if self.data_seed == "per_seed" else [None]

    @model_validator(mode="after")
    def _one_gpu_per_process(self) -> "StudyConfig":
        if ":" in self.compute.device and self.launcher.processes != 1:
            raise ValueError(f"compute.device {self.compute.device} pins every process to one GPU; with "
                             f"launcher.processes {self.launcher.processes} use device cuda or auto (one GPU "
                             "per process)")
        return self
