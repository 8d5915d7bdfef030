"""Where and in what precision a model runs: one setting for every stage that loads a model.

    device: auto | cpu | cuda | cuda:N     auto: this process's GPU under a multi-process launch
                                           (LOCAL_RANK), else cuda when torch sees one, else cpu
    dtype: auto | bfloat16 | float16 | float32
                                           auto: bfloat16 on a CUDA device that supports it,
                                           float16 on other CUDA devices, float32 on CPU
    attn_implementation: sdpa (default) | eager | flash_attention_2 | flash_attention_3 | flex_attention

`ComputeOptions` is the one declaration of these fields: the eval and train configs inherit
it, generate and judge take one, a study config holds one as `compute:`, and the CLI flags
`--device`, `--dtype` and `--attn` set the same fields. `resolve_compute` turns the names into
torch objects; a requested flash-attention kernel that is not installed (or a CPU device) falls
back to sdpa, logged once with the reason. `process_group` is this process's place in a
multi-process launch (`accelerate launch`), for the stages that split their work across it.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
from dataclasses import dataclass
from functools import cache
from typing import Any

from pydantic import Field, field_validator

from limacot.io.yaml_config import StrictModel
from limacot.errors import LimacotInputError

log = logging.getLogger(__name__)

DTYPE_ALIASES = {"auto": "auto", "float32": "float32", "fp32": "float32", "bfloat16": "bfloat16", "bf16": "bfloat16",
                 "float16": "float16", "fp16": "float16", "half": "float16"}
ATTENTION = ("sdpa", "eager", "flash_attention_2", "flash_attention_3", "flex_attention")
_FLASH_PACKAGES = {"flash_attention_2": "flash_attn", "flash_attention_3": "flash_attn_interface"}
_DEVICE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


class ComputeOptions(StrictModel):
    """device / dtype / attn_implementation (see the module docstring); inherited by stage configs."""

    device: str = Field("auto", description="auto | cpu | cuda | cuda:N")
    dtype: str = Field("auto", description="auto | bfloat16 | float16 | float32 (aliases bf16, fp16, fp32)")
    attn_implementation: str = Field("sdpa", description=" | ".join(ATTENTION), json_schema_extra={"flag": "--attn"})

    @field_validator("device")
    @classmethod
    def _device(cls, value: str) -> str:
        value = str(value).strip().lower()
        if not _DEVICE.match(value):
            raise ValueError(f"expected auto, cpu, cuda or cuda:N, got {value!r}")
        return value

    @field_validator("dtype")
    @classmethod
    def _dtype(cls, value: str) -> str:
        name = DTYPE_ALIASES.get(str(value).strip().lower().removeprefix("torch."))
        if name is None:
            raise ValueError(f"expected one of auto, bfloat16, float16, float32 (or bf16, fp16, fp32), got {value!r}")
        return name

    @field_validator("attn_implementation")
    @classmethod
    def _attention(cls, value: str) -> str:
        if value not in ATTENTION:
            raise ValueError(f"expected one of {', '.join(ATTENTION)}, got {value!r}")
        return value

    def compute(self) -> "ComputeOptions":
        """Just the three compute fields (for a stage config that inherits them)."""
        return ComputeOptions(device=self.device, dtype=self.dtype, attn_implementation=self.attn_implementation)


@dataclass(frozen=True)
class Compute:
    """Resolved settings: what `from_pretrained` and `.to()` are given."""

    device: Any          # torch.device
    dtype: Any           # torch.dtype
    attn_implementation: str

    def load_kwargs(self) -> dict:
        return {"dtype": self.dtype, "attn_implementation": self.attn_implementation}


def resolve_compute(options: ComputeOptions | None = None, *, dtype_default: str | None = None) -> Compute:
    """Resolve `options` for this process. `dtype_default` replaces `auto` for the dtype when
    given (training a full model keeps float32 master weights whatever the device)."""
    options = options or ComputeOptions()
    device = resolve_device(options.device)
    dtype_name = options.dtype if options.dtype != "auto" else (dtype_default or auto_dtype_name(device))
    return Compute(device, torch_dtype(dtype_name), resolve_attention(options.attn_implementation, device))


def resolve_device(name: str = "auto"):
    """auto | cpu | cuda | cuda:N -> torch.device; a GPU that is not there is an input error."""
    import torch

    name = name or "auto"
    if name == "cpu":
        return torch.device("cpu")
    available = torch.cuda.is_available()
    if name == "auto":
        if not available:
            return torch.device("cpu")
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", torch.cuda.current_device())))
    if not available:
        raise LimacotInputError(f"device '{name}': torch sees no CUDA GPU here (torch.cuda.is_available() is False; "
                                f"torch {torch.__version__}). Use --device cpu, or install a CUDA build of torch")
    index = int(name.partition(":")[2] or os.environ.get("LOCAL_RANK", torch.cuda.current_device()))
    if index >= torch.cuda.device_count():
        raise LimacotInputError(f"device '{name}': only {torch.cuda.device_count()} CUDA device(s) are visible "
                                f"(CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', 'unset')})")
    return torch.device("cuda", index)


def auto_dtype_name(device) -> str:
    import torch

    if device.type != "cuda":
        return "float32"
    return "bfloat16" if torch.cuda.is_bf16_supported() else "float16"


def torch_dtype(value: Any):
    """A torch.dtype from a torch.dtype or a name ("bf16", "float32", ...; not "auto")."""
    import torch

    if isinstance(value, torch.dtype):
        return value
    name = DTYPE_ALIASES.get(str(value).lower().removeprefix("torch."))
    if name in (None, "auto"):
        raise LimacotInputError(f"unknown dtype '{value}': expected one of bfloat16, float16, float32")
    return getattr(torch, name)


def resolve_attention(name: str, device) -> str:
    """`name`, or sdpa (logged once, with the reason) when a flash kernel cannot run here."""
    package = _FLASH_PACKAGES.get(name)
    if package is None:
        return name
    if device.type != "cuda":
        _fallback_once(name, "it needs a CUDA device")
        return "sdpa"
    if importlib.util.find_spec(package) is None:
        _fallback_once(name, f"the '{package}' package is not installed (pip install {package.replace('_', '-')})")
        return "sdpa"
    return name


@cache
def _fallback_once(name: str, reason: str) -> None:
    log.warning("attn_implementation %s: %s; using sdpa instead", name, reason)


@dataclass(frozen=True)
class ProcessGroup:
    """This process's place in a multi-process launch (`accelerate launch` / torchrun env).

    `state` is accelerate's PartialState (None for a single process); `barrier` waits for all.
    """

    rank: int = 0
    world: int = 1
    state: Any = None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.state is not None:
            self.state.wait_for_everyone()


def process_group(device) -> ProcessGroup:
    """The process group of this launch: one process unless WORLD_SIZE > 1, then accelerate's
    PartialState (gloo on CPU, nccl on CUDA)."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return ProcessGroup()
    from accelerate import PartialState  # heavy; only multi-process launches need it

    state = PartialState(cpu=device.type == "cpu")
    return ProcessGroup(state.process_index, state.num_processes, state)


def is_main_process() -> bool:
    """RANK 0 of a multi-process launch, or a single process: the one that prints summaries."""
    return int(os.environ.get("RANK", "0")) == 0
