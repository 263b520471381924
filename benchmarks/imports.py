"""Import cost of vid3d's entry layers: `python -m benchmarks.imports [--repeat 3]`.

Each module is imported in a fresh interpreter (``python -c "import <module>"``); the table gives the
median wall time, the process' peak RSS and whether diffusers got imported, beside the same for ``import
torch`` (every vid3d module needs torch: the baseline) in the same run. The math layers
(``vid3d.geometry``, ``vid3d.models.attention``, ``vid3d.models.edm``) must not import diffusers
(``vid3d.models`` resolves its names lazily); the model wrapper (``vid3d.models.video_diffusion``) does.
Writes ``benchmarks/results/imports.json``.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODULES = [
    "torch",
    "vid3d.geometry",
    "vid3d.models.edm",
    "vid3d.models.attention",
    "vid3d.models.checkpoint",
    "vid3d.models.video_diffusion",
    "vid3d.tasks.train",
]
PROBE = (
    "import resource, sys, time; t = time.perf_counter(); import {module}; "
    "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "
    "'diffusers' in sys.modules)"
)


def measure(module: str, repeat: int) -> dict:
    runs = []
    for _ in range(repeat):
        t = time.perf_counter()
        out = subprocess.run(
            [sys.executable, "-c", PROBE.format(module=module)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        runs.append((float(out[0]), time.perf_counter() - t, int(out[1]) / 1024, out[2] == "True"))
    return {
        "module": module,
        "import_s": statistics.median(r[0] for r in runs),
        "process_s": statistics.median(r[1] for r in runs),
        "peak_rss_mb": statistics.median(r[2] for r in runs),
        "imports_diffusers": runs[0][3],
    }


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--modules", nargs="*", default=MODULES)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "imports.json")
    a = ap.parse_args(argv)
    rows = [measure(m, a.repeat) for m in dict.fromkeys(["torch", *a.modules])]
    base = rows[0]
    for r in rows:
        r["vs_torch"] = r["import_s"] / base["import_s"]
    print("| module | import (s) | vs `import torch` | peak RSS (MB) | imports diffusers |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(
            f"| `{r['module']}` | {r['import_s']:.2f} | {r['vs_torch']:.2f}x | {r['peak_rss_mb']:.0f} | "
            f"{'yes' if r['imports_diffusers'] else 'no'} |"
        )
    from vid3d.atomic import atomic_write_json

    atomic_write_json(a.out, {"python": sys.version.split()[0], "repeat": a.repeat, "rows": rows}, indent=1)
    print(f"written to {a.out}")
    return rows


if __name__ == "__main__":
    main()
