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
from dataclasses import asdict
from typing import Callable, Iterable, Protocol, Sequence

from editors.base import EditRequest, Editor
from editors.scope import mentions

from .datasets import EditCase, MultiHopCase

MODES = ("single", "sequential", "batch")


class Scorer(Protocol):
    def logprob(self, prompts: Sequence[str], targets: Sequence[str]) -> list[float]: ...
    def teacher_forced_argmax(self, prompts: Sequence[str], targets: Sequence[str]) -> list[list[int]]: ...
    def complete(self, prompt: str, max_new_tokens: int = 8) -> str: ...


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
                f"{name}_median_s": statistics.median(self.samples) if self.samples else 0.0,
                f"{name}_p95_s": _p95(self.samples), f"{name}_count": len(self.samples)}


class Evaluation:
    def __init__(self, scorer: Scorer, editor: Editor, progress: Callable[[str, int, int], None] | None = None,
                 partial: Callable[[dict], None] | None = None):
        self.scorer = scorer
        self.editor = editor
        self.progress = progress or (lambda stage, done, total: None)
        self.partial = partial or (lambda state: None)  # told what is measured so far: a stopped run keeps it
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

    def measure(self, case: EditCase, exact_match: bool = True) -> dict:
        r = case.request
        result = {"id": r.id, "efficacy": float(self._prefers_new([r.prompt], r)[0])}
        if exact_match:
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

    def run_sequential(self, cases: Sequence[EditCase], checkpoints: Sequence[int] = (),
                       sample: int | None = None, batch: int = 1) -> list[dict]:
        """All edits made one after another (`batch` at a time), then each measured. At each
        checkpoint n (a count of edits made so far) up to `sample` of the first n edits, spread
        evenly, are measured too: the curve of efficacy and locality as edits pile up."""
        self.curve = []
        for start in range(0, len(cases), batch):
            group = cases[start:start + batch]
            self.edit_timer(self.editor.apply, [c.request for c in group])
            done = start + len(group)
            self.progress("editing", done, len(cases))
            if any(start < n <= done for n in checkpoints) and done < len(cases):
                rows = [self.measure(c, exact_match=False) for c in spread(cases[:done], sample)]
                self.curve.append(curve_point(done, rows))
                self.partial({"edits_made": done, "curve": self.curve})
        final = spread(cases, sample)
        rows = []
        for i, case in enumerate(final):
            rows.append(self.measure(case))
            self.progress("measuring", i + 1, len(final))
            if (i + 1) % 50 == 0:
                self.partial({"edits_made": len(cases), "curve": self.curve, "measured_so_far": curve_point(len(cases), rows),
                              "cases": rows})
        self.curve.append(curve_point(len(cases), rows))
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


def spread(items: Sequence, count: int | None) -> list:
    """`count` items spread evenly over `items`, always including the last (the newest edit)."""
    if not count or count >= len(items):
        return list(items)
    step = len(items) / count
    return [items[len(items) - 1 - int(i * step)] for i in reversed(range(count))]


def curve_point(edits: int, rows: list[dict]) -> dict:
    return {"edits": edits, "measured": len(rows),
            **{k: mean_of(rows, k) for k in ("efficacy", "generality", "locality") if mean_of(rows, k) is not None}}


def mean_of(rows: list[dict], key: str) -> float | None:
    values = [row[key] for row in rows if key in row]
    return statistics.fmean(values) if values else None


def evaluate_edits(scorer: Scorer, editor: Editor, cases: Sequence[EditCase], mode: str,
                   progress=None, checkpoints: Sequence[int] = (), sample: int | None = None, batch: int = 1,
                   partial=None) -> dict:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}")
    ev = Evaluation(scorer, editor, progress, partial)
    ev.record_baseline(cases)
    if mode == "sequential":
        rows = ev.run_sequential(cases, checkpoints, sample, batch)
    else:
        rows = {"single": ev.run_single, "batch": ev.run_batch}[mode](cases)
    metrics = {k: mean_of(rows, k) for k in ("efficacy", "efficacy_em", "generality", "locality")}
    if mode == "sequential":
        metrics["retainability"] = mean_of(rows[:-1], "efficacy") if len(rows) > 1 else metrics["efficacy"]
    if mode == "batch":
        batch_timer = ev.edit_timer
        ev.edit_timer = Timer()
        # Sca_rel's reference: the same edits made one at a time (up to `sample` of them, spread evenly)
        single = ev.run_single(spread(cases, sample))
        single_eff = mean_of(single, "efficacy")
        metrics["scalability"] = metrics["efficacy"]
        metrics["scalability_rel"] = (metrics["efficacy"] / single_eff) if single_eff else None
        metrics["efficacy_single"] = single_eff
        metrics["single_measured"] = len(single)
        ev.edit_timer = batch_timer
    timings = {**ev.edit_timer.summary("edit"), **ev.query_timer.summary("query")}
    result = {"metrics": {k: v for k, v in metrics.items() if v is not None}, "timings": timings, "cases": rows}
    if mode == "sequential":
        result["curve"] = ev.curve
    return result


def multihop_answerer(editor: Editor, chat_answer: Callable[[str], str]) -> Callable:
    """Readers that answer multi-hop questions themselves (MeLLo, the fact chain) do, and return
    their chain; every other editor is asked through the chat path (weights edited, or memory in
    context) and returns text."""
    return editor.answer_multihop if hasattr(editor, "answer_multihop") else chat_answer


def _text(out) -> str:
    return out if isinstance(out, str) else out.answer


def path_followed(hops: list, chain: list[str]) -> float:
    """How much of the question's path the hops retrieved, in order: the share of the chain's
    edits matched by the leading hops (MeLLo's decomposition quality; 1.0 = every hop right)."""
    right = 0
    for hop, wanted in zip(hops, chain):
        if hop.edit_id != wanted:
            break
        right += 1
    return right / len(chain) if chain else 0.0


def evaluate_multihop(cases: Sequence[MultiHopCase], editor: Editor, answer: Callable[[str], str],
                      progress=None, group: int = 1, questions: int | None = None, single_hops: bool = True,
                      locality: int = 0) -> dict:
    """MQuAKE: cases go in groups of `group` (1 = each case alone, as in MeLLo's k=1); a group's edits
    are all made, then each case's multi-hop questions (the first `questions` of them) are asked,
    and the edits are reverted. `locality` > 0: that many questions from other groups are asked
    with the group's edits in place, and must get the answer they get with nothing edited."""
    progress = progress or (lambda stage, done, total: None)
    edit_timer, query_timer = Timer(), Timer()
    probe_cases = list(cases[-locality:]) if locality else []
    unedited = {c.questions[0]: _text(answer(c.questions[0])) for c in probe_cases}  # before any edit
    rows, kept = [], []
    groups = [cases[i:i + group] for i in range(0, len(cases), group)]
    for g, members in enumerate(groups):
        requests = [e.request for c in members for e in c.edits]
        edit_timer(editor.apply, requests)
        try:
            for case in members:
                asked = case.questions[:questions] if questions else case.questions
                outs = [query_timer(answer, q) for q in asked]
                answers = [_text(o) for o in outs]
                hops = [(q, _text(query_timer(answer, q)), ok) for q, ok in case.new_single_hops] if single_hops else []
                new_ok = [matches(a, [case.new_answer, *case.new_answer_aliases]) for a in answers]
                old_ok = [matches(a, [case.answer, *case.answer_aliases]) for a in answers]
                rows.append({"id": case.case_id, "multihop": float(any(new_ok)),
                             "multihop_original": float(any(old_ok)),
                             "single_hop": statistics.fmean([matches(a, ok) for _, a, ok in hops]) if hops else None,
                             "questions": asked, "answers": answers})
                if not isinstance(outs[0], str):  # a reader: how well it followed the path, and the chains
                    rows[-1]["path_followed"] = max(path_followed(o.hops, case.chain) for o in outs)
                    rows[-1]["chains"] = [[asdict(h) for h in o.hops] for o in outs]
            ids = {c.case_id for c in members}
            outside = [c.questions[0] for c in probe_cases
                       if c.case_id not in ids and not any(mentions(c.questions[0], r.subject) for r in requests)]
            if outside:
                probe = outside[g % len(outside)]
                kept.append(normalise(_text(query_timer(answer, probe))) == normalise(unedited[probe]))
        finally:
            editor.revert(list(reversed(requests)))
        progress("multihop", len(rows), len(cases))
    metrics = {"multihop": mean_of(rows, "multihop"), "multihop_original": mean_of(rows, "multihop_original"),
               "single_hop": mean_of([r for r in rows if r["single_hop"] is not None], "single_hop"),
               "multihop_locality": statistics.fmean(kept) if kept else None,
               "path_followed": mean_of(rows, "path_followed")}
    return {"metrics": {k: v for k, v in metrics.items() if v is not None},
            "settings": {"group": group, "questions": questions or "all", "locality_probes": len(kept)},
            "timings": {**edit_timer.summary("edit"), **query_timer.summary("query")}, "cases": rows}
