"""A question that refers back to what the conversation was just about: "And who is its CEO
again?", "Where was she born?", "So who keeps the beat in that band?".

Memory is looked up by the question's words, and "its" names nothing. When a question has a
pronoun or a demonstrative ("that band") and no stored fact is in its scope, the pronoun is
replaced by what an earlier turn's stored fact was about, its subject ("the Dunmore Comets") or,
for he/she, its object when that is a person ("Dana Whitfield"), and memory is asked again.
"""
from __future__ import annotations

from .language import parse

PEOPLE = {"he", "she", "him", "her"}
THINGS = {"it", "they", "them"}
POSSESSIVES = {"its", "their", "his", "her"}
DEMONSTRATIVES = {"that", "this", "those", "these"}
DETERMINERS = {"my", "our", "your", "the"}


def refers_back(question: str) -> bool:
    return any(t.lower_ in PEOPLE | THINGS | POSSESSIVES | DEMONSTRATIVES or _there(t) for t in parse(question))


def _there(token) -> bool:
    """'travel there' (a place), not 'is there a ...'."""
    return token.lower_ == "there" and token.dep_ == "advmod"


def _owned(phrase: str) -> str:
    return phrase + ("'" if phrase.endswith("s") else "'s")


def about_people(question: str) -> bool:
    return any(t.lower_ in PEOPLE | {"his"} for t in parse(question))


def named_as(claim) -> str:
    """The fact's subject with the determiner its statement gives it: 'My cat's name is' -> 'my cat'."""
    subject = claim.subject.strip()
    at = claim.prefix.lower().find(subject.lower()) if subject else -1
    before = claim.prefix[:at].split() if at > 0 else []
    if before and before[-1].lower() in DETERMINERS and not subject.lower().startswith(before[-1].lower() + " "):
        return f"{before[-1].lower()} {subject}"
    return subject


def is_person(text: str) -> bool:
    return any(ent.label_ == "PERSON" for ent in parse(text).ents)


def substitute(question: str, phrase: str, relation_words: frozenset = frozenset()) -> str | None:
    """The question with its pronouns replaced by `phrase`; None when it has none. "that band" is
    `phrase` too, but "that number", where "number" is a word of the fact's own relation ("My
    landlord's phone number is"), is `phrase`'s number."""
    doc = parse(question)
    out, skip, changed = [], set(), False
    for t in doc:
        if t.i in skip:
            continue
        if t.lower_ in POSSESSIVES and t.tag_ == "PRP$":
            text = _owned(phrase)
        elif t.lower_ in PEOPLE | THINGS and t.pos_ == "PRON":
            text = phrase
        elif t.lower_ in DEMONSTRATIVES and t.dep_ == "det" and t.head.i == t.i + 1 and t.head.pos_ == "NOUN":
            noun = t.head
            text = f"{_owned(phrase)} {noun.text}" if noun.lemma_.lower() in relation_words else phrase
            t = noun
            skip.add(t.i)
        elif t.lower_ in DEMONSTRATIVES and t.pos_ == "PRON":
            text = phrase  # "what year was that again?"
        elif _there(t):
            text = f"in {phrase}"
        else:
            out.append(t.text_with_ws)
            continue
        changed = True
        out.append(text + t.whitespace_)
    return "".join(out) if changed else None


def readings(question: str, claims) -> list[str]:
    """The question with its reference resolved to each of the earlier facts' subjects and objects,
    likeliest first."""
    people = about_people(question)
    found = []
    for claim in claims:
        names = [named_as(claim)]
        if people and is_person(claim.object):
            names.insert(0, claim.object)
        words = frozenset(t.lemma_.lower() for t in parse(claim.prefix) if t.pos_ in ("NOUN", "PROPN"))
        for name in names:
            if name and (read := substitute(question, name, words)) and read not in found:
                found.append(read)
    return found
