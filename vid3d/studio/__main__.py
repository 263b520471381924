"""``python -m vid3d.studio [--model PATH] [--port N] ...``: serve the studio on 127.0.0.1 (no share link,
no analytics). The page runs one request at a time; the others wait in the queue."""

from __future__ import annotations

import argparse
import os
import socket
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_MODEL = ROOT / "assets" / "cpu_camera_control" / "epipolar_32x48_hx3big.safetensors"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before gradio is imported: no phoning home
    p = argparse.ArgumentParser(prog="python -m vid3d.studio", description=__doc__)
    p.add_argument(
        "--model",
        default=str(DEFAULT_MODEL),
        help="vid3d checkpoint, training run dir or exported pipeline folder (default: the committed "
        "CPU camera model)",
    )
    p.add_argument(
        "--data",
        default="synthetic_heldout600",
        help="conf/data option whose test clips are offered as inputs (default: the 16 held-out "
        "scenes of the committed model, rendered on first use)",
    )
    p.add_argument(
        "--out", default=None, help="results folder (default: $VID3D_OUTPUT_DIR or outputs, /studio)"
    )
    p.add_argument(
        "--pose",
        default="auto",
        help="the score's pose estimator (the Studio checks the name): auto (default) = optical flow "
        "(pose=flow) for videos whose "
        "shorter side is below 128 px, which COLMAP cannot register, else COLMAP (the benchmark's default)",
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=7860, help="0: any free port")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    a = p.parse_args(argv)

    from vid3d.errors import InputError

    out = Path(a.out) if a.out else Path(os.environ.get("VID3D_OUTPUT_DIR", "outputs")) / "studio"
    try:
        from vid3d.studio.runner import Studio

        studio = Studio(a.model, data=a.data, out=out, pose=a.pose)
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    try:
        import gradio as gr
    except ImportError:
        print("error: the studio needs gradio: pip install -e '.[studio]' (or make studio)", file=sys.stderr)
        return 2
    if a.threads:
        import torch

        torch.set_num_threads(a.threads)
    from vid3d.studio.app import CSS, build_app

    port = a.port or free_port(a.host)
    out.mkdir(parents=True, exist_ok=True)
    app = build_app(studio)
    app.queue(default_concurrency_limit=1, max_size=32)
    font = ["ui-sans-serif", "system-ui", "sans-serif"]  # local fonts: the page fetches nothing
    print(
        f"vid3d studio: http://{a.host}:{port}  (model {studio.info.path}; results under {out})", flush=True
    )
    app.launch(
        server_name=a.host,
        server_port=port,
        share=False,
        ssr_mode=False,
        allowed_paths=[str(out.resolve())],
        max_file_size="25mb",
        quiet=True,
        css=CSS,
        theme=gr.themes.Default(font=font, font_mono=["ui-monospace", "monospace"]),
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
