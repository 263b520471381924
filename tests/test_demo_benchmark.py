"""The demo's camera-benchmark step for the committed model (issue 37 item 3): its eval.py command composes
and passes eval.py's input checks (pose=flow, the camera controls, the clip count), and its printed table
carries each row's registered count and means with CIs as results.json holds them."""

from pathlib import Path

from hydra import compose, initialize_config_dir

from vid3d.config import CONFIG_DIR
from vid3d.demo import ASSET, BENCHMARK_CLIPS, benchmark_command, print_benchmark
from vid3d.tasks.preflight import check_inputs


def test_benchmark_command_composes_and_passes_the_checks(tmp_path):
    args = benchmark_command(tmp_path / "bench")
    assert args[0] == "eval.py"
    overrides = [a for a in args[1:] if not a.startswith("hydra.")]
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("eval", overrides=overrides)
    check_inputs(cfg, "eval")  # the checkpoint, its size against data's, the control names
    assert Path(cfg.ckpt) == ASSET
    assert cfg.pose._target_ == "vid3d.evaluation.pose.flow.FlowPoseEstimator"
    assert list(cfg.eval.camera_controls) == ["static", "other"]
    assert cfg.eval.max_clips == BENCHMARK_CLIPS and cfg.eval.trials == 1
    assert (cfg.data.height, cfg.data.width) == (32, 48)


def test_printed_table_shows_each_row(capsys, tmp_path):
    def row(n, total, rot, trans):
        if not n:
            return {"n": 0, "n_total": total, "metrics": {}}
        metrics = {"rot_err_deg": {"mean": rot[0], "ci_low": rot[1], "ci_high": rot[2], "n": n},
                   "trans_err": {"mean": trans[0], "ci_low": trans[1], "ci_high": trans[2], "n": n}}
        return {"n": n, "n_total": total, "metrics": metrics}

    results = {"m": row(7, 8, (20.04, 10.0, 30.0), (0.5, 0.25, 0.75)),
               "m[static cameras]": row(8, 8, (100.0, 80.0, 120.0), (4.0, 3.5, 4.5)),
               "gt_video": row(0, 8, None, None)}
    print_benchmark(results, tmp_path)
    out = capsys.readouterr().out
    assert "the first 8 of the 16" in out
    assert "| m | 7/8 | 20.0 [10.0, 30.0] | 0.50 [0.25, 0.75] |" in out
    assert "| m[static cameras] | 8/8 | 100.0 [80.0, 120.0] | 4.00 [3.50, 4.50] |" in out
    assert "| gt_video | 0/8 | - | - |" in out
