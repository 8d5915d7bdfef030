"""Content hashes: of files, of configs, of record lists. Used for manifests and caches."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Iterable

from limacot.errors import LimacotInputError
from limacot.hub_files import fetch_hub_file, parse_hub_file

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
    """What identifies an input's content, for build keys and caches (see `input_identity`)."""
    return input_identity(spec)["sha256"]


def input_identity(spec: str | Path) -> dict[str, str]:
    """{"sha256": content hash} of an input, plus {"revision": commit sha} for a hub file.

    A local file and a hub file (`hf:ORG/NAME/PATH[@REV]`, fetched into or found in the
    Hugging Face cache) are hashed by content, so a key follows the bytes, not the spec. A
    `hf:org/name[:split]` dataset is identified by its spec string. A hub file that cannot be
    fetched here (offline and not cached, no access) is named "unresolved:<spec>": planning
    still works without network, and reading it later fails with the fix.
    """
    spec = str(spec)
    hub = parse_hub_file(spec)
    if hub is None:
        return {"sha256": spec if spec.startswith("hf:") else sha256_file(spec)}
    try:
        local, revision = fetch_hub_file(hub)
    except LimacotInputError:
        return {"sha256": f"unresolved:{spec}"}
    return {"sha256": sha256_file(local), **({"revision": revision} if revision else {})}
