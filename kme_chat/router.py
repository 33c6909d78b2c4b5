"""The router: a flagged answer plus the user's correction -> an edit, a route, and why.

Four outcomes:
- a fact ("Wrong! Leonardo da Vinci painted it.")      -> (s, r, o -> o*) -> IKE (+ ROME/MEMIT on request)
- feedback on what the user meant or prefers            -> MemPrompt
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
from dataclasses import dataclass, field

from .edit_log import Edit
from .language import inflect, parse
from .validation import clean_text

MAX_CORRECTION_CHARS = 4000

# Closed word classes, not examples: chat reactions that carry no answer, verdict words, words
# about the answer itself, and verbs/adjectives that talk about how to answer.
REACTIONS = {"ok", "okay", "k", "thanks", "thank", "thx", "ty", "cool", "great", "nice", "good", "fine", "lol",
             "lmao", "haha", "hah", "hmm", "hm", "huh", "wow", "yes", "yeah", "yep", "yup", "no", "nope", "nah",
             "sure", "interesting", "whatever", "really", "right", "alright", "hi", "hello", "hey", "bye", "oh",
             "ah", "uh", "um", "meh", "sorry", "please", "idk", "omg", "wtf", "awesome", "perfect", "exactly"}
VERDICTS = {"wrong", "incorrect", "false", "right", "correct", "true", "inaccurate", "mistaken", "outdated",
            "untrue", "bad", "off", "nonsense", "sure", "certain"}
META_NOUNS = {"answer", "correction", "fact", "one", "thing", "response", "reply", "mistake", "error", "question"}
META_VERBS = {"remember", "note", "update", "fix", "correct", "save", "store", "change", "check", "see", "look",
              "trust", "believe", "think", "know", "guess", "suppose", "mean"}
PREFERENCE_VERBS = {"mean", "want", "prefer", "like", "need", "ask", "wish", "expect", "care", "hate", "love"}
STYLE_WORDS = {"long", "short", "verbose", "wordy", "brief", "detailed", "formal", "informal", "casual",
               "technical", "simple", "complicated", "complex", "vague", "concise", "rude", "polite", "lengthy",
               "specific", "general", "boring", "dry"}
APPROXIMATIONS = {"about", "around", "approximately", "roughly", "circa", "approx"}
# nouns whose "of" complement is the answer: "part of Doctor Who", "the position of pope"
PARTITIVES = {"part", "member", "kind", "type", "sort", "position", "office", "rank", "title", "role"}
CONNECTORS = {"of", "on", "the", "de", "della", "del", "di", "da", "du", "des", "von", "van", "der", "al", "la", "le"}
LEAD_WORDS = {"please", "just", "always", "also", "and", "do", "don't", "n't", "never", "pls"}
CONDITION_MARKS = {"if", "when", "whenever", "unless"}
NEGATORS = {"not", "n't", "never", "instead", "rather", "except"}

# What a wh-word asks for, as spaCy entity labels (used to rank candidate answers, never to gate).
WHO, WHERE, WHEN = {"PERSON", "ORG", "NORP"}, {"GPE", "LOC", "FAC", "ORG"}, {"DATE", "TIME"}
AMOUNT = {"CARDINAL", "QUANTITY", "MONEY", "PERCENT", "DATE", "TIME"}
ANSWER_TYPES = {"who": WHO, "whom": WHO, "whose": WHO, "where": WHERE, "when": WHEN, "how": AMOUNT}
HEAD_NOUN_TYPES = {"language": {"LANGUAGE", "NORP"}, "year": {"DATE"}, "date": {"DATE"}, "day": {"DATE"},
                   "time": {"TIME", "DATE"}, "city": {"GPE"}, "country": {"GPE"}, "town": {"GPE"},
                   "company": {"ORG"}, "team": {"ORG"}, "person": {"PERSON"}, "number": {"CARDINAL"},
                   "temperature": {"QUANTITY"}, "population": {"CARDINAL"}, "price": {"MONEY"},
                   "cost": {"MONEY"}, "age": {"DATE", "CARDINAL"}, "height": {"QUANTITY"}}
WH_TAGS = {"WDT", "WP", "WP$", "WRB"}


@dataclass
class Routed:
    """What the user sees before committing: the edit, its route, why, and how it was extracted."""
    edit: Edit | None
    route: list[str]
    reason: str
    method: str                     # "parser" or "form"
    missing: list[str] = field(default_factory=list)  # form fields still to fill


@dataclass
class QuestionFrame:
    """What a question asks: about which subject, in which relation, and what kind of answer."""
    subject: str                    # as written, without a leading article or possessive pronoun
    relation: str                   # cloze with {} for the subject, ending where the answer follows
    wh: str                         # the question word ("who", "where", ...), "" when none
    answer_types: set[str]          # entity labels that would answer it (empty: any)
    words: set[str]                 # content lemmas of the question: an answer repeats none of them all
    aliases: list[str] = field(default_factory=list)  # other names of the subject: surname, initials


# ---- the question ------------------------------------------------------------------------------
def _content_lemmas(tokens) -> set[str]:
    return {t.lemma_.lower() for t in tokens
            if t.pos_ in ("NOUN", "PROPN", "NUM", "ADJ", "VERB") and t.lemma_.lower() not in ("be", "do", "have")}


def _trim(tokens) -> list:
    """A phrase without leading articles, possessive pronouns, approximations and chatter
    ('our team standup' -> 'team standup', 'nope, rugby' -> 'rugby', 'about 3 hours' -> '3 hours')."""
    tokens = list(tokens)

    def chatter(t) -> bool:
        return (t.dep_ in ("det", "poss", "predet", "case") and t.pos_ in ("DET", "PRON", "PART") or t.is_punct
                or not re.search(r"\w", t.text) or t.lower_ in REACTIONS | VERDICTS | APPROXIMATIONS)
    while tokens and chatter(tokens[0]):
        tokens = tokens[1:]
    while tokens and (tokens[-1].is_punct and tokens[-1].text not in "#" or tokens[-1].dep_ == "case"
                      or tokens[-1].pos_ in ("DET", "ADP", "CCONJ") or not re.search(r"\w", tokens[-1].text)):
        tokens = tokens[:-1]
    return tokens


def _text(tokens) -> str:
    tokens = list(tokens)
    if not tokens:
        return ""
    doc = tokens[0].doc
    return doc[tokens[0].i:tokens[-1].i + 1].text


def _subject_tokens(sent, wh) -> list:
    """The entity the question is about: the best-scored noun phrase that is not the wh-phrase."""
    wh_phrase = set(t.i for t in wh.head.subtree) if wh is not None and wh.dep_ == "det" else {wh.i} if wh else set()
    best, best_score = None, -1
    for chunk in sent.noun_chunks:
        if wh_phrase & {t.i for t in chunk}:
            continue
        # a possessor inside the chunk ("my dog's name") is the subject, the head noun the relation
        possessors = [t for t in chunk if t.dep_ == "poss" and t.pos_ in ("NOUN", "PROPN")]
        tokens = _trim(possessors[0].subtree) if possessors else _trim(chunk)
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
    if best is None:  # "What is 7 times 8?", "Who performed Get Back?": everything after the first verb
        verb = next((t for t in sent if t.pos_ in ("AUX", "VERB") and t.i not in wh_phrase), None)
        rest = [t for t in sent if verb is not None and t.i > verb.i and not t.is_punct and t.i not in wh_phrase]
        return rest if wh is not None else []
    # a name the parser split ("Pride and Prejudice") stays whole
    ents = [e for e in sent.ents if e.start <= best[0].i < e.end or e.start <= best[-1].i < e.end]
    if ents:
        best = _trim(sent.doc[min(ents[0].start, best[0].i):max(ents[-1].end, best[-1].i + 1)])
    # compounds before an attribute noun ("the office wifi password"): the compounds are the subject
    head = best[-1]
    compounds = [t for t in best if t.dep_ == "compound" and t.head.i == head.i]
    if compounds and best_score < 2 and wh is not None and wh.dep_ == "attr" and \
            head.dep_ in ("nsubj", "attr") and head.head.lemma_ == "be":
        return compounds
    return best


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

    if root.lemma_ == "be" and wh.dep_ in ("attr", "nsubj") or (noun is not None and noun.dep_ in ("attr", "nsubj")
                                                                and root.lemma_ == "be"):
        # What is the capital of Italy? / Which city is Italy's capital?
        others = [t for t in rest if t.i != root.i]
        return f"{words(others)} {_be(root)}"
    if wh.lower_ in ("where", "when") or (wh.tag_ == "WRB" and wh.lower_ != "how"):
        # Where was Albert Einstein born? / Where is the Louvre? / When is our team standup?
        prep = correction_prep or ("in" if wh.lower_ == "where" else "at")
        if root.lemma_ == "be":
            return f"{words([t for t in rest if t.i != root.i])} {_be(root)} {prep}"
        subj = [t for t in rest if t.i < root.i]
        after = [t for t in rest if t.i > root.i]
        be = aux.text.lower() if aux is not None and aux.lemma_ == "be" else None
        verb = root.text if be else _finite(root, aux)
        return " ".join(x for x in (words(subj), be, verb, words(after), prep) if x)
    if wh.dep_ in ("nsubj", "nsubjpass") or (noun is not None and noun.dep_ in ("nsubj", "nsubjpass")):
        objects = [t for t in root.children if t.dep_ == "dobj"]
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


def _do_question(sent, wh, correction_prep: str) -> tuple[list, str] | None:
    """'Which language does Andrea Carandini use?' read by position: the words between 'does' and
    the final verb are the subject (the tagger often calls that verb a noun, so the tree is not
    trusted here) -> (subject tokens, 'The language {} uses is')."""
    if wh is None:
        return None
    tokens = [t for t in sent if not t.is_punct]
    aux = next((t for t in tokens if t.lemma_ == "do" and t.dep_ in ("aux", "ROOT") and t.i > wh.i), None)
    if aux is None:
        return None
    tail = tokens[tokens.index(aux) + 1:]
    # the verb: the last lower-case word that can be a verb ("does the gym open on Saturdays",
    # "does Jerry West play professionally"); what follows it is its complement
    at = next((i for i in range(len(tail) - 1, 0, -1) if tail[i].text.islower() and tail[i].pos_ != "ADP"
               and tail[i].pos_ != "ADV" and _is_verb(tail[i])), None)
    if at is None:
        return None
    verb, subject, preps = tail[at], tail[:at], tail[at + 1:]
    adverbs = []
    while subject and subject[-1].pos_ in ("ADV", "ADJ") and subject[-1].text.islower():
        adverbs.insert(0, subject.pop())  # "did Front and Centre first air on"
    subject = _trim(subject)
    if not subject or all(t.pos_ == "PRON" for t in subject):
        return None
    finite = inflect(verb.lemma_.lower(), {"did": "VBD", "do": "VBP"}.get(aux.lower_, "VBZ"))
    lead = " ".join(["{}"] + [t.text for t in adverbs] + [finite] + [t.text for t in preps])
    if wh.lower_ in ("where", "when") and not any(t.pos_ == "ADP" for t in preps[-1:]):
        lead += " " + (correction_prep or ("in" if wh.lower_ == "where" else "on"))
    noun = wh.head if wh.dep_ == "det" else None
    if noun is not None and wh.lower_ not in ("where", "when"):
        return subject, f"the {noun.lemma_} {lead} is"
    return subject, lead


def analyse_question(question: str, correction_prep: str = "") -> QuestionFrame | None:
    doc = parse(question)
    sents = [s for s in doc.sents if s.text.strip().endswith("?")] or list(doc.sents)
    sent = sents[-1]
    wh = next((t for t in sent if t.tag_ in WH_TAGS), None)
    positional = _do_question(sent, wh, correction_prep)
    subject_tokens = positional[0] if positional else _subject_tokens(sent, wh)
    if not subject_tokens:
        return None
    subject = _text(subject_tokens)
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
    return QuestionFrame(subject, relation, wh_word, types, _content_lemmas(sent), _aliases(subject_tokens))


def _aliases(subject_tokens) -> list[str]:
    """Other names people use for the subject: a person's surname ('Iacolino' for 'Salvatore
    Iacolino'), the initials of a name of three or more capitalised words ('FSF')."""
    words = [t for t in subject_tokens if t.is_alpha]
    aliases = []
    if len(words) >= 2 and any(t.ent_type_ == "PERSON" for t in subject_tokens) and len(words[-1].text) >= 3:
        aliases.append(words[-1].text)
    capitals = [t for t in words if t.text[:1].isupper() and t.lower_ not in CONNECTORS]
    if len(capitals) >= 3 and len(capitals) == len([t for t in words if t.lower_ not in CONNECTORS]):
        aliases.append("".join(t.text[0] for t in capitals))
    return aliases


# ---- the correction ----------------------------------------------------------------------------
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
    if any(t.pos_ in ("VERB", "AUX") and _is_verb(t) for t in sent):
        return []
    tokens = list(sent)
    while tokens and (tokens[0].is_punct or tokens[0].pos_ in ("INTJ", "ADP", "CCONJ") or
                      tokens[0].lower_ in REACTIONS | VERDICTS | {"actually", "no", "not", "quite"}):
        tokens = tokens[1:]
    end = next((i for i, t in enumerate(tokens) if t.is_punct and t.text not in "-'&." or t.lower_ in NEGATORS),
               len(tokens))
    return _trim(tokens[:end])


def _is_verb(token) -> bool:
    """The tagger's word, checked against the lexicon: a lone 'avocado' is not a verb."""
    from lemminflect import getAllLemmas

    if token.pos_ == "AUX" or token.tag_ in ("VBD", "VBN", "VBZ", "VBG") and token.pos_ == "VERB":
        return True  # an inflected form ("peerformed"): the tagger's word stands
    return bool(getAllLemmas(token.lower_, upos="VERB"))


def _candidates(doc):
    """Spans that could be the new object: a typed-alone answer, named entities, noun phrases,
    numbers, lone names."""
    taken, spans = set(), [f for f in (_fragment(s) for s in doc.sents) if f]
    for ent in doc.ents:  # the tagger sometimes runs a name over a verb: "Golden State Warriors is Pauleta"
        pieces, piece = [], []
        for t in ent:
            if t.pos_ in ("VERB", "AUX"):
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
    for t in doc:
        if t.i not in taken and (t.pos_ in ("NUM", "PROPN", "NOUN") or
                                 t.pos_ == "ADJ" and t.dep_ in ("dobj", "attr", "ROOT", "pobj", "conj", "appos",
                                                                "acomp", "oprd")):
            spans.append([t])
            taken.add(t.i)
    return spans


def _whole_name(tokens) -> list:
    """A capitalised name the parser cut: 'President' + 'of Italy', 'American' + 'English',
    'Castiglione della' + 'Pescaia'; a number takes its unit ('12' + 'people')."""
    doc = tokens[0].doc
    start, end = tokens[0].i, tokens[-1].i

    def capital(t) -> bool:
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
    last = doc[end]
    if last.pos_ == "NUM" and last.dep_ == "nummod" and last.head.i == end + 1 and last.head.pos_ == "NOUN":
        end += 1
    return _trim(doc[start:end + 1])


def _with_conjuncts(tokens) -> list:
    """'Bill Gates' + 'and Paul Allen' -> the whole list; a negated conjunct ends it."""
    doc = tokens[0].doc
    end = tokens[-1].i
    head = tokens[-1]
    while True:
        conj = [c for c in head.children if c.dep_ == "conj" and c.i > end]
        if not conj or any(c.dep_ == "neg" or c.lower_ in NEGATORS for c in doc[end + 1:conj[0].i]):
            break
        head = conj[0]
        end = max(t.i for t in head.subtree if t.dep_ not in ("prep", "relcl", "acl") or t.i == head.i)
    return _trim(doc[tokens[0].i:end + 1])


def root_of(tokens):
    """The clause a span sits in: the nearest verb above it, or the sentence root."""
    token = tokens[0]
    while token.head.i != token.i and token.pos_ not in ("VERB", "AUX"):
        token = token.head
    return token


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
    clause = root_of(words)
    if clause.pos_ in ("VERB", "AUX") and clause.dep_ == "ROOT" and clause.lemma_ != "be" and _is_verb(clause) and \
            clause.i not in {t.i for t in words} and not _imperative(clause) and \
            not any(c.dep_ in ("nsubj", "nsubjpass", "expl") for c in clause.children) and \
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
        score += 2  # "Apple makes the iPhone": the doer, for a question about the doer
    preposition = root.head if root.dep_ == "pobj" else None
    if preposition is not None and preposition.lower_ in ("since", "until", "after", "before", "from") and \
            not frame.answer_types & WHEN:
        score -= 3  # "since March ..." qualifies the fact; it is not the answer
    if label in WHEN and not frame.answer_types & WHEN and root.dep_ in ("pobj", "npadvmod", "advmod"):
        score -= 2  # a date the question does not ask for qualifies the fact ("in 1928", "since March")
    if root.dep_ == "pobj" and preposition is not None and preposition.lower_ == "of" and \
            (preposition.head.lemma_.lower() in frame.words | PARTITIVES):
        score += 1  # "holds the position of pope"
    return score - 0.01 * tokens[0].i  # ties: the earlier span


def extract_answer(frame: QuestionFrame, correction: str) -> tuple[str, str] | None:
    """(new object, preposition right before it) from the user's words, or None when none is there."""
    doc = parse(correction)
    best, best_score = None, None
    for span in _candidates(doc):
        span = _trim(span)
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
    return _text(best).strip(" .,!?;:\"'"), prep


# ---- the kind of correction --------------------------------------------------------------------
def _rule_parts(doc) -> tuple[str, str] | None:
    """'If I ask about prices, answer in euros' -> ('I ask about prices', 'answer in euros')."""
    for sent in doc.sents:
        for t in sent:
            if t.lower_ in CONDITION_MARKS and t.dep_ in ("mark", "advmod") and t.head.dep_ == "advcl":
                clause = sorted(t.head.subtree, key=lambda x: x.i)
                condition = [x for x in clause if x.i != t.i]
                consequence = [x for x in sent if x.i not in {c.i for c in clause} and x.lower_ != "then"]
                cond, then = _text(condition).strip(" ,.;"), _text(_trim(consequence)).strip(" ,.;")
                if cond and then:
                    return cond, then
    match = re.match(r"^\s*(?:if|when(?:ever)?)\s+(.+?)\s*(?:,\s*(?:then\s+)?|\s+then\s+)(.+)$", doc.text, re.I | re.S)
    return (match[1].strip(" ,.;"), match[2].strip(" ,.;")) if match else None


def _imperative(verb) -> bool:
    """A clause that tells the assistant what to do: a bare verb with no subject, first in its clause
    after words like 'please' or 'always' ("Please always give distances in miles")."""
    if verb.lemma_.lower() in META_VERBS | REACTIONS | VERDICTS or verb.lower_ in REACTIONS | VERDICTS or \
            not _is_verb(verb):
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


def _describes_the_user(sent) -> bool:
    """"I'm vegetarian", "I am American": what the user is, to keep in mind for every answer."""
    return any(t.lemma_ == "be" and any(c.dep_ == "nsubj" and c.lower_ == "i" for c in t.children)
               and any(c.dep_ in ("acomp", "attr") and c.lower_ not in VERDICTS for c in t.children) for t in sent)


def _names_the_user(sent) -> bool:
    return any(t.lemma_ == "name" and any(c.lower_ == "my" for c in t.children) for t in sent)


def _is_feedback(doc) -> bool:
    """An instruction, a statement of what the user meant, prefers or is, or a remark on the answer's style."""
    for sent in doc.sents:
        root = sent.root
        lead = [t for t in sent if not t.is_punct and t.lower_ not in LEAD_WORDS - {"do", "don't"} and t.pos_ != "INTJ"]
        if any(_imperative(t) for t in sent):
            return True
        if lead and lead[0].lower_ == "be" and root.lemma_ == "be":
            return True  # "Be more specific"
        if lead and lead[0].lower_ == "do" and any(t.dep_ == "neg" for t in sent):
            return True  # "Don't use bullet points"
        if _names_the_user(sent) or _describes_the_user(sent):
            return True  # "My name is Dana", "I'm vegetarian"
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


def _states_a_fact(doc, frame: QuestionFrame | None) -> bool:
    """A sentence that names the question's subject and carries an answer, with no "I meant/prefer":
    "Forest Friends originally aired on Discovery Kids. Don't mix that up again!" is a fact."""
    if frame is None:
        return False
    from editors.scope import mentions

    for sent in doc.sents:
        if not mentions(sent.text, frame.subject) or any(_imperative(t) for t in sent) or _names_the_user(sent) \
                or _describes_the_user(sent):
            continue
        if any(t.lemma_.lower() in PREFERENCE_VERBS and any(c.lower_ in ("i", "we") for c in t.children) for t in sent):
            continue
        if extract_answer(frame, sent.text) is not None:
            return True
    return False


def _fact_reason(weights: str | None) -> str:
    return "a factual correction: stored as a fact for retrieval (IKE)" + (
        f" and written into the weights ({weights.upper()})" if weights else "")


def route_correction(question: str, answer: str, correction: str, weights: str | None = None) -> Routed:
    """weights: None, "rome" or "memit" — also write the fact into the weights (policy or user's ask)."""
    correction = clean_text(correction, "correction", MAX_CORRECTION_CHARS)
    question = clean_text(question, "question", MAX_CORRECTION_CHARS)
    if not re.search(r"\w", correction):
        return Routed(None, [], "this does not read as a correction (no words in it): nothing stored. Type the "
                      "right answer, what you meant, or a rule ('if …, then …').", "parser")
    doc = parse(correction)
    if parts := _rule_parts(doc):
        edit = Edit(kind="rule", subject="", prompt="", target_new="", condition=parts[0], note=parts[1],
                    question=question)
        return Routed(edit, ["language_patch"], "a conditional rule ('if …, then …'): Language Patch, "
                      "applied only when its condition holds", "parser")
    frame = analyse_question(question)
    if _is_feedback(doc) and not _states_a_fact(doc, frame):
        edit = Edit(kind="feedback", subject="", prompt="", target_new="", question=question, note=correction)
        return Routed(edit, ["memprompt"], "feedback on what you meant or prefer: MemPrompt, "
                      "shown again when a similar question comes", "parser")
    found = extract_answer(frame, correction) if frame else extract_answer(
        QuestionFrame("", "", "", set(), _content_lemmas(parse(question))), correction)
    if found is None:
        return Routed(None, [], "this does not carry a new answer (no name, thing or number that the question "
                      "does not already say): nothing stored. Type the right answer, e.g. 'No, it's …'.", "parser")
    new_object, prep = found
    route = ["ike"] + ([weights] if weights else [])
    if prep and frame and frame.wh in ("where", "when"):
        frame = analyse_question(question, prep) or frame
    if frame is None:
        form = Edit(subject="", prompt="", relation="", target_new=new_object[:200], question=question,
                    target_true=_strip(answer)[:200])
        return Routed(form, route, _fact_reason(weights) + ". The subject could not be read off the question: "
                      "please fill in the form.", "form", missing=["subject", "relation"])
    edit = _fact(frame.subject, frame.relation, new_object)
    edit.aliases = list(frame.aliases)
    edit.question = question
    edit.target_true = _strip(answer)[:200]
    return Routed(edit, route, _fact_reason(weights), "parser")


def _strip(text: str) -> str:
    return text.strip().strip(" .!?\"'").strip()


def _fact(subject: str, relation: str, new_object: str) -> Edit:
    """Drops a preposition the relation already ends with ('located in' + 'in Rome' -> 'Rome')."""
    if re.search(r"\b(in|at|on|from|by|of)$", relation, re.I):
        new_object = re.sub(r"^(?:in|at|on|from|by|of)\s+", "", new_object, flags=re.I)
    return Edit(subject=subject, relation=relation, prompt=relation.replace("{}", subject, 1), target_new=new_object)


def complete_form(routed: Routed, subject: str, relation: str, target: str) -> Routed:
    """The user's form fields -> a fact edit; raises UserError with what is still wrong."""
    subject, relation, target = (clean_text(v, n, 300) for v, n in ((subject, "subject"), (relation, "relation"),
                                                                      (target, "new answer")))
    prompt = relation.replace("{}", subject, 1) if "{}" in relation else f"{subject} {relation}"
    edit = routed.edit
    edit.subject, edit.relation, edit.prompt, edit.target_new = subject, relation, prompt, target
    return Routed(edit, routed.route, routed.reason, "form")
