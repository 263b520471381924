"""The one table module: formats checked against literal expected text, and the rule that no other module
renders tables itself."""

from __future__ import annotations

import csv
import io
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from vid3d.evaluation import tables
from vid3d.evaluation.aggregate import aggregate, write_results
from vid3d.evaluation.sparse_runner import aggregate_sparse, write_sparse_results

ROOT = Path(__file__).resolve().parents[2]


def test_fmt_and_ci_cell():
    assert tables.fmt(1.23456, 2) == "1.23"
    assert tables.fmt(None, 2) == "n/a"
    assert tables.fmt(float("nan"), 2) == "n/a"
    assert tables.fmt(float("nan"), 2, nan="nan") == "nan"
    assert tables.fmt(math.inf, 2) == "inf" and tables.fmt(-math.inf, 2) == "-inf"
    assert tables.fmt(np.float32(0.5), 3) == "0.500"
    assert tables.ci_cell(2.0, 1.5, None, 1) == "2.0 [1.5, n/a]"


def test_markdown_is_a_pipe_table():
    t = tables.Table(["method", "n", "PSNR"], [["a", "3", "12.00"], ["b", "0", "n/a"]])
    assert tables.markdown(t) == [
        "| method | n | PSNR |", "|---|---|---|", "| a | 3 | 12.00 |", "| b | 0 | n/a |"
    ]
    doc = tables.text(["above", ""], tables.markdown(t)[:1], ["below"])
    assert doc == "above\n\n| method | n | PSNR |\nbelow\n"


def test_a_ragged_row_is_refused():
    with pytest.raises(ValueError, match="row 1 has 2 cells for 3 columns"):
        tables.Table(["a", "b", "c"], [["1", "2", "3"], ["1", "2"]])


def test_latex_escapes_every_cell_and_prints_missing_numbers_as_dashes():
    rows = [["a_b", "n/a", "80.0%"], ["n/a", "1 & 2", "x"]]
    t = tables.Table(["job_name", "σ", "rate"], rows, text_columns=1)
    assert tables.latex(t) == (
        "\\begin{tabular}{lrr}\n\\toprule\njob\\_name & $\\sigma$ & rate \\\\\n\\midrule\n"
        "a\\_b & -- & 80.0\\% \\\\\nn/a & 1 \\& 2 & x \\\\\n\\bottomrule\n\\end{tabular}\n"
    )


def test_csv_keeps_full_precision_and_writes_none_empty():
    x = 0.1 + 0.2  # 0.30000000000000004: a round trip through the text must give the same float
    text = tables.csv_text(["method", "value", "ci"], [["a", x, None]])
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["method", "value", "ci"]
    assert float(rows[1][1]) == x and rows[1][2] == ""


def test_json_keeps_infinity_as_a_string_and_refuses_nan():
    obj = {"psnr": math.inf, "neg": -math.inf, "nan": float("nan"), "arr": np.array([1.0, np.inf]), 2: "k"}
    j = tables.jsonable_inf(obj)
    assert j == {"psnr": "inf", "neg": "-inf", "nan": None, "arr": [1.0, "inf"], "2": "k"}
    assert json.loads(tables.json_text(j)) == j
    with pytest.raises(ValueError):
        tables.json_text({"x": float("nan")})


def test_protocol_lines():
    lines = tables.protocol_lines({"b": {"y": 1, "x": 2}, "skip": 3}, skip=("skip",))
    assert lines == ["", "Protocol:", "", '- b: {"x": 2, "y": 1}']


def test_write_texts_writes_every_file_and_no_temporaries(tmp_path):
    paths = tables.write_texts(tmp_path / "out", "report", {"md": "a\n", "csv": "b\n"})
    assert {p.name for p in (tmp_path / "out").iterdir()} == {"report.md", "report.csv"}
    assert paths["md"].read_text() == "a\n" and paths["csv"].read_text() == "b\n"


def test_wandb_table_keeps_numbers():
    pytest.importorskip("wandb")
    t = tables.wandb_table(["method", "value"], [["a", 1.5], ["b", None]])
    assert t.columns == ["method", "value"] and t.data == [["a", 1.5], ["b", None]]


def test_every_benchmark_writes_its_table_as_latex_too(tmp_path):
    recs = [
        {"method": m, "clip_id": f"c{i}", "trial": 0, "success": True,
         "errors": {"rot_err_deg": 1.0 + i, "rot_err_rad": 0.1, "trans_err": 0.5, "cammc": 2.0,
                    "rot_err_deg_per_frame": 0.1}}
        for m in ("model", "static_first_frame") for i in range(3)
    ]
    write_results(tmp_path / "camera", aggregate(recs), {"estimator": "test"})
    tex = (tmp_path / "camera" / "results.tex").read_text()
    assert tex.count(r" \\") == 3  # header + two methods
    assert "static\\_first\\_frame & 3 & 0 & 2.00 [" in tex

    pair_recs = [{"method": "model", "pair_id": f"p{i}", "trial": 0,
                  "metrics": {"psnr": 20.0 + i, "ssim": 0.5, "lpips": None}} for i in range(3)]
    write_sparse_results(tmp_path / "sparse", aggregate_sparse(pair_recs), {"bucket": {"name": "small"}})
    tex = (tmp_path / "sparse" / "results.tex").read_text()
    assert "model & 3 & 21.00 [" in tex and tex.rstrip().endswith(r"\end{tabular}")


def test_no_other_module_renders_a_table():
    """One report module: CSV writers, Markdown table separators and W&B tables only in tables.py."""
    offenders = []
    pattern = re.compile(r"^import csv|csv\.writer|\"\|?---\||wandb\.Table\(", re.M)
    for path in sorted((ROOT / "vid3d").rglob("*.py")):
        if path.name == "tables.py" and path.parent.name == "evaluation":
            continue
        if pattern.search(path.read_text()):
            offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []
