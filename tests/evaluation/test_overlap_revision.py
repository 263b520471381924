"""The overlap index's dataset revision names the dataset, not the CPU that rendered it (issue 34.9).

numpy dispatches float math to the CPU's SIMD level; the synthetic renderer's cameras then differ in their
last bits between an AVX-512 machine and a baseline x86-64 one (measured: at most 8.9e-16), which made the
committed demo index "stale" on some fresh clones. ``NPY_DISABLE_CPU_FEATURES`` reproduces the other machine.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from vid3d.data.formats.re10k import Re10kCameras, read_camera_file, write_camera_file
from vid3d.evaluation.overlap.index import REVISION_GRID, dataset_revision
from vid3d.tasks.sparse_benchmark import ASSETS

DEMO_INDEX = ASSETS / "synthetic_12x48_144x256_s0_test_geometric.json"

# Writes the camera files (and empty frame folders) of the demo set's 4 test clips, with the manifest
# parameters of `data=synthetic`, under argv[1]. Frames are not rendered: the revision reads cameras only.
_CAMERAS_ONLY = """
import json, sys
from pathlib import Path
from vid3d.data.formats.re10k import write_camera_file
from vid3d.data.synthetic.build import _params
from vid3d.data.synthetic.scenes import make_clip
from vid3d.data.synthetic.build import clip_cameras
root = Path(sys.argv[1]); (root / "test").mkdir(parents=True)
params = _params(12, 4, 48, 144, 256, 0, "jpg", 1)
(root / "manifest.json").write_text(json.dumps({"params": params}))
for i in range(12, 16):
    spec = make_clip(i, 0, 48)
    write_camera_file(root / "test" / f"{spec.clip_id}.txt", clip_cameras(spec, 144, 256, 0))
    (root / "test" / spec.clip_id).mkdir()
"""

# numpy >= 2.4 names its x86 levels X86_V3 / X86_V4; older releases AVX2 / AVX512F. Unknown names are
# ignored with a warning, so listing both disables the SIMD paths above the baseline on either.
_BASELINE = "X86_V3 X86_V4 AVX512_ICL AVX512_SPR AVX2 FMA3 AVX512F AVX512_SKX AVX512_CLX AVX512_CNL"


def _cameras(root: Path, env_extra: dict) -> Path:
    env = {**os.environ, **env_extra, "PYTHONWARNINGS": "ignore"}
    subprocess.run([sys.executable, "-c", _CAMERAS_ONLY, str(root)], check=True, env=env, timeout=120)
    return root


def test_demo_index_revision_is_the_same_with_and_without_simd(tmp_path):
    native = _cameras(tmp_path / "native", {})
    baseline = _cameras(tmp_path / "baseline", {"NPY_DISABLE_CPU_FEATURES": _BASELINE})
    expected = json.loads(DEMO_INDEX.read_text())["dataset"]["revision"]
    assert dataset_revision(native, "test") == expected
    assert dataset_revision(baseline, "test") == expected


def _clip(root: Path, cams: Re10kCameras) -> None:
    (root / "test" / "c").mkdir(parents=True)
    write_camera_file(root / "test" / "c.txt", cams)


@pytest.fixture
def cams(tmp_path):
    rng = np.random.default_rng(0)
    n = 6
    q, _ = np.linalg.qr(rng.normal(size=(n, 3, 3)))
    q *= np.sign(np.linalg.det(q))[:, None, None]
    w2c = np.tile(np.eye(4), (n, 1, 1))
    w2c[:, :3, :3], w2c[:, :3, 3] = q, rng.normal(scale=5.0, size=(n, 3))
    K = np.tile(np.array([[0.8, 0, 0.5], [0, 1.4, 0.5], [0, 0, 1.0]]), (n, 1, 1))
    return Re10kCameras(url="synthetic://x", timestamps=np.arange(n) * 33333, K_norm=K, w2c=w2c)


def test_revision_ignores_last_bit_noise_and_sees_real_edits(tmp_path, cams):
    _clip(tmp_path / "a", cams)
    rev = dataset_revision(tmp_path / "a", "test")
    # a few ULPs on every number (the size of the cross-CPU differences), and -0.0 for 0.0
    noisy = np.nextafter(np.nextafter(cams.w2c, np.inf), np.inf)
    noisy[np.abs(cams.w2c) < 1e-300] = -0.0
    _clip(tmp_path / "b", Re10kCameras(cams.url, cams.timestamps, cams.K_norm, noisy))
    assert read_camera_file(tmp_path / "b" / "test" / "c.txt").w2c.tobytes() != cams.w2c.tobytes()
    assert dataset_revision(tmp_path / "b", "test") == rev
    # a translation moved by 10 grid steps is another dataset
    moved = cams.w2c.copy()
    moved[3, 0, 3] += 10 * REVISION_GRID
    _clip(tmp_path / "c", Re10kCameras(cams.url, cams.timestamps, cams.K_norm, moved))
    assert dataset_revision(tmp_path / "c", "test") != rev
    # so is another timestamp
    ts = cams.timestamps.copy()
    ts[-1] += 1
    _clip(tmp_path / "d", Re10kCameras(cams.url, ts, cams.K_norm, cams.w2c))
    assert dataset_revision(tmp_path / "d", "test") != rev
