"""Task documents: from the hub dataset an lm-eval user expects, or, with `--data-dir`, from
the original files laid out as in `../shared/data`, mapped onto the hub's field names.

Every task YAML names its source in `dataset_kwargs` and loads through `load_docs` as its
`custom_dataset`; lm-eval passes the run's metadata too, where `limacot_data_dir` (set by
`limacot eval --data-dir`) selects local files. Without it `load_docs` calls
`datasets.load_dataset(dataset_path, dataset_name)` as a built-in lm-eval task would. With it,
nothing touches the network.

    kobest/copa/test.tsv  "ID  sentence  question  1  2  Answer"   (Answer 1|2)
        -> {"premise", "question", "alternative_1", "alternative_2", "label": 0|1, "limacot_id"}

Local files may be full splits or samples; nothing here depends on how many rows they hold.
Where a local layout lacks a split the hub has, the fallback is stated in `SOURCE_NOTES` and
recorded in the run's results.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from limacot.data.cot import COT_FIELDS, get_style
from limacot.data.files import iter_rows
from limacot.errors import DataError, LimacotInputError

Rows = list[dict]


@dataclass(frozen=True)
class Source:
    """Where one task's docs live: hub id and the local files (split -> relative path)."""

    hub_path: str | None
    hub_name: str | None
    files: Callable[[str | None], dict[str, str]]
    read: Callable[[Path, str, str | None], Rows]
    layout: str  # human-readable: what the local files look like


# --- row readers (one per local layout) ------------------------------------------------------

def _choice(path: Path, location: str, row: dict, field: str, allowed: dict):
    """`allowed[value]` for the stripped field value (case-insensitive), else a DataError."""
    value = str(row.get(field, "")).strip()
    if value not in allowed:
        value = value.lower()
    if value not in allowed:
        raise DataError(path, location, field, " or ".join(repr(k) for k in allowed), "bad_label", got=repr(value))
    return allowed[value]


def _need(path: Path, location: str, row: dict, *fields: str) -> None:
    for name in fields:
        if name not in row:
            raise DataError(path, location, name, f"a '{name}' column", "missing_field", got=f"columns {sorted(row)}")


def _read_kobest(task: str) -> Callable[[Path, str, str | None], Rows]:
    def read(path: Path, split: str, subject: str | None) -> Rows:
        docs = []
        for location, row in iter_rows(path):
            docs.append({**_kobest_fields(task, path, location, row), "limacot_id": str(row.get("ID", location))})
        return docs

    return read


_TRUE_FALSE = {"true": 1, "false": 0}  # the TSVs spell it True, TRUE, False, FALSE


def _kobest_fields(task: str, path: Path, loc: str, row: dict) -> dict:
    if task == "boolq":
        _need(path, loc, row, "Text", "Question")
        return {"paragraph": row["Text"], "question": row["Question"],
                "label": _choice(path, loc, row, "Answer", _TRUE_FALSE)}
    if task == "copa":
        _need(path, loc, row, "sentence", "question", "1", "2")
        return {"premise": row["sentence"], "question": row["question"], "alternative_1": row["1"],
                "alternative_2": row["2"], "label": _choice(path, loc, row, "Answer", {"1": 0, "2": 1})}
    if task == "hellaswag":
        _need(path, loc, row, "context", "choice1", "choice2", "choice3", "choice4")
        return {"context": row["context"], **{f"ending_{i}": row[f"choice{i}"] for i in range(1, 5)},
                "label": _choice(path, loc, row, "label", {str(i): i for i in range(4)})}
    if task == "sentineg":  # train: ID,Text,Label  dev: ID,Label,Text  test: ...,Label,Text,... (by name)
        _need(path, loc, row, "Text")
        return {"sentence": row["Text"], "label": _choice(path, loc, row, "Label", {"0": 0, "1": 1})}
    if task == "wic":
        _need(path, loc, row, "Target", "SENTENCE1", "SENTENCE2")
        return {"word": row["Target"], "context_1": row["SENTENCE1"], "context_2": row["SENTENCE2"],
                "label": _choice(path, loc, row, "ANSWER", _TRUE_FALSE)}
    raise ValueError(task)


def _read_kmmlu(path: Path, split: str, subject: str | None) -> Rows:
    docs = []
    for location, row in iter_rows(path):
        _need(path, location, row, "question", "A", "B", "C", "D")
        answer = _choice(path, location, row, "answer", {str(i): i for i in range(1, 5)})
        docs.append({**row, "answer": answer, "limacot_id": location})
    return docs


def haerae_query(question: str, options: list[str]) -> str:
    """The hub's `query` layout (HAERAE-HUB/HAE_RAE_BENCH) from a v1.0 CSV row.

        ("빈 칸에 ...", ["겁쟁이", "멋쟁이", ...]) ->
        "다음 질문을 읽고 정답으로 가장 알맞은 것을 고르시요.\\n    \\n### 질문: \\n빈 칸에 ...\\n\\n### 선택지: \\n(A) 겁쟁이\\n(B) 멋쟁이\\n...\\n\\n### 정답:"

    Reconstructed from a published rendering of a hub row; the hub file itself was not
    available to compare byte for byte.
    """
    letters = "ABCDE"
    lines = "\n".join(f"({letters[i]}) {text}" for i, text in enumerate(options))
    return f"다음 질문을 읽고 정답으로 가장 알맞은 것을 고르시요.\n    \n### 질문: \n{question}\n\n### 선택지: \n{lines}\n\n### 정답:"


def _read_haerae(path: Path, split: str, subject: str | None) -> Rows:
    docs = []
    for location, row in iter_rows(path):
        _need(path, location, row, "question", "a", "b", "c", "d")
        options = [row[k] for k in "abcde" if str(row.get(k, "")).strip()]
        letter = str(row.get("answer", "")).strip().lower()
        if letter not in "abcde"[: len(options)] or not letter:
            raise DataError(path, location, "answer", f"a letter a-{'abcde'[len(options) - 1]} naming a non-empty option",
                            "bad_label", got=repr(row.get("answer")))
        docs.append({"query": haerae_query(row["question"], options), "answer": f"({letter.upper()})",
                     "options": options, "limacot_id": location})
    return docs


_MMLU_HEADER = ["question", "choice0", "choice1", "choice2", "choice3", "answer"]


def _read_mmlu(path: Path, split: str, subject: str | None) -> Rows:
    """MMLU CSV with a header row (answer 0-3), or the original headerless hendrycks layout
    (answer A-D)."""
    if not path.is_file():
        raise LimacotInputError(f"{path}: no such file")
    text = path.read_text(encoding="utf-8-sig")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    has_header = bool(rows) and [c.strip() for c in rows[0]] == _MMLU_HEADER
    answers = {str(i): i for i in range(4)} if has_header else {k: i for i, k in enumerate("ABCD")}
    docs = []
    for number, values in enumerate(rows[1:] if has_header else rows, 1):
        if not values:
            continue
        location = f"row {number}"
        if len(values) != 6:
            raise DataError(path, location, None, "6 columns: question, 4 choices, answer", "wrong_column_count",
                            got=str(len(values)))
        row = dict(zip(_MMLU_HEADER, values))
        docs.append({"question": row["question"], "subject": subject or "", "choices": values[1:5],
                     "answer": _choice(path, location, row, "answer", answers), "limacot_id": location})
    return docs


def _read_arc(path: Path, split: str, subject: str | None) -> Rows:
    docs = []
    for location, row in iter_rows(path):
        question = row.get("question")
        if not isinstance(question, dict) or not isinstance(question.get("choices"), list):
            raise DataError(path, location, "question", "the ARC layout {stem, choices: [{text, label}]}",
                            "bad_layout", got=type(question).__name__)
        labels = [str(c.get("label")) for c in question["choices"]]
        if row.get("answerKey") not in labels:
            raise DataError(path, location, "answerKey", f"one of {labels}", "bad_label", got=repr(row.get("answerKey")))
        docs.append({"id": row.get("id", location), "question": question.get("stem", ""),
                     "choices": {"text": [c.get("text", "") for c in question["choices"]], "label": labels},
                     "answerKey": row["answerKey"], "limacot_id": str(row.get("id", location))})
    return docs


def _read_gsm8k(path: Path, split: str, subject: str | None) -> Rows:
    docs = []
    for location, row in iter_rows(path):
        _need(path, location, row, "question", "answer")
        docs.append({"question": row["question"], "answer": row["answer"], "limacot_id": location})
    return docs


def clean_ko_question(text: str) -> str:
    """Drop the stray translated answer some Ko-GSM8K questions carry.

        "...얼마나 벌까요? \\n\\nAnswer: 그녀는 ... $4를 벌게 됩니다."  ->  "...얼마나 벌까요?"
    """
    head, sep, _ = text.partition("\n\nAnswer:")
    return head.strip() if sep else text.strip()


def _read_ko_gsm8k(path: Path, split: str, subject: str | None) -> Rows:
    docs = []
    for location, row in iter_rows(path):
        _need(path, location, row, "kor_question", "answer_s")
        docs.append({"question": clean_ko_question(row["kor_question"]), "answer": str(row["answer_s"]).strip(),
                     "kor_question": row["kor_question"], "limacot_id": location})
    return docs


def _read_kocot(path: Path, split: str, subject: str | None) -> Rows:
    """KoCoT-layout rows {source, rationale, target} -> {question, answer, target}: `answer` is
    the reference answer as training renders a KoCoT row (the built-in `ko` CoT style)."""
    style = get_style("ko")
    docs = []
    for location, row in iter_rows(path):
        _need(path, location, row, *COT_FIELDS)
        for name in COT_FIELDS:
            if not isinstance(row[name], (str, int, float)) or not str(row[name]).strip():
                raise DataError(path, location, name, "non-empty text", "empty_field", got=repr(row[name]))
        docs.append({"question": str(row["source"]).strip(), "answer": style.render(row),
                     "target": str(row["target"]).strip(), "limacot_id": str(row.get("id", location))})
    return docs


# --- the registry of sources ----------------------------------------------------------------

def _kobest_files(task: str) -> Callable[[str | None], dict[str, str]]:
    return lambda subject: {s: f"kobest/{task}/{f}.tsv" for s, f in
                            (("train", "train"), ("validation", "dev"), ("test", "test"))}


SOURCES: dict[str, Source] = {
    **{f"kobest_{t}": Source("skt/kobest_v1", t, _kobest_files(t), _read_kobest(t),
                             f"SKT KoBEST TSV (kobest/{t}/train.tsv, dev.tsv, test.tsv)")
       for t in ("boolq", "copa", "hellaswag", "sentineg", "wic")},
    "kmmlu": Source("HAERAE-HUB/KMMLU", None,
                    lambda s: {"test": f"kmmlu/{s}-test.json", "dev": f"kmmlu/{s}-dev.json"},
                    _read_kmmlu, "KMMLU JSON array or CSV (kmmlu/<Subject>-test.json, optional -dev.json)"),
    "haerae": Source("HAERAE-HUB/HAE_RAE_BENCH", None, lambda s: {"test": f"haerae/v1.0_{s}.csv"},
                     _read_haerae, "HAE-RAE v1.0 CSV with columns question,a,b,c,d,e,answer"),
    "mmlu": Source("cais/mmlu", None, lambda s: {"test": f"mmlu/test/{s}_test.csv", "dev": f"mmlu/dev/{s}_dev.csv"},
                   _read_mmlu, "MMLU CSV (mmlu/test/<subject>_test.csv, mmlu/dev/<subject>_dev.csv)"),
    "arc_challenge": Source("allenai/ai2_arc", "ARC-Challenge",
                            lambda s: {"train": "arc/ARC-Challenge-Train.jsonl",
                                       "validation": "arc/ARC-Challenge-Dev.jsonl",
                                       "test": "arc/ARC-Challenge-Test.jsonl"},
                            _read_arc, "ARC JSONL in the original layout (arc/ARC-Challenge-{Train,Dev,Test}.jsonl)"),
    "gsm8k": Source("openai/gsm8k", "main", lambda s: {"train": "gsm8k/train.jsonl", "test": "gsm8k/test.jsonl"},
                    _read_gsm8k, "GSM8K JSONL {question, answer} (gsm8k/test.jsonl)"),
    "ko_gsm8k": Source(None, None, lambda s: {"test": "ko_gsm8k/test.jsonl"}, _read_ko_gsm8k,
                       "Ko-GSM8K JSONL {kor_question, answer_s, ...} (ko_gsm8k/test.jsonl)"),
    "kocot_heldout": Source(None, None, lambda s: {"test": "kocot_heldout/test.jsonl"}, _read_kocot,
                            "KoCoT-layout JSONL {source, rationale, target} (kocot_heldout/test.jsonl)"),
}

# Splits a local layout may lack, and what stands in for them (recorded in results).
OPTIONAL_SPLITS = {("kmmlu", "dev"): "kmmlu: no dev file; the first 5 test rows are the few-shot pool and are not scored",
                   ("arc_challenge", "train"): "arc_challenge: no Train file; few-shot examples come from Dev",
                   ("gsm8k", "train"): "gsm8k: train file unused (fixed CoT exemplars)",
                   ("kobest_boolq", "validation"): "", ("kobest_copa", "validation"): "",
                   ("kobest_hellaswag", "validation"): "", ("kobest_sentineg", "validation"): "",
                   ("kobest_wic", "validation"): ""}
KMMLU_FEWSHOT_FALLBACK = 5


def hub_id(source: str, subject: str | None = None) -> tuple[str | None, str | None]:
    entry = SOURCES[source]
    return entry.hub_path, subject if subject is not None else entry.hub_name


def local_files(source: str, data_dir: str | Path, subject: str | None = None) -> dict[str, Path]:
    """split -> expected path (existing or not). For KMMLU a .csv stands in for a missing .json."""
    base = Path(data_dir)
    out = {}
    for split, rel in SOURCES[source].files(subject).items():
        path = base / rel
        if not path.exists() and path.suffix == ".json" and path.with_suffix(".csv").exists():
            path = path.with_suffix(".csv")
        out[split] = path
    return out


def missing_files(source: str, data_dir: str | Path, subject: str | None = None) -> list[Path]:
    """Required local files that do not exist (optional splits are not reported)."""
    return [path for split, path in local_files(source, data_dir, subject).items()
            if not path.is_file() and (source, split) not in OPTIONAL_SPLITS]


def missing_message(task: str, source: str, data_dir: str | Path, subject: str | None = None) -> str:
    paths = ", ".join(str(p) for p in missing_files(source, data_dir, subject))
    return (f"task '{task}': data file not found under --data-dir {data_dir}: expected {paths} "
            f"({SOURCES[source].layout}).")


def read_local(source: str, data_dir: str | Path, subject: str | None = None) -> dict[str, Rows]:
    """All splits of a source read from `data_dir`, with the documented fallbacks applied."""
    missing = missing_files(source, data_dir, subject)
    if missing:
        raise LimacotInputError(missing_message(source if subject is None else f"{source}_{subject}",
                                                source, data_dir, subject))
    reader = SOURCES[source].read
    splits = {split: reader(path, split, subject)
              for split, path in local_files(source, data_dir, subject).items() if path.is_file()}
    if source == "kmmlu" and "dev" not in splits:
        test = splits["test"]
        if len(test) <= KMMLU_FEWSHOT_FALLBACK:
            raise LimacotInputError(f"kmmlu {subject}: no dev file and only {len(test)} test rows; "
                                    f"add kmmlu/{subject}-dev.json (or .csv)")
        splits["dev"], splits["test"] = test[:KMMLU_FEWSHOT_FALLBACK], test[KMMLU_FEWSHOT_FALLBACK:]
    if source == "arc_challenge" and "train" not in splits:
        splits["train"] = splits["validation"]
    return splits


def load_docs(source: str, subject: str | None = None, limacot_data_dir: str | None = None, **_metadata):
    """lm-eval `custom_dataset` hook: a DatasetDict of the task's splits.

    `source`/`subject` come from the YAML's dataset_kwargs; `limacot_data_dir` from the run's
    metadata (absent in plain lm-eval runs: the hub is used then).
    """
    import datasets

    if limacot_data_dir:
        return datasets.DatasetDict({split: datasets.Dataset.from_list(rows)
                                     for split, rows in read_local(source, limacot_data_dir, subject).items()})
    path, name = hub_id(source, subject)
    if path is None:
        raise LimacotInputError(f"{source} has no hub dataset; pass --data-dir with {SOURCES[source].layout}")
    try:
        return datasets.load_dataset(path, name)
    except Exception as err:  # offline, gated, renamed: all become one actionable message
        raise LimacotInputError(f"could not load hub dataset {path}" + (f" ({name})" if name else "") +
                                f": {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}. "
                                f"Offline? Pass --data-dir DIR with the original files "
                                f"({SOURCES[source].layout}).") from None

