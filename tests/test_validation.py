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
