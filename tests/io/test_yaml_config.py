"""One config pattern: a command's YAML, then the flags that were given, validated once against
its model; every error names where the bad value came from (the file and key, or the flag)."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

import pytest
from pydantic import AfterValidator, Field, ValidationError, model_validator

from limacot.errors import LimacotInputError
from limacot.io.cli_common import config_flag
from limacot.io.yaml_config import StrictModel, flag_name, load_config, model_part


def _lower(value: str) -> str:
    if value != value.lower():
        raise ValueError(f"expected lower case, got {value!r}")
    return value


class Launch(StrictModel):
    kind: Literal["local", "slurm"] = Field("local", description="where jobs run",
                                            json_schema_extra={"flag": "--launcher"})
    processes: int = Field(1, ge=1, description="processes per job")


class Settings(StrictModel):
    PATH_FIELDS: ClassVar[tuple[str, ...]] = ("data",)

    name: Annotated[str, AfterValidator(_lower)] = Field(description="the run's name")
    data: str | None = Field(None, description="a data file")
    count: int = Field(2, ge=1, description="how many things")
    launch: Launch = Field(default_factory=Launch)

    @model_validator(mode="after")
    def _few_for_slurm(self) -> "Settings":
        if self.launch.kind == "slurm" and self.count > 5:
            raise ValueError("slurm takes at most 5 things")
        return self


FLAGS = {"name": None, "data": None, "count": None, "launch.kind": None, "launch.processes": None}


def write(folder, name: str, text: str):
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def test_the_yaml_then_the_flags_that_were_given(tmp_path):
    path = write(tmp_path, "run.yaml", "name: first\ndata: d.jsonl\ncount: 3\nlaunch: {processes: 2}\n")
    config = load_config(path, Settings, {**FLAGS, "count": 4, "launch.kind": "slurm"})
    assert (config.name, config.count, config.launch.kind, config.launch.processes) == ("first", 4, "slurm", 2)
    assert config.data == str(tmp_path / "d.jsonl") and config.origin == str(path)  # relative to the YAML
    flagged = load_config(path, Settings, {**FLAGS, "data": "other.jsonl"})
    assert flagged.data == "other.jsonl"  # a flag's path is the shell's, as given
    assert load_config(None, Settings, {**FLAGS, "name": "only"}).count == 2  # no YAML: the model's defaults
    assert load_config(path, Settings) == load_config(path, Settings, FLAGS)  # no flag given: the file alone


def test_each_error_names_the_file_and_key_or_the_flag(tmp_path):
    path = write(tmp_path, "run.yaml", "name: first\ncounts: 3\nlaunch: {kind: cloud}\n")
    with pytest.raises(LimacotInputError) as err:
        load_config(path, Settings, {**FLAGS, "count": 0, "launch.processes": 0})
    assert str(err.value) == (
        f"{path}: launch.kind: expected 'local' or 'slurm' (got 'cloud'); counts: unknown key; valid keys: name, "
        f"data, count, launch; --count: expected greater than or equal to 1 (got 0); --processes "
        f"(launch.processes): expected greater than or equal to 1 (got 0)")
    with pytest.raises(LimacotInputError, match=r"^--name: expected lower case, got 'Big'; --launcher "
                                                r"\(launch.kind\): expected 'local' or 'slurm' \(got 'x'\)$"):
        load_config(None, Settings, {**FLAGS, "name": "Big", "launch.kind": "x"})
    with pytest.raises(LimacotInputError, match=rf"^{path} with --launcher: slurm takes at most 5 things$"):
        load_config(write(tmp_path, "run.yaml", "name: a\ncount: 9\n"), Settings, {**FLAGS, "launch.kind": "slurm"})


def test_a_missing_setting_says_where_it_can_be_given(tmp_path):
    with pytest.raises(LimacotInputError, match=r"^--name is required \(or `name:` in a --config YAML\)$"):
        load_config(None, Settings, FLAGS)
    path = write(tmp_path, "run.yaml", "count: 3\n")
    with pytest.raises(LimacotInputError, match=rf"^{path}: name: required key missing \(or give --name\)$"):
        load_config(path, Settings, FLAGS)
    with pytest.raises(LimacotInputError, match=r"^--count is required"):  # required here, defaulted in the model
        load_config(None, Settings, {**FLAGS, "name": "a"}, required=("count",))
    assert load_config(None, Settings, {**FLAGS, "name": "a", "count": 2}, required=("count",)).count == 2


def test_flags_are_declared_by_their_fields():
    assert flag_name(Settings, "count") == "--count" and flag_name(Settings, "launch.kind") == "--launcher"
    option = config_flag(Settings, "count")
    assert option.default is None and option.param_decls == ("--count",)
    assert option.help == "How many things. Default: 2."
    assert config_flag(Settings, "name").help == "The run's name. Required (here or in the --config file)."
    assert config_flag(Launch, "kind").param_decls == ("--launcher",)
    assert config_flag(Settings, "data", "--file", help="Given text.").help == "Given text."


def test_a_model_part_keeps_each_field_as_declared():
    Part = model_part("Part", Settings, ("name", "count"), defaults={"count": 7})
    assert Part(name="x").count == 7 and list(Part.model_fields) == ["name", "count"]
    assert Part.model_fields["count"].description == "how many things"
    with pytest.raises(ValidationError, match="expected lower case"):  # the Annotated validator came along
        Part(name="Big")
    with pytest.raises(ValidationError, match="greater than or equal to 1"):
        Part(name="x", count=0)
    with pytest.raises(ValidationError, match="Extra inputs"):
        Part(name="x", data="d")
    Both = model_part("Both", Launch, ("processes",), base=Part)
    assert Both(name="x", processes=3).model_dump() == {"name": "x", "count": 7, "processes": 3}
    whole = Settings(name="x", count=4, launch=Launch(processes=3))
    assert whole.launch.part(Launch) == Launch(processes=3)
