"""kme-chat run as people run it, for the tests: the CLI, and `kme-chat serve` on a free loopback port."""
import subprocess
from pathlib import Path

import pytest

from kme_chat.evaluation import served
from kme_chat.evaluation.served import ENV, KME, stop  # noqa: F401  (stop: the tests import it from here)


def kme(data: Path, *args: str, stdin: str = "") -> str:
    """One CLI command on this data dir; its standard output."""
    done = subprocess.run([KME, "--data-dir", str(data), *args], input=stdin, capture_output=True, text=True,
                          timeout=120, env=ENV)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def start(data: Path, startup_s: float = 180) -> tuple[subprocess.Popen, str]:
    """`kme-chat serve` on this data dir; returns (the process, its base URL) once the page answers."""
    try:
        return served.start(data, startup_s=startup_s)
    except RuntimeError as exc:
        pytest.fail(str(exc))
