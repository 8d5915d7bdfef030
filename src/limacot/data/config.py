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

Count = Union[int, Literal["all"]]
Mixture = dict[str, Count]
Size = Union[int, Literal["all"], Mixture]
MixAmount = Union[int, float, Literal["all"]]


def size_label(size: Size) -> str:
    """The name of a training set size, and its output folder `OUT/<variant>/<label>/`:
    250 -> '250', 'all' -> 'all', {lima: 1000, kocot: 2000} -> 'lima-1000+kocot-2000'
    (the counts in the order given; {lima: all} -> 'lima-all')."""
    if isinstance(size, dict):
        return "+".join(f"{name}-{count}" for name, count in size.items())
    return str(size)


class SourceConfig(StrictModel):
    """One input file (or hf: dataset) and how to read it.

    `include` / `exclude` filter the file's rows (after `columns`) by a field's value, compared
    as strings: `include: {source: [stackexchange, wikihow, writingprompts, authors, nlp]}` keeps
    LIMA's 1,000 single-turn examples and drops its 30 `multi_turn` rows. A row without the field
    is dropped too; every dropped row is counted in the dataset card.

    `twin_of: kocot` makes this source the same file as source `kocot` read in another CoT
    style (same path, format, columns and filters): its records pair with kocot's row by row,
    and dedup, decontamination and selection keep the pairs together, so a variant built from
    the twin holds exactly the questions of the one built from kocot.
    """

    path: str
    format: Literal["lima", "sharegpt", "messages", "alpaca", "kocot"] | None = None
    columns: dict[str, str] = Field(default_factory=dict, description="our field -> the file's column")
    cot_style: str = "ko"
    include: dict[str, list[str]] = Field(default_factory=dict, description="row field -> the values kept")
    exclude: dict[str, list[str]] = Field(default_factory=dict, description="row field -> the values dropped")
    twin_of: str | None = Field(None, description="the source this one reads in another CoT style")

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
    """Exact and near-duplicate removal. `groups` names sets of sources deduplicated among
    themselves only: records of different groups are never compared. None: all sources form one
    group. A source in no group forms its own group (with its twins, which always go with
    their source)."""

    exact: bool = True
    near: bool = False
    threshold: float = Field(0.8, gt=0, le=1, description="MinHash Jaccard threshold")
    num_perm: int = Field(128, ge=16)
    shingle_size: int = Field(5, ge=1, description="character shingle length")
    groups: list[list[str]] | None = Field(None, description="sources deduplicated together (default: all)")


class DecontaminationConfig(StrictModel):
    """Overlap of the training pool with eval sets (`limacot.data.contamination`). `eval_files`
    are any file `limacot data inspect` reads (JSONL, JSON array, CSV, TSV, Parquet, hf:).

    mode `word`: shared runs of `ngram` words; eval texts of fewer than `min_words` words are too
    short to check. mode `char`: shared runs of `char_ngram` characters of the text without
    whitespace and punctuation; texts of fewer than `min_chars` are too short. The char defaults
    follow Korean: the KoBEST, KMMLU and HAE-RAE texts average 2.5-3.3 characters per word
    (without spaces), so 40 characters are about 13 Korean words (about 11 English ones), and
    20 characters about 6-8 Korean words: a 5-word KoBEST item never reaches 13 words, while
    its 20 characters are specific enough to count as a copy when found whole.
    """

    eval_files: dict[str, str] = Field(default_factory=dict, description="eval set name -> file")
    mode: Literal["word", "char"] = Field("word", description="compare word n-grams or character n-grams")
    ngram: int = Field(13, ge=2, description="word mode: words in a shared run")
    min_words: int = Field(8, ge=1, description="word mode: shorter eval texts are too short to check")
    char_ngram: int = Field(40, ge=2, description="char mode: characters in a shared run")
    min_chars: int = Field(20, ge=1, description="char mode: shorter eval texts are too short to check")
    remove: bool = False

    @model_validator(mode="after")
    def _minimum_within_ngram(self) -> "DecontaminationConfig":
        for low, high in (("min_words", "ngram"), ("min_chars", "char_ngram")):
            if getattr(self, low) > getattr(self, high):
                raise ValueError(f"{low}: expected at most {high} ({getattr(self, high)}), got {getattr(self, low)} "
                                 f"(a shorter eval text must appear whole; a longer one shares a run of {high})")
        return self


def check_sizes(sizes: list) -> list:
    """Training set sizes: each a count >= 1, 'all', or counts per source ({lima: 1000, kocot:
    2000}, each >= 1 or 'all'), none given twice (by `size_label`: two equal sizes would build
    the same file twice; a size 0 would write an empty training file)."""
    seen: set = set()
    for size in sizes:
        label = size_label(size)
        if isinstance(size, dict):
            _check_mixture(size)
        elif size != "all" and size < 1:
            raise ValueError(f"size {size} is not a number of records >= 1 (or 'all')")
        if label in seen:
            raise ValueError(f"size {label} is given twice in {[size_label(s) for s in sizes]}; give each size once")
        seen.add(label)
    return sizes


def _check_mixture(size: dict) -> None:
    if not size:
        raise ValueError("a size given as counts per source names no source; expected e.g. {lima: 1000, kocot: 2000}")
    for name, count in size.items():
        if not name or "/" in name:
            raise ValueError(f"size {size_label(size)}: {name!r} is not a source name (it names the output folder)")
        if count != "all" and count < 1:
            raise ValueError(f"size {size_label(size)}: {name}: {count} is not a count of records >= 1 (or 'all')")


class VariantConfig(StrictModel):
    """A data variant: a mixture of sources (counts, 'all', or ratios summing to 1).

    Its sizes (its own, or the top-level ones) are integer sizes, nested prefixes of one seeded
    order of the mix, 'all' (the whole mix), or counts per source (a mixture size such as
    {lima: 1000, kocot: 2000}), which replace the counts or ratios of `mix` for that size:
    each source of the mix takes the count the size gives its name (a twin answers to its
    primary's name), and a source the size does not name takes none.
    """

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


TWIN_SAME = ("path", "format", "columns", "include", "exclude")  # what a twin shares with its source


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
    def _twins_read_their_source(self) -> "DataBuildConfig":
        """A twin names a source that is no twin, and reads its file the same way."""
        for name, src in self.sources.items():
            if src.twin_of is None:
                continue
            key = f"sources.{name}.twin_of"
            primary = self.sources.get(src.twin_of)
            if primary is None or src.twin_of == name:
                raise ValueError(f"{key}: expected another source's name; defined sources: {sorted(self.sources)}")
            if primary.twin_of is not None:
                raise ValueError(f"{key}: {src.twin_of} is itself a twin (of {primary.twin_of}); name "
                                 f"{primary.twin_of} instead")
            for field in TWIN_SAME:
                if getattr(src, field) != getattr(primary, field):
                    raise ValueError(f"{key}: a twin reads the same rows as its source, so sources.{name}.{field} "
                                     f"must equal sources.{src.twin_of}.{field} ({getattr(primary, field)!r}; "
                                     f"got {getattr(src, field)!r})")
        return self

    @model_validator(mode="after")
    def _variants_name_known_sources(self) -> "DataBuildConfig":
        for name, variant in self.variants.items():
            unknown = sorted(set(variant.mix) - set(self.sources))
            if unknown:
                raise ValueError(f"variants.{name}.mix: names unknown source(s) {unknown}; "
                                 f"defined sources: {sorted(self.sources)}")
            by_primary: dict[str, str] = {}
            for source in variant.mix:
                other = by_primary.setdefault(self.primary_of(source), source)
                if other != source:
                    raise ValueError(f"variants.{name}.mix: {other} and {source} are twins (the same questions in "
                                     f"two CoT styles); a variant takes one of them")
            if any(isinstance(v, float) for v in variant.mix.values()) and \
                    not any(isinstance(s, int) for s in self.sizes_for(name)):
                raise ValueError(f"variants.{name}: a ratio mix needs an integer size (the total the ratios "
                                 f"split); its sizes are {[size_label(s) for s in self.sizes_for(name)]}")
        return self

    @model_validator(mode="after")
    def _mixture_sizes_name_sources(self) -> "DataBuildConfig":
        """A size given as counts names sources (not twins) and at least one source of each variant
        it applies to."""
        where = {name: f"variants.{name}.sizes" if v.sizes else "sizes" for name, v in self.variants.items()}
        for variant, key in where.items():
            for size in (s for s in self.sizes_for(variant) if isinstance(s, dict)):
                for source in size:
                    if source not in self.sources:
                        raise ValueError(f"{key}: size {size_label(size)} names unknown source '{source}'; "
                                         f"defined sources: {sorted(self.sources)}")
                    if self.sources[source].twin_of:
                        raise ValueError(f"{key}: size {size_label(size)} names the twin '{source}'; a size counts "
                                         f"questions, so name its source '{self.sources[source].twin_of}' (a twin "
                                         f"takes its source's count)")
                if not self.size_mix(variant, size):
                    raise ValueError(f"{key}: size {size_label(size)} names none of the sources of variant "
                                     f"'{variant}' ({sorted({self.primary_of(s) for s in self.variants[variant].mix})})")
        return self

    @model_validator(mode="after")
    def _dedup_groups(self) -> "DataBuildConfig":
        groups = self.dedup.groups
        if groups is None:
            return self
        placed: dict[str, int] = {}
        for i, group in enumerate(groups):
            if not group:
                raise ValueError(f"dedup.groups[{i}]: expected at least one source name")
            for source in group:
                if source not in self.sources:
                    raise ValueError(f"dedup.groups[{i}]: unknown source '{source}'; defined sources: "
                                     f"{sorted(self.sources)}")
                if source in placed:
                    raise ValueError(f"dedup.groups[{i}]: source '{source}' is already in dedup.groups[{placed[source]}]; "
                                     f"a source belongs to one group")
                placed[source] = i
        for name, src in self.sources.items():
            if src.twin_of and placed.get(name) != placed.get(src.twin_of):
                raise ValueError(f"dedup.groups: '{name}' is the twin of '{src.twin_of}' and is deduplicated with it: "
                                 f"put both in one group (or leave both out)")
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

    def primary_of(self, source: str) -> str:
        """The source a twin reads its rows with (a source that is no twin: itself)."""
        return self.sources[source].twin_of or source

    def twins_of(self, source: str) -> list[str]:
        return [name for name, src in self.sources.items() if src.twin_of == source]

    def size_mix(self, variant: str, size: Size) -> dict[str, MixAmount]:
        """What `variant` draws from each of its sources at `size`: its own `mix` for an integer size
        or 'all'; for counts per source, the count each source's name (its primary's, for a twin)
        is given, sources not named left out."""
        mix = self.variants[variant].mix
        if not isinstance(size, dict):
            return dict(mix)
        return {source: size[self.primary_of(source)] for source in mix if self.primary_of(source) in size}

    def dedup_groups(self) -> list[list[str]]:
        """The sets of sources deduplicated together, each in `sources` order: `dedup.groups`, then
        every source in no group (with its twins) as a group of its own; all sources when None."""
        if self.dedup.groups is None:
            return [list(self.sources)]
        listed = {name for group in self.dedup.groups for name in group}
        alone = [[name, *(t for t in self.twins_of(name) if t not in listed)] for name, src in self.sources.items()
                 if name not in listed and src.twin_of is None]
        order = list(self.sources)
        return [sorted(group, key=order.index) for group in [*self.dedup.groups, *alone]]
