"""The studio as a user starts it, for the slow page tests: ``python -m vid3d.studio`` in a subprocess on a
free 127.0.0.1 port, one torch thread, its log in a file; stopped (terminate, then kill) at teardown."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from vid3d.studio.__main__ import free_port

ROOT = Path(__file__).resolve().parents[2]


def wait_http(url: str, proc: subprocess.Popen, log: Path, timeout: float) -> None:
    """Return once ``url`` answers 200; fail the test (with the log's tail) if the process exits or the
    page does not answer within ``timeout`` seconds."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            pytest.fail(f"the studio exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=10) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"the studio did not answer on {url} within {timeout:.0f} s:\n{log.read_text()[-3000:]}")


@pytest.fixture
def studio_server(tmp_path):
    """``start(out_dir, timeout) -> (url, proc, log)``: the studio serving ``out_dir`` on ``url``."""
    procs: list[subprocess.Popen] = []

    def start(out_dir: Path, timeout: float = 180) -> tuple[str, subprocess.Popen, Path]:
        port = free_port()
        url = f"http://127.0.0.1:{port}/"
        log = tmp_path / "studio.log"
        env = {**os.environ, "PYTHONPATH": str(ROOT), "GRADIO_ANALYTICS_ENABLED": "False",
               "OMP_NUM_THREADS": "1"}
        cmd = [sys.executable, "-m", "vid3d.studio", "--port", str(port), "--out", str(out_dir),
               "--threads", "1"]
        with open(log, "w") as out:
            proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        procs.append(proc)
        wait_http(url, proc, log, timeout)
        return url, proc, log

    yield start
    for proc in procs:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
