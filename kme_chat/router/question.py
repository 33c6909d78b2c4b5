"""The question: which subject it is about, in which relation, and what kind of answer it wants.
The relation is the question turned into a statement that ends where the answer goes, with {} for
the subject ("Who painted the Mona Lisa?" -> subject "Mona Lisa", "The {} was painted by")."""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..language import inflect, parse
from .lexicon import AMOUNT, ANSWER_TYPES, CONNECTORS, HEAD_NOUN_TYPES, WH_TAGS
from .tokens import content_lemmas, is_verb, text_of, trim

@dataclass
class QuestionFrame:
    """What a question asks: about which subject, in which relation, and what kind of answer."""
    subject: str                    # as written, without a leading article or possessive pronoun
    relation: str                   # cloze with {} for the subject, ending where the answer follows
    wh: str                         # the question word ("who", "where", ...), "" when none
    answer_types: set[str]          # entity labels that would answer it (empty: any)
    words: set[str]                 # content lemmas of the question: an answer repeats none of them all
    aliases: list[str] = field(default_factory=list)  # other names of the subject: surname, initials


def _subject_tokens(sent, wh) -> list:
    """The entity the question is about: the best-scored noun phrase that is not the wh-phrase."""
    wh_phrase = set(t.i for t in wh.head.subtree) if wh is not None and wh.dep_ == "det" else {wh.i} if wh else set()
    best, best_score = None, -1
    for chunk in sent.noun_chunks:
        if wh_phrase & {t.i for t in chunk}:
            continue
        # a possessor inside the chunk ("my dog's name") is the subject, the head noun the relation
        possessors = [t for t in chunk if t.dep_ == "poss" and t.pos_ in ("NOUN", "PROPN")]
        tokens = trim(possessors[0].subtree) if possessors else trim(chunk)
        if not tokens or all(t.pos_ == "PRON" for t in tokens):
            continue
        score = 0
        if any(t.pos_ in ("PROPN", "NUM") or t.ent_type_ for t in tokens):
            score += 2
        if possessors:
            score += 3
        elif chunk.root.dep_ == "pobj" and chunk.root.head.dep_ == "prep" and chunk.root.head.head.pos_ in ("NOUN", "PROPN"):
            score += 3 if chunk.root.head.lower_ == "of" else 1
        elif chunk.root.dep_ == "pobj":
            score += 1
        if score > best_score:  # ties: the earlier phrase
            best, best_score = tokens, score
    if best is None:  # "What is 9 times 6?", "Who sang Let It Be?": everything after the first verb
        verb = next((t for t in sent if t.pos_ in ("AUX", "VERB") and t.i not in wh_phrase), None)
        rest = [t for t in sent if verb is not None and t.i > verb.i and not t.is_punct and t.i not in wh_phrase]
        return rest if wh is not None else []
    # a name the parser split ("War and Peace") stays whole
    ents = [e for e in sent.ents if e.start <= best[0].i < e.end or e.start <= best[-1].i < e.end]
    if ents:
        best = trim(sent.doc[min(ents[0].start, best[0].i):max(ents[-1].end, best[-1].i + 1)])
    # compounds before an attribute noun ("the guest wifi password"): the compounds are the subject
    head = best[-1]
    compounds = [t for t in best if t.dep_ == "compound" and t.head.i == head.i]
    if compounds and best_score < 2 and wh is not None and wh.dep_ == "attr" and \
            head.dep_ in ("nsubj", "attr") and head.head.lemma_ == "be":
        return compounds
    return best


def _fronted_preposition(sent, wh):
    """'In which city ...', 'For which team ...': the preposition that opens the question before its
    wh-word, or None. The answer goes after it at the statement's end ("... is based in")."""
    tokens = [t for t in sent if not t.is_punct]
    if wh is not None and len(tokens) > 1 and tokens[0].pos_ == "ADP" and tokens[1].i == wh.i:
        return tokens[0]
    return None


def _be(token) -> str:
    """'s -> is, 're -> are: a contraction does not end a statement."""
    return {"'s": "is", "'re": "are", "'m": "am"}.get(token.lower_, token.lower_)


def _verb_form(verb, aux) -> tuple[str, str]:
    """(be-form, past participle) for a passive statement: 'painted' -> ('was', 'painted')."""
    past = verb.tag_ == "VBD" or (aux is not None and aux.lower_ in ("did", "was", "were"))
    return "was" if past else "is", inflect(verb.lemma_, "VBN")


def _finite(verb, aux) -> str:
    """The verb as a statement says it: 'does ... use' -> 'uses', 'did ... write' -> 'wrote'."""
    if aux is not None and aux.lemma_ == "do":
        return inflect(verb.lemma_, "VBD" if aux.lower_ == "did" else ("VBP" if aux.lower_ == "do" else "VBZ"))
    return verb.text


def _cloze(sent, wh, subject_tokens, correction_prep: str) -> str | None:
    """The question as a statement that ends where the answer goes, with {} for the subject."""
    subject_ids = {t.i for t in subject_tokens}

    def words(tokens) -> str:
        out, placed = [], False
        for t in tokens:
            if t.i in subject_ids:
                if not placed:
                    out.append("{}")
                    placed = True
                continue
            out.append(t.text)
        return re.sub(r"\s+('s|')", r"\1", " ".join(out)).strip()

    root = sent.root
    body = [t for t in sent if not t.is_punct]
    wh_phrase = list(wh.head.subtree) if wh.dep_ == "det" else [wh]
    wh_ids = {t.i for t in wh_phrase}
    noun = wh.head if wh.dep_ == "det" else None
    auxes = [t for t in root.children if t.dep_ in ("aux", "auxpass") and t.i not in wh_ids]
    aux = auxes[0] if auxes else None
    rest = [t for t in body if t.i not in wh_ids and t.i not in {a.i for a in auxes}]

    fronted = _fronted_preposition(sent, wh)
    if fronted is not None:
        # In which city is the ITC based? -> The ITC is based in; Of which country is Rome the capital?
        after = [t for t in body if t.i > wh.i and not (t.i == wh.i + 1 and t.pos_ == "NOUN")]
        if after and after[0].lemma_ == "be":
            last = max(subject_ids)
            subject_part = [t for t in after[1:] if t.i <= last]
            tail = [t for t in after[1:] if t.i > last]
            if not all(t.pos_ in ("VERB", "ADP") for t in tail):
                subject_part, tail = after[1:], []  # "In which city is X's factory?" -> "X's factory is in"
            return " ".join(x for x in (words(subject_part), _be(after[0]), words(tail), fronted.lower_) if x)

    if root.lemma_ == "be" and wh.dep_ in ("attr", "nsubj") or (noun is not None and noun.dep_ in ("attr", "nsubj")
                                                                and root.lemma_ == "be"):
        # What is the capital of Italy? / Which city is Italy's capital?
        others = [t for t in rest if t.i != root.i]
        if others and others[-1].pos_ == "ADP" and others[-1].i > root.i:
            # a preposition left at the end: the verb goes after the subject's phrase
            # ("Which state is Bristol in?" -> "Bristol is in", "Who is Ann married to?" -> "Ann is married to")
            last = max(subject_ids)
            head, tail = [t for t in others if t.i <= last], [t for t in others if t.i > last]
            return f"{words(head)} {_be(root)} {words(tail)}"
        return f"{words(others)} {_be(root)}"
    if wh.lower_ in ("where", "when"):
        # Where was Marie Curie born? / Where is the Prado? / When is our book club?
        prep = correction_prep or ("in" if wh.lower_ == "where" else "at")
        if root.lemma_ == "be":
            # "Where was Jenna Reyes born?" parsed with "was" as the root: the be goes after the subject
            others = [t for t in rest if t.i != root.i]
            last = max(subject_ids)
            head, tail = [t for t in others if t.i <= last], [t for t in others if t.i > last]
            if not (tail and all(t.pos_ in ("VERB", "ADP") for t in tail)):
                head, tail = others, []  # "When is Noor's birthday?" -> "Noor's birthday is on"
            if tail and tail[-1].pos_ == "ADP":
                prep = ""  # "Where is Rocco from?" -> "Rocco is from"
            return " ".join(x for x in (words(head), _be(root), words(tail), prep) if x)
        subj = [t for t in rest if t.i < root.i]
        after = [t for t in rest if t.i > root.i]
        be = aux.text.lower() if aux is not None and aux.lemma_ == "be" else None
        verb = root.text if be else _finite(root, aux)
        return " ".join(x for x in (words(subj), be, verb, words(after), prep) if x)
    if wh.dep_ in ("nsubj", "nsubjpass") or (noun is not None and noun.dep_ in ("nsubj", "nsubjpass")):
        objects = [t for t in root.children if t.dep_ == "dobj"]
        if not objects and wh.dep_ == "nsubj" and root.pos_ == "VERB":
            # "Who runs Brightwater Analytics?": the tagger makes the object a second subject after the verb
            objects = [t for t in root.children if t.dep_ == "nsubj" and t.i > root.i]
        if objects and wh.dep_ == "nsubj" or (noun is not None and noun.dep_ == "nsubj" and objects):
            # Who painted the Mona Lisa? -> The Mona Lisa was painted by
            obj = objects[0]
            be, participle = _verb_form(root, aux)
            extra = [t for t in rest if t.i > root.i and t.i not in {x.i for x in obj.subtree}]
            return " ".join(x for x in (words(obj.subtree), be, participle, words(extra), "by") if x)
        if root.dep_ == "ROOT" and wh.dep_ in ("nsubjpass",) or (noun is not None and noun.dep_ == "nsubjpass"):
            # What language is spoken in Brazil? -> The language spoken in Brazil is
            head = noun.lemma_ if noun is not None else "thing"
            be = aux.text.lower() if aux is not None else "is"
            return f"the {head} {words([t for t in rest if t.i >= root.i])} {be}"
    if wh.dep_ in ("dobj", "pobj") or (noun is not None and noun.dep_ == "dobj"):
        # What currency does Japan use? -> The currency Japan uses is
        subj = [t for t in rest if t.i < root.i]
        after = [t for t in rest if t.i > root.i]
        verb = _finite(root, aux)
        clause = " ".join(x for x in (words(subj), verb, words(after)) if x)
        return f"the {noun.lemma_} {clause} is" if noun is not None else clause
    return None


CLOSED_ADVERBS = {"still", "back", "well", "just", "right", "even", "home", "there", "here", "now", "then",
                  "out", "up", "down", "off", "over", "first", "last", "long", "far", "near", "again"}


def _do_question(sent, wh, correction_prep: str) -> tuple[list, str] | None:
    """'Which language does Ana Ruiz use?' read by position: the words between 'does' and
    the final verb are the subject (the tagger often calls that verb a noun, so the tree is not
    trusted here) -> (subject tokens, 'The language {} uses is')."""
    if wh is None:
        return None
    tokens = [t for t in sent if not t.is_punct]
    aux = next((t for t in tokens if t.lemma_ == "do" and t.dep_ in ("aux", "ROOT") and t.i > wh.i), None)
    if aux is None:
        return None
    tail = tokens[tokens.index(aux) + 1:]
    # the verb: the last lower-case word that can be a verb ("does the pool open on Sundays",
    # "does Tom Reyes play professionally"); what follows it is its complement
    def verb_like(i: int) -> bool:
        t = tail[i]
        if not t.text.islower() or t.pos_ == "ADP" or not is_verb(t):
            return False
        # an adverb only where a verb would stand: last, or before its preposition ("does our
        # project lead live in" -- tagged an adverb), and not a closed-class adverb ("still", "back")
        return t.pos_ != "ADV" or (t.lower_ not in CLOSED_ADVERBS and
                                   (i == len(tail) - 1 or tail[i + 1].pos_ == "ADP"))

    at = next((i for i in range(len(tail) - 1, 0, -1) if verb_like(i)), None)
    if at is None:
        return None
    verb, subject, preps = tail[at], tail[:at], tail[at + 1:]
    root = next((i for i, t in enumerate(subject) if t.dep_ == "ROOT" and t.pos_ == "VERB" and t.text.islower()), None)
    if root is not None and root > 0 and all(t.pos_ in ("PROPN", "DET") for t in subject[:root]) and \
            any(t.pos_ == "PROPN" for t in subject[:root]):
        # "did Giunta Pisano grow up speaking": the tagger's main verb ends the subject
        verb, subject, preps = subject[root], subject[:root], subject[root + 1:] + [verb] + preps
    adverbs = []
    while subject and subject[-1].pos_ in ("ADV", "ADJ") and subject[-1].text.islower():
        adverbs.insert(0, subject.pop())  # "did Blue Hour first air on"
    subject = trim(subject)
    finite = inflect(verb.lemma_.lower(), {"did": "VBD", "do": "VBP"}.get(aux.lower_, "VBZ"))
    noun = wh.head if wh.dep_ == "det" else None
    if len(subject) == 1 and subject[0].lower_ in ("i", "we") and noun is not None and noun.i < aux.i:
        # "Which gym do I go to?" is about my gym: "The {} I go to is" (later: "my gym")
        said = " ".join([subject[0].text, finite] + [t.text for t in adverbs + preps])
        return [noun], f"the {{}} {said} is"
    if not subject or all(t.pos_ == "PRON" for t in subject):
        return None
    lead = " ".join(["{}"] + [t.text for t in adverbs] + [finite] + [t.text for t in preps])
    if wh.lower_ in ("where", "when") and not any(t.pos_ == "ADP" for t in preps[-1:]):
        lead += " " + (correction_prep or ("in" if wh.lower_ == "where" else "on"))
    fronted = _fronted_preposition(sent, wh)
    if fronted is not None:
        return subject, f"{lead} {fronted.lower_}"  # "In which city did X work?" -> "{} worked in"
    noun = wh.head if wh.dep_ == "det" else None
    if noun is not None and wh.lower_ not in ("where", "when"):
        return subject, f"the {noun.lemma_} {lead} is"
    return subject, lead


# "Remind me, who is my dentist?", "Quick question: where ...": a lead-in before the wh-word is no part of it
LEAD_IN = re.compile(r"^([^?]{1,40}?)\s*[,:;\u2014\u2013-]\s+((?:who|whom|whose|what|where|when|which|how)\b[^,]*\?)\s*$", re.I)

TAIL_OFF = re.compile(r",\s*(?:again|then|please|exactly|now|anyway)\s*\?\s*$", re.I)


def analyse_question(question: str, correction_prep: str = "") -> QuestionFrame | None:
    if (lead := LEAD_IN.match(question.strip())) and not re.search(r"\b(?:who|what|where|when|which|how)\b", lead[1], re.I) \
            and not re.search(r"\d|\s[A-Z]", lead[1]):  # "In 1990, who ..." keeps its qualifier
        question = lead[2][0].upper() + lead[2][1:]
    question = TAIL_OFF.sub("?", question)  # "Which city does she live in, again?"
    doc = parse(question)
    sents = [s for s in doc.sents if s.text.strip().endswith("?")] or list(doc.sents)
    sent = sents[-1]
    wh = next((t for t in sent if t.tag_ in WH_TAGS), None)
    positional = _do_question(sent, wh, correction_prep)
    subject_tokens = positional[0] if positional else _subject_tokens(sent, wh)
    if not subject_tokens:
        return None
    subject = text_of(subject_tokens)
    if positional:
        relation = positional[1]
    else:
        relation = _cloze(sent, wh, subject_tokens, correction_prep) if wh is not None else None
    if not relation or "{}" not in relation:
        # no statement form: the question itself is the relation, e.g. 'The answer to "How many moons has {}?" is'
        masked = question.strip().replace(subject, "{}", 1)
        relation = f'The answer to "{masked}" is'
    relation = relation[0].upper() + relation[1:]
    wh_word = wh.lower_ if wh is not None else ""
    types = set(ANSWER_TYPES.get(wh_word, set()))
    noun = wh.head if wh is not None and wh.dep_ == "det" else None
    if noun is not None:
        types |= HEAD_NOUN_TYPES.get(noun.lemma_.lower(), set())
    if wh is not None and wh.head.lemma_ in ("many", "much", "old", "far", "long", "tall", "big", "high"):
        types |= AMOUNT
    root_attr = [t for t in sent if t.dep_ in ("nsubj", "attr") and t.head.lemma_ == "be" and t.i != (wh.i if wh else -1)]
    for t in root_attr:
        types |= HEAD_NOUN_TYPES.get(t.lemma_.lower(), set())
    return QuestionFrame(subject, relation, wh_word, types, content_lemmas(sent), aliases_of(subject_tokens))


def aliases_of(subject_tokens) -> list[str]:
    """Other names people use for the subject: a person's surname ('Curie' for 'Marie
    Curie'), a name without the kind of thing it names ('Tidewell' for 'Tidewell app'), the
    initials of a name of three or more capitalised words ('WHO' for 'World Health Organization')."""
    words = [t for t in subject_tokens if t.is_alpha]
    aliases = []
    if len(words) >= 2 and any(t.ent_type_ == "PERSON" for t in subject_tokens) and len(words[-1].text) >= 3:
        aliases.append(words[-1].text)
    if len(words) >= 2 and words[-1].pos_ == "NOUN" and words[-1].text.islower() and \
            all(t.text[:1].isupper() or t.like_num for t in subject_tokens[:-1]):
        aliases.append(text_of(subject_tokens[:-1]))  # "Tidewell" for "Tidewell app", "Aurelia 5" for "Aurelia 5 phone"
    capitals = [t for t in words if t.text[:1].isupper() and t.lower_ not in CONNECTORS]
    if len(capitals) >= 3 and len(capitals) == len([t for t in words if t.lower_ not in CONNECTORS]):
        aliases.append("".join(t.text[0] for t in capitals))
    return aliases
