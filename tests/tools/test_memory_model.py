"""benchmarks/memory_model.py: the saved-activation counter on known graphs, the ZeRO-2 arithmetic by hand,
and the --dry run end to end (fake tensors: no memory, seconds)."""

import contextlib
import json
from pathlib import Path

import pytest
import torch
from torch._subclasses.fake_tensor import FakeTensorMode

from benchmarks import memory_model as mm

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("fake", [False, True])
def test_counter_counts_what_autograd_saves_once_per_storage(fake):
    """y = x @ W with only W trainable saves x (for dW): 4 * 8 float32 = 128 bytes; saving the same
    storage twice (two ops on one tensor, or a view of it) counts it once; an exp saves its output."""
    ctx = FakeTensorMode() if fake else contextlib.nullcontext()
    with ctx:
        x = torch.randn(4, 8)
        W = torch.randn(8, 3, requires_grad=True) if not fake else torch.randn(8, 3).requires_grad_()
        c = mm.SavedCounter()
        with c.hooks():
            y = x @ W
        assert c.bytes == 4 * 8 * 4
        with c.hooks():
            (x[:2] @ W).sum()  # a view of x: same storage, still 128 bytes in all
        assert c.bytes == 128
        with c.hooks():
            y.exp()  # exp saves its result: 4 * 3 float32
        assert c.bytes == 128 + 48


def test_budget_by_hand():
    counts = {"unet_and_camera_params": 1000, "vae_and_clip_params": 24, "trainable_params": 80}
    b = mm.budget(counts, act=mm.GiB, gpus=8, buckets=(100, 50))
    G = mm.GiB
    assert b["weights_fp16"] == pytest.approx(2 * 1024 / G)
    assert b["master_fp32_partitioned"] == pytest.approx(4 * 10 / G)
    assert b["adam_partitioned"] == pytest.approx(8 * 10 / G)
    assert b["grads_fp16_partitioned"] == pytest.approx(2 * 10 / G)
    assert b["deepspeed_buckets_fp16"] == pytest.approx(300 / G)
    assert b["activations"] == 1.0 and b["attention_chunk"] == pytest.approx(0.5)
    assert b["total"] == pytest.approx(sum(v for k, v in b.items() if k != "total"))


def test_dry_run_prints_both_stages(tmp_path, capsys):
    out = tmp_path / "mm.json"
    result = mm.main(["--dry", "--out", str(out)])
    assert json.loads(out.read_text()) == json.loads(json.dumps(result))
    rows = {(r["stage"], r["batch"], r["gradient_checkpointing"]): r for r in result["rows"]}
    assert len(rows) == 8 and all(r["activations"] > 0 for r in rows.values())
    assert 0 < result["trainable_params"] < result["unet_and_camera_params"]
    for stage in ("stage1", "stage2"):
        a1, a2 = rows[(stage, 1, False)]["activations"], rows[(stage, 2, False)]["activations"]
        assert 1.9 < a2 / a1 < 2.1  # activations are per sample (weights are not counted as activations)
    # checkpointing keeps less for backward, and a 4x larger image keeps more
    assert rows[("stage2", 2, True)]["activations"] < rows[("stage2", 2, False)]["activations"]
    assert rows[("stage2", 1, False)]["activations"] > 2 * rows[("stage1", 1, False)]["activations"]
    text = capsys.readouterr().out
    assert "| stage1 | 32x48x4 | 1 | no |" in text and "| stage2 | 64x96x4 | 2 | yes |" in text
