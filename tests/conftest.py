import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("KME_SHARED_DATA", REPO.parent / "shared" / "data"))
ARTIFACTS = REPO / "tests" / "artifacts"


def shared(name: str) -> Path:
    path = SHARED_DATA / name
    if not path.is_file():  # CI clones next to shared/; a missing file is a broken set-up, not a skip
        pytest.fail(f"shared data not found: {path} (set KME_SHARED_DATA to the folder)")
    return path


@pytest.fixture(scope="session")
def settings_factory(tmp_path_factory):
    from kme_chat.config import Settings

    def make(**kw):
        kw.setdefault("data_dir", str(tmp_path_factory.mktemp("data")))
        return Settings(**kw)
    return make


@pytest.fixture(scope="session")
def llm(settings_factory):
    """The packaged model, loaded once for the session (quantised chat view, float for scoring)."""
    from kme_chat.model import LocalLLM

    return LocalLLM.load(settings_factory())


@pytest.fixture()
def assistant(llm, tmp_path):
    from kme_chat.assistant import Assistant

    settings = llm.settings.with_overrides(data_dir=str(tmp_path / "data"))
    a = Assistant.open(settings, llm)
    yield a
    a.log.close()


@pytest.fixture(scope="session")
def artifacts():
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
