"""Pure multi-view geometry for the flow pose estimator: rotation-only fit, essential matrix, triangulation,
resection (PnP).

Conventions: pixel positions (m, 2) with pixel centres at (u + 0.5, v + 0.5), the same convention as the
(3, 3) pixel intrinsics ``K`` (vid3d's; OpenCV's solvers only need the two to agree). A world-to-camera
pose is a (3, 4) matrix [R | t] with x_cam = R x_world + t; the world frame is camera 0's, so camera 0 is
[I | 0] and the relative pose of frame k is R_0k (camera-0 coordinates -> camera-k coordinates).
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = [
    "bundle_adjust",
    "essential_pose",
    "fit_rotation",
    "project",
    "resect",
    "to_rays",
    "triangulate",
]


def to_rays(xy: np.ndarray, K: np.ndarray) -> np.ndarray:
    """(m, 3) normalised camera rays (z = 1) of pixel positions ``xy`` (m, 2)."""
    h = np.c_[np.asarray(xy, np.float64), np.ones(len(xy))]
    return h @ np.linalg.inv(np.asarray(K, np.float64)).T


def project(X: np.ndarray, w2c: np.ndarray, K: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pixel positions (m, 2) and depths (m,) of world points ``X`` (m, 3) in camera ``w2c`` (3, 4)."""
    Xc = X @ w2c[:3, :3].T + w2c[:3, 3]
    z = Xc[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        uv = (Xc[:, :2] / z[:, None]) * np.diag(K)[:2] + K[:2, 2]
    return uv, z


def fit_rotation(
    x0: np.ndarray, xk: np.ndarray, K: np.ndarray, iters: int = 3
) -> tuple[np.ndarray, np.ndarray]:
    """The rotation R_0k that best maps the rays of ``x0`` onto those of ``xk`` (pure rotation, no
    translation: x_k ~ K R_0k K^-1 x_0), by Kabsch on unit rays, refitted ``iters`` times on the points
    within max(2 x median, 0.5 px) of the previous fit. Returns (R (3, 3), residual (m,) in pixels of every
    point under that rotation): the residual of a moving camera is its parallax."""
    a = to_rays(x0, K)
    b = to_rays(xk, K)
    a /= np.linalg.norm(a, axis=1, keepdims=True)
    b /= np.linalg.norm(b, axis=1, keepdims=True)
    use = np.ones(len(a), dtype=bool)
    R = np.eye(3)
    res = np.zeros(len(a))
    for _ in range(max(1, iters)):
        U, _, Vt = np.linalg.svd(b[use].T @ a[use])
        R = U @ np.diag([1.0, 1.0, np.linalg.det(U @ Vt)]) @ Vt
        uv, _ = project(a, np.c_[R, np.zeros(3)], K)
        res = np.linalg.norm(uv - xk, axis=1)
        res[~np.isfinite(res)] = np.inf
        use = res <= max(2.0 * float(np.median(res)), 0.5)
        if use.sum() < 3:
            break
    return R, res


def essential_pose(
    x0: np.ndarray, xk: np.ndarray, K: np.ndarray, max_error_px: float, seed: int = 0, max_points: int = 3000
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Relative pose of frame k from correspondences x0 <-> xk (m, 2) with known ``K``: essential matrix by
    MAGSAC (``max_error_px``) on at most ``max_points`` of them (a seeded subset), then the cheirality
    check (``cv2.recoverPose``) on all. Returns (R_0k (3, 3), unit t_0k (3,), inlier mask (m,) of points
    consistent with the epipolar geometry and in front of both cameras), or None when no essential matrix
    is found."""
    m = len(x0)
    if m < 8:
        return None
    rng = np.random.default_rng(seed)
    sub = rng.choice(m, size=min(m, max_points), replace=False)
    cv2.setRNGSeed(int(seed))
    try:
        E, _ = cv2.findEssentialMat(x0[sub], xk[sub], K, cv2.USAC_MAGSAC, 0.999, max_error_px)
        if E is None or E.shape != (3, 3):
            return None
        # inliers of all points: Sampson distance to E's epipolar geometry
        Kinv = np.linalg.inv(K)
        F = Kinv.T @ E @ Kinv
        h0 = np.c_[x0, np.ones(m)]
        hk = np.c_[xk, np.ones(m)]
        Fx0, Ftk = h0 @ F.T, hk @ F
        num = np.einsum("ij,ij->i", hk, Fx0) ** 2
        den = Fx0[:, 0] ** 2 + Fx0[:, 1] ** 2 + Ftk[:, 0] ** 2 + Ftk[:, 1] ** 2
        mask = (num <= max_error_px**2 * den).astype(np.uint8).reshape(-1, 1)
        _, R, t, mask = cv2.recoverPose(E, x0, xk, K, mask=mask)
    except cv2.error:  # degenerate samples
        return None
    t = t.reshape(3)
    return R, t / max(float(np.linalg.norm(t)), 1e-12), mask.reshape(-1) > 0


def triangulate(
    obs: np.ndarray, w2c: np.ndarray, K: np.ndarray, max_error_px: float, min_angle_deg: float
) -> tuple[np.ndarray, np.ndarray]:
    """Linear triangulation of each point from every camera that sees it (the DLT equations in normalised
    coordinates, solved for a finite point by least squares).

    Args:
        obs: (m, v, 2) pixel positions of m points in v cameras, NaN where a camera does not see a point.
        w2c: (v, 3, 4) world-to-camera poses of the v cameras.
    Returns:
        X (m, 3) world points and ok (m,) bool: seen by >= 2 cameras, in front of each (depth > 0), within
        ``max_error_px`` of each observation, and with a largest angle between two of its rays of at least
        ``min_angle_deg`` (a smaller one leaves the depth to the noise).
    """
    m, v = obs.shape[:2]
    seen = np.all(np.isfinite(obs), axis=2)  # (m, v)
    rays = to_rays(np.nan_to_num(obs).reshape(-1, 2), K).reshape(m, v, 3)
    A = np.zeros((m, 2 * v, 4))
    for c in range(v):
        P = w2c[c]
        rows = np.stack([rays[:, c, 0:1] * P[2] - P[0], rays[:, c, 1:2] * P[2] - P[1]], axis=1)  # (m, 2, 4)
        A[:, 2 * c : 2 * c + 2] = rows * seen[:, c, None, None]
    X = np.zeros((m, 3))
    ok = seen.sum(1) >= 2
    if ok.any():  # least squares A[:, :3] X = -A[:, 3] through the 3x3 normal equations (finite points)
        A3, a4 = A[ok, :, :3], A[ok, :, 3]
        N = np.einsum("mri,mrj->mij", A3, A3)
        rhs = -np.einsum("mri,mr->mi", A3, a4)
        det = np.linalg.det(N)
        good = np.abs(det) > 1e-12 * np.maximum(np.einsum("mii->m", N), 1e-30) ** 3
        sol = np.full((len(N), 3), np.nan)
        if good.any():
            sol[good] = np.linalg.solve(N[good], rhs[good][..., None])[..., 0]
        X[ok] = sol
    ok &= np.all(np.isfinite(X), axis=1)
    centres = np.stack([-P[:, :3].T @ P[:, 3] for P in w2c])  # (v, 3)
    dirs = np.zeros((m, v, 3))
    for c in range(v):
        uv, z = project(X, w2c[c], K)
        err = np.linalg.norm(uv - obs[:, c], axis=1)
        bad = seen[:, c] & ~((z > 0) & (err <= max_error_px))
        ok &= ~bad
        d = X - centres[c]
        dirs[:, c] = d / np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-12)
    cosines = np.einsum("mac,mbc->mab", dirs, dirs)
    both = seen[:, :, None] & seen[:, None, :]
    min_cos = np.where(both, cosines, 1.0).min(axis=(1, 2))
    ok &= min_cos <= np.cos(np.radians(min_angle_deg))
    return X, ok


def resect(
    X: np.ndarray, xy: np.ndarray, K: np.ndarray, max_error_px: float, seed: int = 0
) -> tuple[np.ndarray, np.ndarray] | None:
    """Camera pose from 3D-2D correspondences X (m, 3) <-> xy (m, 2): P3P inside RANSAC (``max_error_px``),
    refined by Levenberg-Marquardt on the inliers. Returns (w2c (3, 4), inlier mask (m,)) or None."""
    if len(X) < 6:
        return None
    cv2.setRNGSeed(int(seed))
    try:
        ok, rvec, tvec, inl = cv2.solvePnPRansac(
            X.astype(np.float64), xy.astype(np.float64), K, None, iterationsCount=1000,
            reprojectionError=float(max_error_px), confidence=0.999, flags=cv2.SOLVEPNP_AP3P,
        )
        if not ok or inl is None or len(inl) < 6:
            return None
        idx = inl.reshape(-1)
        rvec, tvec = cv2.solvePnPRefineLM(X[idx], xy[idx], K, None, rvec, tvec)
    except cv2.error:
        return None
    R, _ = cv2.Rodrigues(rvec)
    w2c = np.c_[R, tvec.reshape(3)]
    uv, z = project(X, w2c, K)
    mask = (z > 0) & (np.linalg.norm(uv - xy, axis=1) <= max_error_px)
    return w2c, mask


def bundle_adjust(
    obs: np.ndarray, w2c: np.ndarray, X: np.ndarray, K: np.ndarray, fixed: int, loss_scale_px: float = 1.0,
    max_nfev: int = 30,
) -> tuple[np.ndarray, np.ndarray]:
    """Joint refinement of camera poses and points by minimising the reprojection errors (Huber loss with
    scale ``loss_scale_px``; scipy's trust-region least squares with a sparse Jacobian).

    Args:
        obs: (m, v, 2) pixel observations of the m points in the v cameras, NaN where unseen.
        w2c: (v, 3, 4) initial world-to-camera poses; camera ``fixed`` stays where it is (the gauge).
        X: (m, 3) initial points.
    Returns:
        (w2c (v, 3, 4), X (m, 3)) refined.
    """
    from scipy.optimize import least_squares
    from scipy.sparse import lil_matrix
    from scipy.spatial.transform import Rotation

    m, v = obs.shape[:2]
    pts, cams = np.nonzero(np.all(np.isfinite(obs), axis=2))
    uv = obs[pts, cams]
    free = [c for c in range(v) if c != fixed]
    slot = {c: i for i, c in enumerate(free)}
    rv0 = Rotation.from_matrix(w2c[free, :, :3]).as_rotvec() if free else np.zeros((0, 3))
    x0 = np.concatenate([np.c_[rv0, w2c[free, :, 3]].ravel(), X.ravel()])
    nc = 6 * len(free)

    def unpack(x):
        p = x[:nc].reshape(-1, 6)
        R = np.repeat(np.eye(3)[None], v, 0)
        t = np.zeros((v, 3))
        R[fixed], t[fixed] = w2c[fixed, :, :3], w2c[fixed, :, 3]
        if free:
            R[free] = Rotation.from_rotvec(p[:, :3]).as_matrix()
            t[free] = p[:, 3:]
        return R, t, x[nc:].reshape(m, 3)

    def residuals(x):
        R, t, P = unpack(x)
        Xc = np.einsum("kij,kj->ki", R[cams], P[pts]) + t[cams]
        z = np.where(np.abs(Xc[:, 2]) < 1e-9, 1e-9, Xc[:, 2])
        proj = Xc[:, :2] / z[:, None] * np.diag(K)[:2] + K[:2, 2]
        return (proj - uv).ravel()

    J = lil_matrix((2 * len(pts), len(x0)), dtype=np.int8)
    rows = np.arange(len(pts))
    for c in free:
        sel = rows[cams == c]
        for d in range(6):
            J[2 * sel, 6 * slot[c] + d] = 1
            J[2 * sel + 1, 6 * slot[c] + d] = 1
    for d in range(3):
        J[2 * rows, nc + 3 * pts + d] = 1
        J[2 * rows + 1, nc + 3 * pts + d] = 1
    sol = least_squares(residuals, x0, jac_sparsity=J, loss="huber", f_scale=loss_scale_px, x_scale="jac",
                        method="trf", max_nfev=max_nfev)
    R, t, P = unpack(sol.x)
    return np.concatenate([R, t[:, :, None]], axis=2), P
