"""Data-parallel evaluation that gives exactly a one-process run's results.

lm-eval's own data parallelism splits the documents across processes before building the
prompts, so each process draws few-shot examples in its own sequence: the prompts (and the
scores) differ from a one-process run. `DataParallelLM` splits at the other end. Every
process builds all of a task's requests (the same few-shot draws, in the same order) and
scores only its share of them; the answers are exchanged so that every process returns the
full list, and lm-eval's metrics, samples and aggregation run as in one process:

    process 0:  requests [r0 r1 r2 | r3 r4 r5]  -> scores r0..r2 --\\
    process 1:  requests [r0 r1 r2 | r3 r4 r5]  -> scores r3..r5 ---+-> all: [a0 a1 a2 a3 a4 a5]

Requests that share a context stay in one share (a multiple-choice document is scored
together, and the fast backend's prefix sharing keeps working). Only the main process
writes the output files.
"""

from __future__ import annotations

from lm_eval.api.model import LM

from limacot.models.compute import ProcessGroup
from limacot.eval.progress import WrappedLM


class DataParallelLM(WrappedLM):
    """Scores this process's share of every request list and gathers the rest (see module docstring)."""

    def __init__(self, inner: LM, group: ProcessGroup):
        super().__init__(inner)
        self.group = group
        self.scored = [0] * group.world  # requests scored by each process, over all calls

    def loglikelihood(self, requests, disable_tqdm: bool = True):
        return self._shared("loglikelihood", requests)

    def loglikelihood_rolling(self, requests, disable_tqdm: bool = True):
        return self._shared("loglikelihood_rolling", requests)

    def generate_until(self, requests, disable_tqdm: bool = True):
        return self._shared("generate_until", requests)

    def _shared(self, kind: str, requests) -> list:
        """Score this process's share of `requests`; return every answer, in request order."""
        import torch.distributed as dist

        mine = shares(requests, self.group.world)[self.group.rank]
        answers = getattr(self.inner, kind)([requests[i] for i in mine], disable_tqdm=True) if mine else []
        gathered: list = [None] * self.group.world
        dist.all_gather_object(gathered, list(zip(mine, answers)))
        results: list = [None] * len(requests)
        for rank, pairs in enumerate(gathered):
            self.scored[rank] += len(pairs)
            for index, answer in pairs:
                results[index] = answer
        return results


def shares(requests, world: int) -> list[list[int]]:
    """Request indices per process: requests grouped by context (first-seen order), the groups
    dealt out in contiguous runs of about equal request counts.

        contexts [a a b b c c d], world 2 -> [[0, 1, 2, 3], [4, 5, 6]]
    """
    groups: dict[str, list[int]] = {}
    for index, request in enumerate(requests):
        groups.setdefault(str(request.args[0]), []).append(index)
    out: list[list[int]] = [[] for _ in range(world)]
    total, done = len(requests), 0
    for members in groups.values():
        rank = min(world - 1, done * world // max(total, 1))
        out[rank] += members
        done += len(members)
    return out
