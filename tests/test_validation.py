import pytest

from kme_chat.config import Settings, load_settings
from kme_chat.errors import UserError
from kme_chat.validation import clean_text


def test_clean_text_strips_control_characters_and_keeps_newlines():
    assert clean_text("Rome\x00\x1b[31m\nok\t", "target", 100) == "Rome[31m\nok"


@pytest.mark.parametrize("value, message", [
    ("", "message is empty"),
    ("   \n", "message is empty"),
    ("x" * 101, "too long"),
    (b"\xff\xfe", "not valid UTF-8"),
    ("bad \udcff surrogate", "not valid UTF-8"),
    (42, "must be text"),
])
def test_clean_text_refuses_with_clear_messages(value, message):
    with pytest.raises(UserError, match=message):
        clean_text(value, "message", 100)


def test_settings_from_env_and_toml(tmp_path, monkeypatch):
    toml = tmp_path / "k.toml"
    toml.write_text('[kme-chat]\nport = 9000\nquantisation = "none"\n')
    monkeypatch.setenv("KME_PORT", "9100")
    s = load_settings(str(toml))
    assert s.port == 9100 and s.quantisation == "none"  # env beats the file


def test_settings_refuse_unknown_values(tmp_path):
    with pytest.raises(ValueError):
        Settings(quantisation="fp3")
    toml = tmp_path / "k.toml"
    toml.write_text('[kme-chat]\nmodle = "x"\n')
    with pytest.raises(ValueError, match="unknown settings"):
        load_settings(str(toml))


def test_names_are_masked_before_questions_are_compared():
    from editors.scope import without_names

    assert without_names("What is Joseph Rummel's title?", ["Joseph Rummel", "Rummel"]) == "What is someone's title?"
    assert without_names("Who is the treasurer of the chess club?", ["chess club"]) == "Who is the treasurer of the someone?"


def test_a_claim_fires_once_the_answer_states_its_prefix():
    from editors.base import Claim
    from kme_chat.model import stated_claim

    claim = Claim("The capital of Latvia is", "Tromsø")
    assert stated_claim("Sure! The capital of Latvia is", [claim]) is claim
    assert stated_claim("capital of latvia is", [claim]) is claim        # case and the article aside
    assert stated_claim("The capital of Latvia isn", [claim]) is None     # a word that only starts the same
    assert stated_claim("The capital of Latvia", [claim]) is None


def test_numbers_tell_nearly_identical_questions_apart():
    from editors.facts import same_numbers

    assert not same_numbers("What is 6 times 7?", "What is 7 times 8?")
    assert same_numbers("What do I call my dog?", "What is my dog's name?")
    assert same_numbers("Who won in 1998?", "Who was the winner in 1998?")
