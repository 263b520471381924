"""Embedded synthetic dataset: procedural 3D scenes (room, outdoor, turntable) rendered with exact
pinhole cameras along walks, pans, orbits, dollies and real RealEstate10K trajectories, written in
the RealEstate10K layout (+ depth) so the real reader path runs on it.

``build_synthetic_dataset(root)`` builds (or reuses) it; ``python -m vid3d.data.synthetic --root DIR``.
"""

from .build import FORMAT_VERSION, build_synthetic_dataset, clip_cameras, render_clip
from .render import Scene, render_view, render_views
from .scenes import ClipSpec, make_clip

__all__ = [
    "FORMAT_VERSION",
    "ClipSpec",
    "Scene",
    "build_synthetic_dataset",
    "clip_cameras",
    "make_clip",
    "render_clip",
    "render_view",
    "render_views",
]
