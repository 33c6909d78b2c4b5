"""`kme-chat serve` in a child process on a free loopback port, run as people run it: the
benchmarks and the tests start the app this way, and stop it when they are done."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

KME = str(Path(sys.executable).parent / "kme-chat")
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(data: Path, env_extra: dict | None = None, startup_s: float = 600) -> tuple[subprocess.Popen, str]:
    """`kme-chat serve` on this data dir, its output in `serve.log` there; returns (the process, its
    base URL) once the page answers. A busy 2-core machine can take minutes to load the model."""
    port = free_port()
    log_path = Path(data) / "serve.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen([KME, "--data-dir", str(data), "serve", "--port", str(port)], stdout=log,
                                stderr=subprocess.STDOUT, env={**ENV, **(env_extra or {})})
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + startup_s
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url + "/", timeout=2)
            return proc, url
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError("kme-chat serve exited while starting: " + log_path.read_text()[-2000:])
            time.sleep(1)
    proc.kill()
    raise RuntimeError(f"kme-chat serve did not answer within {startup_s:.0f} s")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    proc.wait(timeout=30)
