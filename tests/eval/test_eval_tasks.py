"""The task pack: every shipped YAML loads; prompts, choices and targets equal lm-eval's built-in
tasks fed the same docs; each task's text and gold on a real sample row."""

from __future__ import annotations

from pathlib import Path

import lm_eval
import pytest
from lm_eval.api.task import ConfigurableTask
from lm_eval.tasks._yaml_loader import load_yaml

from limacot.eval.catalog import TASKS_DIR, leaves_of, task_manager
from limacot.eval.task_data import SOURCES
from limacot.eval.subjects import KMMLU_SUBJECTS, MMLU_SUBJECTS, kmmlu_task, render_subject_yamls

BUILTIN = Path(lm_eval.__file__).parent / "tasks"
SHIPPED = sorted(p for p in TASKS_DIR.rglob("*") if p.is_file() and (p.suffix == ".yaml" or p.name.endswith("_yaml")))


def test_the_pack_ships_the_expected_files():
    assert len(SHIPPED) > 100
    names = {p.name for p in SHIPPED}
    for expected in ("kobest_copa.yaml", "kmmlu_criminal_law.yaml", "mmlu_marketing.yaml", "arc_challenge.yaml",
                     "gsm8k.yaml", "ko_gsm8k.yaml", "haerae_reading_comprehension.yaml", "seed_study.yaml"):
        assert expected in names


@pytest.mark.parametrize("path", SHIPPED, ids=[str(p.relative_to(TASKS_DIR)) for p in SHIPPED])
def test_every_shipped_yaml_loads(path):
    cfg = load_yaml(path, resolve_func=True)  # imports every !function it names
    if "group" in cfg:
        assert cfg["task"], "a group needs members"
        return
    if "task" not in cfg:  # an include file: loads, and what it names exists
        assert cfg.get("custom_dataset") is not None and cfg.get("output_type")
        return
    source = cfg["dataset_kwargs"]["source"]
    assert source in SOURCES and callable(cfg["custom_dataset"])
    hub_path, hub_name = SOURCES[source].hub_path, SOURCES[source].hub_name
    assert cfg.get("dataset_path") == hub_path
    assert cfg.get("dataset_name") == (cfg["dataset_kwargs"].get("subject") or hub_name)
    from lm_eval.config.task import TaskConfig

    TaskConfig(**{k: v for k, v in cfg.items() if k not in ("tag", "group", "include")})


def test_groups_and_their_members_resolve():
    manager = task_manager(None)
    assert {"kobest", "kmmlu", "mmlu", "haerae_gk_rc", "seed-study", "english"} <= set(manager.all_groups)
    assert "haerae" not in manager.task_index  # lm-eval's group of that name (5 other subsets) is not ours
    assert leaves_of(manager, "kobest") == ["kobest_boolq", "kobest_copa", "kobest_hellaswag",
                                            "kobest_sentineg", "kobest_wic"]
    study = leaves_of(manager, "seed-study")
    assert study[:5] == leaves_of(manager, "kobest") and "kmmlu_criminal_law" in study
    assert "haerae_reading_comprehension" in study and len(study) == 5 + 45 + 2
    english = leaves_of(manager, "english")
    assert len(english) == 57 + 2 and english[-2:] == ["arc_challenge", "gsm8k"]


def test_generated_subject_yamls_are_current():
    for rel, text in render_subject_yamls().items():
        assert (TASKS_DIR / rel).read_text(encoding="utf-8") == text, f"rerun python -m limacot.eval.subjects ({rel})"


def test_subject_lists_match_lm_eval_builtin():
    builtin_kmmlu = {load_yaml(p, resolve_func=False)["dataset_name"]
                     for p in (BUILTIN / "kmmlu" / "default").glob("kmmlu_*.yaml")}
    builtin_mmlu = {load_yaml(p, resolve_func=False)["dataset_name"]
                    for p in (BUILTIN / "mmlu" / "default").glob("mmlu_*.yaml")}
    assert set(KMMLU_SUBJECTS) == builtin_kmmlu and set(MMLU_SUBJECTS) == builtin_mmlu
    assert kmmlu_task("Criminal-Law") == "kmmlu_criminal_law"


# --- same docs through our task and lm-eval's built-in task ----------------------------------

def _builtin(rel: str, ours: ConfigurableTask) -> ConfigurableTask:
    """lm-eval's built-in task config fed our docs (hub download replaced, metrics reduced to acc
    so HF `evaluate` is not fetched: neither changes how prompts are rendered)."""
    cfg = load_yaml(BUILTIN / rel, resolve_func=True)
    for key in ("tag", "group"):
        cfg.pop(key, None)
    cfg["custom_dataset"] = lambda **_: ours.dataset
    cfg["metric_list"] = [{"metric": "acc", "aggregation": "mean", "higher_is_better": True}]
    return ConfigurableTask(config=cfg)


def _render(task: ConfigurableTask, shots: int, docs: int = 4) -> list:
    task.set_config("num_fewshot", shots)
    task.set_fewshot_seed(1234)
    rendered = []
    for doc_id, doc in list(enumerate(task.eval_docs))[:docs]:
        ctx = task.fewshot_context(doc, shots)
        requests = task.construct_requests(doc, ctx, metadata=("t", doc_id, 1))
        requests = requests if isinstance(requests, list) else [requests]
        rendered.append((ctx, [r.arguments for r in requests], task.doc_to_target(doc)))
    return rendered


BUILTIN_PAIRS = [
    ("kobest_boolq", "kobest/kobest_boolq.yaml", 5),
    ("kobest_copa", "kobest/kobest_copa.yaml", 5),
    ("kobest_hellaswag", "kobest/kobest_hellaswag.yaml", 5),
    ("kobest_sentineg", "kobest/kobest_sentineg.yaml", 5),
    ("kobest_wic", "kobest/kobest_wic.yaml", 5),
    ("kmmlu_criminal_law", "kmmlu/default/kmmlu_criminal_law.yaml", 5),
    ("mmlu_marketing", "mmlu/default/mmlu_marketing.yaml", 5),
    ("arc_challenge", "arc/arc_challenge.yaml", 5),
    ("gsm8k", "gsm8k/gsm8k-cot.yaml", 5),
    ("gsm8k", "gsm8k/gsm8k-cot.yaml", 8),
    ("haerae_general_knowledge", "haerae/haerae_gk.yaml", 3),
]


@pytest.fixture(scope="module")
def our_tasks(shared_data):
    names = sorted({ours for ours, _, _ in BUILTIN_PAIRS} | {"haerae_reading_comprehension", "ko_gsm8k"})
    return task_manager(shared_data).load(names)["tasks"]


@pytest.mark.shared_data
@pytest.mark.parametrize("ours, builtin, shots", BUILTIN_PAIRS, ids=[f"{o}-{s}shot" for o, _, s in BUILTIN_PAIRS])
def test_prompts_equal_lm_eval_builtin(our_tasks, ours, builtin, shots):
    task = our_tasks[ours]
    reference = _builtin(builtin, task)
    assert _render(task, shots) == _render(reference, shots)


@pytest.mark.shared_data
def test_haerae_four_option_items_offer_four_choices(our_tasks):
    """Where an item has four options (reading comprehension) we offer (A)-(D); lm-eval's built-in
    always offers (E) as well. The prompt text is the same."""
    task = our_tasks["haerae_reading_comprehension"]
    reference = _builtin("haerae/haerae_gk.yaml", task)
    doc = task.eval_docs[0]
    assert task.doc_to_text(doc) == reference.doc_to_text(doc)
    assert task.doc_to_choice(doc) == ["(A)", "(B)", "(C)", "(D)"]
    assert reference.doc_to_choice(doc) == ["(A)", "(B)", "(C)", "(D)", "(E)"]


# --- each task's text and gold on a real row (expected values written from the raw files) -----

@pytest.mark.shared_data
def test_text_and_gold_on_sample_rows(our_tasks):
    copa = our_tasks["kobest_copa"]
    doc = copa.eval_docs[0]  # ID 1: 새로 산 바지의 허리가 컸다. / 결과 / ... / Answer 2
    assert copa.doc_to_text(doc) == "새로 산 바지의 허리가 컸다.  그래서"
    assert copa.doc_to_target(doc) == "벨트를 바지에 끼워 사이즈를 조절했다."
    wic = our_tasks["kobest_wic"]
    doc = wic.eval_docs[0]  # 양분, True
    assert wic.doc_to_text(doc) == ("문장1: 토양에 [양분]이 풍부하여 나무가 잘 자란다. 문장2: 태아는 모체로부터 "
                                    "[양분]과 산소를 공급받게 된다. 두 문장에서 양분가 같은 뜻으로 쓰였나?")
    assert wic.doc_to_target(doc) == 1
    sentineg = our_tasks["kobest_sentineg"]
    doc = sentineg.eval_docs[0]  # test.tsv: the negated Text/Label, not Text_origin
    assert sentineg.doc_to_text(doc) == "문장: 택배사 정말 마음에 듬 긍부정:" and sentineg.doc_to_target(doc) == 1
    boolq = our_tasks["kobest_boolq"]
    assert boolq.doc_to_text(boolq.eval_docs[0]).endswith("질문: 콜라독립 815는 코카콜라에서 만들었나요? 답변: ")
    assert boolq.doc_to_target(boolq.eval_docs[0]) == 0
    hellaswag = our_tasks["kobest_hellaswag"]
    assert hellaswag.doc_to_text(hellaswag.eval_docs[0]).startswith("문장: 여자는 새벽까지 잔업을 마치고")
    kmmlu = our_tasks["kmmlu_criminal_law"]  # no dev file: rows 1-5 are the few-shot pool; row 6 is doc 0
    assert kmmlu.doc_to_text(kmmlu.eval_docs[0]) == ("재산범죄에 대한 설명으로 옳은 것(○)과 옳지 않은 것(×)을 바르게 "
                                                   "연결한 것은?\nA. ○×○○\nB. ○ ○××\nC. ×○ ○×\nD. ××××\n정답：")
    assert kmmlu.doc_to_target(kmmlu.eval_docs[0]) == 3
    mmlu = our_tasks["mmlu_marketing"]
    assert mmlu.doc_to_text(mmlu.eval_docs[0]) == ("This is a hierarchy of effects or sequential model used to "
                                                   "explain how advertising works:\nA. ADD.\nB. AIDA.\nC. PESTLE.\n"
                                                   "D. SWOT.\nAnswer:")
    assert mmlu.doc_to_target(mmlu.eval_docs[0]) == 1
    arc = our_tasks["arc_challenge"]
    assert arc.doc_to_text(arc.eval_docs[0]).startswith("Question: An astronomer observes")
    assert arc.doc_to_target(arc.eval_docs[0]) == 2
    gsm8k = our_tasks["gsm8k"]
    assert gsm8k.doc_to_text(gsm8k.eval_docs[0]).startswith("Q: Janet’s ducks lay 16 eggs")
    assert gsm8k.doc_to_target(gsm8k.eval_docs[0]) == "18"
    ko = our_tasks["ko_gsm8k"]
    doc = ko.eval_docs[0]  # the stray "\n\nAnswer: ..." tail of row 0 is gone; gold is answer_s
    assert ko.doc_to_text(doc) == ("질문: 제넷의 오리는 하루에 16개의 알을 낳습니다. 그녀는 매일 아침 3개를 먹고, 매일 4개를 "
                                   "사용하여 친구들을 위해 머핀을 굽습니다. 그녀는 남은 알을 매일 농부 시장에서 1개당 $2에 "
                                   "판매합니다. 그녀는 매일 농부 시장에서 얼마나 벌까요?\n답변:")
    assert ko.doc_to_target(doc) == "18"
    haerae = our_tasks["haerae_general_knowledge"]
    doc = haerae.eval_docs[0]
    assert "\n### 선택지: \n(A) 추석\n(B) 제사\n(C) 성묘\n(D) 백일\n(E) 장례\n\n### 정답:" in haerae.doc_to_text(doc)
    assert haerae.doc_to_target(doc) == "(B)"
