"""The main table `limacot run` prints at the end: within the terminal's width, task names whole."""

from __future__ import annotations

import io

from rich.console import Console

from limacot.run.cli import main_tables

MODELS = (("base", "-"), ("lima", "8"), ("lima+cot", "16"), ("lima+answer-only", "lima-1000+kocot-2000"),
          ("cot", "8"))
TASKS = ("kobest_copa", "kobest_sentineg", "kmmlu (1/45 subjects: criminal_law)")


def _render(width: int) -> str:
    rows = [{"backbone": "smollm2-135m", "task": task, "metric": "acc", "variant": v, "size": size,
             "mean": str(0.5 + i / 100), "ci_low": "0.3", "ci_high": "0.7"}
            for task in TASKS for i, (v, size) in enumerate(MODELS)]
    console = Console(width=width, record=True, file=io.StringIO())
    for renderable in main_tables(rows, width):
        console.print(renderable)
    return console.export_text()


def test_the_main_table_fits_80_columns_with_whole_task_names_and_a_legend():
    text = _render(80)
    assert max(len(line) for line in text.splitlines()) <= 80
    assert all(task in text for task in TASKS)
    for i, (variant, size) in enumerate(MODELS):  # every model's column, in some table, with its own mean
        assert f"{0.5 + i / 100:.3f}" in text
    assert "M4 = lima+answer-only lima-1000+kocot-2000" in text and "(1/3)" in text
    wide = _render(200)
    assert "(1/3)" not in wide and "lima+cot 16" in wide


def test_negative_scores_widen_the_columns_instead_of_cutting_names():
    """ll_per_char scores are negative ("[-2.12, -1.70]" is 14 characters): metric and task names
    stay whole and every interval is printed in full."""
    rows = [{"backbone": "smollm2-135m", "task": task, "metric": metric, "variant": v, "size": size,
             "mean": str(mean), "ci_low": str(mean - 0.2), "ci_high": str(mean + 0.2)}
            for task, metric, mean in (("kobest_sentineg", "f1", 0.405), ("kocot_heldout", "ll_per_char", -1.932))
            for v, size in MODELS[:3]]
    console = Console(width=80, record=True, file=io.StringIO())
    for renderable in main_tables(rows, 80):
        console.print(renderable)
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= 80 and "…" not in text
    assert "ll_per_char" in text and "kobest_sentineg" in text and "[-2.13, -1.73]" in text
