"""What kind of correction it is, from its grammar: a conditional clause is a rule; an instruction,
"I meant / I prefer", the user's own name or description, or a remark on the answer's style is
feedback; a sentence that names the question's subject and carries an answer keeps it a fact."""
from __future__ import annotations

import re

from editors.scope import mentions

from .answer import extract_answer
from .lexicon import CONDITION_MARKS, LEAD_WORDS, PREFERENCE_VERBS, STYLE_WORDS
from .question import QuestionFrame
from .tokens import describes_the_user, imperative, names_the_user, text_of, trim

def rule_parts(doc) -> tuple[str, str] | None:
    """'If I ask about prices, answer in euros' -> ('I ask about prices', 'answer in euros'). A
    conditional clause makes a rule when it leads its sentence, is about the user ("when I ask ..."),
    or governs an instruction ("answer in euros if ..."); "He moved there when the war began" is a fact."""
    for sent in doc.sents:
        for t in sent:
            if t.lower_ in CONDITION_MARKS and t.dep_ in ("mark", "advmod") and t.head.dep_ == "advcl":
                clause = sorted(t.head.subtree, key=lambda x: x.i)
                leads = all(x.is_punct or x.lower_ in LEAD_WORDS for x in sent if x.i < clause[0].i)
                about_user = any(x.lower_ in ("i", "we", "me", "us", "my", "our") for x in clause)
                if not (leads or about_user or imperative(t.head.head)):
                    continue
                condition = [x for x in clause if x.i != t.i and x.lower_ != "then"]
                consequence = trim([x for x in sent if x.i not in {c.i for c in clause} and x.lower_ != "then"])
                cond = text_of(condition).strip(" ,.;")
                then = "".join(x.text_with_ws for x in consequence).strip(" ,.;")  # the kept words only
                if cond and then:
                    return cond, then
    text = " ".join(doc.text.split())  # one space between words: the pattern below cannot backtrack far
    match = re.match(r"^(?:if|when(?:ever)?) (.+?)(?:, (?:then )?| then )(.+)$", text, re.I)
    return (match[1].strip(" ,.;"), match[2].strip(" ,.;")) if match else None


def is_feedback(doc) -> bool:
    """An instruction, a statement of what the user meant, prefers or is, or a remark on the answer's style."""
    for sent in doc.sents:
        root = sent.root
        lead = [t for t in sent if not t.is_punct and t.lower_ not in LEAD_WORDS - {"do", "don't"} and t.pos_ != "INTJ"]
        if any(imperative(t) for t in sent):
            return True
        if lead and lead[0].lower_ == "be" and root.lemma_ == "be":
            return True  # "Be more specific"
        if lead and lead[0].lower_ == "do" and any(t.dep_ == "neg" for t in sent):
            return True  # "Don't use bullet points"
        if names_the_user(sent) or describes_the_user(sent):
            return True  # "My name is Sam", "I'm vegetarian"
        for t in sent:
            if t.lemma_.lower() in PREFERENCE_VERBS and t.pos_ == "VERB" and \
                    any(c.dep_ == "nsubj" and c.lower_ in ("i", "we") for c in t.children):
                return True  # "I meant the river bank", "By 'the city' I mean Boston"
            if t.lemma_.lower() in STYLE_WORDS and (any(c.lower_ in ("too", "more", "less") for c in t.children)
                                                   or t.tag_ in ("JJR", "RBR")):
                return True  # "That's too long", "shorter please"
        if any(t.lower_ in ("asked", "asking") for t in sent) and any(t.dep_ == "neg" for t in sent):
            return True  # "not what I asked"
    return False


# what a user meant or asked, said after the fact: "I meant the planet", "I was asking about the rugby",
# "I wanted the population": these clarify one question; "I want short answers" is a preference
MEANING_VERBS = {"mean", "ask", "talk", "refer"}


def clarifies_meaning(doc) -> bool:
    """Feedback about what this question meant (kept with the question), not about how to answer."""
    for t in doc:
        lemma = t.lemma_.lower()
        said_by_user = any(c.dep_ == "nsubj" and c.lower_ in ("i", "we") for c in t.children) or \
            any(c.dep_ == "nsubj" and c.lower_ in ("i", "we") for c in t.head.children if t.dep_ == "xcomp")
        if not said_by_user or t.pos_ not in ("VERB", "AUX"):
            continue
        if lemma in MEANING_VERBS and (lemma == "mean" or t.tag_ in ("VBD", "VBG", "VBN")):
            return True  # "I meant", "By 'the city' I mean Boston", "I was asking about", "what I asked"
        if lemma in PREFERENCE_VERBS and t.tag_ == "VBD":
            return True  # "I wanted the population, not the area"
    return False


def states_a_fact(doc, frame: QuestionFrame | None) -> bool:
    """A sentence that names the question's subject and carries an answer, with no "I meant/prefer":
    "Blue Hour first aired on ABC. Don't mix that up again!" is a fact."""
    if frame is None:
        return False
    for sent in doc.sents:
        if not mentions(sent.text, frame.subject) or any(imperative(t) for t in sent) or names_the_user(sent) \
                or describes_the_user(sent):
            continue
        if any(t.lemma_.lower() in PREFERENCE_VERBS and any(c.lower_ in ("i", "we") for c in t.children) for t in sent):
            continue
        if extract_answer(frame, sent.text) is not None:
            return True
    return False
