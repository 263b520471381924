"""Camera-trajectory errors between a generated video's estimated poses and the ground truth.

Protocol (CameraCtrl-style, made explicit):

1. Both trajectories are re-expressed relative to their own first frame
   (``vid3d.geometry.relative_to_first``): frame 0 becomes the identity, so any global rigid
   transform of either trajectory (e.g. COLMAP's arbitrary world frame) cancels.
2. Each trajectory is scale-normalised on its own (``vid3d.geometry.normalize_scale``): translations
   are divided by the distance of the furthest camera centre from the first, so the furthest camera
   sits at distance 1. This removes the unknown global scale of structure-from-motion.
   **Static rule**: a trajectory whose furthest distance is below ``eps`` (all centres coincide) has
   no scale; its translations are set to exactly zero and its scale is reported as 0.0. The other
   trajectory is normalised as usual, so e.g. a static GT against a moving generation gives
   TransErr = sum_i ||t_gen_i|| with each ||t_gen_i|| <= 1.
3. With ``R_i, t_i`` the rotation and translation of the relative, normalised camera-to-world pose
   (``t_i`` is camera i's centre in the first camera's frame, in units of the trajectory extent):

   - RotErr  = sum_i angle(R_gen_i R_gt_i^T)                                 (radians / degrees)
     with angle(M) = arccos((tr M - 1) / 2), evaluated as atan2(sin, cos) (exact near 0), after each
     rotation is projected onto SO(3) (stored rotations are near-orthonormal; a trajectory against its own
     projection then reads < 1e-6 rad instead of up to 4e-3 on RealEstate10K files).
   - TransErr = sum_i ||t_gt_i - t_gen_i||_2                                  (unitless)
   - CamMC   = sum_i ||[R|t]_gt_i - [R|t]_gen_i||_F over the 3x4 matrices     (unitless)

   Sums run over all n frames (frame 0 contributes 0 by construction); the ``*_per_frame`` keys are
   these sums divided by n.
"""

from __future__ import annotations

import math

import numpy as np

from vid3d.geometry import normalize_scale, project_to_so3, relative_to_first, rotation_angle_between

__all__ = ["camera_errors", "prepare_trajectory"]


def _as_numpy_c2w(c2w, name: str) -> np.ndarray:
    if hasattr(c2w, "detach"):  # torch tensor
        c2w = c2w.detach().cpu().double().numpy()
    arr = np.asarray(c2w, dtype=np.float64)
    if arr.ndim != 3 or arr.shape[1:] not in ((4, 4), (3, 4)):
        raise ValueError(f"{name}: expected (n, 4, 4) or (n, 3, 4) camera-to-world poses, got {arr.shape}")
    if arr.shape[0] < 1:
        raise ValueError(f"{name}: empty trajectory")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: poses contain NaN/inf (unregistered frames must be masked out first)")
    if arr.shape[1] == 3:
        bottom = np.zeros((arr.shape[0], 1, 4))
        bottom[:, 0, 3] = 1.0
        arr = np.concatenate([arr, bottom], axis=1)
    arr = arr.copy()
    arr[:, :3, :3] = project_to_so3(arr[:, :3, :3])  # stored rotations are only near-orthonormal
    return arr


def prepare_trajectory(c2w, eps: float = 1e-8) -> tuple[np.ndarray, float]:
    """Relative-to-first, scale-normalised camera-to-world poses (n, 4, 4) float64 and the scale.

    A static trajectory (furthest centre distance < ``eps``) gets exactly-zero translations and
    scale 0.0 (see the module docstring).
    """
    rel = relative_to_first(_as_numpy_c2w(c2w, "c2w"))
    out, scale = normalize_scale(rel, eps=eps)
    out = np.array(out, dtype=np.float64)
    if scale == 0.0:
        out[:, :3, 3] = 0.0
    return out, float(scale)


def camera_errors(gen_c2w, gt_c2w, eps: float = 1e-8) -> dict[str, float]:
    """RotErr / TransErr / CamMC between generated and ground-truth camera-to-world trajectories.

    Args:
        gen_c2w: (n, 4, 4) (or (n, 3, 4)) OpenCV camera-to-world poses estimated from the generated
            video, any world frame and scale; numpy or torch.
        gt_c2w: (n, 4, 4) ground-truth camera-to-world poses, any world frame and scale.
        eps: furthest-centre distance below which a trajectory counts as static (no scaling).
    Returns:
        dict of floats: ``rot_err_rad``, ``rot_err_deg``, ``trans_err``, ``cammc`` (sums over the n
        frames), ``rot_err_rad_per_frame``, ``rot_err_deg_per_frame``, ``trans_err_per_frame``,
        ``cammc_per_frame`` (sums / n), ``n_frames`` (n), ``gt_scale`` and ``gen_scale`` (the
        furthest-centre distances divided out, in each trajectory's own units; 0.0 when static).
    """
    gen = _as_numpy_c2w(gen_c2w, "gen_c2w")
    gt = _as_numpy_c2w(gt_c2w, "gt_c2w")
    if gen.shape[0] != gt.shape[0]:
        raise ValueError(f"gen_c2w has {gen.shape[0]} frames but gt_c2w has {gt.shape[0]}")
    n = gen.shape[0]
    gen_n, gen_scale = prepare_trajectory(gen, eps)
    gt_n, gt_scale = prepare_trajectory(gt, eps)

    rot = np.asarray(rotation_angle_between(gen_n[:, :3, :3], gt_n[:, :3, :3]), dtype=np.float64)
    trans = np.linalg.norm(gt_n[:, :3, 3] - gen_n[:, :3, 3], axis=-1)
    cammc = np.linalg.norm((gt_n[:, :3, :4] - gen_n[:, :3, :4]).reshape(n, -1), axis=-1)

    rot_sum = float(rot.sum())
    out = {
        "rot_err_rad": rot_sum,
        "rot_err_deg": math.degrees(rot_sum),
        "trans_err": float(trans.sum()),
        "cammc": float(cammc.sum()),
    }
    for key in list(out):
        out[f"{key}_per_frame"] = out[key] / n
    out.update({"n_frames": n, "gt_scale": gt_scale, "gen_scale": gen_scale})
    return out
