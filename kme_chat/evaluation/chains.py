"""The chains evaluation: multi-hop questions over facts stored through the chat's own path.

Each JSONL line: `facts` (a list of {"q": question, "c": the user's correction}), `question` (the
multi-hop question), `answer` (the expected answer) and optionally `unrelated: true` (then the
answers must equal the unedited model's). Each line starts from an empty memory:

    for each fact: route_correction(q, "", c) -> commit on the default route
    -> ask `question` through the chat (generated, greedy) and through the multi-hop reader
    -> undo the line's edits

Metrics: chain_accuracy_chat and chain_accuracy_reader (the answer contains `answer`, case and
punctuation aside) over the chain lines, unrelated_unchanged over the unrelated lines.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

from ..errors import UserError
from .conversations import commit_correction, contains, log_case, read_jsonl


def load_chains(path: str | Path) -> list[dict]:
    rows = []
    for n, row in read_jsonl(path):
        facts = row.get("facts") if isinstance(row, dict) else None
        if not isinstance(facts, list) or not all(isinstance(f, dict) and {"q", "c"} <= set(f) for f in facts) \
                or not isinstance(row.get("question"), str) or not isinstance(row.get("answer", ""), str):
            raise UserError(f"{path}:{n} needs facts (a list of {{q, c}}), question and answer")
        if not row.get("unrelated") and not row.get("answer"):
            raise UserError(f"{path}:{n}: a chain line needs an answer (or unrelated: true)")
        rows.append(row)
    if not rows:
        raise UserError(f"{path} holds no chains")
    return rows


def evaluate_chains(assistant, rows: list[dict], progress: Callable[[str, int, int], None] | None = None,
                    max_new_tokens: int = 48, cases_log: Path | None = None) -> dict:
    """Runs every line on `assistant` (its own data dir), each from an empty memory."""
    progress = progress or (lambda stage, done, total: None)
    if assistant.log.active():
        raise UserError("the chains evaluation needs an empty data dir")
    cases = []
    for i, row in enumerate(rows):
        question = row["question"]
        unrelated = bool(row.get("unrelated"))
        if unrelated:  # the unedited answers, before this line's facts
            chat_before = assistant.engine.answer(question, max_new_tokens=max_new_tokens)
            reader_before = assistant.multihop(question).answer
        stored, errors = [], []
        for fact in row["facts"]:
            edit, error = commit_correction(assistant, fact["q"], "", fact["c"])
            stored += [edit] if edit else []
            errors += [error] if error else []
        start = time.perf_counter()
        chat = assistant.engine.answer(question, max_new_tokens=max_new_tokens)
        read = assistant.multihop(question)
        case = {"question": question, "answer": row.get("answer", ""), "unrelated": unrelated,
                "hops": len(row["facts"]), "chat": chat, "reader": read.answer,
                "reader_hops": [(h.question, h.answer, h.source) for h in read.hops],
                "stored": [(e.subject, e.relation, e.target_new) for e in stored], "errors": errors,
                "seconds": time.perf_counter() - start}
        if unrelated:
            case["chat_ok"], case["reader_ok"] = chat == chat_before, read.answer == reader_before
        else:
            case["chat_ok"], case["reader_ok"] = contains(chat, row["answer"]), contains(read.answer, row["answer"])
        for edit in stored:  # the next line starts from an empty memory again
            assistant.undo(edit.id)
        cases.append(case)
        log_case(cases_log, case)
        progress("chains", i + 1, len(rows))
    return {"metrics": chain_metrics(cases), "cases": cases, "settings": {"max_new_tokens": max_new_tokens}}


def _share(values: list[bool]) -> float | None:
    return sum(values) / len(values) if values else None


def chain_metrics(cases: list[dict]) -> dict:
    chains = [c for c in cases if not c["unrelated"]]
    unrelated = [c for c in cases if c["unrelated"]]
    by_hops = {}
    for hops in sorted({c["hops"] for c in chains}):
        these = [c for c in chains if c["hops"] == hops]
        by_hops[str(hops)] = {"n": len(these), "chat": _share([c["chat_ok"] for c in these]),
                              "reader": _share([c["reader_ok"] for c in these])}
    return {"chain_accuracy_chat": _share([c["chat_ok"] for c in chains]),
            "chain_accuracy_reader": _share([c["reader_ok"] for c in chains]),
            "unrelated_unchanged": _share([c["chat_ok"] and c["reader_ok"] for c in unrelated]),
            "chains": len(chains), "unrelated": len(unrelated),
            "facts_not_stored": sum(len(c["errors"]) for c in cases), "by_hops": by_hops}
