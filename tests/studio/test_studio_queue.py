"""Two generate requests at once: the second waits in the queue, both finish, the server lives on.

``python -m vid3d.studio`` on 127.0.0.1 (a free port) as in ``test_studio_browser.py``; two
``gradio_client.Client`` sessions submit the page's ``/generate`` (an uploaded 96x144 PNG, a preset
path, 2 sampler steps, no static-camera comparison) at the same moment. Checked from both sides:

- the client side: while one request runs (``PROCESSING`` / ``PROGRESS``) the other is seen
  ``IN_QUEUE`` at rank 0, and the waiting one starts only once the first has finished;
- the server side: each request writes its folder's ``inputs/`` first and ``command.txt`` last, so the
  second request's first file is no older than the first request's last file (no overlap);
- both return a video (an MP4 file) and a "Generated ..." status line; a bad request after them is one
  line in the status; the process is still running and serving the page afterwards, and its log has no
  traceback.
"""

from __future__ import annotations

import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow

RUNNING = ("PROCESSING", "PROGRESS")


def _get(url: str) -> int:
    with urllib.request.urlopen(url, timeout=10) as r:
        return int(r.status)


def test_a_second_generate_waits_in_the_queue_and_both_finish(tmp_path, studio_server):
    try:
        from gradio_client import Client, handle_file
    except ImportError as e:
        pytest.fail(f"the queue test needs the studio extra: pip install -e '.[studio]' ({e})")
    import imageio.v3 as iio

    out = tmp_path / "out"
    yy, xx = np.mgrid[0:96, 0:144]
    image = tmp_path / "ramp.png"
    iio.imwrite(image, np.stack([xx * 255 / 143, yy * 255 / 95, 128 + 0 * xx], -1).astype(np.uint8))

    url, proc, log = studio_server(out, timeout=120)
    clients = [Client(url, verbose=False) for _ in range(2)]
    names = {e for e in clients[0].view_api(print_info=False, return_format="dict")["named_endpoints"]}
    assert "/generate" in names, names

    def submit(client, seed):
        return client.submit(
            input_kind="uploaded image",
            image=handle_file(str(image)),
            path_kind="preset",
            preset="orbit_left",
            pose_file=None,
            steps=2,
            seed=seed,
            static=False,
            api_name="/generate",
        )

    jobs = [submit(c, seed) for c, seed in zip(clients, (1, 2))]
    # poll both: the times each was first seen running / finished, and whether one was seen
    # waiting in the queue while the other ran
    first_running: dict[int, float] = {}
    finished: dict[int, float] = {}
    queued_behind = set()
    end = time.monotonic() + 150
    while len(finished) < 2 and time.monotonic() < end:
        now = time.monotonic()
        states = [j.status() for j in jobs]
        codes = [s.code.name for s in states]
        for i, (j, code) in enumerate(zip(jobs, codes)):
            if code in RUNNING:
                first_running.setdefault(i, now)
            if j.done():
                finished.setdefault(i, now)
        for i in range(2):
            if codes[i] == "IN_QUEUE" and codes[1 - i] in RUNNING:
                assert states[i].rank == 0, states[i]  # next in line: one request ahead of it
                queued_behind.add(i)
        time.sleep(0.05)
    assert len(finished) == 2, f"not both finished within 150 s:\n{log.read_text()[-3000:]}"

    results = [j.result(timeout=10) for j in jobs]
    for seed, (video, _compare, command, status) in zip((1, 2), results):
        assert status.startswith("Generated "), status
        assert f"seed={seed}" in command and "sampler.num_steps=2" in command
        data = Path(video).read_bytes()
        assert Path(video).suffix == ".mp4" and len(data) > 1000 and data[4:8] == b"ftyp", video

    # client side: the one that ran second was seen waiting, and began only after the other finished
    second = max(finished, key=finished.get)
    first = 1 - second
    assert queued_behind == {second}, (queued_behind, first_running, finished)
    assert first_running[second] >= finished[first] - 0.3, (first_running, finished)

    # server side: the request folders (one per request), in the order they started
    folders = sorted(
        (f for f in out.iterdir() if f.is_dir()), key=lambda f: (f / "inputs").stat().st_mtime
    )
    assert len(folders) == 2, folders
    started = [min(p.stat().st_mtime for p in (f / "inputs").iterdir()) for f in folders]
    ended = [(f / "command.txt").stat().st_mtime for f in folders]
    assert started[0] < ended[0] <= started[1] < ended[1], (started, ended)

    # a bad request after them (no image) is its one line in the status, the results untouched
    bad = clients[0].predict(
        input_kind="uploaded image",
        image=None,
        pose_file=None,
        steps=2,
        static=False,
        api_name="/generate",
    )
    assert bad[3] == "input: upload an image (PNG or JPEG), or choose 'dataset clip'", bad
    assert len([f for f in out.iterdir() if f.is_dir()]) == 2  # nothing written for it

    # alive: still running, still serving, nothing crashed in between
    assert proc.poll() is None, log.read_text()[-3000:]
    assert _get(url) == 200
    assert "Traceback" not in log.read_text(), log.read_text()[-3000:]
