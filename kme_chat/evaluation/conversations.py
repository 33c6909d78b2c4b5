"""The conversation evaluation: corrections in the user's own words, judged on generated answers.

Each JSONL line is one flagged exchange: `q` (question), `c` (the user's correction), `kind`
(fact | feedback | rule | none) and, for facts, `s` (subject), `o` (new object), `para` (a
paraphrase, or a list) and `other` (an unrelated question, or a list). Lines run in order in one
data dir, so memory accumulates as in a real chat:

    ask q through the chat -> route_correction(q, answer, c) -> commit on the default route
    -> ask q again, each paraphrase and each unrelated question (greedy, the chat path)

Unrelated questions are answered once before any edit; after the edits they must get the same answer.
"""
from __future__ import annotations

import json
import re
import statistics
import time
from pathlib import Path
from typing import Callable

from ..errors import UserError
from ..router import KIND_OF_ROUTE, route_correction

KINDS = ("fact", "feedback", "rule", "none")
MEMORY_TEMPLATES = ("chat_with_memory.txt", "memprompt.txt", "preference.txt", "language_patch.txt",
                    "ike_demo.txt", "ike_query.txt")


def normalise_object(text: str) -> str:
    """Case, punctuation and a leading article aside: 'The Yen.' == 'yen'."""
    words = re.sub(r"[^\w\s-]", " ", text.lower()).split()
    if words and words[0] in ("the", "a", "an"):
        words = words[1:]
    return " ".join(words)


def contains(answer: str, wanted: str) -> bool:
    return f" {normalise_object(wanted)} " in f" {normalise_object(answer)} "


def commit_correction(assistant, question: str, answer: str, correction: str):
    """A correction stored as a person stores it: routed, then committed on its route.
    Returns (the saved edit or None, why not)."""
    routed = route_correction(question, answer, correction)
    if routed.edit is None or routed.method == "form":
        return None, f"not stored: {correction!r} ({routed.reason})"
    routed.edit.routes, routed.edit.user = routed.route, "eval"
    try:
        return assistant.add_edit(routed.edit), ""
    except UserError as exc:
        return None, str(exc)


def log_case(cases_log: Path | None, case: dict) -> None:
    """Appends a finished case as a JSON line (a long run can be read as it goes)."""
    if cases_log is not None:
        with open(cases_log, "a", encoding="utf-8") as f:
            f.write(json.dumps(case, ensure_ascii=False) + "\n")


def _listed(value) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else [str(v) for v in value]


def read_jsonl(path: str | Path) -> list[tuple[int, object]]:
    """(line number, parsed value) for each non-empty line; a missing file or a line that is not
    JSON is a UserError naming it."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"data file not found: {path}")
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                rows.append((n, json.loads(line)))
            except json.JSONDecodeError as exc:
                raise UserError(f"{path}:{n} is not JSON: {exc}") from None
    return rows


def load_conversations(path: str | Path) -> list[dict]:
    rows = []
    for n, row in read_jsonl(path):
        if not isinstance(row, dict) or not {"q", "c", "kind"} <= set(row):
            raise UserError(f"{path}:{n} needs the fields q, c and kind")
        if row["kind"] not in KINDS:
            raise UserError(f"{path}:{n}: kind must be one of {', '.join(KINDS)}, got {row['kind']!r}")
        if row["kind"] == "fact" and not {"s", "o"} <= set(row):
            raise UserError(f"{path}:{n}: a fact line needs s and o")
        rows.append(row)
    if not rows:
        raise UserError(f"{path} holds no conversations")
    return rows


def template_fragments(prompts_dir: Path) -> list[str]:
    """The fixed text of every memory template (what must never show in an answer), as
    normalised fragments of at least two words."""
    fragments = []
    for name in MEMORY_TEMPLATES:
        path = Path(prompts_dir) / name
        if path.is_file():
            for piece in re.split(r"\{[^}]*\}", path.read_text(encoding="utf-8")):
                for line in piece.splitlines():
                    text = normalise_object(line)
                    if len(text.split()) >= 2:  # "New Fact:", not a lone "Rule:" (a word answers may use)
                        fragments.append(text)
    return sorted(set(fragments))


def leaks(answer: str, fragments: list[str]) -> bool:
    text = f" {normalise_object(answer)} "
    return any(f" {f} " in text for f in fragments)


def evaluate_conversations(assistant, rows: list[dict], progress: Callable[[str, int, int], None] | None = None,
                           max_new_tokens: int = 32, cases_log: Path | None = None, weights: str | None = None) -> dict:
    """Runs every line through the real router and commit path of `assistant` (its own data dir).
    `cases_log`: each finished case is appended there as a JSON line (a long run can be read as it goes).
    `weights` (rome, memit, alphaedit): facts are committed as that weight edit alone, no memory
    route, so the answers show what the weight edit does (as an admin's "write into the weights")."""
    progress = progress or (lambda stage, done, total: None)
    fragments = template_fragments(Path(assistant.settings.prompts_dir))

    def ask(question: str) -> str:
        return assistant.engine.answer(question, max_new_tokens=max_new_tokens)

    others = sorted({o for row in rows for o in _listed(row.get("other"))})
    unedited = {}
    for i, question in enumerate(others):  # before any edit
        unedited[question] = ask(question)
        progress("unrelated, before", i + 1, len(others))

    cases, seconds = [], []
    for i, row in enumerate(rows):
        before = ask(row["q"])
        start = time.perf_counter()
        routed = route_correction(row["q"], before, row["c"])
        got = KIND_OF_ROUTE[routed.route[0]] if routed.route and routed.edit is not None else "none"
        case = {"q": row["q"], "c": row["c"], "kind": row["kind"], "pattern": row.get("pattern", ""), "routed": got, "method": routed.method,
                "reason": routed.reason, "before": before}
        stored = None
        if routed.edit is not None and routed.method != "form":
            edit = routed.edit
            edit.routes = [weights] if weights and edit.kind == "fact" else routed.route
            edit.user = "eval"
            try:
                stored = assistant.add_edit(edit)
            except UserError as exc:
                case["error"] = str(exc)
        seconds.append(time.perf_counter() - start)
        if stored is not None:
            case["stored"] = {"kind": stored.kind, "subject": stored.subject, "relation": stored.relation,
                              "object": stored.target_new, "condition": stored.condition, "note": stored.note}
        if row["kind"] == "fact":
            want = row["o"]
            is_fact = stored is not None and stored.kind == "fact"
            case["object_exact"] = is_fact and normalise_object(stored.target_new) == normalise_object(want)
            case["subject_exact"] = is_fact and normalise_object(stored.subject) == normalise_object(row["s"])
            case["form"] = routed.method == "form"
            case["after"] = ask(row["q"])
            case["fixed"] = contains(case["after"], want)
            case["para"] = [(p, ask(p)) for p in _listed(row.get("para"))]
            case["para_fixed"] = [contains(a, want) for _, a in case["para"]]
        if stored is not None and stored.kind == "preference":
            # each line is its own exchange: a standing instruction would reshape every later line's answers
            assistant.undo(stored.id)
        case["other"] = [(o, ask(o)) for o in _listed(row.get("other"))] if row["kind"] == "fact" else []
        case["unchanged"] = [a == unedited[o] for o, a in case["other"]]
        answers = [case.get("after", "")] + [a for _, a in case.get("para", []) + case["other"]]
        case["leaks"] = sum(leaks(a, fragments) for a in answers if a)
        case["seconds"] = seconds[-1]
        cases.append(case)
        log_case(cases_log, case)
        progress("conversations", i + 1, len(rows))
    return {"metrics": conversation_metrics(cases, seconds), "cases": cases,
            "settings": {"max_new_tokens": max_new_tokens, "lines": len(rows), "weights": weights}}


def _share(values: list) -> float | None:
    return sum(map(bool, values)) / len(values) if values else None


def conversation_metrics(cases: list[dict], seconds: list[float]) -> dict:
    facts = [c for c in cases if c["kind"] == "fact"]
    metrics = {
        "route_accuracy": _share([c["routed"] == c["kind"] for c in cases]),
        "object_exact": _share([c["object_exact"] for c in facts]),
        "subject_exact": _share([c["subject_exact"] for c in facts]),
        "fixed": _share([c["fixed"] for c in facts]),
        "para_fixed": _share([ok for c in facts for ok in c["para_fixed"]]),
        "unrelated_unchanged": _share([ok for c in cases for ok in c["unchanged"]]),
        "junk_stored": sum(1 for c in cases if c["kind"] == "none" and "stored" in c),
        "form_rate": _share([c["form"] for c in facts]),
        "template_leaks": sum(c["leaks"] for c in cases),
        "seconds_per_correction_median": statistics.median(seconds) if seconds else None,
        "seconds_per_correction_mean": statistics.fmean(seconds) if seconds else None,
        "lines": len(cases), "facts": len(facts),
    }
    by_kind = {}
    for kind in KINDS:
        of_kind = [c for c in cases if c["kind"] == kind]
        if of_kind:
            by_kind[kind] = {"n": len(of_kind), "route_accuracy": _share([c["routed"] == kind for c in of_kind])}
    metrics["by_kind"] = by_kind
    patterns = sorted({c["pattern"] for c in facts if c["pattern"]})
    if patterns:
        metrics["by_pattern"] = {p: {"n": len(of), "object_exact": _share([c["object_exact"] for c in of]),
                                     "fixed": _share([c["fixed"] for c in of])}
                                 for p in patterns for of in [[c for c in facts if c["pattern"] == p]]}
    return {k: v for k, v in metrics.items() if v is not None}
