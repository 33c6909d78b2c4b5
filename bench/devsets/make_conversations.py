#!/usr/bin/env python3
"""Build bench/devsets/conversations-dev.jsonl (stdlib only, deterministic).

Fact corrections are generated from the shared editing data sets (read from
/work/shared/data, never copied into the repo):

  zsre_mend_train-1k.json  subject, src question, alt = new object, answers[0] = true object
  counterfact-edit.json    cloze prompt, subject, target_new, ground_truth
  MQuAKE-hard.json         requested_rewrite: subject, prompt template, target_new/true, question

Each record is mapped to one relation of the table REL below (from the zsRE
question wording, the CounterFact prompt template, or the MQuAKE relation id).
Questions, paraphrases, near-miss "other" questions and the statement forms
used in corrections are written from the relation, not pasted from the data.
Every generated line gets one phrasing pattern (PATTERNS); patterns are spread
evenly over the whole set, counting the hand-written lines too.  The
hand-written lines (conversations-handwritten.jsonl, next to this script) are
appended unchanged.

Run:  /usr/bin/python3 bench/devsets/make_conversations.py
"""
import collections
import difflib
import json
import pathlib
import random
import re
import sys

SEED = 20261127
N_GEN = 235                      # generated fact lines
DATA = pathlib.Path("/work/shared/data")
HERE = pathlib.Path(__file__).resolve().parent
HAND = HERE / "conversations-handwritten.jsonl"
OUT = HERE / "conversations-dev.jsonl"
MAX_PER_REL = 9                  # generated lines per relation (variety)
MAX_PER_SOURCE_REL = 5

# ---------------------------------------------------------------------------
# Relations.  Templates: {s} subject (with "the" where it needs one),
# {sp} possessive of the subject, {o} object, {ao} object with a/an.
# q: questions (first ones also used for the near-miss "other");
# pq: extra paraphrase-only wordings;  st: plain statement;  pa: passive;
# pr: pronoun form (non-person subjects only);  lq/lst: plural question and
# statement for a list object "X and Y";  person: subject is a person;
# mut: the fact can change over time (temporal extra clause reads naturally).
# ---------------------------------------------------------------------------
REL = {
    "birthplace": dict(person=1, q=["Where was {s} born?", "What is {sp} birthplace?", "In which city was {s} born?"],
                       pq=["Do you know where {s} was born?", "{s} was born where?"],
                       st="{s} was born in {o}", pa="{s} was born in {o}"),
    "deathplace": dict(person=1, q=["Where did {s} die?", "In which city did {s} die?", "Where did {s} pass away?"],
                       pq=["Do you know where {s} died?", "What was the place of death of {s}?"],
                       st="{s} died in {o}"),
    "occupation": dict(person=1, q=["What is {sp} occupation?", "What does {s} do for a living?", "What was {sp} profession?"],
                       pq=["What kind of work does {s} do?", "What's {sp} job?"],
                       st="{s} is {ao}", lq=["What are {sp} professions?", "What does {s} work as?"],
                       lst="{s} is {ao}"),
    "citizenship": dict(person=1, mut=1, q=["What is {sp} nationality?", "Which country is {s} a citizen of?", "What country does {s} hold citizenship of?"],
                        pq=["Where does {s} hold citizenship?", "What passport does {s} have?"],
                        st="{s} is a citizen of {o}"),
    "native_language": dict(person=1, q=["What is {sp} native language?", "What is the mother tongue of {s}?", "What language did {s} grow up speaking?"],
                            pq=["Which language is {sp} first language?"],
                            st="{sp} native language is {o}", pa="{s} was raised speaking {o}"),
    "languages": dict(person=1, q=["What language does {s} speak?", "Which language does {s} use?"],
                      pq=["In what language does {s} communicate?"],
                      st="{s} speaks {o}", lq=["Which languages does {s} speak?", "What languages can {s} speak?"],
                      lst="{s} speaks {o}"),
    "employer": dict(person=1, mut=1, q=["Who does {s} work for?", "Who is {sp} employer?", "Which company employs {s}?"],
                     pq=["Where does {s} work these days?"],
                     st="{s} works for {o}", pa="{s} is employed by {o}"),
    "work_location": dict(person=1, q=["Where did {s} work?", "In which city did {s} work?"],
                          pq=["Which city was {s} based in for work?"],
                          st="{s} worked in {o}"),
    "position_played": dict(person=1, mut=1, q=["What position does {s} play?", "Which position does {s} play in?"],
                            pq=["Where does {s} play on the field?", "What's {sp} playing position?"],
                            st="{s} is {ao}"),
    "instrument": dict(person=1, q=["What instrument does {s} play?", "Which instrument is {s} known for playing?"],
                       pq=["What does {s} play, musically?"],
                       st="{s} plays the {o}", lq=["Which instruments does {s} play?", "What instruments can {s} play?"],
                       lst="{s} plays {o}"),
    "sport": dict(person=1, q=["What sport does {s} play?", "Which sport does {s} play professionally?"],
                  pq=["What sport is {s} known for?"],
                  st="{s} plays {o}"),
    "position_held": dict(person=1, mut=1, q=["What position does {s} hold?", "What office does {s} hold?"],
                          pq=["What is {sp} title?"],
                          st="{s} holds the position of {o}"),
    "religion": dict(person=1, q=["What religion does {s} follow?", "Which religion is {s} affiliated with?"],
                     pq=["What faith does {s} belong to?"],
                     st="{s} follows {o}"),
    "spouse": dict(person=1, mut=1, q=["Who is {s} married to?", "Who is {sp} spouse?"],
                   pq=["Who is {sp} husband or wife?"],
                   st="{s} is married to {o}"),
    "educated_at": dict(person=1, q=["Where did {s} go to college?", "Which university did {s} attend?", "Where did {s} study?"],
                        pq=["What school did {s} graduate from?"],
                        st="{s} studied at {o}", pa="{s} was educated at {o}"),
    "team": dict(person=1, mut=1, q=["Which team does {s} play for?", "What team is {s} on?"],
                 pq=["Who does {s} play for?", "What club is {s} with?"],
                 st="{s} plays for {o}", pa="{s} is signed to {o}"),
    "voice_type": dict(person=1, q=["What voice type does {s} have?", "What kind of voice does {s} sing with?"],
                       pq=["Is {s} a soprano, alto, tenor or bass?"],
                       st="{s} is {ao}"),
    "mother": dict(person=1, q=["Who is {sp} mother?", "Who was the mother of {s}?"],
                   pq=["What was the name of {sp} mom?"],
                   st="{sp} mother is {o}"),
    "father": dict(person=1, q=["Who is {sp} father?", "Who was the father of {s}?"],
                   pq=["What was the name of {sp} dad?"],
                   st="{sp} father is {o}"),
    "war": dict(person=1, q=["Which war did {s} fight in?", "What war did {s} serve in?"],
                pq=["In what conflict did {s} see combat?"],
                st="{s} fought in {tho}"),
    "cause_of_death": dict(person=1, q=["What did {s} die of?", "What was {sp} cause of death?"],
                           pq=["How did {s} die?"],
                           st="{s} died of {o}"),
    "child": dict(person=1, q=["Who is {sp} child?", "Who is the son or daughter of {s}?"],
                  pq=["What is the name of {sp} kid?"],
                  st="{sp} child is {o}"),
    "famous_for": dict(person=1, q=["What is {s} famous for?", "What is {s} best known for?"],
                       pq=["Why is {s} famous?"],
                       st="{s} is famous for {o}"),
    "genre": dict(person=1, q=["What kind of music does {s} play?", "What genre of music does {s} make?"],
                  pq=["What style of music is {s} known for?"],
                  st="{s} plays {o}", lq=["What genres of music does {s} play?", "Which music genres is {s} known for?"], lst="{s} plays {o}"),
    "fictional_work": dict(person=1, q=["Which show or book is {s} from?", "In what work of fiction does {s} appear?"],
                           pq=["Where does the character {s} come from?"],
                           st="{s} is a character in {o}"),
    # --- non-person subjects -------------------------------------------------
    "capital": dict(mut=1, q=["What is the capital of {s}?", "What's {sp} capital city?", "Which city is the capital of {s}?"],
                    pq=["Where is the seat of government of {s}?", "Name the capital of {s}."],
                    st="the capital of {s} is {o}", pr="its capital is {o}"),
    "continent": dict(q=["Which continent is {s} on?", "What continent is {s} located in?"],
                      pq=["On which continent would I find {s}?"],
                      st="{s} is in {o}", pa="{s} is located in {o}", pr="it is located in {o}"),
    "country": dict(q=["Which country is {s} in?", "What country is {s} located in?"],
                    pq=["In which country would I find {s}?"],
                    st="{s} is in {o}", pa="{s} is located in {o}", pr="it is located in {o}"),
    "state": dict(q=["Which state is {s} in?", "What state is {s} located in?"],
                  pq=["In which state would I find {s}?"],
                  st="{s} is in {o}", pa="{s} is located in {o}", pr="it's located in {o}"),
    "official_language": dict(mut=1, q=["What is the official language of {s}?", "What language is official in {s}?"],
                              pq=["Which language do they officially use in {s}?"],
                              st="the official language of {s} is {o}", pr="its official language is {o}",
                              lq=["What are the official languages of {s}?", "Which languages are official in {s}?"],
                              lst="the official languages of {s} are {o}"),
    "original_language": dict(q=["What is the original language of {s}?", "What language was {s} originally made in?"],
                              pq=["In which language was {s} first released?"],
                              st="the original language of {s} is {o}", pa="{s} was originally made in {o}",
                              pr="it was originally in {o}"),
    "headquarters": dict(mut=1, q=["Where is {s} headquartered?", "Where are {sp} headquarters?", "In which city is {s} based?"],
                         pq=["Where is the head office of {s}?"],
                         st="{sp} headquarters are in {o}", pa="{s} is headquartered in {o}",
                         pr="it's headquartered in {o}"),
    "network": dict(q=["Which network originally aired {s}?", "What channel did {s} first air on?"],
                    pq=["Where was {s} originally broadcast?", "Who first broadcast {s}?"],
                    st="{s} originally aired on {o}", pa="{s} was originally broadcast on {o}",
                    pr="it first aired on {o}"),
    "developer": dict(q=["Who developed {s}?", "Which company is the developer of {s}?"],
                      pq=["Who is behind the development of {s}?"],
                      st="{o} developed {s}", pa="{s} was developed by {o}", pr="it was developed by {o}"),
    "manufacturer": dict(q=["Who makes {s}?", "Which company produces {s}?", "Who is the manufacturer of {s}?"],
                         pq=["Which company builds {s}?"],
                         st="{o} makes {s}", pa="{s} is manufactured by {o}", pr="it's made by {o}"),
    "twin_city": dict(q=["What is the twin city of {s}?", "Which city is {s} twinned with?"],
                      pq=["{s} is twinned with which city?"],
                      st="the twin city of {s} is {o}", pa="{s} is twinned with {o}", pr="it's twinned with {o}",
                      lq=["Which cities is {s} twinned with?", "What are the twin cities of {s}?"],
                      lst="{s} is twinned with {o}"),
    "formed_in": dict(q=["Where was {s} founded?", "In which city was {s} formed?"],
                      pq=["Where did {s} get started?"],
                      st="{s} started out in {o}", pa="{s} was founded in {o}", pr="it was formed in {o}"),
    "origin_country": dict(q=["Which country does {s} come from?", "What is the country of origin of {s}?", "Where was {s} created?"],
                           pq=["In which country did {s} originate?"],
                           st="{s} comes from {o}", pa="{s} was created in {o}", pr="it comes from {o}"),
    "position_sport": dict(q=["Which sport is {s} a position in?", "In what sport do you play as {s}?"],
                           pq=["What sport has a {s} position?"],
                           st="{s} is a position in {o}", pr="it's a position in {o}"),
    "ceo": dict(mut=1, q=["Who is the CEO of {s}?", "Who is {sp} chief executive?", "Who runs {s}?"],
                pq=["Who is in charge of {s} as CEO?"],
                st="the CEO of {s} is {o}", pa="{s} is run by {o}", pr="its CEO is {o}"),
    "founded_by": dict(q=["Who founded {s}?", "Who is the founder of {s}?"],
                       pq=["Who started {s}?"],
                       st="{o} founded {s}", pa="{s} was founded by {o}", pr="it was founded by {o}"),
    "creator": dict(q=["Who created {s}?", "Who is the creator of {s}?"],
                    pq=["Who came up with {s}?"],
                    st="{o} created {s}", pa="{s} was created by {o}"),
    "performer": dict(q=["Who performed {s}?", "Who is the artist behind {s}?"],
                      pq=["Whose recording is {s}?"],
                      st="{o} performed {s}", pa="{s} was performed by {o}", pr="it was performed by {o}"),
    "author": dict(q=["Who wrote {s}?", "Who is the author of {s}?"],
                   pq=["Which writer is responsible for {s}?"],
                   st="{o} wrote {s}", pa="{s} was written by {o}", pr="it was written by {o}"),
    "head_coach": dict(mut=1, q=["Who is the head coach of {s}?", "Who coaches {s}?"],
                       pq=["Who is in charge of {s} as head coach?"],
                       st="the head coach of {s} is {o}", pa="{s} is coached by {o}", pr="their head coach is {o}"),
    "chair": dict(mut=1, q=["Who is the chairperson of {s}?", "Who chairs {s}?"],
                  pq=["Who is {sp} chair?"],
                  st="the chairperson of {s} is {o}", pa="{s} is chaired by {o}", pr="its chair is {o}"),
    "publisher": dict(q=["Who published {s}?", "Which company published {s}?"],
                      pq=["Who is the publisher of {s}?"],
                      st="{o} published {s}", pa="{s} was published by {o}", pr="it was published by {o}"),
    "label": dict(q=["What record label is {s} on?", "Which label released {s}?"],
                  pq=["Who put out {s}?"],
                  st="{sp} record label is {o}", pa="{s} was released by {o}", pr="it was released by {o}"),
    "constellation": dict(q=["Which constellation is {s} in?", "In what constellation can you find {s}?"],
                          pq=["{s} is part of which constellation?"],
                          st="{s} is in the constellation {o}", pa="{s} is located in {o}", pr="it's in {o}"),
    "celestial": dict(q=["On which celestial body is {s} found?", "On what celestial body is {s}?"],
                      pq=["Where in the solar system is {s}?"],
                      st="{s} is on {o}", pa="{s} is located on {o}", pr="it's on {o}"),
    "prog_lang": dict(q=["What programming language is {s} written in?", "Which language was {s} coded in?"],
                      pq=["What is {s} programmed in?"],
                      st="{s} is written in {o}", pa="{s} was coded in {o}", pr="it's written in {o}"),
    "parent_org": dict(mut=1, q=["What company is {s} part of?", "What is the parent company of {s}?"],
                       pq=["Who owns {s}?"],
                       st="{s} is part of {o}", pa="{s} is owned by {o}", pr="it's owned by {o}"),
    "architect": dict(q=["Who designed {s}?", "Who was the architect of {s}?"],
                      pq=["Which architect is behind {s}?"],
                      st="{o} designed {s}", pa="{s} was designed by {o}", pr="it was designed by {o}"),
    "film_director": dict(q=["Who directed {s}?", "Who was the director of {s}?"],
                          pq=["Who was behind the camera on {s}?"],
                          st="{o} directed {s}", pa="{s} was directed by {o}", pr="it was directed by {o}"),
    "production_company": dict(q=["Which company produced {s}?", "What studio made {s}?"],
                               pq=["Who was the production company behind {s}?"],
                               st="{o} produced {s}", pa="{s} was produced by {o}", pr="it was produced by {o}"),
    "series": dict(q=["Which series is {s} part of?", "What series does {s} belong to?"],
                   pq=["{s} is from which series?"],
                   st="{s} is part of {o}", pr="it's part of {o}"),
    "airport": dict(mut=1, q=["Which airport is {s} based at?", "What is the main hub of {s}?"],
                    pq=["Where does {s} fly out of?"],
                    st="{s} is based at {o}", pa="{s} is headquartered at {o}", pr="it's based at {o}"),
    "league": dict(mut=1, q=["Which league does {s} play in?", "What league is {s} in?"],
                   pq=["In what competition does {s} play?"],
                   st="{s} plays in {tho}", pr="they play in {tho}"),
    "inception": dict(q=["When was {s} founded?", "What year was {s} established?"],
                      pq=["In which year did {s} start?"],
                      st="{s} was founded in {o}", pa="{s} was established in {o}", pr="it was founded in {o}"),
    "named_after": dict(q=["Who or what is {s} named after?", "What was {s} named after?"],
                        pq=["Where does the name {s} come from?"],
                        st="{s} is named after {o}", pa="{s} was named after {o}", pr="it's named after {o}"),
}

# CounterFact prompt template -> relation
CF_TEMPLATES = {
    "The mother tongue of {} is": "native_language", "The native language of {} is": "native_language",
    "{} is a native speaker of": "native_language",
    "{} speaks the language": "languages", "{} spoke the language": "languages", "{} writes in": "languages",
    "The official religion of {} is": "religion", "{} follows the religion of": "religion",
    "{} is affiliated with the religion": "religion",
    "What is the twin city of {}? It is": "twin_city", "The twin city of {} is": "twin_city",
    "The official language of {} is": "official_language", "In {}, an official language is": "official_language",
    "The original language of {} is": "original_language", "The original language of {} was": "original_language",
    "{} is headquartered in": "headquarters", "The headquarters of {} is in": "headquarters",
    "The headquarter of {} is in": "headquarters", "The headquarter of {} is located in": "headquarters",
    "{}'s headquarters are in": "headquarters",
    "{} was originally aired on": "network", "{} premiered on": "network", "{} premieres on": "network",
    "{} debuted on": "network",
    "{} is developed by": "developer", "{} was developed by": "developer", "{}, developed by": "developer",
    "{} is produced by": "manufacturer", "{} is a product of": "manufacturer",
    "The profession of {} is": "occupation", "The occupation of {} is": "occupation", "{}'s occupation is": "occupation",
    "{} works as": "occupation",
    "{} was born in": "birthplace",
    "{} died in": "deathplace", "{} passed away in": "deathplace", "{} died in the city of": "deathplace",
    "{} is a citizen of": "citizenship", "{} has a citizenship from": "citizenship",
    "{} holds a citizenship from": "citizenship",
    "{} worked in the city of": "work_location", "{} found employment in": "work_location",
    "{} took up work in": "work_location",
    "{} is employed by": "employer", "{} works for": "employer",
    "{} plays the instrument": "instrument",
    "{} professionally plays the sport": "sport", "What sport does {} play? They play": "sport",
    "{} plays in the position of": "position_played", "Which position does {} play? They play as": "position_played",
    "{} is a part of the continent of": "continent", "{} belongs to the continent of": "continent",
    "{} is located in the continent": "continent",
    "{} is located in the country of": "country",
    "The capital of {} is": "capital", "The capital city of {} is": "capital", "{}'s capital city is": "capital",
    "{}'s capital is": "capital",
    "{} was created in the country of": "origin_country",
    "{} holds the position of": "position_held", "{} has the position of": "position_held",
    "{} was founded in": "formed_in", "{} was formed in": "formed_in", "{} formed in": "formed_in",
}

# MQuAKE relation id -> relation
MQ_RELS = {
    "P36": "capital", "P27": "citizenship", "P495": "origin_country", "P641": "position_sport",
    "P30": "continent", "P413": "position_played", "P175": "performer", "P178": "developer", "P26": "spouse",
    "P169": "ceo", "P112": "founded_by", "P37": "official_language", "P170": "creator", "P19": "birthplace",
    "P286": "head_coach", "P50": "author", "P449": "network", "P176": "manufacturer", "P40": "child",
    "P800": "famous_for", "P108": "employer", "P20": "deathplace", "P488": "chair", "P136": "genre",
    "P69": "educated_at", "P159": "headquarters",
}
# MQuAKE's own question is used as q where it reads naturally
MQ_OWN_Q_BAD = re.compile(r"headquarter of|univeristy|origianl|current head of", re.I)

# zsRE question wording (subject replaced by {}, lower case) -> relation; first match wins
ZSRE_RULES = [
    (r"\b(date|day|when|year)\b", None),                      # handled by ZSRE_YEAR below
    (r"programming language", "prog_lang"),
    (r"constellation", "constellation"),
    (r"celestial|astronomical|moon or planet|\bplanet\b", "celestial"),
    (r"continent", "continent"),
    (r"voice|tone", "voice_type"),
    (r"cause of death|caused .*death|die of|died of|disease", "cause_of_death"),
    (r"\bwar\b|conflict", "war"),
    (r"record label|\blabel\b", "label"),
    (r"publish", "publisher"),
    (r"airport", "airport"),
    (r"network|channel|originally aired", "network"),
    (r"architect|design", "architect"),
    (r"develop", "developer"),
    (r"manufactur|\bbuilt\b", "manufacturer"),
    (r"production company|studio", "production_company"),
    (r"\bdirected\b|director of", "film_director"),
    (r"named (after|for)", "named_after"),
    (r"mother", "mother"),
    (r"father|paternal", "father"),
    (r"spouse|married|wife|husband", "spouse"),
    (r"series", "series"),
    (r"fictional|work of fiction|appearance of", "fictional_work"),
    (r"college|university|educated", "educated_at"),
    (r"league", "league"),
    (r"\bteam\b", "team"),
    (r"position on the field|position in football|position does .* play|football, which position", "position_played"),
    (r"position .*held|held by|position that .* held", "position_held"),
    (r"occupation|career|profession|\bjob\b", "occupation"),
    (r"citizen|nationality|national identity", "citizenship"),
    (r"\bborn\b|birth ?place|city of birth|place of birth|birth town", "birthplace"),
    (r"\bdie\b|\bdied\b", "deathplace"),
    (r"\bstate\b.*\blocated\b|\blocated\b.*\bstate\b|what state is|which state is", "state"),
    (r"country.*originat|originat.*country|country of origin", "origin_country"),
    (r"parent company|company is \{\} part of", "parent_org"),
]
ZSRE_YEAR = re.compile(r"(year|when).*(establish|found|inception|start|creat|originat|first exist|formed)")

# a few subjects that read better with "the"; and aliases used to name a subject differently in para
THE_OF = re.compile(r"^([A-Z]\w* )*(Academy|Bank|Museum|University|Institute|Society|Order|Church|Council|Ministry|"
                    r"Department|Republic|Kingdom|Duchy|Principality|Empire|League|Association|Federation|Union) of ")
THE_PREFIX = re.compile(r"^(United |Republic |Kingdom |Soviet |University of |Democratic |Federal |\d+(st|nd|rd|th) )")
THE_SUFFIX = re.compile(r"(Union|Corporation|Company|Foundation|Association|Society|Institute|Islands|Netherlands|"
                        r"Philippines|Bahamas|Federation|Empire|Agency|Service|Department|Administration|Museum|"
                        r"Academy|Organization|Organisation|Consortium|Project|Conference|Republic|Sultanate|Caliphate|Khanate|"
                        r"Dynasty|dynasty|Monarchy|national football team|national team)$")
# demonyms are not country names ("a citizen of German")
DEMONYM = re.compile(r"(ian|ese|ish|ch)$|^(German|American|Mexican|Korean|Cuban|Moroccan|Chilean|Greek|Thai|Swiss|"
                     r"Puerto Rican|Sri Lankan|Tibetan|Kenyan|Ugandan|Dominican|Venezuelan|Peruvian)$")
COUNTRY_RELS = {"citizenship", "country", "origin_country"}
PLACE_RELS = {"birthplace", "deathplace", "work_location", "state", "country", "continent", "capital",
              "headquarters", "formed_in", "twin_city"}
ORG_WORDS = re.compile(r"\b(Temple|Union|Church|Society|Movement|Order|Council|Party|Association|Company|Corporation|"
                       r"University|College|School|Institute|Museum|Team|Club|Records|Group|Band|Ministry|Government|"
                       r"Army|Federation|League|Foundation|Model|Class|Series|Khanate|Sultanate|Caliphate|Empire|Kingdom|Dynasty)\b")
PLURAL_PLACE = re.compile(r"(Islands|Mountains|Peaks|Heights|Hills|Forces|Alps|Keys)$")
# zsRE alternates that are misspellings rather than answers
BAD_OBJECTS = {"mezzo-srano", "Hegasus", "Los Vegas", "Antar", "locotive", "Piscis Major", "blessing"}
# surnames that are also common words make a confusing paraphrase ("Who does White work for?")
COMMON_SURNAMES = {"white", "brown", "black", "green", "king", "young", "long", "bell", "hall", "wood", "little",
                   "hill", "stone", "rose", "may", "price", "love", "north", "west", "day", "carter", "baker",
                   "cook", "mason", "page", "rice", "hunt", "ward", "best", "short", "bird", "fox", "lamb"}
ALIAS = {
    "United States of America": "the US", "United Kingdom": "the UK", "Soviet Union": "the USSR",
    "British Broadcasting Corporation": "the BBC", "American Broadcasting Company": "ABC",
    "National Aeronautics and Space Administration": "NASA", "Electronic Arts": "EA", "Lyndon B. Johnson": "LBJ",
    "Apple Inc.": "Apple", "Manchester United F.C.": "Man United", "New York City": "NYC",
    "Sony Interactive Entertainment": "Sony's games division", "Free Software Foundation": "the FSF",
    "Chicago Symphony Orchestra": "the CSO", "Metropolitan Police Service": "the Met",
    "Robert Louis Stevenson": "RLS", "J. Michael Straczynski": "JMS", "H. P. Lovecraft": "Lovecraft",
}

# ---------------------------------------------------------------------------
# Phrasing patterns.  Each returns the correction text or None when the
# pattern does not fit the record.  Hand-only patterns: number_unit, time_or_date.
# ---------------------------------------------------------------------------
GEN_PATTERNS = [
    "list_x_and_y", "multiword_name", "x_not_y", "pronoun_subject", "passive", "lowercase_nopunct", "typo",
    "extra_clause", "answer_only", "no_its_x", "full_statement", "actually", "wrong_bang", "i_think_you_mean",
    "nope_x", "correct_answer_is", "chatter_after", "should_be", "pretty_sure",
]
HAND_ONLY = ["number_unit", "time_or_date"]


def needs_the(s):
    return not s.lower().startswith("the ") and "&" not in s and bool(
        THE_PREFIX.search(s) or THE_SUFFIX.search(s) or THE_OF.search(s))


def art(s):
    return ("the " + s) if needs_the(s) else s


def poss(x):
    return x + ("'" if x.endswith("s") else "'s")


def a_an(o):
    return ("an " if o[:1].lower() in "aeiou" else "a ") + o


def cap(t):
    """Capitalise a sentence start (leave words like iPhone alone)."""
    if not t or not t[0].islower():
        return t
    first = t.split(" ", 1)[0]
    if any(ch.isupper() for ch in first[1:]):
        return t
    return t[0].upper() + t[1:]


def fill(tpl, s, o, s_name=None):
    name = s_name if s_name is not None else art(s)
    tho = o if (not o or re.match(r"(The |World War)", o)) else "the " + o
    return tpl.format(s=name, sp=poss(name), o=art(o) if o else o, ao=a_an(o) if o else "", tho=tho)


def mentions(text, term):
    return re.search(r"(?<!\w)" + re.escape(term) + r"(?!\w)", text, re.I) is not None


OBJ_OK = re.compile(r"^[^\W\d_][\w .'&-]*$")
SUBJ_BAD = re.compile(r"[(),:;!?\"/\[\]#]|\s{2}")


def clean_obj(o, year_ok=False):
    if not o or o != o.strip():
        return False
    if year_ok and re.fullmatch(r"1[5-9]\d\d|20[0-2]\d", o):
        return True
    return (len(o) <= 32 and len(o.split()) <= 4 and bool(OBJ_OK.match(o)) and not re.search(r"\d", o)
            and not re.search(r"--|- | -|\.\w", o))


def clean_subj(s):
    return bool(s) and s == s.strip() and 2 < len(s) <= 40 and not SUBJ_BAD.search(s) and len(s.split()) <= 6


def garbled(new, true):
    """zsRE alternates are sometimes typo variants of the true answer (Los Vegas / Los Angeles)."""
    if not true:
        return False
    a, b = new.lower(), true.lower()
    return a != b and difflib.SequenceMatcher(None, a, b).ratio() > 0.6


def name_like(o):
    words = o.split()
    small = {"of", "de", "da", "van", "von", "der", "del", "the", "and", "la", "le", "di", "du", "bin", "al"}
    return len(words) >= 2 and all(w[:1].isupper() or w in small for w in words) and words[0][:1].isupper()


# ---------------------------------------------------------------------------
# Load candidates
# ---------------------------------------------------------------------------
def load_candidates():
    cands = []
    # zsRE
    for r in json.loads((DATA / "zsre_mend_train-1k.json").read_text()):
        s, src = r["subject"], r["src"]
        if s not in src:
            continue
        t = src.replace(s, "{}").lower()
        rel = None
        if ZSRE_YEAR.search(t):
            rel = "inception"
        else:
            for rx, key in ZSRE_RULES:
                if re.search(rx, t):
                    rel = key
                    break
        if rel is None:
            continue
        true = (r.get("answers") or [None])[0]
        cands.append(dict(source="zsre", rel=rel, s=s, o=r["alt"], y=true))
    # CounterFact
    for r in json.loads((DATA / "counterfact-edit.json").read_text()):
        s = r["subject"]
        if s not in r["prompt"]:
            continue
        rel = CF_TEMPLATES.get(r["prompt"].replace(s, "{}"))
        if rel:
            cands.append(dict(source="counterfact", rel=rel, s=s, o=r["target_new"], y=r["ground_truth"]))
    # MQuAKE-hard
    for case in json.loads((DATA / "MQuAKE-hard.json").read_text()):
        for r in case["requested_rewrite"]:
            rel = MQ_RELS.get(r["relation_id"])
            if rel:
                own_q = r["question"] if not MQ_OWN_Q_BAD.search(r["question"]) else None
                cands.append(dict(source="mquake", rel=rel, s=r["subject"], o=r["target_new"]["str"],
                                  y=r["target_true"]["str"], own_q=own_q))
    out, seen = [], set()
    for c in cands:
        year_ok = c["rel"] == "inception"
        if c["rel"] == "inception" and not re.fullmatch(r"1[5-9]\d\d|20[0-2]\d", c["o"] or ""):
            continue
        if not (clean_subj(c["s"]) and clean_obj(c["o"], year_ok)):
            continue
        if c["y"] and (not clean_obj(c["y"], year_ok) or c["y"].lower() == c["o"].lower()
                       or c["y"].lower() in c["o"].lower() or c["o"].lower() in c["y"].lower()):
            c["y"] = None
        if c["source"] == "zsre" and garbled(c["o"], c["y"] or ""):
            continue
        if c["o"].lower() in c["s"].lower() or c["s"].lower() in c["o"].lower():
            continue
        if c["rel"] in COUNTRY_RELS and DEMONYM.search(c["o"]):
            continue
        if c["rel"] in COUNTRY_RELS and c["y"] and DEMONYM.search(c["y"]):
            c["y"] = None
        # MQuAKE chains sometimes put a person where a playing position belongs
        if c["rel"] == "position_sport" and not c["s"][:1].islower():
            continue
        # CounterFact religion subjects include groups and places; keep people's names
        if c["rel"] == "religion" and not name_like(c["s"]):
            continue
        # person relations: no organisations, objects, groups ("Russians") or model numbers
        if REL[c["rel"]].get("person") and c["rel"] not in ("genre", "fictional_work") and (
                ORG_WORDS.search(c["s"]) or re.search(r"\d", c["s"])
                or (" " not in c["s"] and (c["s"].endswith("s") or c["s"][:1].islower()))):
            continue
        # plural place names read badly in "Which continent is ... on?"
        if PLURAL_PLACE.search(c["s"]):
            continue
        if c["o"] in BAD_OBJECTS:
            continue
        # a "place" that repeats a word of the subject's name is a garbled alternate (de' Medici)
        if c["rel"] in PLACE_RELS and set(re.findall(r"\w{4,}", c["o"].lower())) & set(
                re.findall(r"\w{4,}", c["s"].lower())):
            continue
        key = (c["s"].lower(), c["rel"])
        if key in seen:
            continue
        seen.add(key)
        out.append(c)
    return out


# ---------------------------------------------------------------------------
# Rendering corrections
# ---------------------------------------------------------------------------
def make_typo(rng, text, protect):
    spans = []
    for p in protect:
        for m in re.finditer(re.escape(p), text, re.I):
            spans.append((m.start(), m.end()))
    words = [m for m in re.finditer(r"[A-Za-z]{4,}", text)
             if not any(a < m.end() and m.start() < b for a, b in spans)]
    if not words:
        return None
    m = rng.choice(words)
    w = m.group(0)
    kind = rng.choice(["swap", "drop", "double"])
    if kind == "swap":
        i = rng.randrange(1, len(w) - 2)
        nw = w[:i] + w[i + 1] + w[i] + w[i + 2:]
    elif kind == "drop":
        i = rng.randrange(1, len(w) - 1)
        nw = w[:i] + w[i + 1:]
    else:
        i = rng.randrange(1, len(w) - 1)
        nw = w[:i] + w[i] + w[i:]
    if nw.lower() == w.lower():
        nw = w[:1] + w[2] + w[1] + w[3:]
    if nw.lower() == w.lower():
        return None
    return text[:m.start()] + nw + text[m.end():]


MUT_CLAUSES = ["Since March, {b}.", "As of last year, {b}.", "Not anymore - since January {b}.",
               "{B} now, it changed this year.", "Things changed in 2023: {b}."]
FIX_CLAUSES = ["According to the encyclopedia, {b}.", "I just looked it up: {b}.", "{B}, I checked it twice.",
               "From what I read last week, {b}.", "{B}, as far as the records go."]


def render(rng, pattern, c):
    t = _render(rng, pattern, c)
    return t.replace("..", ".") if t else t


def _render(rng, pattern, c):
    R = REL[c["rel"]]
    s, o0, y = c["s"], c["o"], c["y"]
    o = art(o0)                      # "the United Kingdom"; the answer span o0 is still inside
    is_list = pattern == "list_x_and_y"
    body = fill(R["lst"] if is_list else R["st"], s, o0)
    B = cap(body)
    if pattern == "answer_only":
        return rng.choice(["{o}", "{o}.", "{o}!"]).format(o=o0)
    if pattern == "no_its_x":
        return rng.choice(["No, it's {o}.", "No it's {o}", "No, it is {o}.", "No, {b}."]).format(o=o, b=body)
    if pattern == "x_not_y":
        if not y:
            return None
        return rng.choice(["{O}, not {y}.", "It's {o}, not {y}.", "{B}, not {y}.", "Not {y}, {o}."]).format(
            o=o, O=cap(o), y=art(y), B=B)
    if pattern == "full_statement":
        return B + "."
    if pattern == "passive":
        if not R.get("pa"):
            return None
        return cap(fill(R["pa"], s, o0)) + "."
    if pattern == "pronoun_subject":
        if R.get("person") or not R.get("pr"):
            return None
        return cap(fill(R["pr"], s, o0)) + "."
    if pattern == "extra_clause":
        tpl = rng.choice(MUT_CLAUSES if R.get("mut") else FIX_CLAUSES)
        return tpl.format(b=body, B=B)
    if pattern == "lowercase_nopunct":
        if re.search(r"[^\w\s-]", o0):
            return None
        return re.sub(r"[.,!?;:'\"]", "", body.lower())
    if pattern == "typo":
        return make_typo(rng, B + ".", [art(s), o0])
    if pattern == "actually":
        return rng.choice(["Actually, {b}.", "Actually it's {o}.", "actually {o}"]).format(b=body, o=o)
    if pattern == "wrong_bang":
        return rng.choice(["Wrong! {B}.", "Wrong! It's {o}.", "wrong!! {o}"]).format(B=B, o=o)
    if pattern == "multiword_name":
        if not name_like(o0):
            return None
        return rng.choice(["It's {o}.", "That would be {o}.", "That'd be {o}, not what you said."]).format(o=o)
    if pattern == "list_x_and_y":
        return rng.choice(["{B}.", "{o}, both of them.", "It's both: {o}."]).format(B=B, o=o)
    if pattern == "i_think_you_mean":
        return rng.choice(["I think you mean {o}.", "I think you mean {o}", "i think you mean {o}?"]).format(o=o)
    if pattern == "nope_x":
        return rng.choice(["nope, {o}", "Nope. {o}.", "nope - {b}"]).format(o=o, b=body)
    if pattern == "correct_answer_is":
        return rng.choice(["The correct answer is {o}.", "the correct answer is {o}", "Correct answer: {o}."]).format(o=o)
    if pattern == "chatter_after":
        return rng.choice(["{O}, obviously.", "{O}. Please remember that.", "It's {o}, everyone knows that.",
                           "{B}. Don't mix that up again!", "{O} :) write that down somewhere"]).format(
            o=o, O=cap(o), B=B)
    if pattern == "should_be":
        return rng.choice(["That should be {o}.", "It should be {o}.", "Should be {o}, not what you said."]).format(o=o)
    if pattern == "pretty_sure":
        return rng.choice(["I'm pretty sure it's {o}.", "Pretty sure {b}.", "I'm fairly certain {b}."]).format(
            o=o, b=body)
    raise ValueError(pattern)


def compatible(pattern, c):
    R = REL[c["rel"]]
    if pattern == "list_x_and_y":
        return bool(R.get("lq") and c["y"] and len(c["y"].split()) <= 3 and len(c["o"].split()) <= 3
                    and c["rel"] != "inception")
    if pattern == "x_not_y":
        return bool(c["y"])
    if pattern == "passive":
        return bool(R.get("pa"))
    if pattern == "pronoun_subject":
        return bool(R.get("pr")) and not R.get("person")
    if pattern == "multiword_name":
        return name_like(c["o"])
    if pattern == "lowercase_nopunct":
        return not re.search(r"[^\w\s-]", c["o"])
    return True


# ---------------------------------------------------------------------------
def main():
    rng = random.Random(SEED)
    hand = [json.loads(l) for l in HAND.read_text(encoding="utf-8").splitlines() if l.strip()]
    hand_counts = collections.Counter(h["pattern"] for h in hand if h["kind"] == "fact")

    # texts and subjects already in the set (hand lines)
    used_subj = [h["s"] for h in hand if h["kind"] == "fact"]
    texts = []                               # (owner subject or None, text)
    for h in hand:
        for f in ("q", "c", "para", "other"):
            if h.get(f):
                texts.append((h.get("s"), h[f]))

    # per-pattern targets: spread evenly over the whole set (hand lines included)
    T = 1
    while sum(max(0, T - hand_counts[p]) for p in GEN_PATTERNS) < N_GEN:
        T += 1
    target = {p: max(0, T - hand_counts[p]) for p in GEN_PATTERNS}
    over = sum(target.values()) - N_GEN
    for p in sorted(GEN_PATTERNS, key=lambda p: -target[p]):   # trim to exactly N_GEN
        if over <= 0:
            break
        target[p] -= 1
        over -= 1

    pool = load_candidates()
    rng.shuffle(pool)
    by_source = collections.defaultdict(list)
    for c in pool:
        by_source[c["source"]].append(c)
    sources = ["zsre", "counterfact", "mquake"]

    rel_count = collections.Counter()
    src_rel_count = collections.Counter()
    src_count = collections.Counter()
    taken = set()
    chosen = []

    def conflicts(c, own_texts):
        s = c["s"]
        if any(s.lower() == u.lower() or mentions(u, s) or mentions(s, u) for u in used_subj):
            return True
        if any(mentions(t, s) for _, t in texts):
            return True
        return any(mentions(t, u) for t in own_texts for u in used_subj)

    def try_pick(pattern, source):
        for c in by_source[source]:
            if id(c) in taken or not compatible(pattern, c):
                continue
            if rel_count[c["rel"]] >= MAX_PER_REL or src_rel_count[(source, c["rel"])] >= MAX_PER_SOURCE_REL:
                continue
            if pattern == "list_x_and_y":
                lo = f"{c['y']} and {c['o']}" if rng.random() < 0.5 else f"{c['o']} and {c['y']}"
                c = dict(c, o=lo, list_of=id(c))
            corr = render(rng, pattern, c)
            if corr is None or c["o"].lower() not in corr.lower():
                continue
            if conflicts(c, [corr]):
                continue
            return c, corr
        return None

    # constrained patterns first within each round; sources rotate
    remaining = dict(target)
    order = [p for p in GEN_PATTERNS]
    si = 0
    while any(remaining.values()):
        progressed = False
        for p in order:
            if remaining[p] <= 0:
                continue
            picked = None
            # prefer the source with fewest lines so far, then rotate
            srcs = sorted(sources, key=lambda x: (src_count[x], (sources.index(x) - si) % 3))
            for src in srcs:
                picked = try_pick(p, src)
                if picked:
                    break
            si += 1
            if not picked:
                print(f"warning: no candidate left for pattern {p}", file=sys.stderr)
                remaining[p] = 0
                continue
            c, corr = picked
            taken.add(c.get("list_of", id(c)))
            rel_count[c["rel"]] += 1
            src_rel_count[(c["source"], c["rel"])] += 1
            src_count[c["source"]] += 1
            remaining[p] -= 1
            progressed = True
            used_subj.append(c["s"])
            texts.append((c["s"], corr))
            chosen.append(dict(c, pattern=p, c=corr))
        if not progressed:
            break

    # questions, paraphrases, near-miss others
    other_pool = collections.defaultdict(list)
    for c in pool:
        if id(c) not in taken:
            other_pool[c["rel"]].append(c)
    used_other = set()
    lines = []
    for c in chosen:
        R = REL[c["rel"]]
        is_list = c["pattern"] == "list_x_and_y"
        qs = R["lq"] if is_list else R["q"]
        q_order = list(range(len(qs)))
        rng.shuffle(q_order)
        q_ok = [i for i in q_order
                if not any(mentions(fill(qs[i], c["s"], ""), u) for u in used_subj if u != c["s"])]
        if not q_ok:
            raise SystemExit(f"no question for {c['s']!r}")
        qi = q_ok[0]
        if c["source"] == "mquake" and c.get("own_q") and not is_list and rng.random() < 0.5:
            q = c["own_q"]
        else:
            q = cap(fill(qs[qi], c["s"], ""))
        para_opts = [t for i, t in enumerate(qs) if i != qi] + ([] if is_list else R.get("pq", []))
        para_tpl = rng.choice(para_opts) if para_opts else qs[qi]
        s_name = None
        if c["s"] in ALIAS:
            s_name = ALIAS[c["s"]]
        elif R.get("person") and rng.random() < 0.3:
            parts = c["s"].split()
            sur = parts[-1] if len(parts) in (2, 3) else None
            if (sur and sur.isalpha() and sur[0].isupper() and len(sur) >= 5
                    and sur.lower() not in COMMON_SURNAMES
                    and not any(mentions(t, sur) for own, t in texts if own != c["s"])
                    and not any(mentions(u, sur) for u in used_subj if u != c["s"])):
                s_name = sur
        rng.shuffle(para_opts)
        para = None
        for tpl in [para_tpl] + para_opts:
            cand = cap(fill(tpl, c["s"], "", s_name))
            if cand.lower() != q.lower() and not any(mentions(cand, u) for u in used_subj if u != c["s"]):
                para = cand
                break
        if para is None:
            raise SystemExit(f"no paraphrase for {c['s']!r}")
        # other: same relation, a subject not used anywhere in the set, same wording as q
        other = None
        cands = other_pool[c["rel"]][:]
        rng.shuffle(cands)
        same_type = [x for x in pool if id(x) not in taken and x["rel"] != c["rel"]
                     and bool(REL[x["rel"]].get("person")) == bool(R.get("person"))]
        rng.shuffle(same_type)
        for oc in cands + same_type:         # same relation first; else another relation, same kind of subject
            if oc["s"].lower() in used_other:
                continue
            if any(oc["s"].lower() == u.lower() or mentions(oc["s"], u) or mentions(u, oc["s"]) for u in used_subj):
                continue
            oq = qs[qi] if oc["rel"] == c["rel"] else REL[oc["rel"]]["q"][0]
            txt = cap(fill(oq, oc["s"], ""))
            if any(mentions(txt, u) for u in used_subj):
                continue
            other = txt
            used_other.add(oc["s"].lower())
            break
        if other is None:
            raise SystemExit(f"no near-miss other for relation {c['rel']}")
        lines.append(dict(q=q, c=c["c"], kind="fact", s=c["s"], o=c["o"], para=para, other=other,
                          pattern=c["pattern"], source=c["source"]))
        texts.extend([(c["s"], q), (c["s"], para), (c["s"], other), (c["s"], c["c"])])

    rng.shuffle(lines)
    allrows = lines + hand
    rels = collections.Counter(c["rel"] for c in chosen)
    print(f"generated lines per relation ({len(rels)}):", ", ".join(f"{k} {v}" for k, v in rels.most_common()))
    with OUT.open("w", encoding="utf-8") as f:
        for r in allrows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    print(f"wrote {OUT} ({len(allrows)} lines: {len(lines)} generated, {len(hand)} hand-written)")
    ok = check(OUT)
    return 0 if ok else 1


# ---------------------------------------------------------------------------
def check(path):
    rows = []
    errors = []
    for i, l in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        try:
            rows.append(json.loads(l))
        except json.JSONDecodeError as e:
            errors.append(f"line {i}: invalid JSON ({e})")
    need = {"fact": ["q", "c", "kind", "s", "o", "para", "other", "pattern", "source"],
            "feedback": ["q", "c", "kind", "para", "other", "pattern", "source"],
            "rule": ["q", "c", "kind", "para", "other", "pattern", "source"],
            "none": ["q", "c", "kind", "pattern", "source"]}
    for i, r in enumerate(rows, 1):
        k = r.get("kind")
        if k not in need:
            errors.append(f"line {i}: bad kind {k!r}")
            continue
        for f in need[k]:
            if not isinstance(r.get(f), str) or not r[f].strip():
                errors.append(f"line {i}: missing {f}")
        if r.get("source") not in ("zsre", "counterfact", "mquake", "hand"):
            errors.append(f"line {i}: bad source")
        if k == "fact":
            if r["o"].lower() not in r["c"].lower():
                errors.append(f"line {i}: o {r['o']!r} not in c {r['c']!r}")
            if r["s"].lower() not in r["q"].lower():
                errors.append(f"line {i}: s {r['s']!r} not in q {r['q']!r}")
            if r["o"].lower() in r["q"].lower():
                errors.append(f"line {i}: o {r['o']!r} already in q")
    facts = [r for r in rows if r.get("kind") == "fact"]
    subj = collections.Counter(r["s"].lower() for r in facts)
    for s, n in subj.items():
        if n > 1:
            errors.append(f"duplicate subject {s!r} ({n} lines)")
    # no line mentions another line's subject; no 'other' mentions any subject
    for i, r in enumerate(rows, 1):
        for f in ("q", "c", "para", "other"):
            t = r.get(f)
            if not t:
                continue
            for fr in facts:
                if fr is r and f != "other":
                    continue
                if mentions(t, fr["s"]):
                    errors.append(f"line {i}: {f} {t!r} mentions subject {fr['s']!r}")
    kinds = collections.Counter(r.get("kind") for r in rows)
    pats = collections.Counter(r.get("pattern") for r in facts)
    srcs = collections.Counter(r.get("source") for r in facts)
    print(f"total lines: {len(rows)}")
    print("per kind:", dict(kinds))
    print("fact lines per source:", dict(srcs))
    print(f"fact patterns ({len(pats)}):")
    for p, n in sorted(pats.items(), key=lambda x: (-x[1], x[0])):
        print(f"  {p:20s} {n}")
    other_pats = collections.Counter((r["kind"], r["pattern"]) for r in rows if r.get("kind") != "fact")
    print("feedback/rule/none patterns:")
    for (k, p), n in sorted(other_pats.items()):
        print(f"  {k:9s} {p:20s} {n}")
    print("checks:", "OK" if not errors else f"{len(errors)} problem(s)")
    for e in errors[:50]:
        print("  " + e)
    return not errors


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--check":
        sys.exit(0 if check(OUT) else 1)
    sys.exit(main())
