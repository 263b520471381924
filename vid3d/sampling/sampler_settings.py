"""Sampler settings read from a file (an exported pipeline's ``vid3d_model.json``), passed as overrides or
given to ``VideoSampler`` (from conf/sampler): the keys and defaults of
``vid3d.config_schema.SamplerOptions``.

Settings are data: ``solver`` one of the known solvers, ``num_steps`` an integer in [1, MAX_STEPS],
``sigma_min`` / ``sigma_max`` finite with 0 < sigma_min < sigma_max <= MAX_SIGMA, ``rho`` finite in
(0, MAX_RHO], ``guidance_min`` / ``guidance_max`` finite in [0, MAX_GUIDANCE], ``eta`` finite in [0, 1]
and 0 unless ``solver`` is ``ddim``. Anything else (an unknown key, ``num_steps: 1e9`` which would run
for days, ``sigma_max: NaN`` which gives an all-NaN video) raises :class:`SamplerSettingsRefused` with
one line naming the file and the field.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping
from typing import Any

from vid3d.config_schema import SOLVER_NAMES, SamplerOptions
from vid3d.errors import InputError

MAX_STEPS = 1000  # EDM/SVD use 25-50; 1000 is the DDPM training schedule's length
MAX_SIGMA = 1e5  # SVD: 700
MAX_RHO = 100.0  # Karras: 7
MAX_GUIDANCE = 100.0  # SVD: 1..3
MAX_IMAGE_SIDE = 8192
MAX_FRAMES = 4096


class SamplerSettingsRefused(InputError):
    """Sampler settings outside their allowed values (str: "<file>: sampler setting '<key>' ...")."""


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def check_sampler_settings(
    settings: Any, where: str, solvers: Iterable[str] = SOLVER_NAMES
) -> dict[str, Any]:
    """``settings`` unchanged (as a dict) if every entry is allowed (see the module docstring), else
    :class:`SamplerSettingsRefused` naming ``where`` and the first bad field. Entries that are absent
    are not checked (the caller's defaults fill them)."""

    def refuse(key: str, what: str) -> SamplerSettingsRefused:
        return SamplerSettingsRefused(f"{where}: sampler setting '{key}' refused: {what}")

    if not isinstance(settings, Mapping):
        raise SamplerSettingsRefused(
            f"{where}: sampler settings must be a mapping, got {type(settings).__name__}"
        )
    allowed = tuple(f.name for f in dataclasses.fields(SamplerOptions))
    for key in settings:
        if key not in allowed:
            raise refuse(str(key)[:80], f"unknown (allowed: {list(allowed)})")
    s = dict(settings)
    solvers = sorted(solvers)
    if "solver" in s and s["solver"] not in solvers:
        raise refuse("solver", f"{s['solver']!r:.80} is not one of {solvers}")
    if "num_steps" in s:
        n = s["num_steps"]
        if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= MAX_STEPS:
            raise refuse("num_steps", f"{n!r:.40} is not an integer in [1, {MAX_STEPS}]")
    for key, lo, hi, lo_open in (
        ("sigma_min", 0.0, MAX_SIGMA, True),
        ("sigma_max", 0.0, MAX_SIGMA, True),
        ("rho", 0.0, MAX_RHO, True),
        ("guidance_min", 0.0, MAX_GUIDANCE, False),
        ("guidance_max", 0.0, MAX_GUIDANCE, False),
        ("eta", 0.0, 1.0, False),
    ):
        if key not in s:
            continue
        v = s[key]
        if not _finite(v):
            raise refuse(key, f"{v!r:.40} is not a finite number")
        if v > hi or v < lo or (lo_open and v == lo):
            raise refuse(key, f"{v!r} is outside {'(' if lo_open else '['}{lo:g}, {hi:g}]")
    if "sigma_min" in s and "sigma_max" in s and not s["sigma_min"] < s["sigma_max"]:
        raise refuse("sigma_max", f"{s['sigma_max']!r} must be larger than sigma_min {s['sigma_min']!r}")
    if s.get("eta", 0.0) != 0 and s.get("solver", SamplerOptions.solver) != "ddim":
        raise refuse("eta", f"{s['eta']!r}: only solver 'ddim' takes eta (the others are deterministic)")
    return s


def sampler_options(settings: Mapping[str, Any], where: str) -> SamplerOptions:
    """Checked settings (absent keys take ``SamplerOptions``' defaults) as ``SamplerOptions``; integral floats
    (``25.0`` from a YAML/JSON number) are not integers and are refused for ``num_steps``."""
    s = check_sampler_settings({**dataclasses.asdict(SamplerOptions()), **dict(settings)}, where)
    as_float = {k: float(v) for k, v in s.items() if isinstance(v, int) and k != "num_steps"}
    return SamplerOptions(**{**s, **as_float})


def check_image_size(size: Any, where: str) -> list[int] | None:
    """None, or ``[H, W]`` of two integers in [1, MAX_IMAGE_SIDE]; else SamplerSettingsRefused."""
    if size is None:
        return None
    ok = (
        isinstance(size, (list, tuple))
        and len(size) == 2
        and all(isinstance(x, int) and not isinstance(x, bool) and 1 <= x <= MAX_IMAGE_SIDE for x in size)
    )
    if not ok:
        raise SamplerSettingsRefused(
            f"{where}: 'image_size' refused: {size!r:.80} is not [H, W] with sides in [1, {MAX_IMAGE_SIDE}]"
        )
    return list(size)


def check_num_frames(n: Any, where: str) -> int | None:
    """None, or an integer frame count in [1, MAX_FRAMES]; else SamplerSettingsRefused."""
    if n is None:
        return None
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= MAX_FRAMES:
        raise SamplerSettingsRefused(f"{where}: 'num_frames' refused: {n!r:.40} is not an integer in "
                                     f"[1, {MAX_FRAMES}]")
    return n
