"""The word lists the router reads with: closed classes (chat reactions, verdicts, approximations,
words that lead an instruction) and small priors (what a wh-word or a question's head noun asks
for, used to rank candidate answers, never to gate them)."""

# Chat reactions that carry no answer, verdict words, words about the answer itself, and verbs and
# adjectives that talk about how to answer.
REACTIONS = {"ok", "okay", "k", "thanks", "thank", "thx", "ty", "cool", "great", "nice", "good", "fine", "lol",
             "lmao", "haha", "hah", "hmm", "hm", "huh", "wow", "yes", "yeah", "yep", "yup", "no", "nope", "nah",
             "sure", "interesting", "whatever", "really", "right", "alright", "hi", "hello", "hey", "bye", "oh",
             "ah", "uh", "um", "meh", "sorry", "please", "idk", "omg", "wtf", "awesome", "perfect", "exactly"}
VERDICTS = {"wrong", "incorrect", "false", "right", "correct", "true", "inaccurate", "mistaken", "outdated",
            "untrue", "bad", "off", "nonsense", "sure", "certain"}
META_NOUNS = {"answer", "correction", "fact", "one", "thing", "response", "reply", "mistake", "error", "question"}
META_VERBS = {"remember", "note", "update", "fix", "correct", "save", "store", "change", "check", "see", "look",
              "trust", "believe", "think", "know", "guess", "suppose", "mean"}
PREFERENCE_VERBS = {"mean", "want", "prefer", "like", "need", "ask", "wish", "expect", "care", "hate", "love", "talk",
                    "refer"}
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


