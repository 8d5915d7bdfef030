"""Rich output of `limacot eval`: the progress bars' labels, the score table, the comparison table."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from limacot.eval.scores import ACCURACY_METRICS, CORPUS_METRICS, SCORE_COLUMNS, fewshot_label, score_table


def request_labels(update: Callable[[str, int, int], None]) -> Callable[[str, int, int], None]:
    """The harness's report(kind, done, total) as bars of `progress_bars`: one per request type,
    and per few-shot seed when several run ("[seed 1235] loglikelihood requests"); the harness
    announces each seed with report("seed N", i, k)."""
    prefix = [""]

    def report(kind: str, done: int, total: int) -> None:
        if kind.startswith("seed "):
            prefix[0] = f"[{kind}] " if total > 1 else ""
            return
        update(f"{prefix[0]}{kind} requests", done, total)

    return report


def show_results(console: Console, run: dict, out: Path) -> None:
    info = run["limacot"]
    groups = set(run.get("groups", {}))
    shots = fewshot_label(info["num_fewshot"], list(run.get("results", {})))
    table = Table(title=escape(f"{info['model']} · {info['backend']} · {shots}"))
    for column in SCORE_COLUMNS:
        table.add_column(column, justify="left" if column in ("task", "metric") else "right")
    for task, (label, *rest) in score_table(run):  # groups in bold
        table.add_row(Text(label, style="bold" if task in groups else ""), *(Text(cell) for cell in rest))
    console.print(table)
    for note in info.get("notes", []):
        console.print(f"[yellow]note:[/] {escape(str(note))}", highlight=False)
    skipped = info.get("skipped_tasks", {})
    if skipped:
        console.print(f"[yellow]skipped {len(skipped)} task(s) without local data:[/] "
                      f"{', '.join(list(skipped)[:8])}{' ...' if len(skipped) > 8 else ''}", highlight=False)
    console.print(f"[green]wrote[/] {escape(str(out))}/results.json, samples/, summary.md "
                  f"({info['wall_seconds']:.1f} s)",
                  highlight=False)


def show_comparison(console: Console, result: dict) -> None:
    a, b = result["a"], result["b"]
    title = escape(f"B ({b['model']}: {b['out']}) vs A ({a['model']}: {a['out']})")
    table = Table(title=title, caption=f"paired bootstrap {result['resamples']} resamples (seed {result['seed']}); "
                                       f"p: McNemar exact ({', '.join(ACCURACY_METRICS)}) or paired permutation "
                                       f"({', '.join(CORPUS_METRICS)}); "
                                       f"Holm across the {len(result['tasks'])} tasks' primary metrics (*)")
    for column in ("task", "n", "metric", "A", "B", "B - A", "95% CI", "test", "p", "Holm p"):
        table.add_column(column, justify="left" if column in ("task", "metric", "test") else "right")
    for row in result["tasks"]:
        for i, (name, m) in enumerate(row["metrics"].items()):
            first = i == 0
            holm = "" if m.get("p_holm") is None else f"{m['p_holm']:.4g}"
            table.add_row(row["task"] if first else "", str(row["n"]) if first else "",
                          name + (" *" if name == row.get("primary") else ""), f"{m['a']:.4f}", f"{m['b']:.4f}",
                          f"{m['diff']:+.4f}", Text(f"[{m['ci_low']:+.4f}, {m['ci_high']:+.4f}]"), m["test"],
                          f"{m['p_value']:.4g}", holm)
    console.print(table)
    if result.get("not_compared"):
        console.print(f"[yellow]in one run only (not compared):[/] {', '.join(result['not_compared'])}")
