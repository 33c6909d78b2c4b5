"""The new object in the user's words: candidates (a typed-alone answer, names, noun phrases,
numbers), minus what the question already says, pronouns, negated alternatives and chatter, ranked
by the kind of answer the question asks for and by grammatical role, then made whole (a name the
parser cut, a number's unit, a list)."""
from __future__ import annotations

import re

from ..language import parse
from .lexicon import (CONNECTORS, META_NOUNS, NEGATORS, PARTITIVES, REACTIONS, VERDICTS, WH_TAGS, WHEN)
from .question import QuestionFrame
from .tokens import clause_of, imperative, is_verb, text_of, trim

NUMERIC = {"TIME", "DATE", "QUANTITY", "MONEY", "CARDINAL", "PERCENT"}

ROMAN = re.compile(r"[IVXL]+")


def _negated(span_tokens) -> bool:
    """'..., not Spanish' / 'rather than Sydney' / 'instead of X': the span is what the answer is not."""
    first = span_tokens[0]
    doc = first.doc
    before = [t.lower_ for t in doc[max(0, first.i - 2):first.i]]
    if any(w in NEGATORS for w in before[-1:]) or before[-2:] in (["rather", "than"], ["instead", "of"]):
        return True
    return any(c.dep_ == "neg" for t in span_tokens for c in t.children if c.i < first.i + 1)


def _fragment(sent) -> list:
    """A verbless sentence ("nope, Mount Everest", "Canberra, not Sydney.") without its leading
    chatter, up to the first comma or negation: an answer typed on its own."""
    if any(t.pos_ in ("VERB", "AUX") and is_verb(t) for t in sent):
        return []
    tokens = list(sent)
    while tokens and (tokens[0].is_punct or tokens[0].pos_ in ("INTJ", "ADP", "CCONJ") or
                      tokens[0].lower_ in REACTIONS | VERDICTS | {"actually", "no", "not", "quite"}):
        tokens = tokens[1:]
    end = next((i for i, t in enumerate(tokens) if t.is_punct and t.text not in {"-", "'", "&", "."} or t.lower_ in NEGATORS),
               len(tokens))
    return trim(tokens[:end])


def _candidates(doc):
    """Spans that could be the new object: a typed-alone answer, named entities, noun phrases,
    numbers, lone names."""
    taken, spans = set(), [f for f in (_fragment(s) for s in doc.sents) if f]
    for ent in doc.ents:  # the tagger sometimes runs a name over a verb ("Acme Corp is Jo Ames")
        pieces, piece = [], []
        for t in ent:
            if t.pos_ in ("VERB", "AUX") and ent.label_ not in NUMERIC:  # "5:30 am" is one time
                pieces.append(piece)
                piece = []
            else:
                piece.append(t)
        for piece in pieces + [piece]:
            if piece:
                spans.append(piece)
                taken |= {t.i for t in piece}
    for chunk in doc.noun_chunks:
        if not taken & {t.i for t in chunk}:
            spans.append(list(chunk))
            taken |= {t.i for t in chunk}
        elif _lowercase_name(chunk) or _named_kind(chunk):
            spans.append(list(chunk))  # "the british broadcasting corporation", "the Karnessan mark"
    for t in doc:
        if t.i not in taken and (t.pos_ in ("NUM", "PROPN", "NOUN") or
                                 t.pos_ == "VERB" and t.is_alpha and not is_verb(t) or  # "allergic to shellfish"
                                 t.pos_ == "ADJ" and t.dep_ in ("dobj", "attr", "ROOT", "pobj", "conj", "appos",
                                                                "acomp", "oprd")):
            spans.append([t])
            taken.add(t.i)
    return spans


def _lowercase_name(chunk) -> bool:
    """A noun phrase of two or more lower-case content words where the tagger saw a name in part of
    it: a name typed without capitals."""
    words = [t for t in chunk if t.pos_ not in ("DET", "PRON", "PUNCT")]
    return (len(words) >= 2 and all(t.text.islower() for t in words) and any(t.ent_type_ for t in words)
            and words[-1].pos_ in ("NOUN", "PROPN"))


def _named_kind(chunk) -> bool:
    """A common noun led by a name or nationality: "Karnessan mark", "Galician seafood"."""
    root = chunk.root
    return (root.pos_ == "NOUN" and not root.ent_type_ and
            any(t.ent_type_ and t.dep_ in ("amod", "compound") and t.head.i == root.i for t in chunk))


def _whole_name(tokens) -> list:
    """A capitalised name the parser cut: 'President' + 'of Italy', 'American' + 'English',
    'Ponte della' + 'Maddalena'; a number takes its unit ('12' + 'people')."""
    doc = tokens[0].doc
    start, end = tokens[0].i, tokens[-1].i

    def capital(t) -> bool:
        if ROMAN.fullmatch(t.text) and t.i > 0 and doc[t.i - 1].pos_ == "PROPN":
            return True  # "Stephen I", "Louis XIV": the tagger reads "I" as a pronoun
        return t.text[:1].isupper() and t.pos_ in ("PROPN", "NOUN", "ADJ", "NUM") and t.i != t.sent.start
    if capital(doc[end]) or doc[end].pos_ == "PROPN":
        while end + 2 < len(doc) and doc[end + 1].lower_ in CONNECTORS and \
                (capital(doc[end + 2]) or doc[end + 2].lower_ == "the" and end + 3 < len(doc) and capital(doc[end + 3])):
            end += 2 if capital(doc[end + 2]) else 3
            while end + 1 < len(doc) and capital(doc[end + 1]):
                end += 1
        while end + 1 < len(doc) and capital(doc[end + 1]):
            end += 1
    if capital(doc[start]) or doc[start].pos_ == "PROPN":
        while start - 1 >= 0 and capital(doc[start - 1]):
            start -= 1
        while start - 2 >= 0 and doc[start - 1].lower_ in CONNECTORS - {"the"} and capital(doc[start - 2]):
            start -= 2
            while start - 1 >= 0 and capital(doc[start - 1]):
                start -= 1
    # a code written without spaces is one answer: "555-0142", "incidents-live", "v2.1"
    while end + 2 < len(doc) and not doc[end].whitespace_ and doc[end + 1].text in ("-", "/", ".", "_") \
            and not doc[end + 1].whitespace_ and not doc[end + 2].is_punct:
        end += 2
    before = doc[start - 1] if start > 0 else None
    if before is not None and before.tag_ == "VBN" and before.dep_ == "ROOT" and \
            any(c.dep_ == "auxpass" for c in before.children) and doc[end].head.i == before.i and \
            all(t.pos_ == "NOUN" and t.text.islower() for t in doc[start:end + 1]):
        start -= 1  # "is smoked eel risotto": an adjective the tagger read as a passive verb (not "is called Pixel")
    if doc[end].dep_ == "poss" and end + 2 < len(doc) and doc[end + 1].tag_ == "POS" and capital(doc[end + 2]):
        end += 2  # "Saint Brennan's College"
    while end + 1 < len(doc) and doc[end].like_num and doc[end + 1].like_num:
        end += 1  # "0161 496 0723": a number written in groups
    while start > 0 and doc[start].like_num and doc[start - 1].like_num:
        start -= 1
    last = doc[end]
    if last.pos_ == "NUM" and last.dep_ == "nummod" and last.head.i == end + 1 and last.head.pos_ == "NOUN":
        end += 1
    return trim(doc[start:end + 1])


def _with_conjuncts(tokens) -> list:
    """'Ada Shaw' + 'and Tom Reyes' -> the whole list; a negated conjunct ends it."""
    doc = tokens[0].doc
    end = tokens[-1].i
    head = tokens[-1]
    while True:
        conj = [c for c in head.children if c.dep_ == "conj" and c.i > end]
        if not conj or any(c.dep_ == "neg" or c.lower_ in NEGATORS for c in doc[end + 1:conj[0].i]):
            break
        head = conj[0]
        end = max(t.i for t in head.subtree if t.dep_ not in ("prep", "relcl", "acl") or t.i == head.i)
    return trim(doc[tokens[0].i:end + 1])


def _score(tokens, frame: QuestionFrame) -> float | None:
    """How well a span answers the question; None when it cannot be the answer at all."""
    words = [t for t in tokens if not t.is_punct]
    if not words:
        return None
    lowered = {t.lower_ for t in words} | {t.lemma_.lower() for t in words}
    if all(t.pos_ in ("PRON", "DET") or t.tag_ in WH_TAGS for t in words):
        return None
    if lowered <= REACTIONS | VERDICTS or any(t.lemma_.lower() in META_NOUNS for t in words[-1:]):
        return None
    if all(t.pos_ in ("ADJ", "ADV", "INTJ") for t in words) and not frame.wh and not any(t.text[:1].isupper() for t in words):
        return None  # "fair enough" after a yes/no question: a reaction, not a property
    clause = clause_of(words)
    if clause.pos_ in ("VERB", "AUX") and clause.dep_ == "ROOT" and clause.lemma_ != "be" and is_verb(clause) and \
            clause.i not in {t.i for t in words} and not imperative(clause) and \
            not any(c.dep_ in ("nsubj", "nsubjpass", "expl", "aux", "auxpass") for c in clause.children) and \
            not any(t.pos_ == "PROPN" for t in words):
        return None  # "makes sense", "sounds good": a reaction with its subject left out
    content = [t for t in words if t.pos_ not in ("DET", "PRON", "ADP", "CCONJ", "PART")]
    if content and all(t.lemma_.lower() in frame.words or t.lower_ in frame.words for t in content):
        return None  # the question's own words: the subject, the relation
    if _negated(words):
        return None
    root = min(words, key=lambda t: len(list(t.ancestors)))
    if root.pos_ == "ADJ" and not root.text[:1].isupper():
        subj = [c for c in root.head.children if c.dep_ == "nsubj"]
        if any(c.lower_ in ("you", "i", "we", "that", "this") for c in subj):
            return None  # "are you sure?", "that's helpful": about the exchange, not the answer
    label = next((t.ent_type_ for t in words if t.ent_type_), "")
    score = -2.0 if root.dep_ == "poss" else 0.0  # "Mark's car": the possessor modifies the answer
    if frame.answer_types and label in frame.answer_types:
        score += 3
    elif frame.answer_types and label and label not in frame.answer_types:
        score -= 1
    if label or any(t.pos_ in ("PROPN", "NUM") for t in words):
        score += 2
    if root.dep_ in ("attr", "dobj", "ROOT", "oprd", "acomp") or (root.dep_ == "pobj" and root.head.dep_ == "agent"):
        score += 2
    elif root.dep_ == "pobj":
        score += 1
    elif root.dep_ in ("nsubj",) and root.head.lemma_.lower() in frame.words:
        score += 2  # "Nokia makes that phone": the doer, for a question about the doer
    preposition = root.head if root.dep_ == "pobj" else None
    if preposition is not None and preposition.lower_ in ("since", "until", "after", "before", "from") and \
            not frame.answer_types & WHEN:
        score -= 3  # "since June ..." qualifies the fact; it is not the answer
    if label in WHEN and not frame.answer_types & WHEN and root.dep_ in ("pobj", "npadvmod", "advmod"):
        score -= 2  # a date the question does not ask for qualifies the fact ("in 1950", "since June")
    if root.dep_ == "pobj" and preposition is not None and preposition.lower_ == "of" and \
            (preposition.head.lemma_.lower() in frame.words | PARTITIVES):
        score += 1  # "holds the position of pope"
    return score - 0.01 * tokens[0].i  # ties: the earlier span


def extract_answer(frame: QuestionFrame, correction: str) -> tuple[str, str] | None:
    """(new object, preposition right before it) from the user's words, or None when none is there."""
    doc = parse(correction)
    best, best_score = None, None
    for span in _candidates(doc):
        span = trim(span)
        if not span:
            continue
        score = _score(span, frame)
        if score is not None and (best_score is None or score > best_score + 1e-9):
            best, best_score = span, score
    if best is None:
        return None
    best = _with_conjuncts(_whole_name(best))
    prev = doc[best[0].i - 1] if best[0].i > 0 else None
    prep = prev.lower_ if prev is not None and prev.pos_ == "ADP" and prev.dep_ == "prep" else ""
    return text_of(best).strip(" .,!?;:\"'"), prep
