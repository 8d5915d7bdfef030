"""Content hashes: of files, of folders, of configs, of record lists. Used for manifests,
caches and the study's job keys.

Files up to `FULL_HASH_LIMIT` are hashed in full. Larger ones (model weights, tens of GB) get
a cheap fingerprint instead: size + modification time + sha256 of the first and last MiB. A
change to any weight changes both ends of a safetensors file in practice, and a rewritten file
has a new mtime; a copy of the same weights to another place (new mtime) is seen as changed,
which costs a rerun, never a wrong reuse."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Iterable

from limacot.errors import LimacotInputError
from limacot.io.hub_files import fetch_hub_file, hub_commit, parse_hf_spec, parse_hub_file

CHUNK = 1 << 20
FULL_HASH_LIMIT = 64 << 20


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def quick_file_fingerprint(path: str | Path) -> str:
    """A large file's identity without reading it all: size, mtime (ns) and both end MiBs."""
    path = Path(path)
    stat = path.stat()
    digest = hashlib.sha256(f"{stat.st_size}:{stat.st_mtime_ns}:".encode())
    with path.open("rb") as handle:
        digest.update(handle.read(CHUNK))
        handle.seek(max(0, stat.st_size - CHUNK))
        digest.update(handle.read(CHUNK))
    return "quick:" + digest.hexdigest()


def file_fingerprint(path: str | Path) -> str:
    """sha256 of a file's content, or its quick fingerprint over FULL_HASH_LIMIT (module docstring)."""
    path = Path(path)
    return sha256_file(path) if path.stat().st_size <= FULL_HASH_LIMIT else quick_file_fingerprint(path)


def tree_fingerprint(folder: str | Path) -> str:
    """Content hash of a folder: every file below it (hidden ones and `__pycache__` left out) by
    its path relative to `folder` and its `file_fingerprint`. The folder's own path is not part of
    it, so a moved or copied folder (of small files) keeps its fingerprint."""
    folder = Path(folder)
    files = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if path.is_file() and not any(part.startswith(".") or part == "__pycache__" for part in rel.parts):
            files[rel.as_posix()] = file_fingerprint(path)
    return sha256_json(files)


def sha256_json(obj: object) -> str:
    """Hash of the canonical JSON of `obj` (sorted keys, no whitespace)."""
    text = json.dumps(obj, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def sha256_ids(ids: Iterable[str]) -> str:
    """Order-sensitive hash of a list of record ids (what a training file contains)."""
    return hashlib.sha256("\n".join(ids).encode("utf-8")).hexdigest()


def input_fingerprint(spec: str | Path) -> str:
    """What identifies an input's content, for build keys and caches (see `input_identity`)."""
    return input_identity(spec)["sha256"]


def input_identity(spec: str | Path) -> dict[str, str]:
    """{"sha256": content hash} of an input, plus {"revision": commit sha} for a hub file.

    A local file and a hub file (`hf:ORG/NAME/PATH[@REV]`, fetched into or found in the
    Hugging Face cache) are hashed by content, so a key follows the bytes, not the spec. A
    `hf:org/name[:split]` dataset (read by `datasets`) is identified by the commit its revision
    resolves to (`hub_commit`), or by its spec when that cannot be resolved here. A hub file
    that cannot be fetched here (offline and not cached, no access) is named "unresolved:<spec>":
    planning still works without network, and reading it later fails with the fix.
    """
    spec = str(spec)
    hub = parse_hub_file(spec)
    if hub is None and spec.startswith("hf:"):
        name, split = parse_hf_spec(spec)
        if Path(name).is_dir():  # a local dataset folder (save_to_disk or data files)
            return {"sha256": sha256_json({"split": split, "content": tree_fingerprint(name)})}
        commit = hub_commit(name, None, "dataset")
        return {"sha256": sha256_json({"spec": spec, "commit": commit}), **({"revision": commit} if commit else {})}
    if hub is None:
        return {"sha256": sha256_file(spec)}
    try:
        local, revision = fetch_hub_file(hub)
    except LimacotInputError:
        return {"sha256": f"unresolved:{spec}"}
    return {"sha256": sha256_file(local), **({"revision": revision} if revision else {})}
