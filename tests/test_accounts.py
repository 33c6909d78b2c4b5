"""Private memory: every edit has an owner; queries read the caller's own and shared entries only."""
import pytest

from kme_chat.accounts import Accounts, User
from kme_chat.errors import Forbidden, NotFound, UserError
from kme_chat.router import route_correction

ANA, BEN = User("ana", admin=True), User("ben")


def store(assistant, question, correction, by):
    routed = route_correction(question, "", correction)
    routed.edit.routes = routed.route
    return assistant.add_edit(routed.edit, by=by)


def test_accounts_hash_passwords_and_keys(tmp_path):
    accounts = Accounts(tmp_path / "users.sqlite3")
    assert not accounts.any()
    accounts.add("ana", "a-long-password", admin=True)
    with pytest.raises(UserError, match="too short"):
        accounts.add("ben", "short")
    with pytest.raises(UserError, match="exists"):
        accounts.add("ana", "another-password")
    assert accounts.check_password("ana", "a-long-password") == User("ana", True)
    assert accounts.check_password("ana", "wrong-password") is None and accounts.check_password("x", "y") is None
    key = accounts.new_key("ana")
    assert accounts.user_for_key(key) == User("ana", True) and accounts.user_for_key(key + "x") is None
    accounts.remove("ana")
    assert accounts.user_for_key(key) is None and not accounts.any()


def test_memory_is_private_until_an_admin_shares_it(assistant):
    q = "Who is the CEO of Quarrow Labs?"
    before = assistant.answer(q, by=ANA)
    ben_edit = store(assistant, q, "No, the CEO of Quarrow Labs is Mina Okafor.", BEN)
    assert "Mina Okafor" in assistant.answer(q, by=BEN)
    assert assistant.answer(q, by=ANA) == before                     # filtered in the store's query
    store(assistant, "Where was Mina Okafor born?", "She was born in Tallinn.", ANA)
    # the multi-hop reader follows only facts the asker can see
    assert "Tallinn" not in assistant.multihop("Where was the CEO of Quarrow Labs born?", by=BEN).answer
    assert [e.id for e in assistant.edits(BEN)] == [ben_edit.id]
    with pytest.raises(NotFound):
        assistant.undo(assistant.edits(ANA)[-1].id, by=BEN)
    with pytest.raises(Forbidden):
        assistant.share(ben_edit.id, True, by=BEN)
    assistant.share(ben_edit.id, True, by=ANA)                      # now in everyone's memory
    assert "Mina Okafor" in assistant.answer(q, by=ANA)
    assert "Tallinn" in assistant.multihop("Where was the CEO of Quarrow Labs born?", by=ANA).answer
    with pytest.raises(Forbidden):
        assistant.undo(ben_edit.id, by=BEN)                           # shared: an admin's to undo


def test_a_non_admin_cannot_write_weights(assistant):
    routed = route_correction("Who is the CEO of Quarrow Labs?", "", "No, Mina Okafor.", weights="rome")
    routed.edit.routes = routed.route
    with pytest.raises(Forbidden, match="admin"):
        assistant.add_edit(routed.edit, by=BEN)
    assert assistant.log.all() == []
