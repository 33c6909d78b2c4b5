"""The OpenAI-style API and accounts on a real server (`kme-chat serve`), driven by the `openai`
client, LangChain's ChatOpenAI and plain HTTP: each user's memory is their own."""
import os
import time

import httpx
import pytest
import torch

from tests.servers import kme, start, stop

pytestmark = pytest.mark.slow
QUESTION = "Who is the CEO of Quarrow Labs?"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    data = tmp_path_factory.mktemp("apidata")
    kme(data, "users", "add", "ana", "--admin", stdin="ana-password\n")
    kme(data, "users", "add", "ben", stdin="ben-password\n")
    keys = {"ana": kme(data, "users", "key", "ana"), "ben": kme(data, "users", "key", "ben")}
    proc, url = start(data)
    yield {"url": url, "keys": keys, "data": data}
    stop(proc)


def call(server, user: str | None, method: str, path: str, **kw) -> httpx.Response:
    headers = {"Authorization": f"Bearer {server['keys'][user]}"} if user else {}
    return httpx.request(method, server["url"] + path, headers=headers, timeout=120, **kw)


def ask(server, user: str, question: str = QUESTION) -> str:
    from openai import OpenAI

    client = OpenAI(base_url=server["url"] + "/v1", api_key=server["keys"][user])
    stream = client.chat.completions.create(model="kme-chat", messages=[{"role": "user", "content": question}],
                                            stream=True, max_tokens=30)
    pieces = [chunk.choices[0].delta.content or "" for chunk in stream]
    assert len([p for p in pieces if p]) > 1  # streamed in pieces, not one block
    return "".join(pieces)


def test_users_cli_keeps_hashes_not_passwords(server):
    assert kme(server["data"], "users", "list").split("\n") == ["ana  admin", "ben"]
    stored = (server["data"] / "users.sqlite3").read_bytes()
    assert b"ben-password" not in stored and b"argon2id" in stored
    assert server["keys"]["ben"] not in stored.decode("latin-1")


def test_each_users_corrections_change_only_their_own_answers(server):
    before = ask(server, "ana")
    assert "Mina Okafor" not in before
    stored = call(server, "ben", "POST", "/v1/edits",
                  json={"question": QUESTION, "correction": "For all users: the CEO of Quarrow Labs is Mina Okafor."})
    assert stored.status_code == 200 and stored.json()["stored"], stored.text
    edit = stored.json()["edit"]
    assert edit["user"] == "ben" and edit["new"] == "Mina Okafor"
    assert "Mina Okafor" in ask(server, "ben")          # the openai client, streaming, with ben's memory
    assert ask(server, "ana") == before                  # ana's answer did not move
    from langchain_openai import ChatOpenAI

    chat = ChatOpenAI(base_url=server["url"] + "/v1", api_key=server["keys"]["ben"], model="kme-chat", max_tokens=30)
    assert "Mina Okafor" in chat.invoke(QUESTION).content

    # ana is an admin and sees it; a second non-admin user would not (checked below with ben's view)
    mine = call(server, "ben", "GET", "/v1/edits").json()["data"]
    assert [e["id"] for e in mine] == [edit["id"]]
    history = call(server, "ben", "GET", f"/v1/edits/{edit['id']}/history").json()
    assert history["events"][0]["event"] == "created" and history["events"][0]["by"] == "ben"


def test_others_edits_cannot_be_seen_or_undone_and_weights_need_an_admin(server):
    ana_edit = call(server, "ana", "POST", "/v1/edits",
                    json={"question": "What is the capital of Veloria?", "correction": "It's Port Ambrel."}).json()["edit"]
    assert ana_edit["id"] not in [e["id"] for e in call(server, "ben", "GET", "/v1/edits").json()["data"]]
    for method, path in (("DELETE", f"/v1/edits/{ana_edit['id']}"), ("GET", f"/v1/edits/{ana_edit['id']}/history")):
        refused = call(server, "ben", method, path)
        assert refused.status_code == 404 and refused.json()["error"]["type"] == "not_found_error"
    weights = call(server, "ben", "POST", "/v1/edits",
                   json={"question": QUESTION, "correction": "No, Mina Okafor.", "weights": "rome"})
    assert weights.status_code == 403 and "admin" in weights.json()["error"]["message"]
    preview = call(server, "ben", "POST", "/v1/edits", json={"question": QUESTION, "correction": "No, Ada Brook.",
                                                             "preview": True}).json()
    assert preview["stored"] is False and preview["edit"]["new"] == "Ada Brook"
    assert call(server, "ben", "POST", f"/v1/edits/{ana_edit['id']}/share", json={"shared": True}).status_code == 403
    shared = call(server, "ana", "POST", f"/v1/edits/{ana_edit['id']}/share", json={"shared": True})
    assert shared.status_code == 200 and shared.json()["shared"] is True
    assert ana_edit["id"] in [e["id"] for e in call(server, "ben", "GET", "/v1/edits").json()["data"]]
    assert "Port Ambrel" in ask(server, "ben", "What is the capital of Veloria?")  # now in ben's memory too
    assert call(server, "ben", "DELETE", f"/v1/edits/{ana_edit['id']}").status_code == 403  # shared: an admin's
    undone = call(server, "ana", "DELETE", f"/v1/edits/{ana_edit['id']}")
    assert undone.status_code == 200 and undone.json()["status"] == "reverted"


@pytest.mark.parametrize("user, body, status", [
    (None, {"question": "q?", "correction": "c"}, 401),                                   # no key
    ("ben", {"question": "Who is X?", "correction": "It's Y.", "user": "ana"}, 400),       # an injected owner
    ("ben", {"question": 3, "correction": "It's Y."}, 400),
    ("ben", {"question": "Who is X?", "correction": "x" * 20_000}, 400),
    ("ben", [1, 2, 3], 400),
])
def test_bad_edit_requests_get_json_errors(server, user, body, status):
    answer = call(server, user, "POST", "/v1/edits", json=body)
    assert answer.status_code == status and answer.json()["error"]["message"]


def test_bad_keys_and_bad_chats_get_json_errors(server):
    wrong = httpx.get(server["url"] + "/v1/models", headers={"Authorization": "Bearer kme-not-a-key"})
    assert wrong.status_code == 401
    for body in ({"messages": []}, {"messages": [{"role": "assistant", "content": "hi"}]}, {"messages": "hi"},
                 {"messages": [{"role": "user", "content": ""}]}, {"messages": [{"role": "user", "content": "hi"}],
                                                                    "max_tokens": -1}):
        answer = call(server, "ben", "POST", "/v1/chat/completions", json=body)
        assert answer.status_code == 400 and answer.json()["error"]["message"], (body, answer.text)
    garbled = call(server, "ben", "POST", "/v1/chat/completions", content=b"\xff{not json")
    assert garbled.status_code == 400


def test_the_page_asks_for_a_login_when_accounts_exist(server):
    page = httpx.get(server["url"] + "/config", follow_redirects=True)
    assert page.status_code in (401, 403) or '"auth_required":true' in page.text.replace(" ", "")


# ---- hostile input: arbitrary text and JSON never gives a 500, and a refused request stores nothing ----
from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=200),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
                    max_leaves=20)
TEXT = st.text(st.characters(codec="utf-8"), max_size=300)  # any Unicode, control characters included
FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)


@FUZZ
@given(question=TEXT, answer=TEXT, correction=TEXT)
def test_the_router_takes_any_text(question, answer, correction):
    from kme_chat.errors import UserError
    from kme_chat.router import route_correction

    try:
        routed = route_correction(question, answer, correction)
    except UserError:
        return
    assert routed.edit is None or routed.route


@FUZZ
@given(body=JSON | st.fixed_dictionaries({"question": TEXT, "correction": TEXT}, optional={"answer": JSON,
                                                                                         "weights": JSON}))
def test_the_edit_api_takes_any_json(server, body):
    before = len(call(server, "ben", "GET", "/v1/edits").json()["data"])
    answer = call(server, "ben", "POST", "/v1/edits", json=body)
    assert answer.status_code < 500 and answer.headers["content-type"].startswith("application/json")
    after = len(call(server, "ben", "GET", "/v1/edits").json()["data"])
    assert after == before + (1 if answer.status_code == 200 and answer.json()["stored"] else 0)


@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(body=JSON | st.fixed_dictionaries({"messages": st.lists(
    st.fixed_dictionaries({"role": st.sampled_from(["user", "assistant", "system", "x"]), "content": JSON | TEXT}),
    max_size=3)}))
def test_the_chat_api_takes_any_json(server, body):
    if isinstance(body, dict):
        body = {**body, "max_tokens": 2}
    answer = call(server, "ben", "POST", "/v1/chat/completions", json=body)
    assert answer.status_code < 500, answer.text


def test_a_sigkill_during_a_burst_of_edits_loses_no_acknowledged_edit(tmp_path, llm):
    """Edits POSTed from 4 threads; the server is killed with SIGKILL mid-burst. Every edit that got
    a 200 is in the log after a restart, and the memory holds exactly the log's active edits."""
    import signal
    from concurrent.futures import ThreadPoolExecutor

    from kme_chat.assistant import Assistant

    data = tmp_path / "d"
    kme(data, "users", "add", "ana", stdin="ana-password\n")
    key = kme(data, "users", "key", "ana")
    proc, base = start(data)
    url = f"{base}/v1/edits"

    def post(i: int) -> str | None:
        try:
            r = httpx.post(url, headers={"Authorization": f"Bearer {key}"}, timeout=30,
                           json={"question": f"What is the code name of project {i}?", "correction": f"It's Falcon{i}."})
            return r.json()["edit"]["id"] if r.status_code == 200 else None
        except httpx.HTTPError:
            return None  # the server died before it answered

    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(post, i) for i in range(200)]
        while sum(f.done() for f in futures) < 20:
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        acknowledged = {f.result() for f in futures} - {None}
    proc.wait()
    assert 20 <= len(acknowledged) < 200
    assistant = Assistant.open(llm.settings.with_overrides(data_dir=str(data)), llm)  # a restart
    active = {e.id for e in assistant.log.active()}
    assert acknowledged <= active                                        # nothing acknowledged was lost
    assert set(assistant.resources.memory.entries("facts")) == active    # nothing half-applied remains


def test_a_sigkill_during_a_weight_edit_leaves_the_model_equal_to_the_logs_active_deltas(tmp_path, llm):
    """One ROME edit acknowledged, the server killed while it computes a second: after a restart the
    key gate holds the factors of exactly the log's active edits, and the weights are the base."""
    import signal

    from editors.weights import deltas
    from editors.weights.hparams import hparams_for
    from kme_chat.assistant import Assistant

    data = tmp_path / "d"
    kme(data, "users", "add", "ana", "--admin", stdin="ana-password\n")
    key = kme(data, "users", "key", "ana")
    proc, base = start(data)
    url, headers = f"{base}/v1/edits", {"Authorization": f"Bearer {key}"}
    first = httpx.post(url, headers=headers, timeout=600, json={
        "question": "What is the mother tongue of Danielle Darrieux?", "correction": "No, it's English.",
        "weights": "rome"})
    assert first.status_code == 200, first.text
    import threading

    def in_flight() -> None:
        try:
            httpx.post(url, headers=headers, timeout=600, json={
                "question": "What instrument does Toko Yasuda play?", "correction": "No, the piano.", "weights": "rome"})
        except httpx.HTTPError:
            pass  # the server died under it

    second = threading.Thread(target=in_flight)
    second.start()
    time.sleep(2.0)  # inside the second edit's computation (a ROME edit takes seconds here)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    second.join()

    layer = hparams_for(llm.model.config.model_type, llm.num_layers).layer
    base = llm.down_proj(layer).weight.detach().clone()
    assistant = Assistant.open(llm.settings.with_overrides(data_dir=str(data)), llm)  # the restart
    try:
        active = assistant.log.active()
        assert first.json()["edit"]["id"] in [e.id for e in active]
        gate = assistant.editor("rome").gate
        assert set(gate.entries.get(layer, {})) == {e.id for e in active}
        for edit in active:
            u, v = deltas.load(data / "deltas" / f"{edit.id}.safetensors")[layer]
            gated_u, gated_v, _ = gate.entries[layer][edit.id]
            assert torch.equal(gated_u[:, 0], u) and torch.equal(gated_v[:, 0], v)
        assert torch.equal(llm.down_proj(layer).weight, base)  # gated edits never touch the weights
    finally:
        for edit in assistant.log.active():  # the session's shared model back to its base
            assistant.undo(edit.id)
    assert not llm.down_proj(layer)._forward_hooks
