"""The "Human judgments" section: what `limacot judge import` wrote under STUDY_DIR/human/<name>/
human.json, read directly (human labels are not in the results store).

Per labelled (A, B) pair: the humans' win / tie / loss for B and "B equal or better" beside the
judge's on the same prompts, then agreement (judge with the humans, the humans with each other),
each with its 95% bootstrap CI over prompts. Runs are shown as the study's cells where the
recorded plan names the generate folder a run was read from. Without any human.json the section
says how to add labels; an unreadable one is named, and the others are still shown.
"""

from __future__ import annotations

import json
from pathlib import Path

from limacot.report.doc import Heading, Num, Para, Table
from limacot.report.results import DASH, fmt
from limacot.report.study import Study

HUMAN_DIR = "human"
HOW_TO = ("No human labels yet. To add them, write blinded sheets from a judge output with `limacot judge export "
          "STUDY_DIR/stages/judge/<key> --out SHEETS --n 50 --annotators 2`, have each annotator fill the `label` "
          "column (X, Y or tie), and read the sheets back with `limacot judge import SHEETS FILLED... --out "
          "STUDY_DIR/human/<name>`; this section then shows them.")
ABOUT = ("Human labels on blinded sheets (`limacot judge export`/`import`): each annotator saw the prompt and the "
         "two answers as X and Y, in an order drawn per item. \"B equal or better\" = (B wins + ties) / labelled "
         "prompts, pooled over annotators; the judge's rate is on the same prompts. Agreement: 3-way = the same win, "
         "tie or loss; 2-way = the same side of LIMA's split, equal or better vs worse; tie-discounted = LIMA's "
         "inter-annotator measure (1 if equal, 1/2 if exactly one says tie, 0 otherwise); kappa = Cohen's on win / "
         "tie / loss (Fleiss' for three or more annotators). 95% CI: bootstrap over prompts; a kappa has none where "
         "some resample holds one label only (kappa undefined there). —: nothing to measure.")
MEASURES = ("agreement_3way", "agreement_2way", "tie_discounted", "kappa_3way")


def human_section(study: Study) -> list:
    blocks: list = [Heading(2, "Human judgments")]
    found, broken = read_human(study.dir)
    if broken:
        blocks.append(Para("Unreadable: " + "; ".join(broken) + "."))
    if not found:
        return blocks + [Para(HOW_TO)]
    names = _run_cells(study)
    preference, agreement = [], []
    for name, result in found:
        for pair in result.get("pairs", []):
            a, b = (names.get(pair.get(k), pair.get(k)) for k in ("a_run", "b_run"))
            human, judge = pair["human"]["pooled"], pair["judge"]
            preference.append([name, a, b, str(len(pair["human"]["per_annotator"])), str(human["n"]),
                               str(human["win"]), str(human["tie"]), str(human["loss"]),
                               _rate(human["b_equal_or_better"], human["ci95"]),
                               _rate(judge["b_equal_or_better"], judge["ci95"])])
            agreement += [[name, a, b, who, str(entry["n"])] + [_entry(entry[m]) for m in MEASURES]
                          for who, entry in _agreements(pair)]
            fleiss = pair["human_human"].get("fleiss_kappa")
            if fleiss and fleiss.get("items"):
                agreement.append([name, a, b, f"Fleiss' kappa, {fleiss['raters']} annotators", str(fleiss["items"]),
                                  DASH, DASH, DASH, _entry(fleiss)])
    return blocks + [
        Para(ABOUT),
        Table(["label set", "A", "B", "annotators", "labels", "B wins", "ties", "A wins",
               "B equal or better (humans)", "B equal or better (judge, same prompts)"], preference,
              [False] * 3 + [True] * 7, caption="Human preference"),
        Table(["label set", "A", "B", "between", "n", "3-way", "2-way (LIMA split)", "tie-discounted (LIMA)",
               "Cohen's kappa"], agreement, [False] * 4 + [True] * 5, caption="Agreement"),
    ]


def read_human(study_dir: Path) -> tuple[list[tuple[str, dict]], list[str]]:
    """([(name, human.json contents)] for STUDY_DIR/human/*/human.json, sorted by name;
    [what could not be read, in words])."""
    found, broken = [], []
    for path in sorted((Path(study_dir) / HUMAN_DIR).glob("*/human.json")):
        try:
            result = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            broken.append(f"`{HUMAN_DIR}/{path.parent.name}/human.json` ({type(err).__name__})")
            continue
        if not isinstance(result, dict) or not isinstance(result.get("pairs"), list):
            broken.append(f"`{HUMAN_DIR}/{path.parent.name}/human.json` (not written by `limacot judge import`)")
            continue
        found.append((path.parent.name, result))
    return found, broken


def _agreements(pair: dict) -> list[tuple[str, dict]]:
    """(who, agreement entry): the judge with the pooled humans and with each annotator, then
    every two annotators."""
    judge_human = pair["judge_human"]
    rows = [("judge vs humans (pooled)", judge_human["pooled"])]
    if len(judge_human["per_annotator"]) > 1:
        rows += [(f"judge vs {name}", entry) for name, entry in judge_human["per_annotator"].items()]
    return rows + [(" vs ".join(hh["annotators"]), hh) for hh in pair["human_human"]["pairs"]]


def _run_cells(study: Study) -> dict[str, str]:
    """Run name (a generate output folder's name, as `limacot judge` names runs) -> its cell id;
    a name two cells' folders share is left as it is."""
    cells: dict[str, set] = {}
    for job in study.jobs or []:
        if job["stage"] == "generate" and job.get("cell_id"):
            cells.setdefault(Path(job["output"]).name, set()).add(job["cell_id"])
    return {name: ids.pop() for name, ids in cells.items() if len(ids) == 1}


def _rate(value: float | None, ci: list | None) -> Num | str:
    """0.667 [0.417, 0.917]; '(no CI)' where a resample left it undefined (a kappa on one label)."""
    return DASH if value is None else Num(fmt(value), f"[{fmt(ci[0])}, {fmt(ci[1])}]" if ci else "(no CI)")


def _entry(estimate: dict) -> Num | str:
    return _rate(estimate.get("value"), estimate.get("ci95"))
