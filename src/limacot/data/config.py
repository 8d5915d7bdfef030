"""`limacot data build` configuration: sources, variants (mixtures), nested sizes, dedup and
decontamination (a `limacot.io.yaml_config.StrictModel`)."""

from __future__ import annotations

from typing import ClassVar, Literal, Union

from pydantic import (
    Field,
    field_validator,
    model_validator,
)

from limacot.io.yaml_config import (
    StrictModel,
    is_local_path,
    missing_file,
)

Size = Union[int, Literal["all"]]
MixAmount = Union[int, float, Literal["all"]]


class SourceConfig(StrictModel):
    """One input file (or hf: dataset) and how to read it.

    `include` / `exclude` filter the file's rows (after `columns`) by a field's value, compared
    as strings: `include: {source: [stackexchange, wikihow, writingprompts, authors, nlp]}` keeps
    LIMA's 1,000 single-turn examples and drops its 30 `multi_turn` rows. A row without the field
    is dropped too; every dropped row is counted in the dataset card.
    """

    path: str
    format: Literal["lima", "sharegpt", "messages", "alpaca", "kocot"] | None = None
    columns: dict[str, str] = Field(default_factory=dict, description="our field -> the file's column")
    cot_style: str = "ko"
    include: dict[str, list[str]] = Field(default_factory=dict, description="row field -> the values kept")
    exclude: dict[str, list[str]] = Field(default_factory=dict, description="row field -> the values dropped")

    @field_validator("include", "exclude", mode="before")
    @classmethod
    def _values_as_strings(cls, filters: object) -> object:
        """YAML reads `[2, true]` as a number and a bool; rows are compared as strings."""
        if not isinstance(filters, dict):
            return filters
        return {name: [str(v) if isinstance(v, (int, float, bool)) else v for v in values]
                if isinstance(values, list) else values for name, values in filters.items()}

    @field_validator("include", "exclude")
    @classmethod
    def _some_values(cls, filters: dict[str, list[str]], info) -> dict[str, list[str]]:
        empty = [name for name, values in filters.items() if not values]
        if empty:
            raise ValueError(f"{empty[0]}: expected at least one value, e.g. {info.field_name}: "
                             f"{{{empty[0]}: [wikihow]}}")
        return filters


class DedupConfig(StrictModel):
    exact: bool = True
    near: bool = False
    threshold: float = Field(0.8, gt=0, le=1, description="MinHash Jaccard threshold")
    num_perm: int = Field(128, ge=16)
    shingle_size: int = Field(5, ge=1, description="character shingle length")


class DecontaminationConfig(StrictModel):
    eval_files: dict[str, str] = Field(default_factory=dict, description="eval set name -> file")
    ngram: int = Field(13, ge=2)
    min_words: int = Field(8, ge=1)
    remove: bool = False


def check_sizes(sizes: list) -> list:
    """Training set sizes: each a count >= 1 or 'all', none given twice (two equal sizes would
    build the same file twice; a size 0 would write an empty training file)."""
    seen: set = set()
    for size in sizes:
        if size != "all" and size < 1:
            raise ValueError(f"size {size} is not a number of records >= 1 (or 'all')")
        if size in seen:
            raise ValueError(f"size {size} is given twice in {sizes}; give each size once")
        seen.add(size)
    return sizes


class VariantConfig(StrictModel):
    """A data variant: a mixture of sources (counts, 'all', or ratios summing to 1)."""

    mix: dict[str, MixAmount]
    sizes: list[Size] | None = None

    @field_validator("mix")
    @classmethod
    def _non_empty(cls, mix: dict) -> dict:
        if not mix:
            raise ValueError("a variant needs at least one source in `mix`")
        ratios = {name: v for name, v in mix.items() if isinstance(v, float)}
        if ratios and len(ratios) != len(mix):
            raise ValueError(f"{mix} mixes ratios (floats) with counts (integers or 'all'); use one kind")
        if ratios and (min(ratios.values()) < 0 or abs(sum(ratios.values()) - 1) > 1e-6):
            raise ValueError(f"ratios {ratios} must be >= 0 and sum to 1 (they sum to {sum(ratios.values()):.6g})")
        for name, value in mix.items():
            if isinstance(value, int) and value < 1:
                raise ValueError(f"{name}: {value} is not a count of records >= 1 (or 'all', or a ratio)")
        return mix

    @field_validator("sizes")
    @classmethod
    def _sizes(cls, sizes: list | None) -> list | None:
        if sizes is not None and not sizes:
            raise ValueError("expected at least one size (or leave `sizes` out to use the top-level sizes)")
        return sizes if sizes is None else check_sizes(sizes)


class DataBuildConfig(StrictModel):
    """`limacot data build`: sources -> dedup -> decontamination -> variants x sizes."""

    PATH_FIELDS: ClassVar[tuple[str, ...]] = ("sources.*.path", "decontamination.eval_files.*")

    sources: dict[str, SourceConfig]
    variants: dict[str, VariantConfig]
    sizes: list[Size] = Field(default_factory=lambda: ["all"])
    seed: int = Field(0, description="seed of the random selection (sizes and mixtures)")
    stratify: bool = True
    skip_bad: bool = Field(False, description="skip malformed records and count them")
    cot_styles: dict[str, str] = Field(default_factory=dict)
    dedup: DedupConfig = Field(default_factory=DedupConfig)
    decontamination: DecontaminationConfig | None = None

    @field_validator("sources", "variants")
    @classmethod
    def _at_least_one(cls, value: dict, info) -> dict:
        if not value:
            example = "lima: {path: lima.jsonl}" if info.field_name == "sources" else "lima: {mix: {lima: all}}"
            raise ValueError(f"expected at least one entry, e.g. {info.field_name}: {{{example}}}")
        return value

    @field_validator("sizes")
    @classmethod
    def _sizes(cls, sizes: list) -> list:
        if not sizes:
            raise ValueError("expected at least one size, e.g. sizes: [all] or sizes: [250, 500]")
        return check_sizes(sizes)

    @model_validator(mode="after")
    def _variants_name_known_sources(self) -> "DataBuildConfig":
        for name, variant in self.variants.items():
            unknown = sorted(set(variant.mix) - set(self.sources))
            if unknown:
                raise ValueError(f"variants.{name}.mix: names unknown source(s) {unknown}; "
                                 f"defined sources: {sorted(self.sources)}")
            if any(isinstance(v, float) for v in variant.mix.values()) and \
                    not any(s != "all" for s in self.sizes_for(name)):
                raise ValueError(f"variants.{name}: a ratio mix needs a numeric size (the total the ratios "
                                 f"split); its sizes are {self.sizes_for(name)}")
        return self

    @model_validator(mode="after")
    def _input_files_exist(self) -> "DataBuildConfig":
        """Every local input is a file now, before any of them is read (hf: specs are checked when fetched)."""
        inputs = {f"sources.{name}.path": src.path for name, src in self.sources.items()}
        if self.decontamination:
            inputs.update({f"decontamination.eval_files.{name}": path
                           for name, path in self.decontamination.eval_files.items()})
        problems = [f"{key}: {why}" for key, path in inputs.items()
                    if is_local_path(path) and (why := missing_file(path))]
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def sizes_for(self, variant: str) -> list[Size]:
        return self.variants[variant].sizes or self.sizes
