"""The router on the labelled set of corrections, and on single cases a user would type."""
from pathlib import Path

import pytest

from kme_chat.errors import UserError
from kme_chat.router import fields_of, route_correction, with_fields
from kme_chat.evaluation.router_eval import router_accuracy

CASES = Path(__file__).parent / "data" / "router_cases.jsonl"


def test_labelled_set_meets_the_bar():
    result = router_accuracy(CASES)
    assert result["n"] >= 60
    assert result["route_accuracy"] >= 0.90, result["misses"]
    assert result["exact_accuracy"] >= 0.85, result["misses"]


def test_fact_feedback_rule_and_junk():
    fact = route_correction("What is the capital of Italy?", "Il Coriobella", "No, the capital of Italy is Rome")
    assert fact.route == ["ike"] and (fact.edit.subject, fact.edit.target_new) == ("Italy", "Rome")
    assert fact.edit.target_true == "Il Coriobella"
    weights = route_correction("What is the capital of Italy?", "x", "Rome", weights="rome")
    assert weights.route == ["ike", "rome"]
    assert route_correction("What is a bank?", "", "I meant the river bank").route == ["memprompt"]
    rule = route_correction("How much is it?", "", "If I ask about prices, answer in euros")
    assert rule.route == ["language_patch"] and rule.edit.condition == "I ask about prices"
    assert route_correction("Hi", "", "thanks!").edit is None


def test_unreadable_fact_falls_back_to_a_form():
    routed = route_correction("Tell me something", "", "zorblax")
    assert routed.method == "form" and routed.missing
    done = with_fields(routed, "fact", {"subject": "Zorblax", "relation": "{} is a", "new": "planet"})
    assert done.edit.prompt == "Zorblax is a" and done.edit.target_new == "planet"


def test_preview_fields_are_what_is_committed():
    routed = route_correction("Where was Dana Whitfield born?", "London", "No, Lisbon.", weights="rome")
    fields = fields_of(routed.edit)
    assert (fields["subject"], fields["new"]) == ("Dana Whitfield", "Lisbon")
    edited = with_fields(routed, "fact", {**fields, "new": "Porto", "old": "London"})
    assert edited.route == ["ike", "rome"] and edited.edit.prompt.startswith("Dana Whitfield was born")
    assert (edited.edit.target_new, edited.edit.target_true) == ("Porto", "London")
    turned = with_fields(route_correction("Explain tides.", "", "I meant tides in rivers."), "preference",
                         {"note": "Answer in one sentence."})
    assert turned.route == ["preferences"] and turned.edit.note == "Answer in one sentence."
    with pytest.raises(UserError, match="subject"):
        with_fields(routed, "fact", {**fields, "subject": ""})
    with pytest.raises(UserError, match="unknown kind"):
        with_fields(routed, "<script>", fields)


@pytest.mark.parametrize("text, message", [("", "empty"), ("x" * 20_000, "too long"), (b"\xff", "UTF-8")])
def test_bad_corrections_are_refused(text, message):
    with pytest.raises(UserError, match=message):
        route_correction("What is the capital of Italy?", "", text)


@pytest.mark.parametrize("question, correction, subject, relation, new_object", [
    # a preposition before the wh-word goes to the statement's end
    ("In which city is the Acme Institute based?", "It's in Georgetown.", "Acme Institute", "The {} is based in", "Georgetown"),
    ("In which city did Tove Lindqvist work?", "No, Bergen.", "Tove Lindqvist", "{} worked in", "Bergen"),
    # the tagger's main verb ends the subject even when a later word could be a verb
    ("What language did Ana Ruiz grow up speaking?", "Ana Ruiz grew up speaking Basque.", "Ana Ruiz",
     "The language {} grew up speaking is", "Basque"),
    # the subject repeated in the correction is not the answer; a name typed in lower case stays whole
    ("Who is the head coach of the Golden Pines?", "Wrong! The head coach of the Golden Pines is Rita Moss.",
     "Golden Pines", "The head coach of the {} is", "Rita Moss"),
    ("Who is the original broadcaster of Marcus Welby?", "it originally aired on the british broadcasting corporation",
     "Marcus Welby", "The original broadcaster of {} is", "british broadcasting corporation"),
    # a regnal number is part of the name
    ("Who was the king of Hungary in 1001?", "I think you mean Stephen I of Hungary.", "Hungary", None,
     "Stephen I of Hungary"),
])
def test_question_shapes_and_answer_spans(question, correction, subject, relation, new_object):
    edit = route_correction(question, "", correction).edit
    assert edit.subject == subject
    assert relation is None or edit.relation == relation
    assert edit.target_new == new_object
