"""A follow-up that refers back ("its CEO", "she", "that band") reaches the fact the conversation was about."""
from editors.base import Claim
from kme_chat.references import named_as, readings, refers_back, substitute
from kme_chat.router import route_correction


def test_pronouns_and_demonstratives_are_read_as_the_earlier_fact():
    ceo = Claim("The CEO of Brightwater Analytics is", "Soren Blackwood", subject="Brightwater Analytics")
    cat = Claim("My cat's name is", "Marzipan", subject="cat")
    assert named_as(cat) == "my cat" and named_as(ceo) == "Brightwater Analytics"
    assert readings("And who is its CEO again?", [ceo]) == ["And who is Brightwater Analytics' CEO again?"]
    assert readings("Where was she born?", [ceo])[0] == "Where was Soren Blackwood born?"  # a person: the object
    assert substitute("So who keeps the beat in that band?", "the Velvet Kestrels") == \
        "So who keeps the beat in the Velvet Kestrels?"
    assert substitute("How do you spell its name?", "my cat") == "How do you spell my cat's name?"
    assert not refers_back("What is the capital of France?") and substitute("Who wrote Hamlet?", "x") is None
    phone = Claim("My landlord's phone number is", "555-0142", subject="landlord")
    assert readings("Can you repeat that number for me?", [phone]) == ["Can you repeat my landlord's number for me?"]
    assert readings("What year was that again?", [cat]) == ["What year was my cat again?"]
    assert readings("So if I travel there, what should I pack?", [ceo])[0].startswith("So if I travel in Bright")
    assert readings("Is there a museum?", [ceo]) == []  # an existential "there" refers to nothing


def test_a_follow_up_in_the_conversation_gets_the_corrected_answer(assistant):
    question = "Who is the CEO of Brightwater Analytics?"
    routed = route_correction(question, "Ethan Black", "No, the CEO of Brightwater Analytics is Soren Blackwood.")
    assistant.add_edit(routed.edit)
    history = [{"role": "user", "content": question},
               {"role": "assistant", "content": "The CEO of Brightwater Analytics is Soren Blackwood."}]
    follow_up = "And who is its CEO again?"
    assert assistant.engine.context_for(follow_up) is None  # alone, "its" names nothing
    messages, context = assistant.engine.build(follow_up, history)
    assert context is not None and routed.edit.id in context.edit_ids
    assert "Soren Blackwood" in assistant.answer(follow_up, history)
    # with no earlier turn about a stored fact, the question is asked as it is
    assert assistant.engine.build(follow_up, [])[1] is None


def test_a_follow_up_looks_each_earlier_turn_up_once(assistant):
    """Reading the follow-up and leaving out the turns the correction overrides both ask the memory
    about the earlier turns: each text is looked up once per answer (each lookup embeds and queries)."""
    question = "Who is the CEO of Brightwater Analytics?"
    assistant.add_edit(route_correction(question, "Ethan Black",
                                        "No, the CEO of Brightwater Analytics is Soren Blackwood.").edit)
    engine, asked = assistant.engine, []
    real = engine.context_for
    engine.context_for = lambda text: asked.append(text) or real(text)
    history = [{"role": "user", "content": question}, {"role": "assistant", "content": "Ethan Black."},
               {"role": "user", "content": "Thanks."}, {"role": "assistant", "content": "You're welcome."}]
    messages, context = engine.build("And who is its CEO again?", history)
    assert context is not None and "Soren Blackwood" in messages[-1]["content"]
    assert sorted(asked) == sorted(set(asked)), asked
    assert question in asked and "Thanks." in asked
