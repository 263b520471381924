"""conf/metrics selects the metric suite by _target_; the suite builds the benchmarks' metrics."""

from __future__ import annotations

import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from vid3d.config import CONFIG_DIR
from vid3d.evaluation.fvd import FVDWeightsError
from vid3d.evaluation.image_metrics import ImageMetrics
from vid3d.evaluation.metric_suite import Metrics


class CountingSuite(Metrics):
    """A user's own suite, named by metrics._target_."""

    built = 0

    def image(self):
        CountingSuite.built += 1
        return super().image()


def _metrics_cfg(*overrides: str):
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        return compose("eval", overrides=list(overrides)).metrics


def test_the_default_suite_builds_image_metrics_and_no_fvd_without_i3d():
    suite = instantiate(_metrics_cfg("metrics.lpips.net=null", "metrics.device=cpu"), _convert_="all")
    assert type(suite) is Metrics
    image = suite.image()
    assert isinstance(image, ImageMetrics) and image.lpips_unavailable.startswith("disabled")
    assert suite.video() is None


def test_a_missing_i3d_file_is_named(tmp_path):
    suite = instantiate(_metrics_cfg(f"metrics.fvd.i3d={tmp_path / 'nope.pt'}"), _convert_="all")
    with pytest.raises(FVDWeightsError, match="nope.pt"):
        suite.video()


def test_another_suite_is_chosen_by_target():
    cfg = _metrics_cfg(f"metrics._target_={__name__}.CountingSuite", "metrics.lpips.net=null")
    suite = instantiate(cfg, _convert_="all")
    assert isinstance(suite, CountingSuite)
    suite.image()
    assert CountingSuite.built == 1


def test_a_misspelt_metrics_key_fails_at_composition():
    with pytest.raises(Exception, match="lpip"):
        _metrics_cfg("metrics.lpip.net=vgg")
