"""Data files on the Hugging Face Hub, named by their path in a dataset repository.

    hf:ORG/NAME/PATH/IN/REPO[@REVISION]     e.g. hf:GAIR/lima/train.jsonl
                                                 hf:GAIR/lima/test.jsonl@<commit sha>

The file is fetched with `huggingface_hub.hf_hub_download` into the ordinary Hugging Face
cache (`HF_HOME` / `HF_HUB_CACHE`) and then read like a local file. The revision is a branch,
tag or commit (default: `main`). A token, when one is needed (gated or private datasets), is
found by huggingface_hub itself (`HF_TOKEN`, or `hf auth login`); limacot never reads or
prints it. With `HF_HUB_OFFLINE=1` the file comes from the cache only.

This form bypasses `datasets.load_dataset`, so it works for repositories that ship a loading
script (which current `datasets` refuses to run) as long as their data files are plain
.jsonl/.json/.csv/.tsv/.parquet. Every hub failure becomes a `LimacotInputError` that says
what to do (accept a gated dataset's terms, set `HF_TOKEN`, fix the file name, download first).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import huggingface_hub  # the top-level package is lazy; its submodules load on first use

from limacot.errors import LimacotInputError

HUB = "https://huggingface.co"


@dataclass(frozen=True)
class HubFile:
    """One file of a hub dataset repository, as named by a `hf:ORG/NAME/PATH[@REVISION]` spec."""

    spec: str
    repo_id: str
    filename: str
    revision: str | None = None

    @property
    def suffix(self) -> str:
        return PurePosixPath(self.filename).suffix.lower()

    @property
    def page(self) -> str:
        return f"{HUB}/datasets/{self.repo_id}"


def parse_hub_file(spec: str) -> HubFile | None:
    """`hf:ORG/NAME/PATH[@REVISION]` -> HubFile; None for any other spec.

    A hub file has at least three '/'-separated parts and a file extension on the last one;
    `hf:org/name[:split]` (a `datasets` id) and `hf:` + an existing local folder are not.

    >>> parse_hub_file("hf:GAIR/lima/data/train.jsonl@v1")
    HubFile(spec='hf:GAIR/lima/data/train.jsonl@v1', repo_id='GAIR/lima', filename='data/train.jsonl', revision='v1')
    >>> parse_hub_file("hf:GAIR/lima:train") is None
    True
    """
    if not spec.startswith("hf:"):
        return None
    body, at, revision = spec[len("hf:"):].partition("@")
    parts = body.split("/")
    if len(parts) < 3 or not PurePosixPath(parts[-1]).suffix or body.startswith(("/", ".", "~")):
        return None
    if Path(body).exists():
        return None
    if not all(parts) or (at and not revision):
        raise LimacotInputError(f"{spec}: expected hf:ORG/NAME/PATH/IN/REPO[@REVISION], "
                                "e.g. hf:GAIR/lima/train.jsonl or hf:GAIR/lima/train.jsonl@main")
    return HubFile(spec, f"{parts[0]}/{parts[1]}", "/".join(parts[2:]), revision or None)


def parse_hf_spec(spec: str) -> tuple[str, str]:
    """'hf:org/name[:split]' -> (name or local path, split); the split defaults to 'train'."""
    body = spec[len("hf:"):]
    name, _, split = body.rpartition(":")
    if not name or "/" in split or not split:
        name, split = body, "train"
    if not name:
        raise LimacotInputError(f"{spec}: expected hf:org/name[:split]")
    return name, split


def hub_commit(repo_id: str, revision: str | None = None, repo_type: str = "model") -> str | None:
    """The commit sha that `revision` (default: main) of a hub repository points at, or None.

    A 40-hex revision is already one. Online, the hub is asked (one metadata request); offline
    (HF_HUB_OFFLINE=1) or when the hub cannot answer, the Hugging Face cache's record of the
    revision (`refs/<revision>`, written by every download) is used. None: neither knows it.
    """
    from huggingface_hub import constants, file_download  # deferred: imports the HTTP stack

    revision = revision or "main"
    if len(revision) == 40 and all(c in "0123456789abcdef" for c in revision):
        return revision
    if hub_unavailable() is None:
        try:
            info = huggingface_hub.HfApi().repo_info(repo_id, revision=revision, repo_type=repo_type, timeout=10)
            if info.sha:
                return info.sha
        except Exception:  # unreachable, gated, unknown: the cache may still know, else None
            pass
    folder = file_download.repo_folder_name(repo_id=repo_id, repo_type=repo_type)
    ref = Path(constants.HF_HUB_CACHE) / folder / "refs" / revision
    try:
        return ref.read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


def fetch_hub_file(hub: HubFile) -> tuple[Path, str | None]:
    """Download `hub` (or find it in the cache): (local path, the commit sha it resolved to).

    The sha is read from the cache layout (`.../snapshots/<sha>/PATH`); None if the file
    came from somewhere else. Failures raise a LimacotInputError naming the fix.
    """
    try:
        local = huggingface_hub.hf_hub_download(hub.repo_id, hub.filename, repo_type="dataset",
                                                revision=hub.revision, local_files_only=hub_unavailable() is not None)
    except Exception as err:  # huggingface_hub raises many types; each is translated below
        raise hub_error(hub, err) from None
    return Path(local), _snapshot_sha(Path(local), hub.filename)


PROBE_TIMEOUT = 5.0  # seconds one request to the hub may take before it counts as unreachable


def hub_unavailable() -> str | None:
    """Why the hub cannot be asked now, or None when it answers.

    "offline": offline mode (HF_HUB_OFFLINE=1). "unreachable": one request to the hub endpoint,
    through huggingface_hub's own HTTP client, got no answer within PROBE_TIMEOUT (no network,
    DNS, a proxy). Callers then use the Hugging Face cache only, so a missing file fails at once
    instead of after huggingface_hub's retries (about 25 s per file, printed line by line).
    """
    from huggingface_hub import constants  # deferred: with the HTTP stack below
    from huggingface_hub.utils import get_session

    if constants.is_offline_mode():
        return "offline"
    try:
        get_session().head(constants.ENDPOINT, timeout=PROBE_TIMEOUT)
    except Exception:  # any transport failure (an HTTP status is an answer, so it is not raised here)
        return "unreachable"
    return None


def _snapshot_sha(local: Path, filename: str) -> str | None:
    """The commit sha in `.../snapshots/<sha>/<filename>`, or None for any other layout."""
    depth = len(PurePosixPath(filename).parts)
    snapshot = local.parents[depth - 1] if len(local.parents) >= depth else None
    return snapshot.name if snapshot is not None and snapshot.parent.name == "snapshots" else None


def gated_message(spec: str, repo_id: str) -> str:
    """The one-paragraph fix for a gated dataset the current token (if any) cannot read."""
    token = ("no token was found (HF_TOKEN is unset and there is no `hf auth login`)"
             if not _has_token() else "the token in use has not been granted access")
    return (f"{spec}: the dataset {repo_id} is gated on the Hugging Face Hub and {token}. Fix: open "
            f"{HUB}/datasets/{repo_id} while logged in and accept its terms, create a read token at "
            f"{HUB}/settings/tokens, set HF_TOKEN to it (or run `hf auth login`), and run this again.")


def _has_token() -> bool:
    """Whether huggingface_hub finds a token (HF_TOKEN or a login); its value is never looked at."""
    try:
        return huggingface_hub.get_token() is not None
    except Exception:  # a failing OIDC exchange or token refresh: treat as no usable token
        return False


def hub_error(hub: HubFile, err: Exception) -> LimacotInputError:
    """A huggingface_hub failure for `hub` -> a one-paragraph input error that says what to do."""
    from huggingface_hub import errors  # deferred: imports the HTTP stack

    where = f"{hub.spec}: "
    rev = hub.revision or "main"
    if isinstance(err, errors.GatedRepoError):
        return LimacotInputError(gated_message(hub.spec, hub.repo_id))
    if isinstance(err, errors.RepositoryNotFoundError):
        return LimacotInputError(
            f"{where}there is no dataset repository {hub.repo_id} on the Hugging Face Hub, or it is private "
            f"and the current token cannot see it. Check the ORG/NAME spelling (the form is "
            f"hf:ORG/NAME/PATH/IN/REPO); for a private dataset set HF_TOKEN to a token with access.")
    if isinstance(err, errors.RevisionNotFoundError):
        return LimacotInputError(
            f"{where}the dataset {hub.repo_id} has no revision '{rev}'. Give a branch, tag or commit sha "
            f"after '@' (the default is main); see {hub.page}/commits/main.")
    if isinstance(err, errors.LocalEntryNotFoundError):
        return LimacotInputError(_not_cached(hub))
    if isinstance(err, errors.EntryNotFoundError):
        return LimacotInputError(
            f"{where}the dataset {hub.repo_id} has no file '{hub.filename}' at revision {rev}. The part after "
            f"ORG/NAME is the file's path in the repository; its files are listed at {hub.page}/tree/{rev}.")
    if isinstance(err, (errors.HFValidationError, ValueError)):
        return LimacotInputError(f"{where}not a valid hub dataset id or file name ({_first_line(err)}); "
                                 "expected hf:ORG/NAME/PATH/IN/REPO[@REVISION].")
    return LimacotInputError(
        f"{where}could not download '{hub.filename}' from the dataset {hub.repo_id} "
        f"({type(err).__name__}: {_first_line(err)}). If the hub refused the request, check HF_TOKEN; "
        "to work without network, download the file once and set HF_HUB_OFFLINE=1.")


def load_dataset_error(spec: str, name: str, split: str, err: Exception) -> LimacotInputError | None:
    """The fix for a `datasets.load_dataset(name)` failure we recognise, or None.

    Recognised: a script-only dataset (current `datasets` raises "Dataset scripts are no
    longer supported" or rejects `trust_remote_code`) -> load a data file by name instead;
    a gated dataset without access -> accept the terms and set HF_TOKEN.
    """
    from huggingface_hub import errors  # deferred: imports the HTTP stack

    text = str(err)
    if "Dataset scripts are no longer supported" in text or "trust_remote_code" in text:
        script = text.rpartition("found ")[2].strip() if "found " in text else "a .py loading script"
        local = Path(name)
        example = str(local / f"{split}.jsonl") if local.is_dir() else f"hf:{name}/{split}.jsonl"
        listing = f"the files in {local}" if local.is_dir() else f"the files at {HUB}/datasets/{name}/tree/main"
        return LimacotInputError(
            f"{spec}: the dataset {name} is defined by a loading script ({script}), which the installed "
            f"`datasets` no longer runs (trust_remote_code is gone). Read its data file directly instead, "
            f"by its path in the repository: e.g. {example} (see {listing}); the by-file form "
            f"hf:ORG/NAME/PATH[@REVISION] downloads just that file and needs no script.")
    chain = _causes(err)
    if any(isinstance(e, errors.GatedRepoError) for e in chain) or \
            (type(err).__name__ == "DatasetNotFoundError" and "gated" in text):
        return LimacotInputError(gated_message(spec, name))
    return None


def _causes(err: BaseException) -> list[BaseException]:
    """`err` and the exceptions it was raised from (explicitly or while handling), in order."""
    chain: list[BaseException] = []
    current: BaseException | None = err
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def _not_cached(hub: HubFile) -> str:
    from huggingface_hub.constants import HF_HUB_CACHE, is_offline_mode  # deferred with the errors

    download = (f"`hf download {hub.repo_id} {hub.filename} --repo-type dataset"
                + (f" --revision {hub.revision}`" if hub.revision else "`"))
    if is_offline_mode():
        why = "offline mode is on (HF_HUB_OFFLINE=1) and the file is not in the Hugging Face cache"
        retry = "or unset HF_HUB_OFFLINE on a machine with network access"
    else:
        why = "the hub could not be reached and the file is not in the Hugging Face cache"
        retry = "or check the network connection and run this again"
    return (f"{hub.spec}: {why} ({HF_HUB_CACHE}). Fix: download it once where there is network, with "
            f"{download} into the same cache (HF_HOME / HF_HUB_CACHE), {retry}; or pass a local copy of "
            "the file instead.")


def _first_line(err: Exception) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
