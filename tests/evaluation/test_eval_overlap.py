"""Overlap estimators: geometric co-visibility against analytic values; RoMa plumbing and refusals."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vid3d.evaluation.overlap import GeometricOverlap, OverlapView, covisible_mask
from vid3d.evaluation.overlap.roma import RomaOverlap, RomaWeightsMissing, ratios_from_certainty

H, W, FX, D = 48, 64, 80.0, 4.0
K = np.array([[FX, 0, W / 2], [0, FX, H / 2], [0, 0, 1.0]])


def view(tx: float = 0.0, ty: float = 0.0, depth: np.ndarray | None = None) -> OverlapView:
    c2w = np.eye(4)
    c2w[:3, 3] = [tx, ty, 0.0]
    return OverlapView(K_px=K, c2w=c2w, depth=np.full((H, W), D) if depth is None else depth)


def shift_to_translation(pixels: float) -> float:
    """Sideways camera translation that shifts a fronto-parallel plane at depth D by ``pixels``."""
    return pixels * D / FX


def test_identical_views_overlap_fully():
    r = GeometricOverlap().estimate(view(), view())
    assert r.ratio_12 == r.ratio_21 == r.overlap == 1.0


@pytest.mark.parametrize("shift_px", [8, 16, 40])
def test_sideways_translation_over_plane_matches_analytic(shift_px):
    # Two fronto-parallel cameras over a plane; camera 2 moved sideways by shift/W of the footprint:
    # exactly W - shift columns are seen by both, in both directions -> overlap = 1 - shift / W.
    r = GeometricOverlap().estimate(view(), view(tx=shift_to_translation(shift_px)))
    assert r.ratio_12 == pytest.approx(1 - shift_px / W, abs=1e-12)
    assert r.ratio_21 == pytest.approx(1 - shift_px / W, abs=1e-12)
    assert r.overlap == pytest.approx(1 - shift_px / W, abs=1e-12)


def test_diagonal_translation_is_product_of_axes():
    r = GeometricOverlap().estimate(view(), view(tx=shift_to_translation(16), ty=shift_to_translation(12)))
    assert r.overlap == pytest.approx((1 - 16 / W) * (1 - 12 / H), abs=1e-12)


def test_no_overlap_when_footprints_are_disjoint():
    assert GeometricOverlap().estimate(view(), view(tx=shift_to_translation(W + 5))).overlap == 0.0


def test_occluder_in_view_2_hides_points_of_view_1():
    # View 2 sees a nearer occluder (depth D/2) in its 8 leftmost columns. Points of view 1 landing there
    # (its columns 16..23) are hidden: ratio_12 = (64 - 16 - 8) / 64. The occluder's own points project
    # into view 1 (at columns 32.5..40.5, in front of the plane): they stay visible, so ratio_21 = 48 / 64.
    d2 = np.full((H, W), D)
    d2[:, :8] = D / 2
    r = GeometricOverlap().estimate(view(), view(tx=shift_to_translation(16), depth=d2))
    assert r.ratio_12 == pytest.approx(40 / 64, abs=1e-12)
    assert r.ratio_21 == pytest.approx(48 / 64, abs=1e-12)
    assert r.overlap == pytest.approx(40 / 64, abs=1e-12)


def test_pixels_without_surface_are_never_valid():
    d1 = np.full((H, W), D)
    d1[:12] = 0.0  # sky in the top quarter of view 1
    m = covisible_mask(view(depth=d1), view())
    assert not m[:12].any() and m[12:].all()


def test_depth_tolerance_controls_occlusion():
    d2 = np.full((H, W), D * 0.995)  # a surface slightly nearer than the plane: within 1% tolerance
    assert GeometricOverlap(rel_tol=0.01).estimate(view(), view(depth=d2)).ratio_12 == 1.0
    assert GeometricOverlap(rel_tol=0.0, abs_tol=0.0).estimate(view(), view(depth=d2)).ratio_12 == 0.0


def test_geometric_needs_depth():
    with pytest.raises(ValueError, match="needs depth"):
        GeometricOverlap().estimate(OverlapView(K_px=K, c2w=np.eye(4)), view())


# ---------------------------------------------------------------------------------------------- RoMa
def test_roma_without_weights_offline_names_the_files_and_the_fetch_command(tmp_path, monkeypatch):
    from vid3d.weights import WeightsUnavailable

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(WeightsUnavailable, match=r"overlap\.roma\.weights: roma_outdoor\.pth .*fetch roma_"):
        RomaOverlap()
    with pytest.raises(WeightsUnavailable, match=r"overlap\.roma\.dinov2_weights: dinov2_vitl14_pretrain"):
        RomaOverlap(weights=__file__)


def test_roma_refuses_missing_weight_file(tmp_path):
    with pytest.raises(RomaWeightsMissing, match=r"overlap\.roma\.weights=.*does not exist"):
        RomaOverlap(weights=str(tmp_path / "nope.pth"), dinov2_weights=__file__)


def test_roma_checks_a_given_path_before_fetching_the_other(tmp_path, monkeypatch):
    import vid3d.weights

    def no_fetch(*a, **k):
        raise AssertionError("fetched a file before checking the path the user gave")

    monkeypatch.setattr(vid3d.weights, "fetch_url", no_fetch)
    with pytest.raises(RomaWeightsMissing, match=r"overlap\.roma\.weights=.*nope\.pth: file does not exist"):
        RomaOverlap(weights=str(tmp_path / "nope.pth"))
    with pytest.raises(RomaWeightsMissing, match=r"overlap\.roma\.dinov2_weights=.*dino\.pth: file does not"):
        RomaOverlap(dinov2_weights=str(tmp_path / "dino.pth"))


def test_certainty_halves_are_directions_and_threshold_is_strict():
    c = torch.zeros(1, 10, 2 * 8)
    c[0, :5, :8] = 0.9  # half of A->B valid
    c[0, :, 8:] = 0.5  # all of B->A valid ...
    c[0, 0, 8:] = 0.005  # ... except one row exactly at the threshold (not > 0.005)
    r12, r21 = ratios_from_certainty(c, 0.005)
    assert r12 == pytest.approx(0.5) and r21 == pytest.approx(0.9)


class FakeMatcher:
    """romatch's match() interface with a known certainty layout."""

    def __init__(self, left: float, right: float) -> None:
        self.left, self.right, self.calls = left, right, []

    def match(self, im_A, im_B, device=None):
        self.calls.append((im_A.size, im_B.size))
        h, w = 20, 30
        cert = torch.zeros(1, h, 2 * w)
        cert[0, : int(self.left * h), :w] = 0.3
        cert[0, : int(self.right * h), w:] = 0.3
        return torch.zeros(1, h, 2 * w, 4), cert


def test_roma_estimate_plumbing_with_a_stand_in_matcher():
    img = np.zeros((24, 32, 3), np.uint8)
    m = FakeMatcher(left=0.6, right=0.25)
    r = RomaOverlap(matcher=m).estimate(OverlapView(image=img), OverlapView(image=img))
    assert (r.ratio_12, r.ratio_21, r.overlap) == pytest.approx((0.6, 0.25, 0.25))
    assert m.calls == [((32, 24), (32, 24))]


@pytest.mark.slow
def test_roma_random_init_model_end_to_end(tmp_path, monkeypatch):
    """The real romatch model built from local (random) weight files; only the plumbing is checked."""
    romatch = pytest.importorskip("romatch")
    from romatch.models.matcher import RegressionMatcher
    from romatch.models.model_zoo import roma_models
    from romatch.models.transformer import vit_large

    dino = vit_large(patch_size=14, img_size=518, init_values=1.0, ffn_layer="mlp", block_chunks=0)
    torch.save(dino.state_dict(), tmp_path / "dinov2.pth")
    with monkeypatch.context() as mp:  # one build without loading, only to write a random checkpoint file
        mp.setattr(RegressionMatcher, "load_state_dict", lambda self, sd, strict=True: None)
        model = roma_models.roma_model(
            resolution=(112, 112),
            upsample_preds=True,
            upsample_res=(112, 112),
            device="cpu",
            weights=None,
            dinov2_weights=dino.state_dict(),
            use_custom_corr=False,
        )
    torch.save(model.state_dict(), tmp_path / "roma.pth")
    del model, dino
    est = RomaOverlap(
        str(tmp_path / "roma.pth"),
        str(tmp_path / "dinov2.pth"),
        coarse_res=112,
        upsample_res=112,
        device="cpu",
    )
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)
    r = est.estimate(OverlapView(image=img), OverlapView(image=img))
    assert 0.0 <= r.overlap <= 1.0 and romatch is not None
