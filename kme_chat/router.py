"""The router: a flagged answer plus the user's correction -> edit descriptors, a route, a reason.

Three kinds of correction, three routes:
- a fact ("No, the capital of Italy is Rome")        -> (s, r, o -> o*) -> IKE (+ ROME/MEMIT on request)
- feedback on what the user meant or prefers         -> MemPrompt, keyed by the question
- a conditional rule ("if I ask about prices, ...")  -> Language Patch

Extraction tries patterns first (fast, predictable), then the LLM with a few-shot prompt from
prompts/; every result is validated, and when nothing valid comes out the user gets a form.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from . import prompts
from .edit_log import Edit
from .validation import clean_text

MAX_CORRECTION_CHARS = 4000

RULE = re.compile(r"^\s*(?:if|when(?:ever)?)\s+(?P<cond>.+?)\s*(?:,\s*(?:then\s+)?|\s+then\s+)(?P<then>.+)$", re.I | re.S)
FEEDBACK_CUES = re.compile(
    r"\b(i meant|i mean|i was asking|i wanted|i want|i prefer|i'd prefer|i would prefer|please|don't|do not|"
    r"too long|too short|shorter|more detail|be more|be less|in (?:metric|imperial)|call me|my name is|"
    r"by .{1,40} i mean|not what i asked|answer in|respond in|reply in)\b", re.I)
ANSWER_LEADS = re.compile(
    r"^(?:no|nope|wrong|incorrect|not quite|that's wrong|that is wrong|actually|false)\b[\s,.!:;-]*", re.I)
ANSWER_IS = re.compile(
    r"^(?:the (?:correct |right |real )?answer is|it(?:'s| is| was)|that(?:'s| is| should be)|"
    r"should be|correct answer:|answer:|it should be)\s+", re.I)
COPULA = re.compile(r"^(?P<left>.+?)\s+(?P<verb>is|are|was|were|equals)\s+(?P<right>.+)$", re.I)
WH_OF = re.compile(r"^(?:what|who|which)\s+(?:is|was|are|were)\s+(?P<rel>the\s+.+?)\s+(?P<prep>of|in|for|on)\s+(?P<subj>.+?)\??$", re.I)
WH_VERB = re.compile(r"^(?:who|what)\s+(?P<verb>wrote|painted|invented|discovered|founded|directed|composed|"
                     r"created|developed|designed|built|owns|leads|runs|sang|performed)\s+(?P<subj>.+?)\??$", re.I)
WH_WHERE = re.compile(r"^where\s+(?P<aux>is|was)\s+(?P<subj>.+?)\s+(?P<rel>located|born|from|based|headquartered)\??$", re.I)
WH_WHAT_IS = re.compile(r"^(?:what|which|who)\s+(?:is|was|are|were)\s+(?P<subj>the\s+.+?)\??$", re.I)

PRESENT = {"owns", "leads", "runs"}
PASSIVE = {"wrote": "written", "painted": "painted", "invented": "invented", "discovered": "discovered",
           "founded": "founded", "directed": "directed", "composed": "composed", "created": "created",
           "developed": "developed", "designed": "designed", "built": "built", "owns": "owned",
           "leads": "led", "runs": "run", "sang": "sung", "performed": "performed"}


NOT_A_CORRECTION = re.compile(
    r"^(?:thanks?|thank you|thx|ok(?:ay)?|cool|great|nice|good|yes|yeah|yep|lol|haha+|hmm+|hi|hello|"
    r"great,? thank you|ok thanks)[\s!.,]*$", re.I)


@dataclass
class Routed:
    """What the user sees before committing: the edit, its route, why, and how it was extracted."""
    edit: Edit | None
    route: list[str]
    reason: str
    method: str                     # "rules", "llm" or "form"
    missing: list[str] = field(default_factory=list)  # form fields still to fill


def _strip(text: str) -> str:
    return text.strip().strip(" .!?\"'").strip()


def _sentence_case(text: str) -> str:
    return text[:1].upper() + text[1:]


def _statement(question: str) -> tuple[str, str] | None:
    """(subject, relation with {} for the subject) read off a question, or None."""
    q = question.strip()
    if m := WH_OF.match(q):
        return _strip(m["subj"]), f"{_sentence_case(m['rel'])} {m['prep'].lower()} {{}} is"
    if m := WH_VERB.match(q):
        verb = m["verb"].lower()
        tense = "is" if verb in PRESENT else "was"
        return _strip(m["subj"]), f"{{}} {tense} {PASSIVE[verb]} by"
    if m := WH_WHERE.match(q):
        rel = m["rel"].lower()
        return _strip(m["subj"]), f"{{}} {m['aux'].lower()} {rel}" + ("" if rel == "from" else " in")
    if m := WH_WHAT_IS.match(q):
        return _strip(m["subj"]), "{} is"
    return None


def _new_object(correction: str) -> tuple[str, str | None]:
    """(o*, statement prompt if the correction states the whole fact)."""
    text = ANSWER_LEADS.sub("", correction.strip()).strip()
    text = re.sub(r",?\s+(?:not|rather than|instead of)\s+[^,.;]+[.!]?$", "", text, flags=re.I)  # "Ankara, not Istanbul"
    text = ANSWER_IS.sub("", text).strip()
    m = COPULA.match(text)
    if m and len(m["left"].split()) >= 2:  # "the capital of Italy is Rome": a whole statement
        return _strip(m["right"]), f"{_sentence_case(m['left'].strip())} {m['verb']}"
    return _strip(text), None


def _find_subject(statement: str, question: str) -> str | None:
    """The longest run of words shared by the statement and the question, preferring names."""
    q_words = question.rstrip("?").split()
    best = ""
    for i in range(len(q_words)):
        for j in range(len(q_words), i, -1):
            span = " ".join(q_words[i:j]).strip(" ,.?")
            if len(span) > len(best) and span[:1].isupper() and span.lower() in statement.lower() and i > 0:
                best = span
    return best or None


LEADING_PREPOSITION = re.compile(r"^(?:in|at|on|from|by|of)\s+", re.I)


def _fact(subject: str, relation: str, new_object: str) -> Edit:
    """Normalises 'the Eiffel Tower' -> subject 'Eiffel Tower', relation 'The {} ...'; drops a
    preposition the relation already ends with ('located in' + 'in Rome' -> 'Rome')."""
    if subject.lower().startswith("the ") and len(subject) > 4:
        relation = relation.replace("{}", ("The " if relation.startswith("{}") else "the ") + "{}", 1)
        subject = subject[4:]
    relation = _sentence_case(relation) if not relation.startswith("{}") else relation
    if re.search(r"\b(in|at|on|from|by|of)$", relation, re.I):
        new_object = LEADING_PREPOSITION.sub("", new_object)
    return Edit(subject=subject, relation=relation, prompt=relation.replace("{}", subject, 1), target_new=new_object)


def extract_by_rules(question: str, correction: str) -> Edit | None:
    new_object, stated = _new_object(correction)
    if not new_object or len(new_object.split()) > 12:
        return None
    if stated:
        subject = None
        if found := _statement(question):
            if found[0].lower() in stated.lower():
                subject = found[0]
        subject = subject or _find_subject(stated, question)
        left = COPULA.match(stated + " x")["left"] if COPULA.match(stated + " x") else ""
        if not subject and left and left.lower() in question.lower():
            subject = left  # "the largest planet is" asked as "what is the largest planet …?"
        if not subject:
            return None
        idx = stated.lower().index(subject.lower())
        subject = stated[idx:idx + len(subject)]
        return _fact(subject, stated[:idx] + "{}" + stated[idx + len(subject):], new_object)
    found = _statement(question)
    if not found:
        return None
    return _fact(*found, new_object)


def extract_by_llm(llm, question: str, correction: str) -> Edit | None:
    text = prompts.render("router_extract.txt", llm.settings.prompts_dir, question=question, correction=correction)
    out = llm.complete(text, max_new_tokens=40)
    fields = {"Subject": out.split("\n", 1)[0]}
    for line in out.split("\n")[1:4]:
        key, _, value = line.partition(":")
        fields[key.strip()] = value
    subject, relation, target = (_strip(fields.get(k, "")) for k in ("Subject", "Relation", "New answer"))
    if not subject or not target or "{}" not in relation:
        return None
    return Edit(subject=subject, relation=relation, prompt=relation.replace("{}", subject, 1), target_new=target)


def valid_fact(edit: Edit | None, question: str) -> bool:
    """The subject must come from the question; the object must be short and non-empty."""
    return bool(edit and edit.subject and edit.target_new and len(edit.target_new) <= 200
                and edit.subject.lower() in question.lower() and edit.subject.lower() in edit.prompt.lower())


def route_correction(question: str, answer: str, correction: str, llm=None, weights: str | None = None) -> Routed:
    """weights: None, "rome" or "memit" — also write the fact into the weights (policy or user's ask)."""
    correction = clean_text(correction, "correction", MAX_CORRECTION_CHARS)
    question = clean_text(question, "question", MAX_CORRECTION_CHARS)
    if NOT_A_CORRECTION.match(correction) or not re.search(r"\w", correction):
        return Routed(None, [], "this does not read as a correction: nothing to store. Type the right "
                      "answer, what you meant, or a rule ('if …, then …').", "rules")
    if m := RULE.match(correction):
        edit = Edit(kind="rule", subject="", prompt="", target_new="", condition=_strip(m["cond"]),
                    note=_strip(m["then"]), question=question)
        return Routed(edit, ["language_patch"], "a conditional rule ('if …, then …'): Language Patch, "
                      "applied only when its condition holds", "rules")
    if FEEDBACK_CUES.search(correction):
        edit = Edit(kind="feedback", subject="", prompt="", target_new="", question=question, note=correction)
        return Routed(edit, ["memprompt"], "feedback on what you meant or prefer: MemPrompt, "
                      "shown again when a similar question comes", "rules")
    route = ["ike"] + ([weights] if weights else [])
    reason = "a factual correction: stored as a fact for retrieval (IKE)" + (
        f" and written into the weights ({weights.upper()})" if weights else "")
    edit, method = extract_by_rules(question, correction), "rules"
    if not valid_fact(edit, question) and llm is not None:
        edit, method = extract_by_llm(llm, question, correction), "llm"
    if not valid_fact(edit, question):
        new_object, _ = _new_object(correction)
        form = Edit(subject="", prompt="", relation="", target_new=new_object if len(new_object) <= 200 else "",
                    question=question, target_true=_strip(answer)[:200])
        return Routed(form, route, reason + ". The subject or relation could not be read off: "
                      "please fill in the form.", "form", missing=["subject", "relation"])
    edit.question = question
    edit.target_true = _strip(answer)[:200]
    return Routed(edit, route, reason, method)


def complete_form(routed: Routed, subject: str, relation: str, target: str) -> Routed:
    """The user's form fields -> a fact edit; raises UserError with what is still wrong."""
    subject, relation, target = (clean_text(v, n, 300) for v, n in ((subject, "subject"), (relation, "relation"),
                                                                      (target, "new answer")))
    prompt = relation.replace("{}", subject, 1) if "{}" in relation else f"{subject} {relation}"
    edit = routed.edit
    edit.subject, edit.relation, edit.prompt, edit.target_new = subject, relation, prompt, target
    return Routed(edit, routed.route, routed.reason, "form")

