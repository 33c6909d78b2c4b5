"""kme-chat run as people run it, for the tests: the CLI, and `kme-chat serve` on a free loopback port."""
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

KME = str(Path(sys.executable).parent / "kme-chat")
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def kme(data: Path, *args: str, stdin: str = "") -> str:
    """One CLI command on this data dir; its standard output."""
    done = subprocess.run([KME, "--data-dir", str(data), *args], input=stdin, capture_output=True, text=True,
                          timeout=120, env=ENV)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def start(data: Path, startup_s: float = 180) -> tuple[subprocess.Popen, str]:
    """`kme-chat serve` on this data dir; returns (the process, its base URL) once the page answers."""
    port = free_port()
    log = open(data / "serve.log", "w")
    proc = subprocess.Popen([KME, "--data-dir", str(data), "serve", "--port", str(port)], stdout=log,
                            stderr=subprocess.STDOUT, env=ENV)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + startup_s
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url + "/", timeout=2)
            return proc, url
        except OSError:
            if proc.poll() is not None:
                pytest.fail("server exited: " + (data / "serve.log").read_text()[-2000:])
            time.sleep(1)
    proc.kill()
    pytest.fail(f"server did not start in {startup_s:.0f} s")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    proc.wait(timeout=20)
