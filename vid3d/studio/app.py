"""The studio's page (Gradio): input, camera path, generate / cancel, reconstruct, score, command line.

Every handler returns one status line; a bad upload or setting (``InputError``, ``ValueError``) is that
line and nothing else changes. The work is ``vid3d.studio.runner.Studio``; this file is layout and wiring.
Requests are queued: one runs at a time (``queue(default_concurrency_limit=1)``); cancel is not queued.
"""

from __future__ import annotations

import inspect
import logging
import time
import traceback
from dataclasses import dataclass, fields
from typing import Any

from vid3d.errors import InputError
from vid3d.sampling.trajectories import PRESETS

from .command import Request, reproduce_command
from .paths import KEYFRAME_COLUMNS, default_keyframes, frustum_figure, parse_amplitude
from .runner import POSE_LABELS, Cancelled, Studio

__all__ = ["build_app"]

log = logging.getLogger("vid3d")

PATH_CHOICES = {"preset": "preset", "keyframes": "keyframes", "pose file": "file", "clip's own": "clip"}
INPUT_CHOICES = ("uploaded image", "dataset clip")
CSS = """
#status {min-height: 1.6em; font-weight: 600}
#command textarea, #command pre {font-size: 12px}
.gradio-container {max-width: 1500px !important}
"""


@dataclass(frozen=True)
class Controls:
    """The page's controls a handler reads, by name (values as Gradio hands them: numbers may be floats).
    A handler is given a subset (``SHOW_INPUT``, ``SHOW_PATH``, ``GENERATE``); the others stay None."""

    input_kind: str | None = None
    image: str | None = None
    clip_index: float | None = None
    path_kind: str | None = None
    preset: str | None = None
    amplitude: str | None = None
    speed: float | None = None
    pose_file: str | None = None
    table: Any = None
    steps: float | None = None
    seed: float | None = None
    g_min: float | None = None
    g_max: float | None = None
    fov: float | None = None
    static: bool | None = None


# each handler's controls, in the order of its Gradio inputs and of its API endpoint's parameters
SHOW_INPUT = ("input_kind", "image", "clip_index", "fov")
SHOW_PATH = (*SHOW_INPUT[:3], "path_kind", "preset", "amplitude", "speed", "pose_file", "table", "fov")
GENERATE = tuple(f.name for f in fields(Controls))  # all of them


def handler(fn, names: tuple[str, ...]):
    """``fn(controls, *rest)`` as a Gradio handler taking the controls ``names`` (in order), then ``fn``'s
    own further parameters (``progress=gr.Progress()``). Gradio reads the parameter names (the names of
    the page's API, e.g. ``/generate``'s ``input_kind``, ``image``, ...) and the progress default from the
    signature given here. Make one per handler: Gradio groups the events of one function object in one
    concurrency group."""
    rest = list(inspect.signature(fn).parameters.values())[1:]

    def call(*args, **kwargs):
        return fn(Controls(**dict(zip(names, args))), *args[len(names):], **kwargs)

    own = [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD) for n in names]
    call.__signature__ = inspect.Signature(own + rest)
    call.__name__, call.__qualname__, call.__doc__ = fn.__name__, fn.__name__, fn.__doc__
    return call


def enlarge(image, factor: int = 5):
    """(H, W, 3) uint8 shown ``factor`` times larger, pixels kept sharp (the models sample at 32x48)."""
    return image.repeat(factor, axis=0).repeat(factor, axis=1)


def _line(e: BaseException) -> str:
    """One line for the page: the error's first line (InputError messages are written for users)."""
    text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return text if isinstance(e, (InputError, Cancelled)) else f"{type(e).__name__}: {text}"


def build_app(studio: Studio):
    """The ``gr.Blocks`` page over ``studio`` (not launched)."""
    import gradio as gr

    info = studio.info
    F, H, W = info.num_frames, info.height, info.width

    def request(c: Controls):
        fields = dict(
            path=PATH_CHOICES[c.path_kind],
            preset=c.preset,
            amplitude=parse_amplitude(c.amplitude),
            speed=float(c.speed),
            steps=int(c.steps),
            seed=int(c.seed),
            guidance_min=float(c.g_min),
            guidance_max=float(c.g_max),
            fov_deg=float(c.fov),
        )
        if c.input_kind == INPUT_CHOICES[0]:
            if not c.image:
                raise InputError("input: upload an image (PNG or JPEG), or choose 'dataset clip'")
            fields["image"] = c.image
        else:
            fields.update(data=studio.data, clip_index=int(c.clip_index))
        if fields["path"] == "file":
            fields["trajectory_file"] = c.pose_file
        return studio.base_request(**fields)

    def show_input(c: Controls):
        """The conditioning frame at the model size (and the clip's ground truth)."""
        try:
            if c.input_kind == INPUT_CHOICES[0]:
                if not c.image:
                    return gr.update(value=None), gr.update(value=None, visible=False), ""
                from .uploads import read_image

                img = read_image(c.image, H, W, float(c.fov))
                return (
                    enlarge(img.image),
                    gr.update(value=None, visible=False),
                    f"image {img.name}: {H}x{W} (model size)",
                )
            job = studio.clip(int(c.clip_index))
            from vid3d.viz import write_video

            folder = studio.out / "clips"
            folder.mkdir(parents=True, exist_ok=True)
            gt = write_video(folder / f"{job.name}.mp4", job.gt_frames, fps=8)
            return (
                enlarge(job.image),
                gr.update(value=str(gt), visible=True),
                f"clip {int(c.clip_index)}: {job.name}",
            )
        except Exception as e:  # noqa: BLE001 - every failure is one line in the page
            return gr.update(), gr.update(), _line(e)

    def show_path(c: Controls):
        try:
            clip = c.input_kind == INPUT_CHOICES[1]
            req = studio.base_request(
                path=PATH_CHOICES[c.path_kind],
                preset=c.preset,
                amplitude=parse_amplitude(c.amplitude),
                speed=float(c.speed),
                trajectory_file=c.pose_file,
                fov_deg=float(c.fov),
                clip_index=int(c.clip_index) if clip else None,
            )
            image_K = None
            if c.image and not clip:
                from .uploads import read_image

                image_K = read_image(c.image, H, W, float(c.fov)).K_px
            c2w, K = studio.preview_path(req, image_K, keyframes=c.table)
            title = {
                "preset": f"frustums: {c.preset} ({c.amplitude}, speed {c.speed})",
                "keyframes": "frustums: keyframes",
                "file": "frustums: pose file",
                "clip": f"frustums: clip {req.clip_index} ground truth",
            }[req.path]
            return frustum_figure({"requested path": c2w}, K, (H, W), title=title), ""
        except Exception as e:  # noqa: BLE001
            return gr.update(), _line(e)

    def generate(c: Controls, progress=gr.Progress()):  # noqa: B008
        keep = (gr.update(),) * 3  # video, compare, command (then rid, status)
        static = bool(c.static)
        try:
            req = request(c)
            t0 = time.monotonic()
            progress((0, int(c.steps) * (2 if static else 1)), desc="loading", unit="steps")

            def report(done, total, what):
                elapsed = time.monotonic() - t0
                eta = elapsed / done * (total - done)
                progress((done, total), desc=f"{what}: step {done}/{total}, ETA {eta:.0f} s", unit="steps")

            res = studio.generate(req, keyframes=c.table, report=report, static=static)
            compare = res.files.get("compare")
            label = " | ".join(
                (["ground truth"] if res.job.gt_frames is not None else [])
                + ["generated"]
                + (["static camera (same seed)"] if static else [])
            )
            status = (
                f"Generated {res.job.name}: {len(res.frames)} frames at {H}x{W} in {res.seconds:.1f} s -> "
                f"{res.sample_dir}"
            )
            return (
                str(res.files["video"]),
                gr.update(value=str(compare) if compare else None, label=label),
                shown_command(res.request),
                res.id,
                status,
            )
        except Exception as e:  # noqa: BLE001
            if not isinstance(e, (InputError, Cancelled, ValueError)):
                log.error("studio: generate failed\n%s", traceback.format_exc())
            return (*keep, gr.update(), _line(e))

    def cancel():
        studio.cancel.set()
        return "Cancelling at the next sampler step ..."

    def reconstruct(rid, steps, gaussians, progress=gr.Progress()):  # noqa: B008
        try:
            progress(0.0, desc="fitting 3D Gaussians")
            t0 = time.monotonic()
            res = studio.reconstruct(rid, int(steps), int(gaussians))
            return (
                str(res.files["turntable"]),
                str(res.files["ply"]),
                shown_command(res.request),
                f"Reconstructed {int(gaussians)} Gaussians in {time.monotonic() - t0:.1f} s -> "
                f"{res.files['ply']}",
            )
        except Exception as e:  # noqa: BLE001
            if not isinstance(e, (InputError, ValueError)):
                log.error("studio: reconstruct failed\n%s", traceback.format_exc())
            return gr.update(), gr.update(), gr.update(), _line(e)

    def score(rid, progress=gr.Progress()):  # noqa: B008
        try:
            progress(0.0, desc=f"estimating poses with {POSE_LABELS[studio.score_pose(rid)]}")
            line, plot = studio.score(rid)
            return line, (str(plot) if plot else None), line
        except Exception as e:  # noqa: BLE001
            return gr.update(), gr.update(), _line(e)

    def path_controls(path_kind):
        kind = PATH_CHOICES[path_kind]
        return (
            gr.update(visible=kind == "preset"),
            gr.update(visible=kind == "keyframes"),
            gr.update(visible=kind == "file"),
        )

    def input_controls(input_kind):
        clip = input_kind == INPUT_CHOICES[1]
        return gr.update(visible=not clip), gr.update(visible=clip), gr.update(visible=clip)

    def shown_command(req):
        text = reproduce_command(req, multiline=True)
        if info.kind == "export":
            text = (
                "# sample.py reads vid3d checkpoints, not exported folders: pass ckpt=<the checkpoint this "
                "folder was exported from>\n" + text
            )
        return text

    with gr.Blocks(title="vid3d studio") as app:
        gr.Markdown(
            f"## vid3d studio\nModel: `{info.path}` ({info.kind}; {H}x{W}, {F} frames). Pick an input and a "
            "camera path, generate, then reconstruct and score. One request runs at a time; others wait."
        )
        status = gr.Markdown("", elem_id="status")
        rid = gr.State(None)
        with gr.Row(equal_height=False):
            with gr.Column(scale=1, min_width=300):
                gr.Markdown("### 1. Input")
                input_kind = gr.Radio(
                    list(INPUT_CHOICES), value=INPUT_CHOICES[0], label="input", elem_id="input_kind"
                )
                image = gr.File(label="image (PNG / JPEG)", type="filepath", elem_id="image_upload")
                clip_index = gr.Number(
                    value=0,
                    precision=0,
                    label=f"clip of data={studio.data}",
                    visible=False,
                    elem_id="clip_index",
                )
                load_clip = gr.Button("show clip", visible=False)
                fov = gr.Slider(20, 120, value=60, step=1, label="horizontal field of view of an image (deg)")
                frame = gr.Image(
                    label=f"conditioning frame ({H}x{W})", interactive=False, height=160, elem_id="frame"
                )
                gt_video = gr.Video(label="ground truth clip", visible=False, height=160)
            with gr.Column(scale=1, min_width=340):
                gr.Markdown("### 2. Camera path")
                path_kind = gr.Radio(
                    list(PATH_CHOICES), value="preset", label="camera path", elem_id="path_kind"
                )
                with gr.Group(visible=True) as preset_box:
                    preset = gr.Radio(list(PRESETS), value="orbit_left", label="preset", elem_id="preset")
                    with gr.Row():
                        amplitude = gr.Textbox(
                            value="medium", label="amplitude (small/medium/large or number)"
                        )
                        speed = gr.Slider(0.1, 2.0, value=1.0, step=0.05, label="speed")
                with gr.Group(visible=False) as key_box:
                    table = gr.Dataframe(
                        value=default_keyframes(F),
                        headers=list(KEYFRAME_COLUMNS),
                        datatype=["number"] * len(KEYFRAME_COLUMNS),
                        row_count=(2, "dynamic"),
                        column_count=(len(KEYFRAME_COLUMNS), "fixed"),
                        label=f"keyframes (frames 0..{F - 1}; centre x/y/z in the first "
                        "camera's axes, x right, y down, z forward; angles in degrees)",
                    )
                pose_file = gr.File(
                    label="pose file (RealEstate10K / CamI2V .txt, .json, .npy)",
                    type="filepath",
                    visible=False,
                )
                draw = gr.Button("draw path")
                plot = gr.Plot(label="camera frustums", show_label=False, elem_id="path_plot")
            with gr.Column(scale=1, min_width=340):
                gr.Markdown("### 3. Generate")
                with gr.Row():
                    steps = gr.Slider(
                        1, 50, value=Request.steps, step=1, label="sampler steps", elem_id="steps"
                    )
                    seed = gr.Number(value=0, precision=0, label="seed")
                guidance = studio.guidance_defaults()  # the model's own (its manifest), else 1 -> 3
                with gr.Row():
                    g_min = gr.Slider(1.0, 5.0, value=guidance["guidance_min"], step=0.1,
                                      label="guidance (first frame)")
                    g_max = gr.Slider(1.0, 5.0, value=guidance["guidance_max"], step=0.1,
                                      label="guidance (last frame)")
                static = gr.Checkbox(value=True, label="also the same seed with a static camera")
                with gr.Row():
                    go = gr.Button("generate", variant="primary", elem_id="generate")
                    stop = gr.Button("cancel", variant="stop", elem_id="cancel")
                video = gr.Video(label="generated", elem_id="video", height=200, autoplay=True, loop=True)
                compare = gr.Video(
                    label="camera path | static camera (same seed)",
                    elem_id="compare",
                    height=200,
                    autoplay=True,
                    loop=True,
                )
        with gr.Row(equal_height=False):
            with gr.Column(scale=1):
                gr.Markdown("### 4. Reconstruct")
                r_steps = gr.Slider(10, 1000, value=200, step=10, label="fit steps", elem_id="recon_steps")
                r_gauss = gr.Slider(
                    200, 20000, value=3000, step=100, label="Gaussians", elem_id="recon_gauss"
                )
                recon = gr.Button("reconstruct", elem_id="reconstruct")
                turntable = gr.Video(label="turntable", height=200, autoplay=True, loop=True)
                ply = gr.File(label="gaussians.ply", elem_id="ply")
            with gr.Column(scale=1):
                gr.Markdown("### 5. Score the camera")
                score_btn = gr.Button("estimate poses and score", elem_id="score")
                score_md = gr.Markdown("")
                score_plot = gr.Image(
                    label="estimated over requested (scale-normalised)", interactive=False, height=220
                )
            with gr.Column(scale=1):
                gr.Markdown("### Reproduce")
                command = gr.Textbox(
                    label="sample.py command line (runs from the repository root)",
                    elem_id="command",
                    interactive=False,
                    lines=8,
                    max_lines=20,
                    buttons=["copy"],
                )

        controls = {
            "input_kind": input_kind, "image": image, "clip_index": clip_index, "path_kind": path_kind,
            "preset": preset, "amplitude": amplitude, "speed": speed, "pose_file": pose_file, "table": table,
            "steps": steps, "seed": seed, "g_min": g_min, "g_max": g_max, "fov": fov, "static": static,
        }

        def inputs(names: tuple[str, ...]) -> list:
            return [controls[n] for n in names]

        on_input, on_path = handler(show_input, SHOW_INPUT), handler(show_path, SHOW_PATH)

        input_kind.change(input_controls, input_kind, [image, clip_index, load_clip], queue=False)
        path_kind.change(path_controls, path_kind, [preset_box, key_box, pose_file], queue=False)
        for ev in (image.change, load_clip.click):
            ev(on_input, inputs(SHOW_INPUT), [frame, gt_video, status], show_progress_on=frame)
        for ev in (
            draw.click,
            preset.change,
            path_kind.change,
            speed.release,
            amplitude.submit,
            table.change,
            pose_file.change,
            app.load,
        ):
            ev(on_path, inputs(SHOW_PATH), [plot, status], show_progress_on=plot)
        go.click(
            handler(generate, GENERATE),
            inputs(GENERATE),
            [video, compare, command, rid, status],
            show_progress_on=[video, compare],
            concurrency_limit=1,
            concurrency_id="work",
        )
        stop.click(cancel, None, status, queue=False)
        recon.click(
            reconstruct,
            [rid, r_steps, r_gauss],
            [turntable, ply, command, status],
            show_progress_on=[turntable, ply],
            concurrency_limit=1,
            concurrency_id="work",
        )
        score_btn.click(
            score,
            rid,
            [score_md, score_plot, status],
            show_progress_on=[score_md, score_plot],
            concurrency_limit=1,
            concurrency_id="work",
        )
    return app
