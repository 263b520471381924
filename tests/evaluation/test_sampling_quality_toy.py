"""benchmarks/sampling_quality.py --model toy (issue 39): the study's second model, the positive-control toy,
on a tiny grid (2 clips, 3 training steps): counted NFE against the solvers' formulas, the camera gap
recomputed independently from samples with each clip's own and the next clip's cameras, the recipe-keyed
cache, and the refusals."""

import json

import numpy as np
import pytest
import torch

from benchmarks import sampling_quality as study
from vid3d.evaluation.positive_control import toy_clip
from vid3d.sampling.video_sampler import VideoSampler

SETTINGS = ("off/edm_euler/2", "on/dpmpp_2m/2", "on/edm_heun/2")
TRAIN_STEPS = 3


def _formula_nfe(solver: str, steps: int, guidance: str) -> int:
    """Network passes per video: one per denoiser call (Heun: no corrector on the last step, to σ = 0),
    doubled by classifier-free guidance (conditional and unconditional rows)."""
    calls = 2 * steps - 1 if solver == "edm_heun" else steps
    return calls * (2 if guidance == "on" else 1)


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("toy")
    argv = ["--model", "toy", "--toy-clips", "2", "--toy-train-steps", str(TRAIN_STEPS),
            "--cache-dir", str(tmp / "cache"), "--out", str(tmp / "toy.json"), "--settings", *SETTINGS]
    result = study.main(argv)
    return tmp, result


def test_toy_rows_count_the_network_evaluations_of_each_solver(toy_run):
    tmp, result = toy_run
    rows = result["rows"]
    # the reference (25 Euler steps with guidance) is always measured, first
    assert set(rows) == {*SETTINGS, "on/edm_euler/25"}
    for name, row in rows.items():
        guidance, solver, steps = name.split("/")
        assert row["nfe"] == _formula_nfe(solver, int(steps), guidance), name
    assert rows["on/edm_euler/25"]["nfe"] == 50 and rows["on/edm_heun/2"]["nfe"] == 6
    on_disk = json.loads((tmp / "toy.json").read_text())
    assert on_disk["model"] == "toy" and on_disk["clips"] == 2 and on_disk["frames_shape"] == [4, 3, 32, 48]
    assert on_disk["recipe"] == {**study.TOY_RECIPE, "steps": TRAIN_STEPS} and on_disk["trained_now"]
    assert [r["step"] for r in on_disk["train_rows"]] == [0, TRAIN_STEPS]
    assert (tmp / "toy.png").stat().st_size > 0 and not (tmp / "sampling_quality.json").exists()


def test_toy_camera_gap_is_the_sampled_gap_recomputed(toy_run):
    """The row's gap = mean over clips of the MSE (frames 1..F-1) with clip i+1's cameras / with its own, the
    videos sampled here again from the cached model with the same seed and solver: what the camera model's
    rows measure (the same run_setting)."""
    tmp, result = toy_run
    recipe = {**study.TOY_RECIPE, "steps": TRAIN_STEPS}
    model, record = study.trained_toy(recipe, tmp / "cache")
    assert not record["trained_now"]  # loaded from the file the study wrote
    rng = np.random.default_rng(study.TOY_CLIP_SEED)
    clips = [toy_clip(rng, recipe["pixels_per_unit"]) for _ in range(2)]
    frames = torch.stack([c["frames"] for c in clips])
    K, c2w = torch.stack([c["K_px"] for c in clips]), torch.stack([c["c2w"] for c in clips])
    sampler = VideoSampler("edm_euler", num_steps=2, guidance_min=1.0, guidance_max=1.0)
    mse = {}
    for name, order in (("own", [0, 1]), ("another", [1, 0])):
        video = sampler(model, frames[:, 0], K[order], c2w[order], generator=torch.Generator().manual_seed(0))
        mse[name] = ((video[:, 1:].double() - frames[:, 1:].double()) ** 2).mean(dim=(1, 2, 3, 4)).numpy()
    row = result["rows"]["off/edm_euler/2"]
    np.testing.assert_allclose(row["per_clip"]["mse_own"], mse["own"], rtol=1e-9)
    np.testing.assert_allclose(row["per_clip"]["mse_another"], mse["another"], rtol=1e-9)
    assert np.abs(mse["another"] / mse["own"] - 1).max() > 1e-7  # the cameras reach the samples at all
    assert row["camera_gap"] == pytest.approx(mse["another"].mean() / mse["own"].mean(), rel=1e-9)


def test_toy_cache_refusals(toy_run, tmp_path, capsys):
    tmp, _ = toy_run
    recipe = {**study.TOY_RECIPE, "steps": TRAIN_STEPS}
    other = study.toy_cache_path(tmp_path, {**recipe, "lr": 2e-3})
    assert other != study.toy_cache_path(tmp_path, recipe)  # a changed recipe is another file
    bad = study.toy_cache_path(tmp_path, recipe)
    bad.write_bytes(b"not safetensors")
    with pytest.raises(SystemExit, match=f"{bad}: not a usable toy cache .*--retrain") as e:
        study.trained_toy(recipe, tmp_path)
    assert "\n" not in str(e.value) and bad.read_bytes() == b"not safetensors"  # refused, left as it was
    bad.unlink()
    bad.mkdir()
    with pytest.raises(SystemExit, match="not a regular file"):
        study.trained_toy(recipe, tmp_path, retrain=True)
    with pytest.raises(SystemExit):
        study.main(["--model", "toy", "--ckpt", "x.safetensors"])
    assert "--model toy takes neither" in capsys.readouterr().err
