"""The router: a flagged answer plus the user's correction -> an edit, a route, and why.

Five outcomes:
- a fact ("Wrong! Rembrandt painted it.")               -> (s, r, o -> o*) -> IKE (+ ROME/MEMIT on request)
- feedback on what this question meant ("I meant ...") -> MemPrompt, keyed to the question
- a preference on how to answer ("one sentence, please") -> a standing instruction for every later question
- a conditional rule ("if I ask about prices, ...")     -> Language Patch
- nothing to store ("hmm ok", "are you sure?")          -> no edit, and the preview says why

Both texts are parsed (spaCy, `kme_chat.language`). The kind comes from the correction's
grammar: a conditional clause is a rule; an imperative, a first-person "I meant / I prefer" or a
remark on the answer's style is feedback; a statement or fragment that carries an answer is a fact.
For a fact, the question gives the subject and the relation (turned into a cloze statement, e.g.
"Who painted the Mona Lisa?" -> "The Mona Lisa was painted by"); the correction gives only the new
object: its noun phrases, names and numbers are candidates, minus what the question already says,
pronouns, negated alternatives ("not Spanish") and chatter, ranked by the kind of answer the
question asks for (who -> a person, where -> a place, ...) and by grammatical role.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

from editors.scope import mentions

from ..edit_log import Edit
from ..errors import UserError
from ..language import parse
from ..validation import clean_text, validate_edit
from .answer import extract_answer
from .kind import clarifies_meaning, is_feedback, rule_parts, states_a_fact
from .question import QuestionFrame, analyse_question
from .tokens import content_lemmas

__all__ = ["Routed", "QuestionFrame", "analyse_question", "extract_answer", "route_correction", "with_fields", "fields_of"]

MAX_CORRECTION_CHARS = 4000
# a preference is feedback that holds for every later question: data sets label both "feedback"
KIND_OF_ROUTE = {"ike": "fact", "memprompt": "feedback", "preferences": "feedback", "language_patch": "rule"}


@dataclass
class Routed:
    """What the user sees before committing: the edit, its route, why, and how it was extracted."""
    edit: Edit | None
    route: list[str]
    reason: str
    method: str                     # "parser" or "form"
    missing: list[str] = field(default_factory=list)  # form fields still to fill


def route_correction(question: str, answer: str, correction: str, weights: str | None = None) -> Routed:
    """weights: None, "rome" or "memit" — also write the fact into the weights (policy or user's ask)."""
    correction = clean_text(correction, "correction", MAX_CORRECTION_CHARS)
    question = clean_text(question, "question", MAX_CORRECTION_CHARS)
    if not re.search(r"\w", correction):
        return Routed(None, [], "this does not read as a correction (no words in it): nothing stored. Type the "
                      "right answer, what you meant, or a rule ('if …, then …').", "parser")
    route = ["ike"] + ([weights] if weights else [])
    if not (english_script(correction) and english_script(question)):
        return _form(question, answer, correction, route, _fact_reason(weights) + ". Only English is read "
                     "automatically: please fill in the form.")
    doc = parse(correction)
    if parts := rule_parts(doc):
        edit = Edit(kind="rule", subject="", prompt="", target_new="", condition=parts[0], note=parts[1],
                    question=question)
        return Routed(validate_edit(edit), ["language_patch"], "a conditional rule ('if …, then …'): Language "
                      "Patch, applied only when its condition holds", "parser")
    frame = analyse_question(question)
    if is_feedback(doc) and not states_a_fact(doc, frame):
        if clarifies_meaning(doc):
            edit = Edit(kind="feedback", subject="", prompt="", target_new="", question=question, note=correction)
            return Routed(validate_edit(edit), ["memprompt"], "feedback on what this question meant: MemPrompt, "
                          "shown again when a similar question comes", "parser")
        edit = Edit(kind="preference", subject="", prompt="", target_new="", question=question, note=correction)
        return Routed(validate_edit(edit), ["preferences"], "a preference about how to answer: a standing "
                      "instruction for all your later questions", "parser")
    found = extract_answer(frame, correction) if frame else extract_answer(
        QuestionFrame("", "", "", set(), content_lemmas(parse(question))), correction)
    if found is None:
        return Routed(None, [], "this does not carry a new answer (no name, thing or number that the question "
                      "does not already say): nothing stored. Type the right answer, e.g. 'No, it's …'.", "parser")
    new_object, prep = found
    if prep and frame and frame.wh in ("where", "when"):
        frame = analyse_question(question, prep) or frame
    if frame is None:
        return _form(question, answer, new_object, route, _fact_reason(weights) + ". The subject could not be "
                     "read off the question: please fill in the form.")
    subject, relation, aliases = frame.subject, frame.relation, list(frame.aliases)
    stated = _stated_subject(doc, new_object)
    if stated and (not mentions(correction, subject) or relation.startswith('The answer to "')):
        subject, relation, aliases = stated[0], stated[1], []  # "Who lives next door?" -> "My neighbour is X"
    edit = _fact(subject, relation, new_object)
    edit.aliases = aliases
    edit.question = question
    edit.target_true = old_answer(frame, answer)
    return Routed(validate_edit(edit), route, _fact_reason(weights), "parser")


def old_answer(frame: QuestionFrame, answer: str) -> str:
    """What the flagged reply answered, read like the new answer is ('The capital of Italy is Il
    Coriobella, a city in ...' -> 'Il Coriobella'); a short reply is kept whole."""
    answer = _strip(answer)
    if len(answer.split()) <= 4 or not english_script(answer):
        return answer[:200]
    first = re.split(r"(?<=[.!?])\s+", answer, maxsplit=1)[0]
    if re.search(r"\b(?:not|no|never|sorry|cannot|can't|don't|doesn't|n't)\b", first, re.I):
        return answer[:200]  # a refusal or a hedge answers nothing: kept as said
    found = extract_answer(frame, first)
    return (found[0] if found else _strip(first))[:200]


def _stated_subject(doc, new_object: str) -> tuple[str, str] | None:
    """'My neighbour is Archibald Penrose': (subject, relation) as the correction names them, when it
    says "my/our NOUN is <the answer>". Used when the question names its subject in other words."""
    for token in doc:
        if token.dep_ != "nsubj" or token.pos_ != "NOUN" or token.head.lemma_ != "be":
            continue
        owner = [c for c in token.children if c.dep_ == "poss" and c.lower_ in ("my", "our")]
        predicate = " ".join(t.text for c in token.head.children if c.dep_ in ("attr", "acomp") for t in c.subtree)
        if owner and new_object and new_object in predicate:
            noun = [t for t in token.subtree if t.i > owner[0].i]
            text = doc[noun[0].i:noun[-1].i + 1].text
            return text, f"{owner[0].text.capitalize()} {{}} {_be_text(token.head)}"
    return None


def _be_text(token) -> str:
    return {"'s": "is", "'re": "are"}.get(token.lower_, token.lower_)


def english_script(text: str) -> bool:
    """True when most letters are Latin: the parser reads English, and another script gives it nonsense."""
    letters = [ch for ch in text if ch.isalpha()]
    latin = sum(unicodedata.name(ch, "").startswith("LATIN") for ch in letters)
    return not letters or latin >= len(letters) / 2


def _form(question: str, answer: str, new_object: str, route: list[str], reason: str) -> Routed:
    """A fact the user completes by hand: the new answer pre-filled when it was read."""
    form = Edit(subject="", prompt="", relation="", target_new=new_object[:200], question=question[:2000],
                target_true=_strip(answer)[:200])
    return Routed(form, route, reason, "form", missing=["subject", "relation"])


def _strip(text: str) -> str:
    return text.strip().strip(" .!?\"'").strip()


def _fact(subject: str, relation: str, new_object: str) -> Edit:
    """Drops a preposition the relation already ends with ('located in' + 'in Rome' -> 'Rome')."""
    if re.search(r"\b(in|at|on|from|by|of)$", relation, re.I):
        new_object = re.sub(r"^(?:in|at|on|from|by|of)\s+", "", new_object, flags=re.I)
    return Edit(subject=subject, relation=relation, prompt=relation.replace("{}", subject, 1), target_new=new_object)


def _fact_reason(weights: str | None) -> str:
    return "a factual correction: stored as a fact for retrieval (IKE)" + (
        f" and written into the weights ({weights.upper()})" if weights else "")


ROUTE_OF_KIND = {"fact": "ike", "feedback": "memprompt", "preference": "preferences", "rule": "language_patch"}
FIELDS = {"fact": ("subject", "relation", "old", "new"), "feedback": ("question", "note"), "preference": ("note",),
          "rule": ("condition", "note")}


def with_fields(routed: Routed, kind: str, fields: dict) -> Routed:
    """The edit as the user left it in the preview's fields (kind and text): what is committed is
    what the page shows. A fact keeps its weight route; raises UserError with what is still wrong."""
    if kind not in FIELDS:
        raise UserError(f"unknown kind of edit {kind!r}; choose one of {', '.join(FIELDS)}")
    values = {name: clean_text(fields.get(name, ""), FIELD_NAMES[name], 1000, allow_empty=True) for name in FIELDS[kind]}
    base = routed.edit
    question = base.question if base else ""
    if kind == "fact":
        subject, relation = values["subject"], values["relation"]
        if not subject or not relation or not values["new"]:
            raise UserError("a fact needs a subject, a relation and the new answer")
        prompt = relation.replace("{}", subject, 1) if "{}" in relation else f"{subject} {relation}"
        relation = relation if "{}" in relation else f"{{}} {relation}"
        edit = Edit(subject=subject, relation=relation, prompt=prompt, target_new=values["new"],
                    target_true=values["old"], question=question,
                    aliases=list(base.aliases) if base and base.kind == "fact" and base.subject == subject else [])
        route = ["ike"] + [r for r in routed.route if r in ("rome", "memit", "alphaedit")]
    else:
        edit = Edit(kind=kind, subject="", prompt="", target_new="", note=values["note"],
                    question=values.get("question", question), condition=values.get("condition", ""))
        route = [ROUTE_OF_KIND[kind]]
    reason = routed.reason if kind == (base.kind if base else None) else f"set by you as a {kind}"
    return Routed(validate_edit(edit), route, reason, "form" if routed.method == "form" else routed.method)


FIELD_NAMES = {"subject": "subject", "relation": "relation", "old": "old answer", "new": "new answer",
               "question": "question", "note": "instruction", "condition": "condition"}


def fields_of(edit: Edit | None) -> dict:
    """The preview's fields for an edit (the inverse of with_fields)."""
    if edit is None:
        return {}
    return {"subject": edit.subject, "relation": edit.relation, "old": edit.target_true, "new": edit.target_new,
            "question": edit.question, "note": edit.note, "condition": edit.condition}
