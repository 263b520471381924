"""benchmarks/loader_throughput.py (issue 21): the CameraCtrl-style baseline produces vid3d's sample, and
the one command writes its table's numbers to JSON; benchmarks/shuffle_loads.py counts chunk loads."""

import json
import os

import pytest
import torch

from benchmarks import loader_throughput as bench
from benchmarks._loader_common import LoaderSettings
from benchmarks.cameractrl_loader import cameractrl_plucker
from vid3d.data.frames import as_unit_range

F, H, W = 4, 160, 256  # from 180x320 JPEG frames: the 360x640 -> 320x512 geometry at half size


@pytest.fixture(scope="module")
def clip_root(tmp_path_factory):
    from vid3d.data.synthetic import build_synthetic_dataset

    root = tmp_path_factory.mktemp("bench") / "synthetic"
    return build_synthetic_dataset(
        root, num_train=1, num_test=0, num_frames=F, height=180, width=320, workers=1
    )


def test_cameractrl_style_sample_agrees_with_vid3d(clip_root):
    """Same frames, cameras and Plücker maps up to the two resize filters and torchvision's integer resize
    width (int(320 * 160 / 180) = 284 instead of 284.4: fx 0.16 % smaller in the baseline).

    Frames: mean |difference| below 2 grey levels (2 * 2 / 255 in [-1, 1]); measured ~0.85 level. The bound
    is tight enough to see a misalignment: shifting the baseline by one pixel gives > 2x the bound. Plücker
    maps (unit directions and moments at the 20x32 latent pixels) within 2e-3: the fx difference turns rays
    by at most 0.0016 * tan(half field of view) ~ 1e-3 rad, the 8x8 block mean of unit directions is shorter
    than 1 by ~1e-4."""
    names = ("vid3d", bench.BASELINE, "cameractrl_latent_plucker")
    p = bench.make_pipelines(LoaderSettings(clip_root, "train", F, H, W, interval=1), names)
    a, b, c = (p[n][0] for n in names)
    assert a["frame_indices"].tolist() == b["frame_indices"].tolist() == list(range(F))
    assert a["frames"].dtype == torch.uint8 and b["frames"].dtype == torch.float32
    fa, fb = as_unit_range(a["frames"]), b["frames"]
    assert fa.shape == fb.shape == (F, 3, H, W) and fb.min() >= -1 and fb.max() <= 1
    bound = 2 * 2 / 255
    mad = (fa - fb).abs().mean().item()
    mad_shifted = (fa[..., 1:] - fb[..., :-1]).abs().mean().item()
    assert mad < bound < mad_shifted / 2, (mad, mad_shifted)
    Ka, Kb = a["K_px"], b["K_px"]
    torch.testing.assert_close(Kb[:, 0, 0], Ka[:, 0, 0], rtol=3e-3, atol=0)
    torch.testing.assert_close(Kb[:, 1:, :], Ka[:, 1:, :], rtol=0, atol=1e-3)
    torch.testing.assert_close(Kb[:, 0, 2], Ka[:, 0, 2], rtol=0, atol=1e-3)
    torch.testing.assert_close(b["c2w"], a["c2w"], rtol=0, atol=1e-5)
    assert a["plucker"].shape == b["plucker"].shape == (F, 6, H // 8, W // 8)
    torch.testing.assert_close(b["plucker"], a["plucker"], rtol=0, atol=2e-3)
    torch.testing.assert_close(c["plucker"], a["plucker"], rtol=0, atol=2e-3)  # the latent-grid variant
    assert torch.equal(c["frames"], b["frames"])


def test_cameractrl_plucker_matches_vid3d_at_full_resolution():
    """The baseline's full-resolution formulation is vid3d's ``plucker_embedding`` (same pixel centres,
    same [o x d, d] order), checked on random cameras."""
    from vid3d.geometry import plucker_embedding

    g = torch.Generator().manual_seed(0)
    K4 = torch.tensor([[50.0, 55.0, 16.0, 12.0], [40.0, 42.0, 15.0, 11.0]], dtype=torch.float64)
    q, _ = torch.linalg.qr(torch.randn(2, 3, 3, generator=g, dtype=torch.float64))
    q = q * torch.linalg.det(q).sign()[:, None, None]
    c2w = torch.eye(4, dtype=torch.float64).repeat(2, 1, 1)
    c2w[:, :3, :3], c2w[:, :3, 3] = q, torch.randn(2, 3, generator=g, dtype=torch.float64)
    K = torch.zeros(2, 3, 3, dtype=torch.float64)
    K[:, 0, 0], K[:, 1, 1], K[:, 0, 2], K[:, 1, 2], K[:, 2, 2] = (*K4.unbind(-1), 1.0)
    ours = plucker_embedding(K, c2w, 24, 32)
    torch.testing.assert_close(cameractrl_plucker(K4, c2w, 24, 32), ours, rtol=0, atol=1e-12)


def test_one_command_writes_the_table_to_json(tmp_path, capsys):
    out = tmp_path / "dl.json"
    argv = "--clips 2 --frames 3 --source-height 45 --source-width 80 --height 32 --width 48 --rounds 2"
    assert bench.main([*argv.split(), "--out", str(out)]) == 0
    r = json.loads(out.read_text())
    rows = {row["pipeline"]: row for row in r["rows"]}
    assert set(rows) == set(bench.PIPELINES) and "cameractrl" in rows
    assert (
        r["clips"] == 2 and r["rounds"] == 2 and r["workers"] == 0 and r["sample"]["plucker"] == [3, 6, 4, 6]
    )
    assert rows["cameractrl"]["speedup_vs_cameractrl"]["median"] == 1.0
    assert r["command"] == f"python -m benchmarks.loader_throughput {argv} --out {out}"
    assert r["machine"]["cpus"] == os.cpu_count() and list(r)[-2:] == ["machine", "command"]
    for name, row in rows.items():
        times = [rd[name] for rd in r["pass_seconds"]["rounds"]]
        assert row["clips_per_s"] == pytest.approx(2 * len(times) / sum(times), rel=1e-2)
    printed = capsys.readouterr().out
    assert "| vid3d | uint8 |" in printed and "| cameractrl | float32 [-1, 1] |" in printed
    assert bench.main(["--pipelines", "vid3d,nope", "--out", str(out)]) == 2


def test_simulated_chunk_loads_on_known_cases():
    """One rank, one worker: grouped order loads each chunk once (10 chunks of 4 items); a split that is
    one chunk is loaded once per process (2 ranks x 3 workers, every process gets a batch); a full shuffle
    of 40 items in 10 chunks loads at least as often as grouped and at most once per item."""
    from benchmarks.shuffle_loads import simulate_loads

    assert simulate_loads(40, 4, 1, 1, 1, "grouped") == 10
    assert simulate_loads(40, 40, 2, 3, 2, "full") == 6
    full = simulate_loads(40, 4, 1, 1, 1, "full")
    assert 10 <= full <= 40
