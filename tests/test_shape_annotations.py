"""The jaxtyping shape annotations where tensors cross module boundaries (the solvers, ``VideoSampler``, the
camera encoders' ``prepare``) are true: checked at run time with ``jaxtyped(typechecker=beartype)``, a call
with the documented shapes passes and one with swapped or mismatched axes is refused. (vid3d does not check
them in production: they document the conventions and these tests keep them honest.)"""

import inspect
import typing

import pytest
import torch

beartype = pytest.importorskip("beartype").beartype  # the eval extra (make install)
from jaxtyping import TypeCheckError, jaxtyped  # noqa: E402

from vid3d.models.camera_encoder import PluckerEncoder, RTEncoder  # noqa: E402
from vid3d.sampling.samplers import SOLVERS, karras_sigmas  # noqa: E402
from vid3d.sampling.video_sampler import VideoSampler  # noqa: E402


def checked(fn):
    """``fn`` type-checked; a ``torch.no_grad`` wrapper is looked through (its globals are torch's, not the
    module's, where the annotation names live)."""
    return jaxtyped(typechecker=beartype)(inspect.unwrap(fn))


@pytest.mark.parametrize("name", list(SOLVERS))
def test_solvers_keep_the_latent_shape(name):
    x = torch.randn(2, 3, 4, 5, 6, dtype=torch.float64)
    sig = karras_sigmas(3, sigma_max=5.0)
    out = checked(SOLVERS[name])(lambda x, s: 0.5 * x, x, sig)
    assert out.shape == x.shape
    with pytest.raises(TypeCheckError):  # latents are floating point
        checked(SOLVERS[name])(lambda x, s: x, torch.zeros(2, 3, dtype=torch.int64), sig)
    with pytest.raises(TypeCheckError):  # sigmas must be 1-D
        checked(SOLVERS[name])(lambda x, s: x, x, sig[None])


def test_camera_encoders_prepare_shapes():
    K = torch.eye(3).expand(2, 4, 3, 3).clone()
    K[..., 0, 2], K[..., 1, 2] = 4.0, 3.0
    c2w = torch.eye(4).expand(2, 4, 4, 4).clone()
    plucker = checked(PluckerEncoder((8, 16)).prepare)
    assert plucker(K, c2w, 6, 8).shape == (2, 4, 6, 6, 8)
    rt = checked(RTEncoder([8]).prepare)
    assert rt(K, c2w, 6, 8).shape == (2, 4, 12)
    for enc in (plucker, rt):
        with pytest.raises(TypeCheckError):  # intrinsics and poses swapped
            enc(c2w, K, 6, 8)
        with pytest.raises(TypeCheckError):  # poses of 3 frames beside intrinsics of 4
            enc(K, c2w[:, :3], 6, 8)


def test_video_sampler_signature_states_the_conventions():
    hints = typing.get_type_hints(VideoSampler.__call__)
    dims = {k: getattr(hints[k], "dim_str", None) for k in ("first_frame", "K_px", "c2w", "return")}
    assert dims == {
        "first_frame": "batch 3 H W",
        "K_px": "batch frame 3 3",
        "c2w": "batch frame 4 4",
        "return": "batch frame 3 H W",
    }
