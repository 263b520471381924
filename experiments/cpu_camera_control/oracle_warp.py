"""How much the cameras can tell a model about the synthetic test clips (issue 14): the error of an oracle
that warps the conditioning frame into each later frame with that frame's true depth.

    python experiments/cpu_camera_control/oracle_warp.py ROOT [--height 32 --width 48 --interval 4 --frames 8]

For every test clip of the RealEstate10K-layout dataset at ROOT (with depth, as the synthetic builder
writes it): frames 0, s, 2s, ... centre-cropped and resized like the training loader; frame k is predicted by
backward-warping frame 0 through frame k's depth and the relative camera
(`vid3d.evaluation.depth_warp.backward_warp`) (own cameras), or another clip's
cameras (permuted, clip i takes clip i+1's), against copying frame 0. Mean squared error in [-1, 1] pixels,
frames 1..F-1 (the camera gap's scale). A large own-vs-permuted difference says the data reward a model
that uses its cameras; (permuted / own) is the gap an ideal warper would reach.
"""

from __future__ import annotations

import argparse

import cv2
import numpy as np


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("root")
    p.add_argument("--height", type=int, default=32)
    p.add_argument("--width", type=int, default=48)
    p.add_argument("--interval", type=int, default=4)
    p.add_argument("--frames", type=int, default=8)
    a = p.parse_args(argv)
    from vid3d.data.formats.re10k import list_clips, read_camera_file, read_depth, read_frames
    from vid3d.data.transforms import center_crop_box
    from vid3d.evaluation.depth_warp import backward_warp
    from vid3d.geometry import K_norm_to_px, crop_resize_K

    H, W = a.height, a.width
    clips = []
    for clip in list_clips(a.root, "test"):
        cams = read_camera_file(clip.camera_path)
        idx = np.arange(a.frames) * a.interval
        frames = read_frames(clip, cams, idx).astype(np.float32) / 127.5 - 1.0
        depth = read_depth(clip, idx)
        if depth is None:
            raise SystemExit(f"{clip.camera_path}: no depth file; the oracle needs the synthetic set's depth")
        h0, w0 = frames.shape[1:3]
        x0, y0, cw, ch = center_crop_box(h0, w0, H, W)
        crop = (slice(y0, y0 + ch), slice(x0, x0 + cw))
        frames = np.stack([cv2.resize(f[crop], (W, H), interpolation=cv2.INTER_AREA) for f in frames])
        depth = np.stack([cv2.resize(d[crop], (W, H), interpolation=cv2.INTER_NEAREST) for d in depth])
        K = np.asarray(crop_resize_K(K_norm_to_px(cams.K_norm[idx], h0, w0), x0, y0, cw, ch, W, H))
        c2w = np.asarray(cams.c2w())[idx]
        clips.append((frames, depth, K, np.linalg.inv(c2w[0]) @ c2w))
    err: dict[str, list[float]] = {"copy frame 0": [], "warp, own cameras": [], "warp, permuted cameras": []}
    for i, (frames, depth, K, rel) in enumerate(clips):
        other = clips[(i + 1) % len(clips)][3]
        for k in range(1, len(frames)):
            err["copy frame 0"].append(np.mean((frames[0] - frames[k]) ** 2))
            own = backward_warp(frames[0], depth[k], K[k], rel[k])
            err["warp, own cameras"].append(np.mean((own - frames[k]) ** 2))
            perm = backward_warp(frames[0], depth[k], K[k], other[k])
            err["warp, permuted cameras"].append(np.mean((perm - frames[k]) ** 2))
    print(
        f"{len(clips)} test clips, {a.frames} frames at interval {a.interval}, {H}x{W}; MSE on frames 1..F-1"
    )
    for name, values in err.items():
        print(f"  {name:24s} {np.mean(values):.4f}")
    own, perm = np.mean(err["warp, own cameras"]), np.mean(err["warp, permuted cameras"])
    print(f"  ideal warper's camera gap (permuted / own): {perm / own:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
