"""Prompt hooks the task YAMLs call (`!function limacot.eval.prompts.<name>`).

The KoBEST hooks produce exactly the text, choices and targets of lm-eval's built-in kobest
tasks (a test renders the same doc with both), so our numbers compare with published ones.
Docs use the hub field names (skt/kobest_v1); `limacot.eval.task_data` maps the original TSVs
onto them.

    copa   {"premise": "음료에 초콜렛 시럽을 넣었다.", "question": "결과", ...}
        -> "음료에 초콜렛 시럽을 넣었다.  그래서"   (two spaces: lm-eval's connector carries one)
    sentineg {"sentence": "별로네요"}  ->  "문장: 별로네요 긍부정:"
    wic    {"word": "단수", "context_1": A, "context_2": B}
        -> "문장1: A 문장2: B 두 문장에서 단수가 같은 뜻으로 쓰였나?"
    hellaswag {"context": C, "ending_1".."ending_4", "label"}
        -> adds {"query": "문장: C", "choices": [ending_1..4], "gold": label}

The held-out CoT task (kocot_heldout) scores one continuation per doc, the reference answer;
`answer_ll_process_results` turns its log-likelihood into the per-doc `ll_per_char`.
"""

from __future__ import annotations

_COPA_CONNECTORS = {"원인": " 왜냐하면", "결과": " 그래서"}  # 원인 = cause, 결과 = effect
HAERAE_LETTERS = ("(A)", "(B)", "(C)", "(D)", "(E)")


def copa_doc_to_text(doc: dict) -> str:
    return f"{doc['premise']} {_COPA_CONNECTORS[doc['question'].strip()]}"


def copa_doc_to_target(doc: dict) -> str:
    """The text of the correct alternative (lm-eval matches it among the choices)."""
    return doc["alternative_1"] if doc["label"] == 0 else doc["alternative_2"]


def copa_doc_to_choice(doc: dict) -> list[str]:
    return [doc["alternative_1"], doc["alternative_2"]]


def sentineg_doc_to_text(doc: dict) -> str:
    return f"문장: {doc['sentence']} 긍부정:"


def wic_doc_to_text(doc: dict) -> str:
    return f"문장1: {doc['context_1']} 문장2: {doc['context_2']} 두 문장에서 {doc['word']}가 같은 뜻으로 쓰였나?"


def _hellaswag_fields(doc: dict) -> dict:
    return {"query": f"문장: {doc['context']}",
            "choices": [doc["ending_1"], doc["ending_2"], doc["ending_3"], doc["ending_4"]],
            "gold": int(doc["label"])}


def hellaswag_process_docs(dataset):
    """Add query/choices/gold to every doc of a `datasets.Dataset` (as lm-eval's kobest does)."""
    return dataset.map(_hellaswag_fields)


def macro_f1(items) -> float:
    """Macro F1 over (gold, pred) pairs, computed locally with scikit-learn (the definition
    lm-eval's kobest aggregation uses), so no metric is fetched from the hub."""
    from sklearn.metrics import f1_score

    golds, preds = zip(*items)
    return float(f1_score(golds, preds, average="macro"))


def haerae_doc_to_choice(doc: dict) -> list[str]:
    """"(A)".."(D)", plus "(E)" when the item has a fifth option.

    Local docs carry `options` (the non-empty option texts); hub docs only the rendered
    `query`, where a fifth option shows as a "(E) " line.
    """
    options = doc.get("options")
    if isinstance(options, list) and options:
        count = len(options)
    else:
        count = 5 if "\n(E) " in doc.get("query", "") else 4
    return list(HAERAE_LETTERS[:count])


def kocot_answer_target(doc: dict) -> str:
    """The continuation kocot_heldout scores: the reference answer after one space (lm-eval puts
    no delimiter between a loglikelihood task's context and its target)."""
    return " " + doc["answer"]


def answer_ll_process_results(doc: dict, results: list) -> dict:
    """kocot_heldout's per-doc score: the reference answer's log-likelihood per character.

        doc {"answer": "3 + 2 = 5이다.\n따라서 정답은 5입니다."} (26 characters), results [(-39.0, False)]
        -> {"ll_per_char": -1.5}
    """
    loglikelihood = float(results[0][0])
    return {"ll_per_char": loglikelihood / max(len(doc["answer"]), 1)}
