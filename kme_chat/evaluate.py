"""The survey's metrics (Wang et al. 2023, §4), measured the same way for every editor.

- efficacy (Acc, Eq. 3): on the edit prompt, P(o*) > P(o) as in CounterFact; `efficacy_em` asks
  that the greedy continuation start with o*.
- generality (Eq. 8-9): the same test on paraphrases of the edit prompt.
- locality (Eq. 6-7): share of neighbourhood prompts whose teacher-forced top tokens are unchanged
  from the unedited model.
- retainability (Eq. 10, sequential mode): after K edits, the efficacy of edits 1..K-1.
- scalability (Eq. 11) and scalability_rel (Eq. 12, batch mode): efficacy when all edits go in one
  batch, and that divided by single-edit efficacy.
- multihop (mquake): share of cases where any of the multi-hop questions yields the new answer.
"""
from __future__ import annotations

import statistics
import time
from typing import Callable, Iterable, Protocol, Sequence

from editors.base import EditRequest, Editor

from .datasets import EditCase, MultiHopCase

MODES = ("single", "sequential", "batch")


class Scorer(Protocol):
    def logprob(self, prompts: Sequence[str], targets: Sequence[str]) -> list[float]: ...
    def teacher_forced_argmax(self, prompts: Sequence[str], targets: Sequence[str]) -> list[list[int]]: ...
    def complete(self, prompt: str, max_new_tokens: int = 8) -> str: ...


class NoEdit:
    """The unedited model: `--method none`."""
    name = "none"
    changes_weights = False

    def apply(self, edits): pass
    def revert(self, edits): pass
    def context_for(self, query): return None
    def describe(self, edit): return "no change"


def with_context(editor: Editor, prompt: str) -> str:
    context = editor.context_for(prompt)
    return context.before(prompt) if context else prompt


def normalise(text: str) -> str:
    return " ".join(text.lower().replace(".", " ").replace(",", " ").split())


def matches(answer: str, accepted: Iterable[str]) -> bool:
    answer = f" {normalise(answer)} "
    return any(f" {normalise(a)} " in answer for a in accepted if a.strip())


def _p95(values: list[float]) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]


class Timer:
    def __init__(self):
        self.samples: list[float] = []

    def __call__(self, fn: Callable, *args):
        start = time.perf_counter()
        result = fn(*args)
        self.samples.append(time.perf_counter() - start)
        return result

    def summary(self, name: str) -> dict:
        return {f"{name}_mean_s": statistics.fmean(self.samples) if self.samples else 0.0,
                f"{name}_p95_s": _p95(self.samples), f"{name}_count": len(self.samples)}


class Evaluation:
    def __init__(self, scorer: Scorer, editor: Editor, progress: Callable[[str, int, int], None] | None = None):
        self.scorer = scorer
        self.editor = editor
        self.progress = progress or (lambda stage, done, total: None)
        self.edit_timer, self.query_timer = Timer(), Timer()
        self.baseline: dict[str, list[list[int]]] = {}

    # ---- single measurements --------------------------------------------------------------
    def _prefers_new(self, prompts: list[str], request: EditRequest) -> list[bool]:
        """One timed query per prompt: retrieval/context, then P(o*) vs P(o)."""
        def one(prompt: str) -> bool:
            shown = with_context(self.editor, prompt)
            new, old = self.scorer.logprob([shown, shown], [request.target_new, request.target_true])
            return new > old
        return [self.query_timer(one, p) for p in prompts]

    def record_baseline(self, cases: Sequence[EditCase]) -> None:
        for case in cases:
            if case.neighbourhood:
                prompts, answers = zip(*case.neighbourhood)
                self.baseline[case.request.id] = self.scorer.teacher_forced_argmax(list(prompts), list(answers))

    def measure(self, case: EditCase) -> dict:
        r = case.request
        result = {"id": r.id, "efficacy": float(self._prefers_new([r.prompt], r)[0])}
        continuation = self.scorer.complete(with_context(self.editor, r.prompt), max_new_tokens=8)
        result["efficacy_em"] = float(normalise(continuation).startswith(normalise(r.target_new)))
        para = self._prefers_new(r.paraphrases, r)
        if para:
            result["generality"] = sum(para) / len(para)
        if case.neighbourhood:
            prompts, answers = zip(*case.neighbourhood)
            shown = [with_context(self.editor, p) for p in prompts]
            after = self.scorer.teacher_forced_argmax(shown, list(answers))
            same = [a == b for a, b in zip(after, self.baseline[r.id])]
            result["locality"] = sum(same) / len(same)
        return result

    # ---- modes ------------------------------------------------------------------------------
    def run_single(self, cases: Sequence[EditCase]) -> list[dict]:
        rows = []
        for i, case in enumerate(cases):
            self.edit_timer(self.editor.apply, [case.request])
            try:
                rows.append(self.measure(case))
            finally:
                self.editor.revert([case.request])
            self.progress("single", i + 1, len(cases))
        return rows

    def run_sequential(self, cases: Sequence[EditCase]) -> list[dict]:
        for i, case in enumerate(cases):
            self.edit_timer(self.editor.apply, [case.request])
            self.progress("editing", i + 1, len(cases))
        rows = []
        for i, case in enumerate(cases):
            rows.append(self.measure(case))
            self.progress("measuring", i + 1, len(cases))
        self.editor.revert([c.request for c in reversed(cases)])
        return rows

    def run_batch(self, cases: Sequence[EditCase]) -> list[dict]:
        self.edit_timer(self.editor.apply, [c.request for c in cases])
        rows = []
        for i, case in enumerate(cases):
            rows.append(self.measure(case))
            self.progress("measuring", i + 1, len(cases))
        self.editor.revert([c.request for c in cases])
        return rows


def mean_of(rows: list[dict], key: str) -> float | None:
    values = [row[key] for row in rows if key in row]
    return statistics.fmean(values) if values else None


def evaluate_edits(scorer: Scorer, editor: Editor, cases: Sequence[EditCase], mode: str,
                   progress=None) -> dict:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}")
    ev = Evaluation(scorer, editor, progress)
    ev.record_baseline(cases)
    rows = {"single": ev.run_single, "sequential": ev.run_sequential, "batch": ev.run_batch}[mode](cases)
    metrics = {k: mean_of(rows, k) for k in ("efficacy", "efficacy_em", "generality", "locality")}
    if mode == "sequential":
        metrics["retainability"] = mean_of(rows[:-1], "efficacy") if len(rows) > 1 else metrics["efficacy"]
    if mode == "batch":
        batch_timer = ev.edit_timer
        ev.edit_timer = Timer()
        single = ev.run_single(cases)
        single_eff = mean_of(single, "efficacy")
        metrics["scalability"] = metrics["efficacy"]
        metrics["scalability_rel"] = (metrics["efficacy"] / single_eff) if single_eff else None
        metrics["efficacy_single"] = single_eff
        ev.edit_timer = batch_timer
    timings = {**ev.edit_timer.summary("edit"), **ev.query_timer.summary("query")}
    return {"metrics": {k: v for k, v in metrics.items() if v is not None}, "timings": timings, "cases": rows}


def evaluate_multihop(cases: Sequence[MultiHopCase], editor: Editor, answer: Callable[[str], str],
                      progress=None) -> dict:
    """Applies each case's edits, asks its multi-hop questions, reverts. `answer` is the QA path."""
    progress = progress or (lambda stage, done, total: None)
    edit_timer, query_timer = Timer(), Timer()
    rows = []
    for i, case in enumerate(cases):
        requests = [e.request for e in case.edits]
        edit_timer(editor.apply, requests)
        try:
            answers = [query_timer(answer, q) for q in case.questions]
            hops = [(q, query_timer(answer, q), ok) for q, ok in case.new_single_hops]
        finally:
            editor.revert(list(reversed(requests)))
        new_ok = [matches(a, [case.new_answer, *case.new_answer_aliases]) for a in answers]
        old_ok = [matches(a, [case.answer, *case.answer_aliases]) for a in answers]
        rows.append({"id": case.case_id, "multihop": float(any(new_ok)), "multihop_original": float(any(old_ok)),
                     "single_hop": statistics.fmean([matches(a, ok) for _, a, ok in hops]) if hops else None,
                     "answers": answers})
        progress("multihop", i + 1, len(cases))
    metrics = {"multihop": mean_of(rows, "multihop"), "multihop_original": mean_of(rows, "multihop_original"),
               "single_hop": mean_of([r for r in rows if r["single_hop"] is not None], "single_hop")}
    return {"metrics": {k: v for k, v in metrics.items() if v is not None},
            "timings": {**edit_timer.summary("edit"), **query_timer.summary("query")}, "cases": rows}
