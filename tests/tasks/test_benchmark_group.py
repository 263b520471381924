"""eval.py's benchmark is a config group whose _target_ is the benchmark class (no task string)."""

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from vid3d.config import CONFIG_DIR
from vid3d.tasks.evaluate import evaluate


def _eval_cfg(overrides):
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        return compose("eval", overrides=overrides)


@pytest.mark.parametrize(
    "overrides, target",
    [
        ([], "vid3d.tasks.camera_benchmark.CameraBenchmark"),
        (["benchmark=camera"], "vid3d.tasks.camera_benchmark.CameraBenchmark"),
        (["overlap=small"], "vid3d.tasks.sparse_benchmark.SparseBenchmark"),
        (["overlap=all"], "vid3d.tasks.sparse_benchmark.SparseBenchmark"),
    ],
)
def test_overlap_bucket_selects_the_sparse_benchmark(overrides, target):
    cfg = _eval_cfg(overrides)
    assert cfg.benchmark._target_ == target
    assert "task" not in cfg
    # the image metrics no longer reach eval.yaml only through the overlap group
    assert cfg.metrics.lpips.net == "alex" and "fvd" in cfg.metrics


class RecordingBenchmark:
    """A benchmark defined outside vid3d: evaluate() must hand it the whole eval config."""

    seen: list = []

    def __init__(self, tag: str) -> None:
        self.tag = tag

    def run(self, cfg):
        RecordingBenchmark.seen.append((self.tag, cfg.seed))
        return {"tag": self.tag}


def test_evaluate_instantiates_the_benchmark_class_and_runs_it():
    cfg = _eval_cfg(["seed=5"])
    OmegaConf.set_struct(cfg, False)
    cfg.benchmark = {"_target_": f"{__name__}.RecordingBenchmark", "tag": "custom"}
    assert evaluate(cfg) == {"tag": "custom"}
    assert RecordingBenchmark.seen[-1] == ("custom", 5)


def test_evaluate_without_a_benchmark_says_how_to_choose_one():
    cfg = _eval_cfg([])
    OmegaConf.set_struct(cfg, False)
    cfg.benchmark = None
    with pytest.raises(ValueError, match="benchmark=camera"):
        evaluate(cfg)


def test_overlap_estimator_is_built_from_its_target(tmp_path, monkeypatch):
    from vid3d.evaluation.overlap.geometric import GeometricOverlap
    from vid3d.tasks.sparse_benchmark import _estimator
    from vid3d.weights import WeightsUnavailable

    est = _estimator(_eval_cfg(["overlap=small", "overlap.geometric.rel_tol=0.02"]))
    assert isinstance(est, GeometricOverlap) and est.rel_tol == 0.02
    # RoMa's class is reached (and its own one-line error about the missing weights, unwrapped)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(WeightsUnavailable, match="overlap.roma.weights"):
        _estimator(_eval_cfg(["overlap=small", "overlap.estimator=roma"]))
    cfg = _eval_cfg(["overlap=small", "overlap.estimator=sift"])
    with pytest.raises(ValueError, match="overlap.estimator='sift'"):
        _estimator(cfg)


def test_old_task_override_gets_one_line_pointing_to_benchmark():
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run([sys.executable, "eval.py", "task=sparse"], cwd=root, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "benchmark=camera|sparse|recon" in proc.stderr
