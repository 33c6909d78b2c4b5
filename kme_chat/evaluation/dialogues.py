"""The dialogues evaluation: does an edit hold inside the running conversation it was made in?

Each JSONL line is one scripted conversation: `{"id", "turns": [...]}` where a turn is
`{"ask": question}` (optionally `"expect": text` with `"kind": "same" | "paraphrase" | "followup"`,
or `"unrelated": true`) or `{"correct": the user's words, "of": index of the ask turn corrected}`.
Each conversation starts from an empty memory and runs on the real chat path, with its history:

    ask -> the chat answers with the conversation so far (as the browser sends it)
    correct -> route_correction(that question, that answer, the words) -> commit on the default route
    -> later asks: the answer must contain `expect` (agreement) ...
    -> undo the conversation's edits

An unrelated turn is answered in the conversation too; it is graded on the question alone, asked
without history before the edit and after it: the two answers must be equal (the edit stays in scope).
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

from ..errors import UserError
from .conversations import commit_correction, contains, log_case, read_jsonl

FOLLOW_KINDS = ("same", "paraphrase", "followup")


def load_dialogues(path: str | Path) -> list[dict]:
    rows = []
    for n, row in read_jsonl(path):
        turns = row.get("turns") if isinstance(row, dict) else None
        if not isinstance(turns, list) or not turns:
            raise UserError(f"{path}:{n} needs turns (a list of {{ask}} and {{correct, of}})")
        for i, turn in enumerate(turns):
            if not isinstance(turn, dict) or not (isinstance(turn.get("ask"), str) or isinstance(turn.get("correct"), str)):
                raise UserError(f"{path}:{n}: turn {i} needs ask or correct (text)")
            if "correct" in turn:
                of = turn.get("of")
                if not isinstance(of, int) or not 0 <= of < i or "ask" not in turns[of]:
                    raise UserError(f"{path}:{n}: turn {i}: of must be the index of an earlier ask turn")
        rows.append(row)
    if not rows:
        raise UserError(f"{path} holds no dialogues")
    return rows


def evaluate_dialogues(assistant, rows: list[dict], progress: Callable[[str, int, int], None] | None = None,
                       max_new_tokens: int = 48, cases_log: Path | None = None) -> dict:
    """Runs every conversation on `assistant` (its own data dir), each from an empty memory."""
    progress = progress or (lambda stage, done, total: None)
    if assistant.log.active():
        raise UserError("the dialogues evaluation needs an empty data dir")

    def ask(question: str, history: list[dict]) -> str:
        return assistant.engine.answer(question, history, max_new_tokens=max_new_tokens)

    cases = []
    for n, row in enumerate(rows):
        turns = row["turns"]
        unrelated_before = {t["ask"]: ask(t["ask"], []) for t in turns if t.get("unrelated")}
        history: list[dict] = []
        answers: dict[int, str] = {}
        stored, log, errors = [], [], []
        seconds = 0.0
        for i, turn in enumerate(turns):
            if "correct" in turn:
                start = time.perf_counter()
                edit, error = commit_correction(assistant, turns[turn["of"]]["ask"], answers[turn["of"]],
                                                turn["correct"])
                stored += [edit] if edit else []
                errors += [error] if error else []
                seconds = time.perf_counter() - start
                log.append({"correct": turn["correct"], "stored": [e.summary for e in stored]})
                continue
            answer = ask(turn["ask"], history)
            answers[i] = answer
            history += [{"role": "user", "content": turn["ask"]}, {"role": "assistant", "content": answer}]
            graded = {"ask": turn["ask"], "answer": answer}
            if "expect" in turn:
                graded.update(expect=turn["expect"], kind=turn.get("kind", "same"), ok=contains(answer, turn["expect"]))
            elif turn.get("unrelated"):
                alone = ask(turn["ask"], [])
                graded.update(unrelated=True, ok=alone == unrelated_before[turn["ask"]], alone=alone,
                              alone_before=unrelated_before[turn["ask"]])
            log.append(graded)
        for edit in stored:  # the next conversation starts from an empty memory again
            assistant.undo(edit.id)
        case = {"id": row.get("id", str(n)), "turns": log, "errors": errors, "commit_seconds": seconds}
        cases.append(case)
        log_case(cases_log, case)
        progress("dialogues", n + 1, len(rows))
    return {"metrics": dialogue_metrics(cases), "cases": cases, "settings": {"max_new_tokens": max_new_tokens}}


def _share(values: list[bool]) -> float | None:
    return sum(values) / len(values) if values else None


def dialogue_metrics(cases: list[dict]) -> dict:
    graded = [t for c in cases for t in c["turns"] if "expect" in t]
    unrelated = [t for c in cases for t in c["turns"] if t.get("unrelated")]
    metrics = {"agreement": _share([t["ok"] for t in graded]),
               "unrelated_unchanged": _share([t["ok"] for t in unrelated]),
               "conversations": len(cases), "graded_turns": len(graded), "unrelated_turns": len(unrelated),
               "edits_not_stored": sum(len(c["errors"]) for c in cases),
               "by_kind": {k: {"n": len(of), "agreement": _share([t["ok"] for t in of])}
                           for k in FOLLOW_KINDS for of in [[t for t in graded if t["kind"] == k]] if of}}
    return {k: v for k, v in metrics.items() if v is not None}
