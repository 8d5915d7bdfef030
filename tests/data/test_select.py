"""Selection and cleaning: nested subsets, mixtures, exact/near dedup, decontamination."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from limacot.data.records import Conversation, Turn
from limacot.data.contamination import decontaminate, eval_texts_from_rows
from limacot.data.dedup import exact_dedup, near_dedup, pair_units
from limacot.data.select import mix, nested_subsets, selection_order
from limacot.errors import LimacotInputError


def conv(question: str, answer: str = "An answer.", source: str = "demo") -> Conversation:
    return Conversation.from_turns([Turn("user", question), Turn("assistant", answer)], source=source)


def pool(counts: dict[str, int]) -> list[Conversation]:
    """Records of several sources, interleaved in a fixed (not source-sorted) input order."""
    rows = [(s, i) for s, n in counts.items() for i in range(n)]
    rows.sort(key=lambda row: (row[1] * 7919 + len(row[0])) % 101)
    return [conv(f"question {i} from {s}", source=s) for s, i in rows]


UNEVEN = {"stackexchange": 40, "wikihow": 20, "authors": 20, "writingprompts": 15, "nlp": 5,
          "multi_turn": 3, "kor_mwp": 1}


# ---------------------------------------------------------------- nested subsets

@pytest.mark.parametrize("stratify", [True, False])
@pytest.mark.parametrize("seed", [0, 1, 2, 17, 12345])
def test_subsets_are_nested_prefixes(seed, stratify):
    records = pool({"a": 60, "b": 30, "c": 10})
    subsets = nested_subsets(records, [50, 5, 100, 20], seed=seed, stratify_by_source=stratify)
    assert list(subsets) == [5, 20, 50, 100]
    sizes = list(subsets)
    for small, large in zip(sizes, sizes[1:]):
        assert subsets[large][:small] == subsets[small]
    assert len({r.id for r in subsets[100]}) == 100  # the full size is a permutation of the pool


@pytest.mark.parametrize("seed", range(8))
def test_every_prefix_holds_each_source_within_one_of_its_share(seed):
    records = pool(UNEVEN)
    total = len(records)
    order = selection_order(records, seed)
    assert sorted(order) == list(range(total))
    taken: Counter = Counter()
    for n, index in enumerate(order, start=1):
        taken[records[index].source] += 1
        for source, count in UNEVEN.items():
            share = n * count / total
            assert math.floor(share) <= taken[source] <= math.ceil(share), (n, source)


def test_subsets_are_deterministic_and_seed_dependent():
    records = pool({"a": 30, "b": 30})
    first = nested_subsets(records, [10], seed=3)[10]
    assert nested_subsets(records, [10], seed=3)[10] == first
    assert nested_subsets(records, [10], seed=4)[10] != first
    assert nested_subsets(records, [10], seed=3, stratify_by_source=False)[10] != first


def test_order_does_not_depend_on_hash_randomisation():
    code = ("from limacot.data.records import Conversation, Turn\n"
            "from limacot.data.select import selection_order\n"
            "recs = [Conversation.from_turns([Turn('user', f'q{i}'), Turn('assistant', 'a')], "
            "source=f's{i % 5}') for i in range(40)]\n"
            "print(selection_order(recs, 7))")
    src = str(Path(__file__).resolve().parents[2] / "src")
    outputs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                              env={**os.environ, "PYTHONPATH": src, "PYTHONHASHSEED": str(h)}).stdout
               for h in (1, 2, 3)}
    assert len(outputs) == 1


def test_size_larger_than_pool_names_size_pool_and_variant():
    records = pool({"a": 7})
    with pytest.raises(LimacotInputError, match=r"size 8 for data variant 'lima_ko'.*pool of 7"):
        nested_subsets(records, [5, 8], seed=0, variant="lima_ko")
    with pytest.raises(LimacotInputError, match="non-negative"):
        nested_subsets(records, [-1], seed=0)
    assert nested_subsets(records, [0, 7], seed=0)[0] == []


# ---------------------------------------------------------------- mixtures

def test_mix_counts_and_all():
    pools = {"lima": pool({"lima": 20}), "ko": pool({"ko": 30})}
    out = mix(pools, {"lima": "all", "ko": 12}, seed=0)
    assert Counter(r.source for r in out) == {"lima": 20, "ko": 12}
    assert [r.source for r in out] == ["lima"] * 20 + ["ko"] * 12  # pools in spec order
    assert out == mix(pools, {"lima": "all", "ko": 12}, seed=0)
    more = mix(pools, {"lima": "all", "ko": 20}, seed=0)
    assert {r.id for r in out} <= {r.id for r in more}  # a larger count only adds records


def test_mix_ratios_round_to_exact_total():
    pools = {name: pool({name: 30}) for name in ("a", "b", "c")}
    out = mix(pools, {"a": 0.5, "b": 0.3, "c": 0.2}, seed=1, total=20)
    assert Counter(r.source for r in out) == {"a": 10, "b": 6, "c": 4}
    thirds = mix(pools, {"a": 1 / 3, "b": 1 / 3, "c": 1 / 3}, seed=1, total=10)
    assert len(thirds) == 10 and sorted(Counter(r.source for r in thirds).values()) == [3, 3, 4]


def test_mix_errors():
    pools = {"lima": pool({"lima": 5}), "ko": pool({"ko": 5})}
    with pytest.raises(LimacotInputError, match=r"6 records from pool 'ko'.*only 5 available"):
        mix(pools, {"lima": 1, "ko": 6}, seed=0)
    with pytest.raises(LimacotInputError, match="mixes ratios"):
        mix(pools, {"lima": 2, "ko": 0.5}, seed=0, total=4)
    with pytest.raises(LimacotInputError, match="total"):
        mix(pools, {"lima": 0.5, "ko": 0.5}, seed=0)
    with pytest.raises(LimacotInputError, match="sum to 1"):
        mix(pools, {"lima": 0.5, "ko": 0.6}, seed=0, total=4)
    with pytest.raises(LimacotInputError, match="unknown pool"):
        mix(pools, {"alpaca": 1}, seed=0)
    with pytest.raises(LimacotInputError, match=r"asks for 8 records from pool 'ko'.*only 5 available"):
        mix(pools, {"lima": 0.2, "ko": 0.8}, seed=0, total=10)  # 8 from a 5-record pool


# ---------------------------------------------------------------- exact and near dedup

def test_exact_dedup_ignores_case_whitespace_and_width():
    first = conv("What is the capital of France?", "Paris.")
    variants = [conv("what is  the CAPITAL of france?", "paris."),
                conv("What is the capital of France?\n", "  Paris.\t"),
                conv("ＷＨＡＴ is the capital of France?", "Paris.")]  # full-width letters (NFKC)
    other = conv("What is the capital of Spain?", "Madrid.")
    kept, removed = exact_dedup([first, *variants, other])
    assert kept == [first, other]
    assert [(d.record, d.kept_id, d.index, d.kept_index, d.twin_id) for d in removed] == [
        (v, first.id, i, 0, None) for i, v in enumerate(variants, 1)]


EN = ("The committee met on Tuesday to review the annual budget for the city library. After a long "
      "discussion about maintenance costs, staff salaries and the new digital catalogue, the members "
      "agreed to increase funding for children's programs and to extend weekend opening hours. The "
      "final vote will take place next month, after a public consultation with local residents.")
EN_EDIT = EN.replace("Tuesday", "Monday").replace("next month", "in May")
EN_OTHER = ("Photosynthesis converts light energy into chemical energy stored in glucose. Plants absorb "
            "carbon dioxide through small pores in their leaves and release oxygen as a by-product, while "
            "chlorophyll captures mostly red and blue wavelengths of sunlight for the reaction.")
KO = ("민수는 시장에서 사과 12개와 배 8개를 샀습니다. 집에 돌아오는 길에 친구에게 사과 3개를 주었고, 저녁에는 "
      "가족과 함께 배 2개를 먹었습니다. 다음 날 아침 어머니께서 사과 5개를 더 사 오셨습니다. 지금 민수의 집에 "
      "남아 있는 과일은 모두 몇 개인지 차례대로 계산해 봅시다.")
KO_EDIT = KO.replace("친구에게", "동생에게").replace("저녁에는", "밤에는")
KO_OTHER = ("한 변의 길이가 7센티미터인 정사각형 모양의 색종이가 있습니다. 이 색종이를 가로로 한 번, 세로로 한 번 "
            "접었다가 펼친 다음 접힌 선을 따라 자르면 작은 정사각형 네 개가 생깁니다. 작은 정사각형 하나의 "
            "둘레는 몇 센티미터인지 구해 보세요.")


@pytest.mark.parametrize("text, edited, other", [(EN, EN_EDIT, EN_OTHER), (KO, KO_EDIT, KO_OTHER)])
def test_near_dedup_removes_a_lightly_edited_copy_and_keeps_distinct_texts(text, edited, other):
    original, copy, distinct = conv(text, "Noted."), conv(edited, "Noted."), conv(other, "Noted.")
    kept, removed = near_dedup([original, distinct, copy])
    assert kept == [original, distinct]
    assert len(removed) == 1
    dup = removed[0]
    assert dup.record == copy and dup.kept_id == original.id and dup.index == 2 and 0.8 <= dup.jaccard < 1.0


def test_pair_units_group_records_by_pair_key():
    assert pair_units(5, None) == [[0], [1], [2], [3], [4]]
    assert pair_units(5, [("k", 1), None, ("k", 2), ("k", 1), ("k", 2)]) == [[0, 3], [1], [2, 4]]
    with pytest.raises(ValueError, match="2 pair keys for 3 records"):
        pair_units(3, [None, None])


def test_dedup_never_compares_twins_and_removes_them_together():
    """Records with one pair key (one row in two CoT styles) are kept or removed together and never
    compared with each other, even when their texts are equal."""
    a, a_twin = conv("2+3?", "5"), conv("2+3?", "5")  # the same text in both styles
    b, b_twin = conv("2+4?", "2 and 4 make 6.\nSo 6."), conv("2+4?", "6")
    c, c_twin = conv("2+4?", "Adding 4 to 2 gives 6.\nSo 6."), conv("2+4?", "6")  # only the answer-only forms repeat
    records = [a, b, c, a_twin, b_twin, c_twin]
    keys = [("k", 1), ("k", 2), ("k", 3), ("k", 1), ("k", 2), ("k", 3)]
    kept, removed = exact_dedup(records, pair_keys=keys)
    assert kept == [a, b, a_twin, b_twin]
    assert [(d.index, d.kept_id, d.kept_index, d.twin_id) for d in removed] == [(2, b_twin.id, 4, c_twin.id),
                                                                                (5, b_twin.id, 4, None)]
    assert exact_dedup(records)[0] == [a, b, c, b_twin]  # without pair keys a_twin repeats a, c_twin b_twin
    kept, removed = near_dedup(records, pair_keys=keys)
    assert kept == [a, b, a_twin, b_twin] and [d.index for d in removed] == [2, 5]
    assert removed[0].twin_id == c_twin.id and removed[1].twin_id is None


def test_decontamination_removes_a_contaminated_record_with_its_twin():
    cot, answer_only = conv("Story?", "Once, " + EVAL_LONG + "."), conv("Story?", "A fox.")
    clean = conv("Other?", "Nothing.")
    report = decontaminate([cot, clean, answer_only], {"en": [EVAL_LONG]}, remove=True,
                           pair_keys=[("k", 1), None, ("k", 1)])
    assert report.contaminated_ids == [cot.id]
    assert report.kept == [clean] and report.removed == [cot, answer_only]
    assert report.removed_at == [0, 2] and report.with_twin_at == [2]
    assert report.to_json()["removed_with_twin"] == 1
    unpaired = decontaminate([cot, clean, answer_only], {"en": [EVAL_LONG]}, remove=True)
    assert unpaired.kept == [clean, answer_only]


def test_near_dedup_rejects_a_bad_threshold():
    with pytest.raises(LimacotInputError, match="threshold"):
        near_dedup([conv("a b")], threshold=1.5)


# ---------------------------------------------------------------- decontamination

EVAL_LONG = ("The quick brown fox jumps over the lazy dog while the farmer watches from the old wooden "
             "porch near the barn")  # 20 words
EVAL_KO = "철수는 아침마다 공원에서 강아지와 함께 산책을 하고 돌아와서 따뜻한 우유를 한 잔 마신 뒤 학교에 갑니다"
EVAL_MID = "Nine words exactly are in this eval sentence here"  # 9 words: matched whole
EVAL_SHORT = "Far too short to check"  # 5 words < min_words


def test_decontaminate_finds_planted_ngrams_whole_short_texts_and_counts_too_short():
    planted = conv("Tell me a story.", "Once, " + "THE QUICK brown fox — jumps over the lazy dog, while the "
                   "farmer watches from the old porch!")  # 13 consecutive eval words, other punctuation/case
    planted_ko = conv("이야기를 해 줘.", "어제 " + " ".join(EVAL_KO.split()[2:15]) + " 그리고 끝.")
    whole = conv("Quote it.", "He said: nine words, exactly, are in this eval sentence here.")
    partial = conv("Quote part.", "Nine words exactly are in this eval sentence.")  # 8 of the 9 words
    clean = conv("Something else entirely.", "Nothing to see here at all.")
    records = [planted, planted_ko, whole, partial, clean]
    eval_sets = {"en": [EVAL_LONG, EVAL_MID, EVAL_SHORT], "ko": [EVAL_KO, "짧은 문장"]}

    report = decontaminate(records, eval_sets)
    en, ko = report.eval_sets["en"], report.eval_sets["ko"]
    assert (en.n_texts, en.too_short, ko.n_texts, ko.too_short) == (3, 1, 2, 1)
    assert en.matched_ids == [planted.id, whole.id]
    assert en.examples[planted.id] == "the quick brown fox jumps over the lazy dog while the farmer watches"
    assert en.examples[whole.id] == "nine words exactly are in this eval sentence here"
    assert ko.matched_ids == [planted_ko.id]
    assert report.contaminated_ids == [planted.id, planted_ko.id, whole.id]
    assert report.kept == records and report.removed == []

    removed = decontaminate(records, eval_sets, remove=True)
    assert removed.kept == [partial, clean]
    assert removed.removed == [planted, planted_ko, whole]
    assert removed.to_json()["eval_sets"]["en"]["matched"] == 2


def test_decontaminate_twelve_words_is_not_a_thirteen_gram_match():
    near_miss = conv("Q?", " ".join(EVAL_LONG.split()[:12]) + " and then it rained.")
    assert decontaminate([near_miss], {"en": [EVAL_LONG]}).contaminated_ids == []


def test_decontaminate_rejects_bad_sizes():
    with pytest.raises(LimacotInputError, match="min_words"):
        decontaminate([], {"en": []}, ngram=5, min_words=8)


def test_eval_texts_from_rows_keeps_multiword_text_fields_only():
    rows = [
        {"ID": "1", "sentence": "전쟁이 시작되었다.", "question": "결과", "1": "병사들이 집으로 돌아왔다.",
         "2": "병사들이 전투에 파견되었다.", "Answer": "2"},
        {"ID": "2", "Text": "True story told twice", "Label": "True", "Link": "https://example.org/a?b=c"},
        {"id": "Mercury_1", "question": {"stem": "Which object rolls the farthest?",
                                         "choices": [{"text": "A rubber ball.", "label": "A"},
                                                     {"text": "Cube", "label": "B"}]}, "answerKey": "A"},
        {"ID": "3", "Text": "True story told twice", "score": 0.5, "n": 12},  # repeated text kept once
    ]
    assert eval_texts_from_rows(rows) == [
        "전쟁이 시작되었다.", "병사들이 집으로 돌아왔다.", "병사들이 전투에 파견되었다.", "True story told twice",
        "Which object rolls the farthest?", "A rubber ball."]
