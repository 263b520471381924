"""Gaussians as a binary .ply in the layout of the 3DGS reference code, which common splat viewers read.

One vertex per Gaussian with float32 properties x y z, nx ny nz (zeros), f_dc_0..2 (SH degree-0 colour),
opacity (logit), scale_0..2 (log), rot_0..3 (quaternion w x y z), little-endian. World coordinates are
vid3d's (OpenCV axes, the first input camera's frame when poses were made relative to it). Reading accepts
files with more properties (e.g. higher SH degrees ``f_rest_*``; ignored) in any order.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from vid3d.atomic import atomic_write_bytes

from .gaussians import Gaussians

PROPERTIES = (
    ["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2", "opacity"]
    + [f"scale_{i}" for i in range(3)]
    + [f"rot_{i}" for i in range(4)]
)
_PLY_TYPES = {"float": "f4", "float32": "f4", "double": "f8", "float64": "f8", "uchar": "u1", "uint8": "u1",
              "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4", "short": "i2", "ushort": "u2",
              "char": "i1", "int8": "i1", "int16": "i2", "uint16": "u2"}


class PlyError(ValueError):
    """A .ply file that is not a Gaussian splat file vid3d can read (the message names the file)."""


def write_ply(path: str | os.PathLike, g: Gaussians) -> None:
    """Write ``g`` to ``path`` atomically (a reader never sees a partial file)."""
    n = len(g)
    cols = [
        g.means, torch.zeros(n, 3), g.sh0, g.opacity_logits[:, None], g.log_scales, g.quats,
    ]
    data = torch.cat([c.detach().float().cpu() for c in cols], 1).numpy().astype("<f4")
    header = "ply\nformat binary_little_endian 1.0\n" + f"element vertex {n}\n"
    header += "".join(f"property float {p}\n" for p in PROPERTIES) + "end_header\n"
    atomic_write_bytes(path, header.encode("ascii") + data.tobytes())


def read_ply(path: str | os.PathLike) -> Gaussians:
    """Read a Gaussian splat .ply (binary little-endian, one ``vertex`` element with at least the properties
    of ``PROPERTIES``). Raises PlyError naming the file and what is wrong."""
    path = Path(path)
    if not path.is_file():
        raise PlyError(f"{path}: no such file")
    raw = path.read_bytes()
    end = raw.find(b"end_header\n")
    if not raw.startswith(b"ply\n") or end < 0:
        raise PlyError(f"{path}: not a PLY file (no 'ply' / 'end_header' header)")
    lines = raw[:end].decode("ascii", errors="replace").splitlines()
    if "format binary_little_endian 1.0" not in lines:
        fmt = [x for x in lines if x.startswith("format")]
        raise PlyError(f"{path}: only binary_little_endian PLY is read (got {fmt})")
    count, fields, element = None, [], None
    for line in lines:
        parts = line.split()
        if parts[:1] == ["element"]:
            element = parts[1]
            if element == "vertex":
                count = int(parts[2])
            elif count is not None:
                raise PlyError(f"{path}: elements after 'vertex' are not supported ({element})")
        elif parts[:1] == ["property"] and element == "vertex":
            if parts[1] == "list" or parts[1] not in _PLY_TYPES:
                raise PlyError(f"{path}: unsupported vertex property {' '.join(parts[1:])}")
            fields.append((parts[2], "<" + _PLY_TYPES[parts[1]]))
    if count is None:
        raise PlyError(f"{path}: no 'element vertex' in the header")
    missing = [p for p in PROPERTIES if p not in dict(fields) and p not in ("nx", "ny", "nz")]
    if missing:
        raise PlyError(f"{path}: not a Gaussian splat file, missing vertex properties {missing}")
    dtype = np.dtype(fields)
    body = raw[end + len(b"end_header\n"):]
    if len(body) < count * dtype.itemsize:
        need = count * dtype.itemsize
        raise PlyError(f"{path}: truncated ({len(body)} bytes of vertex data, {need} expected)")
    v = np.frombuffer(body, dtype=dtype, count=count)

    def cols(names):
        return torch.from_numpy(np.stack([v[n].astype(np.float32) for n in names], -1))

    return Gaussians(
        means=cols(["x", "y", "z"]),
        quats=cols([f"rot_{i}" for i in range(4)]),
        log_scales=cols([f"scale_{i}" for i in range(3)]),
        opacity_logits=cols(["opacity"])[:, 0],
        sh0=cols(["f_dc_0", "f_dc_1", "f_dc_2"]),
    )
