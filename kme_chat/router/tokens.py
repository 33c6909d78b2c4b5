"""Small readings of parsed text shared by the router's steps: trimming a phrase, its text, whether a
word is a verb, whether a clause is an instruction, whether a sentence is about the user."""
from __future__ import annotations

import re

from lemminflect import getAllLemmas

from .lexicon import APPROXIMATIONS, LEAD_WORDS, META_VERBS, REACTIONS, VERDICTS

def content_lemmas(tokens) -> set[str]:
    """Content words as lemmas and as written: the tagger may lemmatise a name in one sentence and
    not in the next ("Warriors" -> "warrior" in the question, "Warriors" in the correction)."""
    content = [t for t in tokens
               if t.pos_ in ("NOUN", "PROPN", "NUM", "ADJ", "VERB") and t.lemma_.lower() not in ("be", "do", "have")]
    return {t.lemma_.lower() for t in content} | {t.lower_ for t in content}


def trim(tokens) -> list:
    """A phrase without leading articles, possessive pronouns, approximations and chatter
    ('our book club' -> 'book club', 'nope, cricket' -> 'cricket', 'about 3 hours' -> '3 hours')."""
    tokens = list(tokens)

    def chatter(t) -> bool:
        return (t.dep_ in ("det", "poss", "predet", "case") and t.pos_ in ("DET", "PRON", "PART") or t.is_punct
                or not re.search(r"\w", t.text) or t.lower_ in REACTIONS | VERDICTS | APPROXIMATIONS)
    while tokens and chatter(tokens[0]):
        tokens = tokens[1:]
    while tokens and (tokens[-1].is_punct and tokens[-1].text != "#" or tokens[-1].dep_ == "case"
                      or tokens[-1].pos_ in ("DET", "ADP", "CCONJ") or not re.search(r"\w", tokens[-1].text)):
        tokens = tokens[:-1]
    return tokens


def text_of(tokens) -> str:
    tokens = list(tokens)
    if not tokens:
        return ""
    doc = tokens[0].doc
    return doc[tokens[0].i:tokens[-1].i + 1].text


def is_verb(token) -> bool:
    """The tagger's word, checked against the lexicon: a lone 'tomato' is not a verb."""
    if token.pos_ == "AUX" or token.tag_ in ("VBD", "VBN", "VBZ", "VBG") and token.pos_ == "VERB":
        return True  # an inflected form, even misspelt ("wrotte"): the tagger's word stands
    return bool(getAllLemmas(token.lower_, upos="VERB"))


def clause_of(tokens):
    """The clause a span sits in: the nearest verb above it, or the sentence root."""
    token = tokens[0]
    while token.head.i != token.i and token.pos_ not in ("VERB", "AUX"):
        token = token.head
    return token


def imperative(verb) -> bool:
    """A clause that tells the assistant what to do: a bare verb with no subject, first in its clause
    after words like 'please' or 'always' ("Please always give distances in miles")."""
    if verb.lemma_.lower() in META_VERBS | REACTIONS | VERDICTS or verb.lower_ in REACTIONS | VERDICTS or \
            not is_verb(verb):
        return False
    sent = verb.sent
    following = verb.doc[verb.i + 1] if verb.i + 1 < sent.end else None
    if all(t.lower_ in LEAD_WORDS or t.is_punct for t in verb.doc[sent.start:verb.i]):
        # first in its sentence: the tagger may call "Answer" a noun, or "Use" part of a compound
        said = verb.tag_ == "VB" or (verb.pos_ in ("NOUN", "PROPN") and verb.dep_ == "ROOT" and following is not None
                                     and following.pos_ not in ("CCONJ", "PUNCT"))
        clause = [t for t in sent if t.i > verb.i]
    else:
        said = (verb.pos_ == "VERB" and verb.tag_ == "VB" and verb.dep_ in ("ROOT", "advcl", "ccomp", "conj", "parataxis")
                and all(t.lower_ in LEAD_WORDS or t.pos_ in ("ADV", "INTJ", "PART") or t.is_punct
                        for t in verb.subtree if t.i < verb.i))
        clause = [t for t in verb.subtree if t.i > verb.i]
    if not said or any(c.dep_ in ("nsubj", "nsubjpass", "expl", "aux", "mark") and c.lower_ not in ("do", "don't")
                       for c in verb.children):
        return False
    # "tell me more", "never mind": a turn of the conversation, not a standing preference
    return any(t.pos_ in ("NOUN", "PROPN", "NUM", "ADJ") and t.lower_ not in ("more", "less", "else") for t in clause)


def describes_the_user(sent) -> bool:
    """"I'm vegetarian", "I am American": what the user is, to keep in mind for every answer."""
    return any(t.lemma_ == "be" and any(c.dep_ == "nsubj" and c.lower_ == "i" for c in t.children)
               and any(c.dep_ in ("acomp", "attr") and c.lower_ not in VERDICTS for c in t.children)
               and not any(c.dep_ == "ccomp" for w in t.subtree for c in w.children)  # "I'm positive it's X"
               for t in sent)


def names_the_user(sent) -> bool:
    return any(t.lemma_ == "name" and any(c.lower_ == "my" for c in t.children) for t in sent)
