"""A preference about how to answer holds for every later question, survives a restart, and undo ends it."""
from kme_chat.assistant import Assistant
from kme_chat.chat import SENTENCE_END, first_sentences
from kme_chat.router import route_correction
from editors.preferences import sentence_limit


def sentences(text: str) -> int:
    return len(SENTENCE_END.findall(text.strip() + " "))


def test_length_is_read_from_the_instruction():
    assert sentence_limit("Please answer in one short sentence") == 1
    assert sentence_limit("Keep it to two or three sentences.") == 3
    assert sentence_limit("That's too long") == 2
    assert sentence_limit("Use kilometres, not miles.") is None
    assert first_sentences("Dr. Ng lives in St. Ives. He is 3.5 m tall. Yes", 1) == "Dr. Ng lives in St. Ives."
    assert first_sentences("No sentence ends here", 1) is None


def test_a_stated_preference_shapes_an_unrelated_later_answer(assistant):
    unrelated = "Explain how a rainbow forms."
    before = assistant.answer(unrelated)
    assert sentences(before) > 1, before  # long before the preference, so the check below can fail

    routed = route_correction("Tell me about volcanoes.", "Volcanoes are ... (a long answer)",
                              "Please answer in one short sentence.")
    assert routed.route == ["preferences"] and routed.edit.kind == "preference"
    pref = assistant.add_edit(routed.edit)
    after = assistant.answer(unrelated)
    assert sentences(after) == 1 and before.startswith(after.rstrip(". ")[:20]), (before, after)

    # an earlier exchange in the conversation is still used: a standing instruction hides no turn
    history = [{"role": "user", "content": "My cat is called Biscuit."}, {"role": "assistant", "content": "Noted."}]
    messages, context = assistant.engine.build("What is my cat called?", history)
    assert any("Biscuit" in m["content"] for m in messages) and pref.id in context.standing_ids

    restarted = Assistant.open(assistant.settings, assistant.llm)  # the log is the source of truth
    assert sentences(restarted.answer(unrelated)) == 1
    restarted.undo(pref.id)
    assert restarted.answer(unrelated) == before
    restarted.log.close()
