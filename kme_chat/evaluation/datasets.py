"""Readers for the three shared data formats, all turned into the same EditCase records."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from editors.base import EditRequest

from ..errors import UserError

FORMATS = ("counterfact", "zsre", "mquake")


@dataclass
class EditCase:
    request: EditRequest
    neighbourhood: list[tuple[str, str]] = field(default_factory=list)  # (prompt, its true answer)


@dataclass
class MultiHopCase:
    case_id: str
    edits: list[EditCase]
    questions: list[str]
    answer: str
    answer_aliases: list[str]
    new_answer: str
    new_answer_aliases: list[str]
    new_single_hops: list[tuple[str, list[str]]]  # (question, accepted answers) after the edits
    chain: list[str] = field(default_factory=list)  # ids of the edits along the question's path, in order


def _counterfact(r: dict, i: int) -> EditCase:
    rephrase = r.get("rephrase_prompt")
    return EditCase(
        EditRequest(id=f"cf{r['case_id']}", subject=r["subject"], prompt=r["prompt"],
                    target_new=r["target_new"], target_true=r["ground_truth"],
                    paraphrases=[rephrase] if rephrase else []),
        neighbourhood=[(r["locality_prompt"], r["locality_ground_truth"])] if r.get("locality_prompt") else [],
    )


def _zsre(r: dict, i: int) -> EditCase:
    loc = r.get("loc", "")
    loc = loc[len("nq question: "):] if loc.startswith("nq question: ") else loc
    return EditCase(
        EditRequest(id=f"zsre{i}", subject=r["subject"], prompt=r["src"], target_new=r["alt"],
                    target_true=(r.get("answers") or [r.get("pred", "")])[0],
                    paraphrases=[r["rephrase"]] if r.get("rephrase") else [], question=r["src"]),
        neighbourhood=[(loc, r["loc_ans"])] if loc else [],
    )


def _mquake(r: dict, i: int) -> MultiHopCase:
    edits = []
    for j, rw in enumerate(r["requested_rewrite"]):
        edits.append(EditCase(EditRequest(
            id=f"mq{r['case_id']}-{j}", subject=rw["subject"], prompt=rw["prompt"].format(rw["subject"]),
            target_new=rw["target_new"]["str"], target_true=rw["target_true"]["str"],
            relation=rw["prompt"], question=rw.get("question", ""))))
    by_subject = {e.request.subject: e.request.id for e in edits}
    path = [t[0] for t in r.get("orig", {}).get("new_triples_labeled", [])]
    return MultiHopCase(
        case_id=str(r["case_id"]), edits=edits, chain=[by_subject[s] for s in path if s in by_subject],
        questions=list(r["questions"]),
        answer=r["answer"], answer_aliases=list(r.get("answer_alias", [])),
        new_answer=r["new_answer"], new_answer_aliases=list(r.get("new_answer_alias", [])),
        new_single_hops=[(h["question"], [h["answer"], *h.get("answer_alias", [])]) for h in r.get("new_single_hops", [])],
    )


READERS = {"counterfact": (_counterfact, {"prompt", "subject", "target_new", "ground_truth"}),
           "zsre": (_zsre, {"src", "subject", "alt", "loc_ans"}),
           "mquake": (_mquake, {"requested_rewrite", "questions", "new_answer"})}


def load_cases(path: str | Path, fmt: str, limit: int | None = None, offset: int = 0) -> list:
    if fmt not in READERS:
        raise UserError(f"unknown data format {fmt!r}; choose one of {', '.join(FORMATS)}")
    path = Path(path)
    if not path.is_file():
        raise UserError(f"data file not found: {path}")
    try:
        records = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"{path} is not a JSON file: {exc}") from None
    if not isinstance(records, list) or not records or not isinstance(records[0], dict):
        raise UserError(f"{path} should hold a JSON list of records")
    reader, required = READERS[fmt]
    missing = required - set(records[0])
    if missing:
        raise UserError(f"{path} does not look like {fmt} data: records lack {', '.join(sorted(missing))}")
    records = records[offset:offset + limit if limit else None]
    try:
        return [reader(r, offset + i) for i, r in enumerate(records)]
    except (KeyError, TypeError, IndexError) as exc:
        raise UserError(f"a record in {path} is malformed for {fmt}: {exc!r}") from None
