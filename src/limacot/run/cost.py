"""What a study's API calls will cost, estimated before anything runs (`limacot run --dry-run`).

Three kinds of job call a model per prompt (N = the judge's prompts, after `judge.limit`):

    reference answers   1 call per prompt            input: the prompt      output: at most max_new_tokens
    pairwise judging    2 calls per prompt and pair  input: the judge's instruction with the prompt and
                        (both orders)                       both answers    output: at most judge.max_tokens
    absolute grading    `samples` calls per prompt   input: the rubric with the prompt and the answer
                        and graded cell                                     output: at most grade.max_tokens

They cost money when they go to an API: a reference given as `openai:...` (an imported one calls
nothing), and judging or grading when the judge is `openai:...` (a local judge is counted too, as
local calls; a local judge choosing by likelihood decodes no output). An answer is counted at `max_new_tokens` tokens, an upper bound, since generation
stops there (an imported reference's answers at their own estimated length). Tokens are
*estimated* without a tokenizer (`limacot.models.api.estimate_tokens`: characters / 4, Hangul at
0.8 a character, plus the chat format's 4 tokens a message and 3 a request). Only jobs not done
yet are counted; replies already in a job's cache are counted as calls too (an upper bound).

    cost = plan_cost(plan)      # Cost(prompts=300, lines=[CostLine("reference answers", ...), ...])
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from limacot.data.files import iter_rows
from limacot.data.sources import read_prompts
from limacot.errors import LimacotInputError
from limacot.judge.clients import parse_judge_spec
from limacot.judge.instructions import GRADE_INSTRUCTIONS, INSTRUCTIONS, pick_lang
from limacot.models.api import (
    MESSAGE_TOKENS,
    REQUEST_TOKENS,
    estimate_request_tokens,
    estimate_tokens,
    is_api_spec,
)
from limacot.run.plan import Job, Plan

log = logging.getLogger(__name__)
CHAT = REQUEST_TOKENS + MESSAGE_TOKENS  # a one-message request's chat-format tokens


@dataclass
class CostLine:
    """The calls of one kind of job still to run."""

    what: str            # reference answers | pairwise judging | absolute grading
    api: bool            # the calls go to an API (False: a local model answers them)
    jobs: int
    calls: int
    input_tokens: int    # estimated
    output_tokens: int   # at most


@dataclass
class Cost:
    prompts: int | None                 # the judge's prompts; None when they cannot be read here
    lines: list[CostLine] = field(default_factory=list)
    done: int = 0                       # jobs already done, not counted
    unknown: str | None = None          # why the prompts cannot be read (then no line is counted)

    @property
    def api_calls(self) -> int:
        return sum(line.calls for line in self.lines if line.api)

    @property
    def api_input_tokens(self) -> int:
        return sum(line.input_tokens for line in self.lines if line.api)

    @property
    def api_output_tokens(self) -> int:
        return sum(line.output_tokens for line in self.lines if line.api)


def plan_cost(plan: Plan) -> Cost | None:
    """The estimated calls and tokens of the plan's reference, judge and grade jobs not yet done;
    None when the study has no judge (nothing of the kind to run)."""
    config = plan.config
    if not config.judge:
        return None
    jobs = [j for j in plan.jobs if j.stage in ("judge", "grade") or (j.stage == "generate" and j.is_reference)]
    todo = [j for j in jobs if not j.is_done()]
    try:
        read = read_prompts(config.judge.prompts)[:config.judge.limit]
    except LimacotInputError as err:
        return Cost(None, done=len(jobs) - len(todo), unknown=str(err))
    ids, prompts = [pid for pid, _ in read], [messages for _, messages in read]
    answers = _Answers(plan, ids)
    api_judge = parse_judge_spec(config.judge.judge)[0] == "openai"
    lines = [_reference_line(plan, [j for j in todo if j.stage == "generate"], prompts),
             _judge_line(plan, [j for j in todo if j.stage == "judge"], prompts, answers, api_judge)]
    if config.grade is not None:
        lines.append(_grade_line(plan, [j for j in todo if j.stage == "grade"], prompts, answers, api_judge,
                                 config.grade))
    return Cost(len(prompts), [line for line in lines if line.jobs], len(jobs) - len(todo))


def _reference_line(plan: Plan, jobs: list[Job], prompts: list[list[dict]]) -> CostLine:
    """The API references' calls: one per prompt (an imported reference calls nothing)."""
    api = [j for j in jobs if is_api_spec(plan.config.references[j.cell.variant])]
    per_job = sum(estimate_request_tokens(messages) for messages in prompts)
    return CostLine("reference answers", True, len(api), len(api) * len(prompts), len(api) * per_job,
                    len(api) * len(prompts) * plan.config.judge.max_new_tokens)


def _judge_line(plan: Plan, jobs: list[Job], prompts: list[list[dict]], answers: _Answers,
                api: bool) -> CostLine:
    """Two calls per prompt both sides answer, each the instruction with the prompt and both answers."""
    judge = plan.config.judge
    texts = [messages[-1]["content"] for messages in prompts]
    instructions = [estimate_tokens(INSTRUCTIONS[pick_lang(text, judge.lang)].format(prompt=text.strip(), first="",
                                                                                      second="")) for text in texts]
    calls = tokens = 0
    for job in jobs:
        a, b = (answers.of(cell) for cell in job.pair)
        for i, instruction in enumerate(instructions):
            if a[i] is not None and b[i] is not None:
                calls += 2
                tokens += 2 * (CHAT + instruction + a[i] + b[i])
    decodes = api or judge.json_mode == "off"  # a local judge choosing by likelihood decodes nothing
    return CostLine("pairwise judging", api, len(jobs), calls, tokens, calls * judge.max_tokens if decodes else 0)


def _grade_line(plan: Plan, jobs: list[Job], prompts: list[list[dict]], answers: _Answers, api: bool,
                grade) -> CostLine:
    """`samples` calls per answered prompt of each graded cell: the rubric with the prompt and the answer."""
    texts = [messages[-1]["content"] for messages in prompts]
    rubrics = [estimate_tokens(GRADE_INSTRUCTIONS[pick_lang(text, plan.config.judge.lang)].format(
        prompt=text.strip(), answer="")) for text in texts]
    calls = tokens = 0
    for job in jobs:
        own = answers.of(job.cell)
        for i, rubric in enumerate(rubrics):
            if own[i] is not None:
                calls += grade.samples
                tokens += grade.samples * (CHAT + rubric + own[i])
    return CostLine("absolute grading", api, len(jobs), calls, tokens, calls * grade.max_tokens)  # it decodes


class _Answers:
    """Each cell's answer length per prompt, in estimated tokens: `max_new_tokens` (the bound of a
    generated answer), an imported reference's own answers (None where it has none), or, when its
    file cannot be read here, `max_new_tokens` too."""

    def __init__(self, plan: Plan, ids: list[str]):
        self.plan, self.ids, self._imported = plan, ids, {}

    def of(self, cell) -> list[int | None]:
        bound = self.plan.config.judge.max_new_tokens
        source = self.plan.config.references.get(cell.variant) if cell.is_reference else None
        if source is None or is_api_spec(source):
            return [bound] * len(self.ids)
        if source not in self._imported:
            self._imported[source] = _imported_lengths(source)
        lengths = self._imported[source]
        return [bound] * len(self.ids) if lengths is None else [lengths.get(pid) for pid in self.ids]


def _imported_lengths(source: str) -> dict[str, int] | None:
    """{id: estimated tokens of its answer} of an answers file; None when it cannot be read here."""
    try:
        return {str(row.get("id")): estimate_tokens(str(row.get("answer") or "")) for _, row in iter_rows(source)}
    except LimacotInputError as err:
        log.warning("cost estimate: %s cannot be read here (%s); its answers are counted at max_new_tokens",
                    source, err)
        return None


def cost_lines(cost: Cost | None, plan: Plan) -> list[str]:
    """The cost as `--dry-run` prints it (see the module docstring for what is counted how)."""
    if cost is None:
        return []
    judge = plan.config.judge
    head = (f"cost (estimated: tokens are characters / 4, Hangul at 0.8 a character, plus 4 a message and 3 a "
            f"request; every generated answer counted at max_new_tokens {judge.max_new_tokens}, an upper bound)")
    if cost.unknown:
        return [head, f"  unknown here: the judge's prompts cannot be read ({cost.unknown})",
                "  per prompt: 1 call per API reference, 2 per judged pair (both orders), `samples` per graded cell"]
    lines = [head, f"  prompts: {cost.prompts} ({judge.prompts})"]
    for line in cost.lines:
        where = "API" if line.api else "local model, no API cost"
        lines.append(f"  {line.what}: {line.jobs} job{'s' * (line.jobs != 1)}, {line.calls:,} calls ({where}), "
                     f"{line.input_tokens:,} input tokens, at most {line.output_tokens:,} output tokens")
    if not cost.lines:
        lines.append("  nothing left to run")
    lines.append(f"  API total: {cost.api_calls:,} calls, {cost.api_input_tokens:,} input tokens, at most "
                 f"{cost.api_output_tokens:,} output tokens" + (f" ({cost.done} jobs already done are not counted)"
                                                                if cost.done else ""))
    return lines
