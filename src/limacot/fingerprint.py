"""Content hashes: of files, of configs, of record lists. Used for manifests and caches."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Iterable

CHUNK = 1 << 20


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_json(obj: object) -> str:
    """Hash of the canonical JSON of `obj` (sorted keys, no whitespace)."""
    text = json.dumps(obj, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def sha256_ids(ids: Iterable[str]) -> str:
    """Order-sensitive hash of a list of record ids (what a training file contains)."""
    return hashlib.sha256("\n".join(ids).encode("utf-8")).hexdigest()


def input_fingerprint(spec: str | Path) -> str:
    """sha256 of a local input file; an `hf:` dataset is identified by its spec string."""
    spec = str(spec)
    return spec if spec.startswith("hf:") else sha256_file(spec)
