"""A user's first mistakes answer fast: `eval.py` / `sample.py` with a missing checkpoint stop in one line,
exit code 2, before torch, diffusers or Lightning are imported (issue 16). No timing: the test checks what
was imported, which is what the start-up time depends on."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "diffusers", "lightning", "transformers")

# runs an entry point's Hydra main in-process, then reports the heavy modules it imported
PROBE = """
import atexit, runpy, sys
heavy = {heavy!r}
atexit.register(lambda: print("IMPORTED:" + ",".join(m for m in heavy if m in sys.modules), file=sys.stderr))
sys.argv = [{script!r}, *{args!r}]
runpy.run_path({script!r}, run_name="__main__")
"""


@pytest.mark.slow
@pytest.mark.parametrize("script", ["eval.py", "sample.py"])
def test_missing_checkpoint_fails_before_heavy_imports(script, tmp_path):
    missing = tmp_path / "no_such.ckpt"
    args = [f"ckpt={missing}", f"hydra.run.dir={tmp_path / 'run'}"]
    code = PROBE.format(heavy=HEAVY, script=script, args=args)
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert (
        lines[0]
        == f"error: checkpoint {missing} does not exist (pass ckpt=<file> or ckpt=<training run dir>)"
    )
    assert lines[-1] == "IMPORTED:", lines[-1]  # none of the heavy packages
    assert len(lines) == 2
