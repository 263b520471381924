"""One typed source of truth for the sampler's options (issue 36.5): ``vid3d.config_schema.SamplerOptions``
feeds the config group (conf/sampler, schema/sampler), ``VideoSampler`` and the exported pipeline's stored
settings, and the solver names agree with the solver functions."""

import dataclasses
import functools

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException
from hydra.utils import instantiate

from vid3d.config import CONFIG_DIR
from vid3d.config_schema import SOLVER_NAMES, SamplerOptions
from vid3d.sampling.pipeline import CameraVideoPipeline
from vid3d.sampling.sampler_settings import SamplerSettingsRefused, check_sampler_settings
from vid3d.sampling.samplers import SOLVERS, sample_ddim, sample_edm_heun
from vid3d.sampling.video_sampler import VideoSampler

DEFAULT = SamplerOptions()


def _compose(config: str, overrides: list[str]):
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        return compose(config, overrides=overrides)


def test_solver_names_match_the_functions():
    assert tuple(SOLVERS) == SOLVER_NAMES
    assert set(check_sampler_settings({}, "x")) == set()  # absent keys are not filled by the check
    fields = [f.name for f in dataclasses.fields(SamplerOptions)]
    for key in fields:  # every option is a key the stored-settings check knows ...
        check_sampler_settings({key: getattr(DEFAULT, key)}, "x")
    with pytest.raises(SamplerSettingsRefused, match="unknown"):  # ... and nothing else is
        check_sampler_settings({"steps": 25}, "x")


@pytest.mark.parametrize("option", ["default", *SOLVER_NAMES])
def test_config_group_takes_every_default_from_the_dataclass(option):
    """Each conf/sampler option equals SamplerOptions but for the solver it names."""
    sampler = instantiate(_compose("sample", ["ckpt=x", f"sampler={option}"]).sampler)
    solver = DEFAULT.solver if option == "default" else option
    assert sampler.options == dataclasses.replace(DEFAULT, solver=solver)
    assert sampler.solver is SOLVERS[solver]


def test_entry_points_default_to_the_dataclass():
    for config in ("eval", "sample"):  # their defaults lists pick sampler=default
        assert instantiate(_compose(config, ["ckpt=x"]).sampler).options == DEFAULT


def test_a_misspelt_or_mistyped_sampler_option_fails_at_composition():
    for bad in ("sampler.num_step=8", "sampler.num_steps=eight", "sampler.solver.eta=1"):
        with pytest.raises(ConfigCompositionException):
            _compose("eval", [bad])
    cfg = _compose("eval", ["sampler.solver=euler"])  # a string, but no solver of that name
    with pytest.raises(Exception) as e:
        instantiate(cfg.sampler)
    cause = e.value
    while cause.__cause__ is not None:
        cause = cause.__cause__
    assert isinstance(cause, SamplerSettingsRefused) and "'solver'" in str(cause) and "\n" not in str(cause)


def test_video_sampler_defaults_and_checks():
    s = VideoSampler()
    assert s.options == DEFAULT and s.num_steps == DEFAULT.num_steps
    assert VideoSampler.from_options(dataclasses.replace(DEFAULT, num_steps=7)).num_steps == 7
    own = VideoSampler(sample_edm_heun, num_steps=3)  # a function: its name is found ...
    assert own.options.solver == "edm_heun" and own.solver is sample_edm_heun

    def mine(denoiser, x_T, sigmas, progress=None):
        return x_T

    assert VideoSampler(mine).options.solver == "custom"  # ... or it is a custom one
    ddim = VideoSampler("ddim", eta=1.0)
    assert isinstance(ddim.solver, functools.partial) and ddim.solver.func is sample_ddim
    assert ddim.solver.keywords == {"eta": 1.0}
    for kw in ({"num_steps": 0}, {"sigma_max": float("nan")}, {"solver": "edm_euler", "eta": 0.5}):
        with pytest.raises(SamplerSettingsRefused, match=f"'{next(reversed(kw))}'"):
            VideoSampler(**kw)


def test_exported_pipeline_stores_the_dataclass_defaults():
    pipe = CameraVideoPipeline(torch.nn.Linear(1, 1), {"_target_": "unused"})
    assert pipe.sampler == dataclasses.asdict(DEFAULT)
    pipe = CameraVideoPipeline(torch.nn.Linear(1, 1), None, {"num_steps": 8, "solver": "dpmpp_2m"})
    assert pipe.sampler == dataclasses.asdict(dataclasses.replace(DEFAULT, num_steps=8, solver="dpmpp_2m"))
    with pytest.raises(SamplerSettingsRefused, match="'solver'"):
        CameraVideoPipeline(torch.nn.Linear(1, 1), None, {"solver": "dpm"})
