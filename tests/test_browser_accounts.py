"""Two people signed in from two browsers: a correction changes its author's answers only."""
import pytest

from tests.servers import kme, start, stop
from tests.test_browser import ask, bot_messages, browser, clear_chat, commit, flag_and_correct  # noqa: F401 (fixture)

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    data = tmp_path_factory.mktemp("accountsdata")
    for name in ("ana", "ben"):
        kme(data, "users", "add", name, stdin=f"{name}-password\n")
    proc, url = start(data)
    yield url + "/"
    stop(proc)


def signed_in(browser, url: str, name: str, password: str):
    page = browser.new_context(viewport={"width": 1400, "height": 1100}).new_page()
    page.goto(url)
    page.get_by_label("username").fill(name)
    page.get_by_label("password").fill(password)
    page.get_by_role("button", name="Login").click()
    page.wait_for_selector("#message", timeout=60000)
    return page


def test_a_correction_changes_its_authors_answers_and_not_another_users(server, browser):
    ana, ben = signed_in(browser, server, "ana", "ana-password"), signed_in(browser, server, "ben", "ben-password")
    question = "Who is the CEO of Quarrow Labs?"
    ask(ben, question, 2)
    ben_before = bot_messages(ben)[-1]
    ask(ana, question, 2)
    flag_and_correct(ana, "No, the CEO of Quarrow Labs is Mina Okafor.", "Mina Okafor")
    commit(ana)
    ask(ana, question, 4)
    assert "Mina Okafor" in bot_messages(ana)[-1]
    clear_chat(ben)
    ask(ben, question, 2)
    assert bot_messages(ben)[-1] == ben_before                        # ben's memory has no such edit
    ben.wait_for_timeout(3000)                                         # a history refresh has run
    assert "Mina Okafor" not in ben.locator("#history").inner_text()  # nor does his history show it
    assert "Mina Okafor" in ana.locator("#history").inner_text()
    ana.context.close()
    ben.context.close()
