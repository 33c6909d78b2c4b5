"""Multi-hop readers over stored facts (real Chroma on disk, the packaged model) on hand-made
chains whose answers the model cannot know: the entities are invented."""
import re

import pytest

from editors.mello import MeLLo
from kme_chat.edit_log import Edit
from kme_chat.errors import UserError

pytestmark = pytest.mark.slow

CHAIN = [  # The Velvet Lantern -> Mara Quillon -> Freedonia -> Port Ember
    ("The Velvet Lantern", "The author of {} is", "Mara Quillon"),
    ("Mara Quillon", "{} is a citizen of", "Freedonia"),
    ("Freedonia", "The capital of {} is", "Port Ember"),
]
QUESTION = "What is the capital of the country of citizenship of the author of The Velvet Lantern?"


def store(assistant, facts):
    for subject, relation, target in facts:
        assistant.add_edit(Edit(subject=subject, relation=relation, prompt=relation.replace("{}", subject),
                                target_new=target))


def test_fact_chain_follows_three_stored_hops(assistant):
    store(assistant, CHAIN)
    result = assistant.multihop(QUESTION)
    assert result.answer == "Port Ember"
    assert [h.answer for h in result.hops] == ["Mara Quillon", "Freedonia", "Port Ember"]
    assert all(h.source == "memory" and h.edit_id for h in result.hops)
    # a two-hop question over the same facts stops where the question does
    two = assistant.multihop("Which country is the author of The Velvet Lantern a citizen of?")
    assert two.answer == "Freedonia" and len(two.hops) == 2
    one = assistant.multihop("Who is the author of The Velvet Lantern?")
    assert one.answer == "Mara Quillon" and len(one.hops) == 1


def test_fact_chain_ignores_relation_words_inside_a_subject_name(assistant):
    store(assistant, [("Capital Letters", "The author of {} is", "Mara Quillon"),
                      ("Mara Quillon", "{} is a citizen of", "Freedonia"),
                      ("Freedonia", "The capital of {} is", "Port Ember")])
    result = assistant.multihop("Who is the author of Capital Letters?")
    assert result.answer == "Mara Quillon" and len(result.hops) == 1  # "Capital" is part of the title


def test_fact_chain_asks_the_model_for_an_unstored_last_hop(assistant):
    store(assistant, [("The Velvet Lantern", "The author of {} is", "Mara Quillon"),
                      ("Mara Quillon", "{} is a citizen of", "France")])
    result = assistant.multihop(QUESTION)
    assert [h.source for h in result.hops] == ["memory", "memory", "model"]
    assert result.hops[-1].question == "The capital of France is"
    assert "Paris" in result.answer  # the model's own single-hop answer


def test_question_without_stored_facts_keeps_the_plain_answer(assistant):
    store(assistant, CHAIN)
    question = "What is the capital of France?"
    result = assistant.multihop(question)
    assert not result.used_memory and not result.hops
    assert result.answer == assistant.answer(question)  # exactly what the unedited chat says


def test_undo_takes_a_fact_out_of_the_chain(assistant):
    store(assistant, CHAIN)
    last = assistant.log.active()[-1]
    assistant.undo(last.id)
    result = assistant.multihop(QUESTION)
    assert "Port Ember" not in result.answer and result.hops[-1].source == "model"


def test_mello_loop_retrieves_the_fact_for_each_sub_question(assistant):
    """MeLLo's loop (parse, retrieve, carry the corrected answer on) with a scripted decomposer in the
    model's place, so the chain is known; retrieval is the real store."""
    store(assistant, CHAIN)
    subs = iter(["Who is the author of The Velvet Lantern?", "What is the country of citizenship of {}?",
                 "What is the capital of {}?"])
    prompts = []

    def scripted(prompt, max_new_tokens, stop):
        prompts.append(prompt)
        facts = re.findall(r"Retrieved fact: .* (?:is|of) ([^.]+)\.\n", prompt.split("Question: " + QUESTION)[1])
        verdict = (f"Retrieved fact contradicts to generated answer, so the intermediate answer is: {facts[-1]}\n"
                   if facts else "")
        sub = next(subs, None)
        if sub is None:
            return verdict + f"Final answer: {facts[-1]}\n"
        sub = sub.format(facts[-1] if facts else "")
        if prompt.endswith("Subquestion:"):  # the first step: the prompt already says "Subquestion:"
            return f" {sub}\nGenerated answer: Nobody.\n"
        return verdict + f"Subquestion: {sub}\nGenerated answer: Nobody.\n"

    mello = MeLLo(assistant.resources.memory, assistant.settings.prompts_dir, scripted)
    result = mello.answer_multihop(QUESTION)
    assert result.answer == "Port Ember"
    assert [h.fact for h in result.hops] == [f"{r.replace('{}', s)} {t}." for s, r, t in CHAIN]
    assert [h.answer for h in result.hops] == ["Mara Quillon", "Freedonia", "Port Ember"]
    assert len(prompts) == 4  # three sub-questions, then the final answer


def test_mello_with_the_packaged_model_retrieves_a_stored_fact_per_sub_question(assistant):
    store(assistant, CHAIN)
    result = assistant.multihop(QUESTION, method="mello")
    assert result.hops, "the model wrote no sub-question"  # the prompt ends in "Subquestion:"
    assert all(h.fact in {f"{r.replace('{}', s)} {t}." for s, r, t in CHAIN} for h in result.hops)
    assert len(result.hops) <= MeLLo.max_hops + 1


def test_multihop_refuses_bad_questions(assistant):
    for bad, message in [("", "empty"), ("x" * 50_000, "too long"), (b"\xff", "UTF-8")]:
        with pytest.raises(UserError, match=message):
            assistant.multihop(bad)
    with pytest.raises(UserError, match="unknown multi-hop method"):
        assistant.multihop(QUESTION, method="oracle")


def correct(assistant, question, correction):
    """Store a fact the way the chat does: the user's words through the router, then commit."""
    from kme_chat.router import route_correction

    routed = route_correction(question, "", correction)
    routed.edit.routes = routed.route
    return assistant.add_edit(routed.edit)


def test_open_relations_compose_in_the_chat_and_the_reader(assistant):
    """Relations no table lists (a vet, a phone number), stored by correction, followed as a graph."""
    correct(assistant, "What is my dog called?", "My dog's name is Juniper.")
    correct(assistant, "Who is Juniper's vet?", "Juniper's vet is Dr. Tomasz Brello.")
    correct(assistant, "What is Tomasz Brello's phone number?", "His number is 0142 771 309.")
    read = assistant.multihop("Who is my dog's vet?")
    assert "Tomasz Brello" in read.answer and [h.source for h in read.hops] == ["memory", "memory"]
    chat = assistant.answer("What's the phone number of my dog's vet?")
    assert chat.startswith("0142 771 309 — ")  # the answer, then the chain it came from
    assert "Juniper" in chat and "Tomasz Brello" in chat
    # one stored fact asked directly is not a chain: the chat answers it from memory as before
    assert assistant.chain_for("What is my dog called?") is None
    # a question about an entity nobody stored is answered exactly as before the edits
    plain = "Who is the vet of the Lyon zoo?"
    assert assistant.chain_for(plain) is None


def test_a_question_that_only_touches_a_stored_subject_is_not_a_chain(assistant):
    correct(assistant, "Who is the CEO of Quarrow Labs?", "The CEO of Quarrow Labs is Ines Varga.")
    correct(assistant, "Where was Ines Varga born?", "Ines Varga was born in Tallinn.")
    assert assistant.chain_for("Where was the CEO of Quarrow Labs born?").startswith("Tallinn — ")
    assert assistant.chain_for("How many people work at Quarrow Labs?") is None
    assert assistant.chain_for("When was Quarrow Labs founded?") is None
