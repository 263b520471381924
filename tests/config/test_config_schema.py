"""The eval / metrics / overlap key bags are typed (vid3d/config_schema.py): a misspelt key in a config file
or a wrong type on the command line fails at composition; the YAML's documented values fill the schema."""

import pytest
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf

from vid3d.config import CONFIG_DIR
from vid3d.config_schema import EvalOptions, MetricsOptions, OverlapOptions


def _compose(overrides):
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        return compose("eval", overrides=overrides)


def test_schemas_type_the_composed_nodes_and_yaml_values_fill_them():
    cfg = _compose(["overlap=small"])
    assert OmegaConf.get_type(cfg.eval) is EvalOptions
    assert OmegaConf.get_type(cfg.metrics) is MetricsOptions
    assert OmegaConf.get_type(cfg.overlap) is OverlapOptions
    assert cfg.overlap.bucket == "small" and cfg.overlap.min == 0.05 and cfg.overlap.max == 0.3
    assert cfg.eval.camera_gap.sigmas == [0.2, 1.0, 5.0] and cfg.metrics.lpips.net == "alex"
    assert cfg.overlap.height == cfg.data.height  # interpolations keep working in typed fields


@pytest.mark.parametrize(
    "override", ["eval.trials=abc", "eval.camera_gap.max_clips=many", "overlap.num_targets=x"]
)
def test_wrong_types_fail_at_composition(override):
    with pytest.raises(ConfigCompositionException):
        _compose([override])


def test_a_misspelt_key_in_a_config_file_fails(tmp_path):
    """A protocol file with `eval.trails` (for trials) is refused, not silently added."""
    import shutil

    conf = tmp_path / "conf"
    shutil.copytree(CONFIG_DIR, conf)
    typo = "# @package _global_\nprotocol:\n  name: typo\neval:\n  trails: 5\n"
    (conf / "protocol" / "typo.yaml").write_text(typo)
    with initialize_config_dir(str(conf), version_base="1.3"):
        with pytest.raises(ConfigCompositionException, match="trails"):
            compose("eval", overrides=["protocol=typo"])
        assert compose("eval", overrides=["protocol=cami2v"]).eval.trials == 5
