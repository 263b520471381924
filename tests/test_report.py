"""vid3d.report on hand-made sweep folders: known results.json values -> known table cells."""

import csv
import io
import json
import math
from pathlib import Path

import pytest

from vid3d.report import build_table, collect, main, to_latex, write_report


def stat(mean, lo, hi):
    return {"mean": mean, "ci_low": lo, "ci_high": hi, "n": 2}


def camera_row(n, failures, rot, trans, cammc):
    return {
        "n": n,
        "n_total": n + failures,
        "failures": failures,
        "metrics": {
            "rot_err_deg": stat(*rot),
            "rot_err_rad": stat(*(math.radians(x) for x in rot)),
            "trans_err": stat(*trans),
            "cammc": stat(*cammc),
        },
    }


def make_job(root: Path, name: str, overrides: list[str], results: dict, sub: str = "eval") -> None:
    job = root / name
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    out = job / sub if sub else job
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps({"protocol": {"pose_estimator": "gt"}, "results": results}))


@pytest.fixture
def sweep(tmp_path) -> Path:
    root = tmp_path / "multirun"
    make_job(
        root,
        "0",
        ["model=plucker", "trainer.max_steps=2", "hydra.run.dir=/x"],
        {
            "plucker": camera_row(2, 1, (1.5, 1.0, 2.0), (0.25, 0.125, 0.5), (3.0, 2.0, 4.0)),
            "gt_video": camera_row(3, 0, (0.5, 0.25, 0.75), (0.0, 0.0, 0.0), (0.5, 0.5, 0.5)),
        },
    )
    # results written into the job dir itself (eval.py -m ...), with a key only this job has
    make_job(
        root,
        "1",
        ["model=svd", "trainer.max_steps=2", "+extra=a_b"],
        {
            "svd": camera_row(1, 2, (10.0, 10.0, 10.0), (1.0, 1.0, 1.0), (12.0, 12.0, 12.0)),
        },
        sub="",
    )
    (root / "2" / ".hydra").mkdir(parents=True)  # a job that failed before writing results
    (root / "2" / ".hydra" / "overrides.yaml").write_text("- model=rt\n")
    return root


def test_collect_finds_jobs_and_their_overrides(sweep):
    jobs = collect(sweep)
    assert [j["job"] for j in jobs] == ["0/eval", "1"]
    # Hydra settings are not variant columns; "+extra" loses its plus
    assert jobs[0]["overrides"] == {"model": "plucker", "trainer.max_steps": "2"}
    assert jobs[1]["overrides"] == {"model": "svd", "trainer.max_steps": "2", "extra": "a_b"}


def test_table_has_known_cells_in_every_format(sweep, tmp_path):
    rep = write_report(sweep, tmp_path / "out", wandb_log=False)
    assert rep["override_columns"] == ["extra", "model"]
    assert rep["constant_overrides"] == {"trainer.max_steps": "2"}
    assert rep["metrics"] == ["rot_err_deg", "rot_err_rad", "trans_err", "cammc"]
    md = (tmp_path / "out" / "report.md").read_text().splitlines()
    assert md[0] == (
        "| job | extra | model | method | n | failures | RotErr (deg) [95% CI] | RotErr (rad) [95% CI] "
        "| TransErr [95% CI] "
        "| CamMC [95% CI] |"
    )
    assert (
        "| 0/eval |  | plucker | plucker | 2 | 1 | 1.500 [1.000, 2.000] | 0.026 [0.017, 0.035] "
        "| 0.250 [0.125, 0.500] "
        "| 3.000 [2.000, 4.000] |" in md
    )
    assert (
        "| 0/eval |  | plucker | gt_video | 3 | 0 | 0.500 [0.250, 0.750] | 0.009 [0.004, 0.013] "
        "| 0.000 [0.000, 0.000] "
        "| 0.500 [0.500, 0.500] |" in md
    )
    assert (
        "| 1 | a_b | svd | svd | 1 | 2 | 10.000 [10.000, 10.000] | 0.175 [0.175, 0.175] "
        "| 1.000 [1.000, 1.000] "
        "| 12.000 [12.000, 12.000] |" in md
    )
    assert "Shared by every job: `trainer.max_steps=2`" in md
    assert "Jobs without results (failed or unfinished): 2" in md
    rows = list(csv.DictReader(io.StringIO((tmp_path / "out" / "report.csv").read_text())))
    assert len(rows) == 3
    svd = next(r for r in rows if r["method"] == "svd")
    assert (svd["model"], svd["n"], svd["failures"]) == ("svd", "1", "2")
    assert float(svd["cammc_mean"]) == 12.0 and float(svd["trans_err_ci_high"]) == 1.0
    tex = (tmp_path / "out" / "report.tex").read_text()
    assert r"\begin{tabular}{llllrrrrrr}" in tex
    assert r"0/eval &  & plucker & gt\_video & 3 & 0 & 0.500 [0.250, 0.750]" in tex
    assert r"1 & a\_b & svd & svd & 1 & 2 & 10.000" in tex and r"RotErr (deg) [95\% CI]" in tex
    saved = json.loads((tmp_path / "out" / "report.json").read_text())
    assert len(saved["sources"]) == 2 and saved["rows"][0]["rot_err_deg"]["mean"] == 1.5


def test_methods_filter_and_missing_metrics(sweep):
    jobs = collect(sweep)
    jobs[1]["results"]["svd"]["metrics"].pop("cammc")
    table = build_table(jobs, methods=["plucker", "svd"])
    assert [r["method"] for r in table["rows"]] == ["plucker", "svd"]
    assert table["rows"][1]["cammc"]["mean"] is None
    assert "n/a" in to_latex(table).replace("--", "n/a")


def test_sparse_results_with_infinite_psnr(tmp_path):
    make_job(
        tmp_path / "m",
        "0",
        ["overlap=small"],
        {
            "ground_truth": {
                "n": 4,
                "metrics": {
                    "psnr": {"available": True, "mean": "inf", "ci_low": "inf", "ci_high": "inf"},
                    "lpips": {"available": False, "mean": None},
                },
            },
        },
        sub="",
    )
    make_job(
        tmp_path / "m",
        "1",
        ["overlap=large"],
        {
            "model": {"n": 4, "metrics": {"psnr": stat(20.0, 19.0, 21.0)}},
        },
        sub="",
    )
    table = build_table(collect(tmp_path / "m"))
    assert table["metrics"] == ["psnr"]  # an unavailable metric is no column
    assert table["rows"][0]["failures"] == 0 and table["rows"][0]["psnr"]["mean"] == float("inf")
    rep = write_report(tmp_path / "m", wandb_log=False)
    assert "| 0 | small | ground_truth | 4 | 0 | inf [inf, inf] |" in rep["markdown"]


def test_errors_name_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        collect(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no results.json"):
        collect(tmp_path / "empty")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "results.json").write_text("{}")
    with pytest.raises(ValueError, match="not a benchmark results file"):
        collect(tmp_path / "bad")


def test_cli_logs_table_to_offline_wandb(sweep, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    assert main([str(sweep)]) == 0
    assert "| 1 | a_b | svd | svd |" in capsys.readouterr().out
    assert list((sweep / "report" / "wandb").glob("offline-run-*"))
    # the report's own output is not read back as a job on a second run
    assert len(collect(sweep)) == 2


def test_fvd_column_value_without_ci_and_random_init_label(tmp_path):
    root = tmp_path / "multirun"
    fvd = {"computed": True, "value": 123.456, "n_trials": 1}
    make_job(root, "0", ["model=plucker"], {"plucker": {**camera_row(2, 0, (1, 1, 1), (0, 0, 0), (1, 1, 1)),
                                                         "fvd": fvd}})
    make_job(root, "1", ["model=rt"], {"rt": {**camera_row(2, 0, (2, 2, 2), (0, 0, 0), (1, 1, 1)),
                                               "fvd": {"computed": False, "reason": "no weights"}}})
    rep = write_report(root, tmp_path / "out", wandb_log=False)
    assert rep["metrics"][-1] == "fvd"
    md = (tmp_path / "out" / "report.md").read_text().splitlines()
    assert md[0].endswith("| CamMC [95% CI] | FVD |")
    assert md[2].endswith("| 123.456 |") and md[3].endswith("| n/a |")
    rows = list(csv.DictReader(io.StringIO((tmp_path / "out" / "report.csv").read_text())))
    assert float(rows[0]["fvd_mean"]) == 123.456 and rows[1]["fvd_mean"] == ""
    # one random-init row labels the whole column, so no number can pass for I3D's FVD
    make_job(root, "2", ["model=svd"], {"svd": {**camera_row(2, 0, (3, 3, 3), (0, 0, 0), (1, 1, 1)),
                                                "fvd [random-init (not I3D)]": fvd}})
    rep = write_report(root, tmp_path / "out2", wandb_log=False)
    assert rep["metrics"][-1] == "fvd [random-init (not I3D)]"
    md = (tmp_path / "out2" / "report.md").read_text().splitlines()
    assert md[0].endswith("| FVD [random-init (not I3D)] |")


def test_camera_gap_columns_from_eval_camera_gap_json(tmp_path):
    root = tmp_path / "multirun"
    make_job(root, "0", ["model=plucker"], {"plucker": camera_row(2, 0, (1, 1, 1), (0, 0, 0), (1, 1, 1)),
                                            "gt_video": camera_row(2, 0, (0, 0, 0), (0, 0, 0), (0, 0, 0))})
    make_job(root, "1", ["model=svd"], {"svd": camera_row(2, 0, (2, 2, 2), (0, 0, 0), (1, 1, 1))})
    gaps = {"camera_gap@0.2": 1.00004, "camera_gap@5": 1.23456, "camera_gap_static@5": 1.1, "n_clips": 4.0}
    (root / "0" / "eval" / "camera_gap.json").write_text(json.dumps({"plucker": gaps}))
    (root / "1" / "eval" / "camera_gap.json").write_text(
        json.dumps({"svd": {"camera_gap@0.2": 1.0, "camera_gap@5": 1.0, "n_clips": 4.0}})
    )
    rep = write_report(root, tmp_path / "out", wandb_log=False)
    assert rep["metrics"][-2:] == ["camera_gap@0.2", "camera_gap@5"]  # sorted by sigma
    md = (tmp_path / "out" / "report.md").read_text().splitlines()
    assert md[0].endswith("| camera gap σ=0.2 | camera gap σ=5 |")
    by_method = {line.split(" | ")[2]: line for line in md[2:5]}  # job | model | method | ...
    assert by_method["plucker"].endswith("| 1.0000 | 1.2346 |")
    assert by_method["gt_video"].endswith("| n/a | n/a |")  # reference rows have no camera input
    assert by_method["svd"].endswith("| 1.0000 | 1.0000 |")
    assert "Camera gap:" in (tmp_path / "out" / "report.md").read_text()
    (root / "1" / "eval" / "camera_gap.json").write_text("{oops")
    with pytest.raises(ValueError, match=r"camera_gap.json: not a camera-gap file"):
        collect(root)


def test_several_folders_merge_into_one_table(tmp_path):
    """The demo's layout: two eval run dirs (the camera model with reference rows; the control without),
    merged into one table; each job is named by its folder, eval.reference_rows is not a column."""
    make_job(tmp_path, "eval", ["ckpt=/a/last.ckpt", "torch_threads=1"],
             {"plucker": camera_row(2, 0, (1, 1, 1), (0, 0, 0), (1, 1, 1)),
              "gt_video": camera_row(2, 0, (0, 0, 0), (0, 0, 0), (0, 0, 0))}, sub="")
    make_job(tmp_path, "eval_control", ["ckpt=/b/last.ckpt", "eval.reference_rows=false", "torch_threads=1"],
             {"svd": camera_row(2, 1, (4, 3, 5), (0, 0, 0), (1, 1, 1))}, sub="")
    (tmp_path / "train" / ".hydra").mkdir(parents=True)  # a training run beside them is not a missing job
    (tmp_path / "train" / ".hydra" / "overrides.yaml").write_text("- model=plucker\n")
    rep = write_report([tmp_path / "eval", tmp_path / "eval_control"], tmp_path / "report", wandb_log=False)
    assert [(r["job"], r["method"], r["failures"]) for r in rep["rows"]] == [
        ("eval", "plucker", 0), ("eval", "gt_video", 0), ("eval_control", "svd", 1)]
    assert rep["override_columns"] == [] and rep["missing_jobs"] == []
    assert rep["constant_overrides"] == {"torch_threads": "1"}
    md = (tmp_path / "report" / "report.md").read_text()
    assert "| eval_control | svd | 2 | 1 | 4.000 [3.000, 5.000] |" in md
    with pytest.raises(ValueError, match="out="):
        write_report([tmp_path / "eval"], None, wandb_log=False)


def test_the_kind_is_read_from_the_folders(tmp_path):
    """vid3d.report.merge is the one merge path: a sparse-view or reconstruction results.json makes
    ``buckets``, a records file of shard k of n > 1 makes ``shards``, anything else is a ``sweep``."""
    import json

    from vid3d.report import detect_kind, merge

    sweep = tmp_path / "sweep" / "0" / "eval"
    sweep.mkdir(parents=True)
    (sweep / "results.json").write_text(json.dumps({"protocol": {"benchmark": "camera"}, "results": {}}))
    (sweep / "records.shard0of1.jsonl").write_text("")
    assert detect_kind([tmp_path / "sweep"]) == "sweep"
    shards = tmp_path / "shards" / "1"
    shards.mkdir(parents=True)
    (shards / "records.shard1of3.jsonl").write_text("")
    assert detect_kind([tmp_path / "shards"]) == "shards"
    for benchmark in ("sparse_view", "reconstruction"):
        run = tmp_path / benchmark / "small"
        run.mkdir(parents=True)
        (run / "results.json").write_text(json.dumps({"protocol": {"benchmark": benchmark}}))
        assert detect_kind([tmp_path / benchmark]) == "buckets"
    with pytest.raises(ValueError, match="unknown kind 'tables'"):
        merge([tmp_path / "sweep"], tmp_path / "out", kind="tables")
    with pytest.raises(ValueError, match="give --out"):
        merge([tmp_path / "shards"], None, kind="shards")
    with pytest.raises(FileNotFoundError, match="no such folder"):
        detect_kind([tmp_path / "nope"])
