"""pose=dust3r: checkpoint loading (safe), the tiny random-init model through the whole path, and the
pose/intrinsics conventions checked with an oracle network that returns exact pointmaps of a known scene.

No DUSt3R weights are used here: nothing in this file measures DUSt3R's accuracy.
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np
import pytest
import torch

pytest.importorskip("mini_dust3r")

from vid3d.evaluation.camera_errors import camera_errors  # noqa: E402
from vid3d.evaluation.pose.dust3r import (  # noqa: E402
    RANDOM_INIT_LABEL,
    TINY_CONFIG,
    Dust3rPoseEstimator,
    build_dust3r_model,
    load_dust3r_state_dict,
    preprocess_frames,
)
from vid3d.geometry import axis_angle_to_matrix  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore")


@pytest.fixture(autouse=True)
def _one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    warnings.simplefilter("ignore")
    yield
    torch.set_num_threads(old)


def _frames(n=4, h=48, w=64, seed=0):
    return (np.random.default_rng(seed).random((n, h, w, 3)) * 255).astype(np.uint8)


def _K(h=48, w=64, f=None):
    f = 0.9 * w if f is None else f
    return np.array([[f, 0, w / 2], [0, f, h / 2], [0, 0, 1.0]])


def test_no_checkpoint_means_the_released_model_and_offline_one_line(tmp_path, monkeypatch):
    import huggingface_hub.constants

    from vid3d.weights import WeightsUnavailable

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    repo = "naver/DUSt3R_ViTLarge_BaseDecoder_512_dpt"
    with pytest.raises(WeightsUnavailable, match=rf"pose\.checkpoint={repo}: .*hf download {repo}"):
        Dust3rPoseEstimator()
    with pytest.raises(ValueError, match="image_size"):
        Dust3rPoseEstimator(checkpoint="x.pth", image_size=64)


def test_preprocess_geometry_matches_dust3r_rules():
    frames = _frames(2, 90, 160)
    imgs, A = preprocess_frames(frames, 512)
    # long side 160 -> 512 (scale 3.2): 288 x 512, already multiples of 16
    assert imgs.shape == (2, 3, 288, 512) and imgs.min() >= -1 and imgs.max() <= 1
    np.testing.assert_allclose(A, [[3.2, 0, 0], [0, 3.2, 0], [0, 0, 1]])
    imgs, A = preprocess_frames(frames, 224)
    # short side 90 -> 224: width round(160 * 224 / 90) = 398, centre crop 224: x0 = 199 - 112 = 87
    assert imgs.shape == (2, 3, 224, 224)
    np.testing.assert_allclose(A, [[398 / 160, 0, -87], [0, 224 / 90, 0], [0, 0, 1]])


def test_random_init_whole_path_shapes_labels_determinism():
    est = Dust3rPoseEstimator(random_init=True, image_size=32, niter=20, known_focal=True)
    assert est.name == "dust3r[random-init]" and est.describe()["weights"] == RANDOM_INIT_LABEL
    assert type(est.model).__name__ == "AsymmetricCroCo3DStereo" and est.model.head_type == "linear"
    frames, K = _frames(4, 48, 72), _K(48, 72)  # resized by exactly 2/3 on both axes
    r1 = est.estimate(frames, K)
    r2 = Dust3rPoseEstimator(random_init=True, image_size=32, niter=20, known_focal=True).estimate(frames, K)
    assert r1.success, r1.reason
    assert r1.reason.startswith(RANDOM_INIT_LABEL) and r1.n_registered == 4
    assert r1.c2w.shape == (4, 4, 4) and r1.c2w.dtype == np.float64 and r1.K_px.shape == (3, 3)
    R = r1.c2w[:, :3, :3]
    np.testing.assert_allclose(R @ R.transpose(0, 2, 1), np.broadcast_to(np.eye(3), R.shape), atol=1e-5)
    np.testing.assert_allclose(np.linalg.det(R), 1.0, atol=1e-5)
    np.testing.assert_allclose(r1.c2w[:, 3], np.tile([0, 0, 0, 1.0], (4, 1)))
    # known focal: the frames' focal goes to the DUSt3R resolution (x 32/48) and back unchanged
    np.testing.assert_allclose(np.diag(r1.K_px), np.diag(K), rtol=1e-5)
    np.testing.assert_allclose(r1.c2w, r2.c2w, rtol=0, atol=1e-6)  # same seed and weights: same numbers
    # fewer than two frames: a failure with a reason, not an exception
    r = est.estimate(frames[:1], K)
    assert not r.success and "at least 2 frames" in r.reason and RANDOM_INIT_LABEL in r.reason


def _room_points(K_px, c2w, h, w, lo=(-3.0, -2.0, -1.0), hi=(3.0, 2.0, 6.0)):
    """World points seen by each pixel (centre at +0.5) of an OpenCV camera inside an axis-aligned box."""
    lo, hi = np.array(lo), np.array(hi)
    v, u = np.meshgrid(np.arange(h) + 0.5, np.arange(w) + 0.5, indexing="ij")
    d = np.stack([u, v, np.ones_like(u)], -1).reshape(-1, 3) @ np.linalg.inv(K_px).T @ c2w[:3, :3].T
    o = c2w[:3, 3]
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(d > 0, (hi - o) / d, (lo - o) / d)
    t[~np.isfinite(t)] = np.inf
    return (o + t.min(1, keepdims=True) * d).reshape(h, w, 3)


class OracleDust3r(torch.nn.Module):
    """Stands in for the network: exact pointmaps of both views in view 1's camera frame (DUSt3R's
    output contract), high constant confidence. ``nan=True`` returns NaN points."""

    def __init__(self, world_pts, c2w, nan=False):
        super().__init__()
        self.world_pts = world_pts  # (n, h, w, 3)
        self.w2c = np.linalg.inv(c2w)
        self.nan = nan
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    def forward(self, view1, view2):
        p1, p2 = [], []
        for i, j in zip(view1["idx"], view2["idx"]):
            R, t = self.w2c[i][:3, :3], self.w2c[i][:3, 3]
            p1.append(self.world_pts[i] @ R.T + t)
            p2.append(self.world_pts[j] @ R.T + t)
        p1 = torch.tensor(np.stack(p1), dtype=torch.float32)
        p2 = torch.tensor(np.stack(p2), dtype=torch.float32)
        if self.nan:
            p1[:] = float("nan")
        conf = torch.full(p1.shape[:3], 10.0)
        return {"pts3d": p1, "conf": conf}, {"pts3d_in_other_view": p2, "conf": conf.clone()}


def _walk(n):
    c2w = np.tile(np.eye(4), (n, 1, 1))
    for i in range(n):
        c2w[i, :3, :3] = np.asarray(axis_angle_to_matrix(np.array([0.0, 1, 0]), np.radians(5.0 * i)))
        c2w[i, :3, 3] = [0.25 * i, 0.05 * i, 0.15 * i]
    return c2w


def test_oracle_pointmaps_give_back_opencv_c2w_and_intrinsics():
    n, h, w = 4, 48, 64
    K, gt = _K(h, w), _walk(n)
    _, A = preprocess_frames(_frames(1, h, w), 32)
    K_d = A @ K  # intrinsics at DUSt3R's 32 x 32 input (pixel centres at +0.5)
    pts = np.stack([_room_points(K_d, c, 32, 32) for c in gt])
    est = Dust3rPoseEstimator(model=OracleDust3r(pts, gt), image_size=32, niter=300)
    r = est.estimate(_frames(n, h, w), K)
    assert r.success, r.reason
    err = camera_errors(r.c2w, gt)
    # 5 deg/frame yaw: reading c2w as w2c (or flipping axes) would give >= 10 deg/frame
    assert err["rot_err_deg_per_frame"] < 0.5, err
    assert err["trans_err_per_frame"] < 0.05, err
    # focal recovered at the frames' resolution (57.6 px); principal point = DUSt3R's image centre
    assert r.K_px[0, 0] == pytest.approx(K[0, 0], rel=0.05)
    assert r.K_px[0, 2] == pytest.approx(w / 2, abs=1.0) and r.K_px[1, 2] == pytest.approx(h / 2, abs=1.0)


def test_non_finite_network_output_is_a_failure_with_reason():
    n = 3
    gt = _walk(n)
    pts = np.ones((n, 32, 32, 3))
    est = Dust3rPoseEstimator(model=OracleDust3r(pts, gt, nan=True), image_size=32, niter=5)
    r = est.estimate(_frames(n), _K())
    assert not r.success and r.c2w is None and r.n_registered == 0
    assert "DUSt3R error" in r.reason or "non-finite" in r.reason


def test_checkpoint_round_trip_state_dict_training_dict_and_safetensors(tmp_path):
    torch.manual_seed(1)
    model = build_dust3r_model(TINY_CONFIG)
    sd = model.state_dict()
    torch.save(sd, tmp_path / "plain.pth")
    # DUSt3R's training checkpoint layout: {"model": ..., "args": Namespace(model="<python string>")}
    marker = tmp_path / "evaluated"
    code = f"open({str(marker)!r}, 'w')"
    torch.save({"model": sd, "args": argparse.Namespace(model=code), "epoch": 3}, tmp_path / "train.pth")
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in sd.items()}, str(tmp_path / "m.safetensors"))
    for name in ("plain.pth", "train.pth", "m.safetensors"):
        est = Dust3rPoseEstimator(checkpoint=tmp_path / name, model_config=TINY_CONFIG, image_size=224)
        assert est.name == "dust3r" and est.describe()["weights"] == str(tmp_path / name)
        for k, v in est.model.state_dict().items():
            assert torch.equal(v, sd[k]), (name, k)
    assert not marker.exists()  # the args string was never evaluated
    # the state dict of another configuration is refused, naming the mismatch
    with pytest.raises(ValueError, match="does not match the model configuration"):
        Dust3rPoseEstimator(checkpoint=tmp_path / "plain.pth", image_size=224,
                            model_config={**TINY_CONFIG, "enc_embed_dim": 64})
    with pytest.raises(ValueError, match="does not match the model configuration"):
        Dust3rPoseEstimator(checkpoint=tmp_path / "plain.pth", image_size=224,
                            model_config={**TINY_CONFIG, "enc_depth": 3})
    with pytest.raises(FileNotFoundError, match="pose.checkpoint"):
        Dust3rPoseEstimator(checkpoint=tmp_path / "missing.pth")


class _Evil:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_refuses_pickled_objects(tmp_path):
    marker = tmp_path / "opened"
    torch.save({"model": {"w": torch.zeros(1)}, "hook": _Evil(str(marker))}, tmp_path / "evil.pth")
    with pytest.raises(ValueError, match="weights_only"):
        load_dust3r_state_dict(tmp_path / "evil.pth")
    assert not marker.exists()
    torch.save({"not": "tensors"}, tmp_path / "junk.pth")
    with pytest.raises(ValueError, match="state dict"):
        load_dust3r_state_dict(tmp_path / "junk.pth")


def test_pose_config_instantiates(monkeypatch):
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    from vid3d.config import CONFIG_DIR

    monkeypatch.delenv("DUST3R_CHECKPOINT", raising=False)
    cfg = OmegaConf.load(CONFIG_DIR / "pose" / "dust3r.yaml")
    assert cfg.checkpoint is None and cfg.image_size in (224, 512)
    with pytest.raises(Exception, match=r"pose\.checkpoint"):  # hydra wraps the ValueError
        instantiate(cfg)
    est = instantiate(cfg, random_init=True, image_size=32, niter=2, model_config={"enc_depth": 1})
    assert est.describe()["weights"] == RANDOM_INIT_LABEL and len(est.model.enc_blocks) == 1


def test_hub_safetensors_without_tied_aliases_loads(tmp_path):
    """The hub's model.safetensors (written by safetensors' save_model) stores each tied tensor once; the
    DPT heads' ``scratch.layer_rn`` aliases are absent from the file, yet every weight must load. The
    released 512 model has the DPT head; this is the same class at a tiny width (dec_depth 12 for DPT)."""
    from safetensors.torch import load_file, save_model

    config = {**TINY_CONFIG, "head_type": "dpt", "dec_depth": 12}
    torch.manual_seed(2)
    model = build_dust3r_model(config)
    save_model(model, str(tmp_path / "model.safetensors"))
    stored = load_file(str(tmp_path / "model.safetensors"))
    assert len(stored) < len(model.state_dict())  # aliases dropped, as in the hub file
    est = Dust3rPoseEstimator(checkpoint=tmp_path, model_config=config, image_size=224)
    for k, v in est.model.state_dict().items():
        assert torch.equal(v, model.state_dict()[k]), k
    # a genuinely missing weight is still refused
    del stored["downstream_head1.dpt.head.0.weight"]
    from safetensors.torch import save_file

    save_file(stored, str(tmp_path / "cut.safetensors"))
    with pytest.raises(ValueError, match="1 missing"):
        Dust3rPoseEstimator(checkpoint=tmp_path / "cut.safetensors", model_config=config, image_size=224)


def test_released_configuration_has_the_released_size():
    """RELEASED_512_CONFIG builds DUSt3R_ViTLarge_BaseDecoder_512_dpt's architecture: 571,171,208 unique
    float32 parameters = the 2.28 GB of the hub's model.safetensors (built on the meta device: no memory)."""
    from vid3d.evaluation.pose.dust3r import RELEASED_512_CONFIG

    with torch.device("meta"):
        model = build_dust3r_model(RELEASED_512_CONFIG)
    n = sum(p.numel() for p in model.parameters())
    assert n == 571_171_208
    assert round(n * 4 / 1e9, 2) == 2.28


def test_hub_id_loads_from_the_local_cache_only(tmp_path, monkeypatch):
    """pose.checkpoint=<owner>/<name> reads the snapshot in the local Hugging Face cache (the cache's
    layout: models--owner--name/{refs/main, snapshots/<commit>/model.safetensors}) without going online;
    offline, a hub id not in the cache is one line naming the repository and the fetch command."""
    import huggingface_hub.constants
    from safetensors.torch import save_file

    cache = tmp_path / "hub"
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    torch.manual_seed(3)
    sd = build_dust3r_model(TINY_CONFIG).state_dict()
    repo = cache / "models--someone--tiny-dust3r"
    commit = "0123456789abcdef0123456789abcdef01234567"
    (repo / "snapshots" / commit).mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    weights = repo / "snapshots" / commit / "model.safetensors"
    save_file({k: v.contiguous() for k, v in sd.items()}, str(weights))
    est = Dust3rPoseEstimator(checkpoint="someone/tiny-dust3r", model_config=TINY_CONFIG, image_size=224)
    for k, v in est.model.state_dict().items():
        assert torch.equal(v, sd[k]), k
    from vid3d.weights import WeightsUnavailable

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(WeightsUnavailable, match=r"pose\.checkpoint=someone/not-cached: .*hf download some"):
        Dust3rPoseEstimator(checkpoint="someone/not-cached", model_config=TINY_CONFIG, image_size=224)
