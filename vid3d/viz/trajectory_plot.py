"""3D plot of camera trajectories (camera centres + viewing directions), rendered off-screen with Agg.

Poses are OpenCV camera-to-world (F, 4, 4): the centre is ``c2w[:3, 3]`` and the viewing direction
the camera's +z axis ``c2w[:3, 2]``. OpenCV's y axis points down, so the plot shows world
(x, z, -y) on its (X, Y, Z) axes: the first camera's "up" is up in the picture.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import numpy as np

from vid3d.atomic import atomic_target

__all__ = ["plot_trajectory", "trajectory_figure"]


def _to_numpy(c2w, label: str) -> np.ndarray:
    if hasattr(c2w, "detach"):
        c2w = c2w.detach().cpu().numpy()
    elif hasattr(c2w, "c2w"):  # a Trajectory
        c2w = c2w.c2w
    arr = np.asarray(c2w, dtype=np.float64)
    if arr.ndim != 3 or arr.shape[1:] not in ((4, 4), (3, 4)) or len(arr) == 0:
        raise ValueError(f"plot_trajectory: {label!r} must be (F, 4, 4) camera-to-world, got {arr.shape}")
    return arr


def trajectory_figure(
    c2w_list: Mapping[str, object],
    title: str | None = None,
    size_px: int = 480,
    arrow_length: float | None = None,
):
    """The matplotlib ``Figure`` of :func:`plot_trajectory` (same arguments), not yet drawn.

    The 3D axes are shrunk (``zoom``) and the label sizes follow ``size_px`` so that the title, the three
    axis labels and the legend stay inside the canvas at any size (256 px in the training media)."""
    if len(c2w_list) == 0:
        raise ValueError("plot_trajectory needs at least one trajectory")
    from matplotlib.figure import Figure

    trajs = {str(k): _to_numpy(v, str(k)) for k, v in c2w_list.items()}
    # plot coordinates (x, z, -y) of centres and forward axes
    perm = np.array([[1.0, 0, 0], [0, 0, 1.0], [0, -1.0, 0]])
    centres = {k: v[:, :3, 3] @ perm.T for k, v in trajs.items()}
    forwards = {k: v[:, :3, 2] @ perm.T for k, v in trajs.items()}
    allc = np.concatenate(list(centres.values()))
    lo, hi = allc.min(0), allc.max(0)
    extent = float((hi - lo).max())
    if arrow_length is None:
        arrow_length = 0.15 * extent if extent > 1e-9 else 0.2
    half = max(extent, 2 * arrow_length) / 2 * 1.15
    mid = (lo + hi) / 2

    dpi = 100
    small = size_px < 400
    label_size, tick_size = (6.5, 5) if small else (9, 6)
    fig = Figure(figsize=(size_px / dpi, size_px / dpi), dpi=dpi)
    # the 3D box below the title, drawn at 80-85% (zoom) so its labels fit around it
    ax = fig.add_axes((0.0, 0.04, 1.0, 0.84), projection="3d")
    colors = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown"]
    for i, label in enumerate(trajs):
        c, f, col = centres[label], forwards[label], colors[i % len(colors)]
        ax.plot(c[:, 0], c[:, 1], c[:, 2], "-o", color=col, markersize=3, linewidth=1.5, label=label)
        ax.quiver(
            c[:, 0],
            c[:, 1],
            c[:, 2],
            f[:, 0],
            f[:, 1],
            f[:, 2],
            length=arrow_length,
            color=col,
            linewidth=0.8,
            arrow_length_ratio=0.3,
        )
        ax.scatter(c[:1, 0], c[:1, 1], c[:1, 2], color=col, marker="s", s=30)  # first camera
    ax.set_xlim(mid[0] - half, mid[0] + half)
    ax.set_ylim(mid[1] - half, mid[1] + half)
    ax.set_zlim(mid[2] - half, mid[2] + half)
    ax.set_box_aspect((1, 1, 1), zoom=0.8 if small else 0.85)
    pad = 0 if small else 4
    ax.set_xlabel("x (right)", fontsize=label_size, labelpad=pad)
    ax.set_ylabel("z (forward)", fontsize=label_size, labelpad=pad)
    ax.set_zlabel("-y (up)", fontsize=label_size, labelpad=pad)
    ax.tick_params(labelsize=tick_size, pad=0 if small else 2)
    ax.legend(fontsize=label_size - 0.5, loc="upper left", title="first camera: square",
              title_fontsize=label_size - 1)
    if title:
        fig.suptitle(title, fontsize=label_size + 2, y=0.98)
    return fig


def plot_trajectory(
    c2w_list: Mapping[str, object],
    path: str | os.PathLike | None = None,
    title: str | None = None,
    size_px: int = 480,
    arrow_length: float | None = None,
) -> np.ndarray:
    """Plot one or more trajectories (e.g. {"GT": c2w_gt, "estimated": c2w_est}) in a shared 3D view.

    Args:
        c2w_list: label -> (F, 4, 4) camera-to-world poses (numpy, torch or ``Trajectory``).
        path: if given, the PNG is also written there (atomically).
        title: optional figure title.
        size_px: width and height of the image in pixels.
        arrow_length: length of the viewing-direction arrows in scene units; default 15% of the
            extent of all camera centres (0.2 if every camera sits at one point).
    Returns:
        (size_px, size_px, 3) uint8 RGB image.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = trajectory_figure(c2w_list, title, size_px, arrow_length)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    image = np.asarray(canvas.buffer_rgba())[..., :3].copy()

    if path is not None:
        import imageio.v3 as iio

        with atomic_target(path) as tmp:  # 0644, never half-written
            iio.imwrite(tmp, image, extension=".png")
    return image
