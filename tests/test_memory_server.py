"""The memory tests again, with the vector store as a service: a real `chroma run` on a loopback
port, reached through `memory_url` (chromadb.HttpClient)."""
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.test_accounts import test_memory_is_private_until_an_admin_shares_it  # noqa: F401
from tests.test_memory import (  # noqa: F401
    test_conflicting_edit_is_found_and_replace_keeps_one,
    test_editors_answer_in_scope_and_leave_the_rest_alone,
    test_fact_scope_needs_the_subject_and_the_same_question,
)

pytestmark = pytest.mark.slow
CHROMA = str(Path(sys.executable).parent / "chroma")


@pytest.fixture(scope="module")
def chroma_url(tmp_path_factory):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([CHROMA, "run", "--path", str(tmp_path_factory.mktemp("chroma-server")), "--host",
                             "127.0.0.1", "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert proc.poll() is None, "chroma run exited"
            time.sleep(0.5)
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(timeout=20)


@pytest.fixture()
def assistant(llm, tmp_path, chroma_url):
    """As in conftest, but the memory is the Chroma server (emptied after each test)."""
    from kme_chat.assistant import Assistant

    settings = llm.settings.with_overrides(data_dir=str(tmp_path / "data"), memory_url=chroma_url)
    a = Assistant.open(settings, llm)
    assert a.resources.memory.client.heartbeat()  # really the server, not a local store
    assert not (tmp_path / "data" / "chroma").exists()
    yield a
    for collection in a.resources.memory.client.list_collections():
        a.resources.memory.client.delete_collection(collection.name)
    a.log.close()
