"""What `limacot run` hands the generate and judge stages: the study's batch size, concurrency,
API key variable, the other judge settings and compute settings (not the stages' own defaults)."""

from __future__ import annotations

from conftest import write_study

from limacot.io.yaml_config import load_config
from limacot.run import execute
from limacot.run.config import StudyConfig
from limacot.run.plan import build_plan


def test_generate_and_judge_jobs_get_the_study_settings(tiny_study, monkeypatch):
    judge = {"prompts": "prompts.jsonl", "judge": "tiny", "max_new_tokens": 4, "batch_size": 16, "concurrency": 3,
             "api_key_env": "MY_JUDGE_KEY", "lang": "ko", "max_total_wait": 30}
    config = load_config(write_study(tiny_study, judge=judge, compute={"dtype": "bfloat16"}), StudyConfig)
    plan = build_plan(config, tiny_study / "study")
    seen = {}
    monkeypatch.setattr(execute, "generate_file", lambda *a, **k: seen.setdefault("generate", k))
    monkeypatch.setattr(execute, "judge_pairwise", lambda a, b, out, cfg, progress: seen.setdefault("judge", cfg))
    execute.run_stage(plan, plan.of("generate")[0], tiny_study / "g")
    execute.run_stage(plan, plan.of("judge")[0], tiny_study / "j")
    assert seen["generate"]["batch_size"] == 16 and seen["generate"]["compute"].dtype == "bfloat16"
    judged = seen["judge"]
    assert (judged.concurrency, judged.api_key_env, judged.dtype) == (3, "MY_JUDGE_KEY", "bfloat16")
    assert (judged.lang, judged.http().max_total_wait, judged.judge) == ("ko", 30, str(tiny_study / "tiny"))


def test_metrics_under_lm_eval_filters_are_stored_apart(tiny_study):
    """An lm-eval task scoring one metric under two filters (gsm8k's strict-match and
    flexible-extract) gives two metrics rows, not one overwritten by the other."""
    import json

    plan = build_plan(load_config(tiny_study / "study.yaml", StudyConfig), tiny_study / "study")
    job = plan.of("eval")[0]
    out = tiny_study / "e"
    out.mkdir()
    results = {"results": {"gsm8k_cot": {"alias": "gsm8k_cot", "exact_match,strict-match": 0.25,
                                         "exact_match_stderr,strict-match": 0.1, "exact_match,flexible-extract": 0.5,
                                         "exact_match_stderr,flexible-extract": 0.2},
                           "kobest_copa": {"acc,none": 0.75, "acc_stderr,none": 0.05}},
               "n-samples": {"gsm8k_cot": {"effective": 4}, "kobest_copa": {"effective": 4}},
               "limacot": {"seeds_run": [1234], "seed_variance": {"gsm8k_cot": {
                   "exact_match,strict-match": {"values": [0.25]}, "exact_match,flexible-extract": {"values": [0.5]}}}}}
    (out / "results.json").write_text(json.dumps(results))
    rows = [params for _, params in execute._eval_rows(plan, job, out)]
    stored = {(task, metric, seed): (value, stderr) for _, _, task, metric, value, stderr, _, seed in rows}
    assert stored == {("gsm8k_cot", "exact_match,strict-match", -1): (0.25, 0.1),
                      ("gsm8k_cot", "exact_match,flexible-extract", -1): (0.5, 0.2),
                      ("kobest_copa", "acc", -1): (0.75, 0.05),
                      ("gsm8k_cot", "exact_match,strict-match", 1234): (0.25, None),
                      ("gsm8k_cot", "exact_match,flexible-extract", 1234): (0.5, None)}
