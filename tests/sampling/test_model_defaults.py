"""A checkpoint's own sampler defaults (vid3d/sampling/model_defaults.py, issue 37): read from the manifest
beside the weights only when it names that file with its hash, checked like any stored sampler settings,
applied under the command line's settings, and what sample.py / eval.py build for the committed CPU model."""

import hashlib
import json
import logging
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from vid3d.config import CONFIG_DIR
from vid3d.config_schema import SamplerOptions
from vid3d.sampling.model_defaults import (
    apply_model_sampler_defaults,
    apply_sampler_defaults,
    model_sampler_defaults,
    sampler_keys_in,
)
from vid3d.sampling.sampler_settings import SamplerSettingsRefused

ROOT = Path(__file__).resolve().parents[2]
ASSET = ROOT / "assets" / "cpu_camera_control" / "epipolar_32x48_hx3big.safetensors"


def _checkpoint(tmp_path: Path, sampler, sha: str | None = None, name: str | None = None) -> Path:
    ckpt = tmp_path / "m.safetensors"
    ckpt.write_bytes(b"not really weights")
    manifest = {"file": name or ckpt.name, "sha256": sha or hashlib.sha256(ckpt.read_bytes()).hexdigest(),
                "sampler": sampler}
    ckpt.with_suffix(".json").write_text(json.dumps(manifest))
    return ckpt


def test_manifest_defaults_only_for_the_file_and_hash_it_names(tmp_path, caplog):
    ckpt = _checkpoint(tmp_path, {"sigma_min": 1.0})
    settings, manifest = model_sampler_defaults(ckpt)
    assert settings == {"sigma_min": 1.0} and manifest == ckpt.with_suffix(".json")
    other = _checkpoint(tmp_path, {"sigma_min": 1.0}, name="other.safetensors")
    assert model_sampler_defaults(other) == ({}, None)
    with caplog.at_level(logging.WARNING, logger="vid3d"):
        assert model_sampler_defaults(_checkpoint(tmp_path, {"sigma_min": 1.0}, sha="0" * 64)) == ({}, None)
    assert "not m.safetensors's" in caplog.text
    assert model_sampler_defaults(tmp_path / "absent.safetensors") == ({}, None)


def test_bad_manifest_settings_are_refused_in_one_line(tmp_path):
    with pytest.raises(SamplerSettingsRefused, match=r"m\.json: sampler setting 'sigma_min' refused"):
        model_sampler_defaults(_checkpoint(tmp_path, {"sigma_min": -1.0}))
    with pytest.raises(SamplerSettingsRefused, match="'sigma_mn' refused: unknown"):
        model_sampler_defaults(_checkpoint(tmp_path, {"sigma_mn": 1.0}))


def test_command_line_and_presets_win_over_the_model_default():
    sampler = {"sigma_min": SamplerOptions.sigma_min, "num_steps": 25, "rho": SamplerOptions.rho}
    # num_steps differs from the global default (a preset or the user set it): kept; rho named: kept
    applied = apply_sampler_defaults(sampler, {"sigma_min": 1.0, "num_steps": 8, "rho": 3.0}, {"rho"})
    assert applied == {"sigma_min": 1.0} and sampler == {"sigma_min": 1.0, "num_steps": 25, "rho": 7.0}
    assert sampler_keys_in(["sampler.sigma_min=0.002", "+sampler.rho=5", "seed=3", "sampler=ddim"]) == {
        "sigma_min", "rho"}


def _sample_cfg(overrides):
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        return compose("sample", overrides=[f"ckpt={ASSET}", *overrides])


def test_the_committed_model_samples_with_its_own_guidance_by_default():
    manifest = json.loads(ASSET.with_suffix(".json").read_text())
    # the measured default (experiments/cpu_camera_control/README.md): CFG rising to 1.5, not 3
    assert manifest["sampler"] == {"guidance_max": 1.5} != {"guidance_max": SamplerOptions.guidance_max}
    cfg = _sample_cfg([])
    assert apply_model_sampler_defaults(cfg, []) == {"guidance_max": 1.5}
    sampler = instantiate(cfg.sampler)
    assert (sampler.guidance_min, sampler.guidance_max) == (1.0, 1.5)
    assert (sampler.num_steps, sampler.sigma_min) == (SamplerOptions.num_steps, SamplerOptions.sigma_min)

    # the solver gets the Karras schedule of the defaults; the guided denoiser's scale rises from 1 at frame 0
    # to 1.5 at the last frame: D_u + w (D_c - D_u) per frame, checked with the model's two passes
    from vid3d.models.checkpoint import load_model

    model = load_model(ASSET)
    seen, passes = [], []
    denoise = model.denoise

    def recording(x, sigma, cond):
        out = denoise(x, sigma, cond)
        passes.append(out)
        return out

    def one_call(denoiser, x_T, sigmas, progress=None):
        seen.append(torch.as_tensor(sigmas))
        seen.append(denoiser(x_T, torch.full((x_T.shape[0],), float(sigmas[1]))))
        return x_T

    model.denoise = recording
    sampler.solver = one_call
    sampler(model, torch.zeros(1, 3, 32, 48), torch.eye(3).expand(1, 8, 3, 3).clone(),
            torch.eye(4).expand(1, 8, 4, 4).clone(), generator=torch.Generator().manual_seed(0))
    (both,) = passes  # one batched pass: [unconditional; conditional]
    d_u, d_c = both.double().chunk(2)
    w = torch.linspace(1.0, 1.5, 8, dtype=torch.float64).view(1, 8, 1, 1, 1)
    assert torch.allclose(seen[1].double(), d_u + w * (d_c - d_u), atol=1e-5)
    sig = seen[0]
    assert len(sig) == SamplerOptions.num_steps + 1 and float(sig[-1]) == 0.0
    assert float(sig[-2]) == pytest.approx(SamplerOptions.sigma_min, rel=1e-9)
    assert float(sig[0]) == pytest.approx(SamplerOptions.sigma_max, rel=1e-9)

    # named on the command line, the global default guidance is kept
    words = [f"sampler.guidance_max={SamplerOptions.guidance_max}"]
    cfg = _sample_cfg(words)
    assert apply_model_sampler_defaults(cfg, words) == {}
    assert cfg.sampler.guidance_max == SamplerOptions.guidance_max
    assert instantiate(cfg.sampler).guidance_max == SamplerOptions.guidance_max


def test_the_studio_starts_from_the_model_guidance(tmp_path):
    from vid3d.studio.runner import Studio

    studio = Studio(ASSET, out=tmp_path / "studio")
    assert studio.guidance_defaults() == {"guidance_min": 1.0, "guidance_max": 1.5}
    assert studio.base_request().guidance_max == 1.5
    assert studio.base_request(guidance_max=2.5).guidance_max == 2.5  # the page's slider wins
