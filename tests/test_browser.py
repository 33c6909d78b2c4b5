"""The app in real headless Chromium (Debian's), driven by Playwright, against `kme-chat serve`."""
import re
import shutil
from pathlib import Path

import pytest

from tests.servers import start, stop

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
QUESTION = "What is the largest planet in our solar system?"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian chromium is missing: `make test` installs it (apt-get install chromium)")
    proc, url = start(tmp_path_factory.mktemp("appdata"))
    yield url + "/"
    stop(proc)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


MESSAGES = "document.querySelectorAll('#chat .message-row, #chat [data-testid=\"bot\"]').length"


def clear_chat(page) -> None:
    """Clear the conversation and wait until it is empty: a message sent before the clear lands is wiped by it."""
    page.locator('#chat button[aria-label="Clear"]').click()
    page.wait_for_function(f"{MESSAGES} === 0", timeout=30000)


def ask(page, text: str, expect_messages: int) -> str:
    page.locator("#message textarea").fill(text)
    page.locator("#send").click()
    # wait for the answer to land and stop growing (it streams)
    try:
        page.wait_for_function(f"{MESSAGES} >= {expect_messages}", timeout=60000)
    except Exception as exc:  # say what the page showed instead of a bare timeout
        raise AssertionError(f"no answer to {text!r} within 60 s; status: {page.locator('#status').inner_text()!r}; "
                             f"chat: {page.locator('#chat').inner_text()[-500:]!r}") from exc
    last, stable = None, 0
    while stable < 3:
        page.wait_for_timeout(700)
        now = page.locator("#chat").inner_text()
        stable = stable + 1 if now == last else 0
        last = now
    return last


PREVIEW_FIELDS = "[...document.querySelectorAll('#correction-box textarea, #correction-box input[type=text]')]"


def wait_for_preview(page, expect: str) -> None:
    """Until this preview is in: a field holds `expect` and Commit is enabled (an earlier preview's
    fields may hold it too, but Commit stays disabled from an edit of the correction to its preview)."""
    page.wait_for_function(f"{PREVIEW_FIELDS}.some(e => e.value.includes({expect!r}) && e.closest('#correction') === null)"
                           " && !document.querySelector('#commit').disabled", timeout=30000)


def field(page, elem_id: str):
    return page.locator(f"#{elem_id} textarea, #{elem_id} input").first


def flag_and_correct(page, correction: str, expect: str) -> None:
    """👎 on the last answer, type the correction, preview it (waits until a preview field holds `expect`)."""
    page.locator('#chat button[aria-label="Dislike"]').last.click()
    page.locator("#correction textarea").fill(correction)
    page.locator("#preview").click()
    wait_for_preview(page, expect)


def bot_messages(page) -> list[str]:
    return [t.strip() for t in page.locator('#chat [data-testid="bot"]').all_inner_texts()]


def test_chat_streams_an_answer(server, browser, artifacts):
    page = browser.new_page()
    page.goto(server)
    page.locator("#message textarea").fill("What is the capital of France?")
    page.locator("#send").click()
    # a streamed answer appears in parts: catch it while it is still growing
    page.wait_for_function("document.querySelector('#chat').innerText.includes('capital')", timeout=60000)
    ask_text = page.locator("#chat").inner_text()
    page.wait_for_function("document.querySelector('#chat').innerText.includes('Paris')", timeout=60000)
    assert "Paris" in page.locator("#chat").inner_text()
    assert len(ask_text) <= len(page.locator("#chat").inner_text())
    page.screenshot(path=str(artifacts / "chat.png"))
    page.close()


def test_flag_correct_commit_ask_again_then_undo(server, browser, artifacts):
    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    page.goto(server)
    ask(page, QUESTION, 2)
    before = bot_messages(page)[-1]
    assert "Jupiter" not in before  # the packaged model gets this wrong: good material for a correction

    flag_and_correct(page, "No, the largest planet is Jupiter", "Jupiter")
    assert "ike" in page.locator("#preview-md").inner_text()
    assert field(page, "f-new").input_value() == "Jupiter"
    page.get_by_role("tab", name="Locality probes").click()
    page.locator("#commit").click()
    page.wait_for_function("document.querySelector('#status').innerText.includes('Saved edit')", timeout=120000)
    edit_id = page.locator("#status code").first.inner_text().strip()
    # acknowledged before the locality probes finish: they run after the commit, then fill the panel
    assert "probes running" in page.locator("#drift").inner_text(), page.locator("#drift").inner_text()
    page.wait_for_function("document.querySelector('#drift').innerText.includes('Drift')", timeout=120000)
    probes = page.locator("#probes").inner_text()
    assert "Vinson Massif" in probes or "capital of France" in probes
    page.get_by_role("tab", name="Edit history").click()
    page.wait_for_function(f"document.querySelector('#history').innerText.includes({edit_id!r})", timeout=30000)
    assert "active" in page.locator("#history").inner_text()

    ask(page, QUESTION, 4)
    after = bot_messages(page)[-1]
    assert "Jupiter" in after
    page.screenshot(path=str(artifacts / "after-edit.png"), full_page=True)

    undo_by_row(page, edit_id)
    assert "reverted" in page.locator("#history").inner_text()
    # a fresh conversation, so the answer depends on the model and memory alone: the original is back
    clear_chat(page)
    ask(page, QUESTION, 2)
    assert bot_messages(page)[-1] == before
    page.close()


def undo_by_row(page, edit_id: str) -> None:
    """The ↩️ undo cell of the edit's row, then the one-line confirmation."""
    # the undo cell on the edit's row (the grid's rows; Gradio keeps a hidden <table> copy for sizing)
    row = page.locator('#history [role="row"]', has_text=edit_id).filter(visible=True).first
    row.locator('[role="gridcell"]', has_text="undo").first.click()
    page.wait_for_selector("#undo-confirm", state="visible", timeout=30000)
    assert "Undo" in page.locator("#undo-confirm").inner_text()
    page.locator("#undo-yes").click()
    page.wait_for_function("document.querySelector('#status').innerText.includes('Reverted')", timeout=30000)
    assert edit_id in page.locator("#status").inner_text()


def test_pronoun_correction_reaches_a_paraphrase(server, browser, artifacts):
    """A correction typed the way people do ("She was born in ..."): the preview shows the answer
    span alone, and a paraphrase of the question gets the corrected answer."""
    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    page.goto(server)
    ask(page, "Where was my grandmother born?", 2)
    flag_and_correct(page, "She was born in Porto, Portugal.", "Porto")
    assert "grandmother" in field(page, "f-subject").input_value()
    assert field(page, "f-new").input_value() == "Porto"
    page.locator("#commit").click()
    page.wait_for_function("document.querySelector('#status').innerText.includes('Saved edit')", timeout=120000)
    ask(page, "What is my grandmother's birthplace?", 4)
    assert "Porto" in bot_messages(page)[-1]
    page.screenshot(path=str(artifacts / "pronoun-correction.png"), full_page=True)
    page.close()


def commit(page) -> None:
    """Commit the previewed edit and wait for this commit's "Saved edit" (not an earlier one's)."""
    before = page.locator("#status").inner_text()
    page.locator("#commit").click()
    page.wait_for_function("([before]) => { const now = document.querySelector('#status').innerText;"
                           " return now !== before && now.includes('Saved edit'); }", arg=[before], timeout=120000)


def test_two_corrections_compose_into_a_chat_answer(server, browser, artifacts):
    """Two facts stored through the correction box; the main chat answers the question that
    composes them, and names the chain."""
    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    page.goto(server)
    ask(page, "Who is the CEO of Quillmont Robotics?", 2)
    flag_and_correct(page, "The CEO of Quillmont Robotics is Dana Whitfield.", "Dana Whitfield")
    commit(page)
    ask(page, "Where was Dana Whitfield born?", 4)
    flag_and_correct(page, "She was born in Lisbon.", "Lisbon")
    commit(page)
    ask(page, "Where was the CEO of Quillmont Robotics born?", 6)
    answer = bot_messages(page)[-1]
    assert answer.startswith("Lisbon"), answer
    assert "Dana Whitfield" in answer and "Quillmont Robotics" in answer
    page.screenshot(path=str(artifacts / "chain-in-chat.png"), full_page=True)
    page.close()


def test_history_is_live_after_a_reload_and_across_browsers(server, browser):
    """An edit made in one browser shows in another's history without a reload, and in a page
    opened or reloaded later."""
    watcher = browser.new_context().new_page()
    watcher.goto(server)
    watcher.wait_for_selector("#history")
    editor = browser.new_context().new_page()
    editor.goto(server)
    ask(editor, "What is the name of the Harwick ferry?", 2)
    flag_and_correct(editor, "The Harwick ferry is called the Grey Gull.", "Grey Gull")
    commit(editor)
    edit_id = re.search(r"Saved edit\s+`?(\w+)", editor.locator("#status").inner_text()).group(1)
    watcher.wait_for_function(f"document.querySelector('#history').innerText.includes({edit_id!r})", timeout=30000)
    editor.reload()
    editor.wait_for_selector("#history")
    editor.wait_for_function(f"document.querySelector('#history').innerText.includes({edit_id!r})", timeout=30000)
    editor.context.close()
    watcher.context.close()


def test_a_changed_correction_never_saves_the_old_preview(server, browser):
    page = browser.new_page()
    page.goto(server)
    ask(page, "Where is the Orvell Museum?", 2)
    flag_and_correct(page, "No, it's in Madrid.", "Madrid")
    assert page.locator("#commit").is_enabled()
    page.locator("#correction textarea").fill("No, it's in Barcelona.")
    page.locator("#correction textarea").press("End")  # a keystroke, as a person edits
    page.wait_for_function("document.querySelector('#preview-md').innerText.includes('preview it again')",
                           timeout=30000)
    assert not page.locator("#commit").is_enabled()
    page.locator("#preview").click()
    wait_for_preview(page, "Barcelona")
    commit(page)
    saved = page.locator("#status").inner_text()
    assert "Barcelona" in saved and "Madrid" not in saved, saved
    page.close()


def test_html_typed_into_the_chat_is_shown_as_text(server, browser):
    page = browser.new_page()
    page.goto(server)
    page.evaluate("window.__pwned = false")
    typed = '<b>bold</b> <img src=x onerror="window.__pwned=true"> What is 2 + 2?'
    ask(page, typed, 2)
    user = page.locator('#chat [data-testid="user"]').last
    assert "<b>bold</b>" in user.inner_text() and "<img" in user.inner_text()
    assert page.locator("#chat img").count() == 0 and page.locator("#chat b").count() == 0
    assert page.evaluate("window.__pwned") is False
    page.close()


def test_bad_corrections_get_clear_messages(server, browser):
    page = browser.new_page()
    page.goto(server)
    ask(page, "Who wrote Hamlet?", 2)
    page.locator('#chat button[aria-label="Dislike"]').last.click()
    # empty correction
    page.locator("#preview").click()
    page.wait_for_function("document.querySelector('#preview-md').innerText.includes('empty')", timeout=30000)
    # HTML/script is shown as text, never run
    page.evaluate("window.__pwned = false")
    page.locator("#correction textarea").fill('No, it was <img src=x onerror="window.__pwned=true"><script>window.__pwned=true</script>Marlowe')
    page.locator("#preview").click()
    page.wait_for_function("document.querySelector('#preview-md').innerText.includes('Route')", timeout=30000)
    assert page.evaluate("window.__pwned") is False
    assert page.locator("#preview-md img").count() == 0
    # 20 kB correction
    page.locator("#correction textarea").fill("x" * 20000)
    page.locator("#preview").click()
    page.wait_for_function("document.querySelector('#preview-md').innerText.includes('too long')", timeout=30000)
    # the flagged message disappears (chat cleared), then commit
    page.locator("#correction textarea").fill("No, it was Marlowe")
    page.wait_for_function("document.querySelector('#preview-md').innerText.includes('preview it again')",
                           timeout=30000)  # the earlier preview (its fields also hold Marlowe) is void
    page.locator("#preview").click()
    wait_for_preview(page, "Marlowe")
    page.locator('#chat button[aria-label="Clear"]').click()  # the flagged message goes mid-preview, on purpose
    page.locator("#commit").click()
    page.wait_for_function("document.querySelector('#status').innerText.includes('no longer')", timeout=30000)
    page.close()


def test_two_sessions_one_edits_the_other_keeps_chatting(server, browser):
    editor_page, other = browser.new_page(), browser.new_page()
    editor_page.goto(server)
    other.goto(server)
    ask(editor_page, "What is the capital of Australia?", 2)
    flag_and_correct(editor_page, "No, the capital of Australia is Sydney", "Sydney")
    editor_page.locator("#commit").click()  # runs while the other session chats
    for i, q in enumerate(["What is the capital of France?", "What is the currency of Japan?"]):
        ask(other, q, 2 * (i + 1))
    editor_page.wait_for_function("document.querySelector('#status').innerText.includes('Saved edit')", timeout=120000)
    answers = bot_messages(other)
    assert len(answers) == 2 and all(a and "error" not in a.lower() for a in answers)
    assert "Paris" in answers[0]
    editor_page.close()
    other.close()


def test_multi_hop_check_shows_the_chain_of_stored_facts(server, browser, artifacts):
    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    page.goto(server)
    ask(page, "What is the capital of Freedonia?", 2)
    flag_and_correct(page, "The capital of Freedonia is Port Ember", "Port Ember")
    page.locator("#commit").click()
    page.wait_for_function("document.querySelector('#status').innerText.includes('Saved edit')", timeout=120000)

    page.get_by_role("tab", name="Multi-hop check").click()
    page.locator("#hop-question textarea").fill("Which city is the capital of Freedonia?")
    page.locator("#hop-check").click()
    page.wait_for_function("document.querySelector('#hop-chain').innerText.includes('Answer')", timeout=60000)
    chain = page.locator("#hop-chain").inner_text()
    assert "Answer: Port Ember" in chain and "The capital of Freedonia is Port Ember." in chain
    page.screenshot(path=str(artifacts / "multihop.png"), full_page=True)

    # a question no stored fact touches gets the model's own answer, and says so
    page.locator("#hop-question textarea").fill("What is the capital of France?")
    page.locator("#hop-check").click()
    page.wait_for_function("document.querySelector('#hop-chain').innerText.includes('No stored fact')", timeout=60000)
    assert "Paris" in page.locator("#hop-chain").inner_text()
    # and an empty question a clear message
    page.locator("#hop-question textarea").fill("")
    page.locator("#hop-check").click()
    page.wait_for_function("document.querySelector('#hop-chain').innerText.includes('empty')", timeout=30000)
    page.close()


def test_a_misread_field_is_fixed_in_the_preview_and_committed(server, browser):
    """What is saved is what the preview's fields say when Commit is clicked, not what the router read."""
    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    page.goto(server)
    ask(page, "Where is the Kessler Gallery?", 2)
    flag_and_correct(page, "No, it's in Madrid.", "Madrid")
    assert field(page, "f-subject").input_value() == "Kessler Gallery"
    field(page, "f-new").fill("Toledo")  # the person fixes the answer the router read
    commit(page)
    saved = page.locator("#status").inner_text()
    assert "Toledo" in saved and "Madrid" not in saved, saved
    page.wait_for_function("document.querySelector('#history').innerText.includes('Toledo')", timeout=30000)
    ask(page, "Where is the Kessler Gallery?", 4)
    assert "Toledo" in bot_messages(page)[-1]
    page.close()


def sentences(text: str) -> int:
    return len(re.findall(r"(?<![A-Z][a-z])[.!?]+(?:\s|$)", text.strip()))


def test_a_stated_preference_applies_to_an_unrelated_later_question(server, browser):
    """"Answer in one short sentence" said on one question holds for a later, unrelated one; undo ends it."""
    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    page.goto(server)
    unrelated = "Explain how a rainbow forms."
    ask(page, unrelated, 2)
    long_answer = bot_messages(page)[-1]
    assert sentences(long_answer) > 1, long_answer
    ask(page, "Tell me about volcanoes.", 4)
    flag_and_correct(page, "Please answer in one short sentence.", "one short sentence")
    assert "standing instruction" in page.locator("#preview-md").inner_text()
    assert page.locator("#f-kind input[value=preference]").is_checked()
    commit(page)
    edit_id = page.locator("#status code").first.inner_text().strip()
    clear_chat(page)
    ask(page, unrelated, 2)
    assert sentences(bot_messages(page)[-1]) == 1, bot_messages(page)[-1]
    page.wait_for_function(f"document.querySelector('#history').innerText.includes({edit_id!r})", timeout=30000)
    assert "always: Please answer in one short sentence." in page.locator("#history").inner_text()
    undo_by_row(page, edit_id)  # the preference ends; other tests on this server see the plain model again
    clear_chat(page)
    ask(page, unrelated, 2)
    assert bot_messages(page)[-1] == long_answer
    page.close()
