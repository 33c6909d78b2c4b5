"""Two people signed in from two browsers: a correction changes its author's answers only."""
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.test_browser import ARGS, CHROMIUM, ask, bot_messages, commit, flag_and_correct, free_port

pytestmark = [pytest.mark.browser, pytest.mark.slow]
KME = str(Path(sys.executable).parent / "kme-chat")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    data = tmp_path_factory.mktemp("accountsdata")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    for name, password in (("ana", "ana-password"), ("ben", "ben-password")):
        subprocess.run([KME, "--data-dir", str(data), "users", "add", name], input=password + "\n", text=True,
                       check=True, env=env, capture_output=True)
    port = free_port()
    log = open(data / "serve.log", "w")
    proc = subprocess.Popen([KME, "--data-dir", str(data), "serve", "--port", str(port)], stdout=log,
                            stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + 180
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2)
            break
        except OSError:
            assert proc.poll() is None, (data / "serve.log").read_text()[-2000:]
            time.sleep(1)
    yield url
    proc.terminate()
    proc.wait(timeout=20)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


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
    ben.locator('#chat button[aria-label="Clear"]').click()
    ask(ben, question, 2)
    assert bot_messages(ben)[-1] == ben_before                        # ben's memory has no such edit
    ben.wait_for_timeout(3000)                                         # a history refresh has run
    assert "Mina Okafor" not in ben.locator("#history").inner_text()  # nor does his history show it
    assert "Mina Okafor" in ana.locator("#history").inner_text()
    ana.context.close()
    ben.context.close()
