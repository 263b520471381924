"""Turn a checkpoint of a camera-control run into a small committed model asset (issue 14).

    python experiments/cpu_camera_control/make_asset.py RUN_DIR STEP --name NAME [--out DIR] \
        [--sampler K=V ...]

Writes, under ``--out`` (default ``assets/cpu_camera_control``):
- ``NAME.safetensors``: the weights-only copy of ``RUN_DIR/checkpoints/step_%07d.ckpt``
  (``vid3d.models.checkpoint.save_trained_weights``: trained weights + model config, no optimiser state);
  ``load_model`` / ``sample.py ckpt=`` / ``eval.py ckpt=`` read it;
- ``NAME.curve.csv``: the run's camera-gap curve up to STEP (``RUN_DIR/camera_gap.jsonl``; a step logged
  twice, e.g. again after a resume, keeps its last reading): held-out error with the clips' own cameras,
  camera gap (another clip's cameras / own) and static gap (a static camera / own) at each σ;
- ``NAME.json``: the file's sha256 and size, the source checkpoint and step, the number of weights and the
  run's Hydra overrides (``RUN_DIR/.hydra/overrides.yaml``); with ``--sampler sigma_min=1.0 ...`` also the
  model's own sampler defaults (``sampler``: what ``sample.py`` / ``eval.py`` use for it unless told
  otherwise, ``vid3d.sampling.model_defaults``).
Refuses a file over 10 MB (the project's limit for committed assets).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
from pathlib import Path

from vid3d.atomic import file_sha256

LIMIT_BYTES = 10 * 1024 * 1024


def gap_curve(jsonl: Path, last_step: int) -> str:
    """CSV text of the camera-gap log up to ``last_step`` (one row per step, the last reading kept)."""
    rows: dict[int, dict] = {}
    for i, line in enumerate(jsonl.read_text().splitlines(), 1):
        if line.strip():
            try:
                r = json.loads(line)
            except ValueError as e:
                raise SystemExit(f"{jsonl}:{i}: not JSON ({e})") from None
            if int(r["step"]) <= last_step:
                rows[int(r["step"])] = r
    if not rows:
        raise SystemExit(f"{jsonl}: no camera-gap reading at or before step {last_step}")
    keys = [k for k in next(iter(rows.values())) if k.startswith(("error_own@", "camera_gap"))]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["step", *keys])
    for step in sorted(rows):
        w.writerow([step, *(f"{rows[step][k]:.6g}" for k in keys)])
    return buf.getvalue()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", type=Path)
    p.add_argument("step", type=int)
    p.add_argument("--name", required=True)
    p.add_argument("--out", type=Path, default=Path("assets/cpu_camera_control"))
    p.add_argument("--sampler", nargs="*", default=[], metavar="KEY=VALUE",
                   help="the model's sampler defaults (SamplerOptions keys), e.g. sigma_min=1.0")
    a = p.parse_args(argv)
    from vid3d.sampling.sampler_settings import check_sampler_settings

    sampler = {}
    for item in a.sampler:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--sampler {item!r}: expected KEY=VALUE")
        try:
            sampler[key] = value if key == "solver" else (int(value) if key == "num_steps" else float(value))
        except ValueError:
            raise SystemExit(f"--sampler {item!r}: {value!r} is not a number") from None
    sampler = check_sampler_settings(sampler, "--sampler")

    from vid3d.atomic import atomic_write_bytes
    from vid3d.models.checkpoint import load_checkpoint_file, save_trained_weights

    src = a.run_dir / "checkpoints" / f"step_{a.step:07d}.ckpt"
    if not src.is_file():
        raise SystemExit(f"{src}: no such checkpoint")
    dst = save_trained_weights(src, a.out / f"{a.name}.safetensors")
    size = dst.stat().st_size
    if size > LIMIT_BYTES:
        dst.unlink()
        raise SystemExit(f"{dst}: {size / 2**20:.1f} MiB is over the 10 MB limit for a committed asset")
    ckpt = load_checkpoint_file(dst)
    overrides = a.run_dir / ".hydra" / "overrides.yaml"
    manifest = {
        "file": dst.name,
        "sha256": file_sha256(dst),
        "bytes": size,
        "source": str(src.relative_to(a.run_dir.parent)),
        "global_step": ckpt["global_step"],
        "weights": int(sum(v.numel() for v in ckpt["state_dict"].values())),
        "overrides": overrides.read_text().splitlines() if overrides.is_file() else None,
    }
    if sampler:
        manifest["sampler"] = sampler
    atomic_write_bytes(a.out / f"{a.name}.json", (json.dumps(manifest, indent=1) + "\n").encode())
    curve = gap_curve(a.run_dir / "camera_gap.jsonl", a.step)
    atomic_write_bytes(a.out / f"{a.name}.curve.csv", curve.encode())
    print(f"wrote {dst} ({size / 2**20:.2f} MiB, sha256 {manifest['sha256']}), {a.name}.json, "
          f"{a.name}.curve.csv ({len(curve.splitlines()) - 1} readings)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
