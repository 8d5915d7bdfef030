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
    monkeypatch.setattr(execute, "judge_pairwise", lambda a, b, out, cfg: seen.setdefault("judge", cfg))
    execute.run_stage(plan, plan.of("generate")[0], tiny_study / "g")
    execute.run_stage(plan, plan.of("judge")[0], tiny_study / "j")
    assert seen["generate"]["batch_size"] == 16 and seen["generate"]["compute"].dtype == "bfloat16"
    judged = seen["judge"]
    assert (judged.concurrency, judged.api_key_env, judged.dtype) == (3, "MY_JUDGE_KEY", "bfloat16")
    assert (judged.lang, judged.http().max_total_wait, judged.judge) == ("ko", 30, str(tiny_study / "tiny"))
