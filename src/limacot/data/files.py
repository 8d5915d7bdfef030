"""Row readers for data files: .jsonl, .json (array), .csv, .tsv, .parquet and `hf:` data.

`hf:ORG/NAME/PATH/IN/REPO[@REVISION]` is one file of a hub dataset repository, downloaded
into the Hugging Face cache (`limacot.io.hub_files`) and read like a local file of its
extension; error messages name the hub path. `hf:org/name[:split]` goes through
`datasets.load_dataset` (or `load_from_disk` for a saved local folder).

Every reader yields `(location, row)` pairs, where `location` is what an error message
should point at ("line 12", "item 3", "row 5 (line 7)") and `row` is either a dict or
a `DataError` for a row that could not be parsed (truncated JSON, invalid UTF-8, a CSV
row with the wrong number of columns). Callers decide whether such a row is fatal
(`iter_rows`) or skipped and counted (`--skip-bad`). A file that cannot be read at all
(missing, a broken JSON array) raises at once.

Encoding rules: UTF-8, with or without a byte-order mark; LF or CRLF line endings.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Callable, Iterator

from limacot.errors import DataError, LimacotInputError
from limacot.io.hub_files import fetch_hub_file, hub_unavailable, load_dataset_error, parse_hf_spec, parse_hub_file

RawRow = tuple[str, "dict | DataError"]
FILE_SUFFIXES = (".jsonl", ".json", ".csv", ".tsv", ".parquet")
BOM = b"\xef\xbb\xbf"


def check_readable(path: str | Path) -> None:
    """Raise the error `iter_raw_rows` would raise before reading anything: a local file that is not
    there (or is a folder), a file type no reader handles, a malformed hf: spec. Touches no network."""
    spec = str(path)
    hub = parse_hub_file(spec)
    if hub is not None:
        _reader_for(hub.suffix, spec)
    elif not spec.startswith("hf:"):
        local = Path(spec)
        if not local.is_file():
            what = "is a folder, not a data file" if local.is_dir() else "no such file"
            raise LimacotInputError(f"{local}: {what} (expected one of {', '.join(FILE_SUFFIXES)}, "
                                    f"an hf:ORG/NAME/PATH/IN/REPO hub file or an hf:org/name[:split] dataset)")
        _reader_for(local.suffix.lower(), spec)


def iter_raw_rows(path: str | Path) -> Iterator[RawRow]:
    """Yield (location, dict-or-DataError) for every record of a file or `hf:` dataset."""
    spec = str(path)
    check_readable(spec)
    hub = parse_hub_file(spec)
    if hub is not None:
        local, _ = fetch_hub_file(hub)
        yield from _reader_for(hub.suffix, spec)(local, spec)
        return
    if spec.startswith("hf:"):
        yield from _hf_rows(spec)
        return
    yield from _reader_for(Path(spec).suffix.lower(), spec)(Path(spec), spec)


def _reader_for(suffix: str, label: str) -> Callable[[Path, str], Iterator[RawRow]]:
    """The row reader for a file extension; `label` names the file in the error."""
    readers = {".jsonl": _jsonl_rows, ".json": _json_array_rows, ".csv": _csv_rows,
               ".tsv": _csv_rows, ".parquet": _parquet_rows}
    if suffix not in readers:
        raise LimacotInputError(f"{label}: unsupported file type '{suffix}'; expected one of "
                                f"{', '.join(FILE_SUFFIXES)}")
    return readers[suffix]


def iter_rows(path: str | Path) -> Iterator[tuple[str, dict]]:
    """Like `iter_raw_rows`, but the first unparseable row raises its DataError."""
    for location, row in iter_raw_rows(path):
        if isinstance(row, DataError):
            raise row
        yield location, row


def _decode_error(label: str, data: bytes, err: UnicodeDecodeError, line_offset: int = 0) -> DataError:
    line = data.count(b"\n", 0, err.start) + 1 + line_offset
    column = err.start - (data.rfind(b"\n", 0, err.start) + 1) + 1
    return DataError(label, f"line {line}", None, "UTF-8 text", "invalid_utf8",
                     got=f"byte 0x{data[err.start]:02x} at column {column}")


def _jsonl_rows(path: Path, label: str) -> Iterator[RawRow]:
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, 1):
            if number == 1 and raw.startswith(BOM):
                raw = raw[len(BOM):]
            location = f"line {number}"
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                yield location, _decode_error(label, raw, err, line_offset=number - 1)
                continue
            if not text.strip():
                continue
            try:
                row = json.loads(text)
            except json.JSONDecodeError as err:
                yield location, DataError(label, location, None, "one complete JSON object per line",
                                          "bad_json", got=f"{err.msg} at column {err.colno}")
                continue
            if not isinstance(row, dict):
                yield location, DataError(label, location, None, "a JSON object", "wrong_type",
                                          got=type(row).__name__)
                continue
            yield location, row


def _read_text(path: Path, label: str) -> str:
    data = path.read_bytes()
    if data.startswith(BOM):
        data = data[len(BOM):]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise _decode_error(label, data, err) from None


def _json_array_rows(path: Path, label: str) -> Iterator[RawRow]:
    try:
        items = json.loads(_read_text(path, label))
    except json.JSONDecodeError as err:
        raise DataError(label, f"line {err.lineno}", None, "a JSON array of objects (truncated or malformed JSON)",
                        "bad_json", got=f"{err.msg} at column {err.colno}") from None
    if not isinstance(items, list):
        raise DataError(label, None, None, "a JSON array of objects at the top level", "wrong_type",
                        got=type(items).__name__)
    for number, item in enumerate(items, 1):
        location = f"item {number}"
        if isinstance(item, dict):
            yield location, item
        else:
            yield location, DataError(label, location, None, "a JSON object", "wrong_type",
                                      got=type(item).__name__)


def _csv_rows(path: Path, label: str) -> Iterator[RawRow]:
    """CSV rows with csv's quoting; TSV rows split on tabs only, every field verbatim (a TSV has no
    quoting: KoBEST's `"뷰티 인사이드"는 ...` keeps its quotes)."""
    tsv = path.suffix.lower() == ".tsv"
    reader = csv.reader(io.StringIO(_read_text(path, label), newline=""), delimiter="\t" if tsv else ",",
                        quoting=csv.QUOTE_NONE if tsv else csv.QUOTE_MINIMAL)
    header = next(reader, None)
    if not header:
        raise DataError(label, "line 1", None, "a header row naming the columns", "missing_header")
    for number, values in enumerate(reader, 1):
        location = f"row {number} (line {reader.line_num})"
        if not values:
            continue
        if len(values) != len(header):
            yield location, DataError(label, location, None, f"{len(header)} columns as in the header",
                                      "wrong_column_count", got=f"{len(values)}")
            continue
        yield location, dict(zip(header, values))


def _parquet_rows(path: Path, label: str) -> Iterator[RawRow]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as err:  # pyarrow raises several types for broken files
        raise DataError(label, None, None, "a readable Parquet file", "bad_parquet", got=str(err)) from None
    for number, row in enumerate(table.to_pylist(), 1):
        yield f"row {number}", row


def _hf_rows(spec: str) -> Iterator[RawRow]:
    """Rows of a hub dataset (`datasets.load_dataset`) or a local dataset directory.

    A directory written by `save_to_disk` is opened with `load_from_disk`; any other
    local directory or hub id goes through `load_dataset(name, split=split)`. A script-only
    or gated dataset fails with the fix (`limacot.io.hub_files.load_dataset_error`).
    """
    import datasets

    name, split = parse_hf_spec(spec)
    local = Path(name)
    if not local.exists() and hub_unavailable() == "unreachable":  # offline mode: `datasets` reads its cache
        raise LimacotInputError(
            f"{spec}: the hub could not be reached, so the dataset cannot be loaded. If an earlier run cached it, "
            f"set HF_HUB_OFFLINE=1 to read it from the cache; or pass a local file or folder, or name one data file "
            f"of the repository (hf:{name}/PATH/IN/REPO), which is read from the Hugging Face cache when it is there.")
    try:
        if local.is_dir() and ((local / "state.json").exists() or (local / "dataset_dict.json").exists()):
            loaded = datasets.load_from_disk(str(local))
            dataset = loaded[split] if isinstance(loaded, datasets.DatasetDict) else loaded
        else:
            dataset = datasets.load_dataset(name, split=split)
    except KeyError:
        raise LimacotInputError(f"{spec}: the dataset has no split '{split}'") from None
    except Exception as err:
        by_file = "" if local.exists() else f", or name one data file of the repository (hf:{name}/PATH/IN/REPO)"
        raise load_dataset_error(spec, name, split, err) or LimacotInputError(
            f"{spec}: could not load the dataset ({type(err).__name__}: {err}). Offline? Pass a local file "
            f"or directory instead, download it first{by_file}.") from None
    for number, row in enumerate(dataset, 1):
        yield f"row {number}", dict(row)
