"""Fréchet Video Distance (FVD) between generated and ground-truth videos, with I3D features.

Definition: features f = I3D(video) of each set (one vector per video); fit a Gaussian per set
(mean mu, covariance Sigma, unbiased, ``np.cov``); FVD is the Fréchet (2-Wasserstein) distance

    FVD = ||mu_1 - mu_2||^2 + tr(Sigma_1 + Sigma_2 - 2 (Sigma_1 Sigma_2)^(1/2))

in squared feature units (no unit; lower is better; 0 for identical feature sets).

The network is the common *TorchScript* I3D (``i3d_torchscript.pt``, the Kinetics-400 I3D ported from
the TF-Hub model used by the original FVD; StyleGAN-V / fvd-comparison use the same file), loaded with
``torch.jit.load`` from a LOCAL path (``metrics.fvd.i3d=/path/to/i3d_torchscript.pt``). Nothing is
downloaded, and without the file FVD is refused (``FVDWeightsError``), never computed with random weights.
It is called as ``detector(x, rescale=False, resize=False, return_features=True)`` with
``x``: float32 (N, 3, T, 224, 224) in [-1, 1]; it returns (N, 400) features (the logits before the
softmax, as StyleGAN-V uses them). ``preprocess_videos`` makes that input: frames resized to 224x224
(bilinear, aspect ratio not kept, as fvd-comparison), [0, 255] -> [-1, 1]. I3D wants T >= 9 or so
frames (16 is the convention); FVD numbers are only comparable at the same T, resolution and set sizes.

Plumbing tests use ``build_tiny_extractor``: a scripted random-init 3D conv net with the same call
signature, labelled ``"random-init (not I3D)"`` in every result; its numbers are not FVD.

In the camera benchmark (``eval.py benchmark=camera metrics.fvd.i3d=...``) each record carries its generated
video's features and its clip's ground-truth features (``sample_features``), so a resumed or sharded run
holds everything FVD needs, and ``fvd_entry`` computes the same number from the records of one
uninterrupted run or of merged shards. Per method and trial the generated videos are compared with the
ground-truth videos of the same clips; the entry reports the mean over trials and n, the videos per set.
With few videos FVD is biased (upwards; the bias shrinks roughly as 1/n) and has a high variance: n in the
tens, as in a benchmark of tens of clips, gives numbers to compare only at the same n, T and resolution,
never with published FVDs computed on thousands of videos.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import scipy.linalg
import torch
import torch.nn.functional as F

from vid3d.errors import InputError

__all__ = [
    "FVDWeightsError",
    "NOT_I3D_LABEL",
    "I3D_INPUT_SIZE",
    "FVDMetric",
    "build_tiny_extractor",
    "feature_statistics",
    "find_fvd",
    "frechet_distance",
    "fvd_column",
    "fvd_entry",
    "fvd_from_features",
    "fvd_key",
    "is_random_init_label",
    "load_i3d",
    "preprocess_videos",
    "save_tiny_extractor",
]

I3D_INPUT_SIZE = 224
NOT_I3D_LABEL = "random-init (not I3D)"
FVD_KEY = "fvd"
_LABEL_ATTR = "vid3d_label"  # set on the tiny extractor; real I3D files do not have it


class FVDWeightsError(InputError):
    """The I3D weights are missing or unusable: FVD is refused."""


# ---------------------------------------------------------------------------------------- Fréchet math
def feature_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean (D,) and unbiased covariance (D, D) of (N, D) features (N >= 2), float64."""
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2 or f.shape[0] < 2:
        raise ValueError(f"features must be (N, D) with N >= 2 videos, got shape {f.shape}")
    if not np.all(np.isfinite(f)):
        raise ValueError("features contain NaN/inf")
    return f.mean(axis=0), np.atleast_2d(np.cov(f, rowvar=False))


def frechet_distance(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray, eps: float = 1e-6
) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2):
    ||mu1 - mu2||^2 + tr(sigma1) + tr(sigma2) - 2 tr((sigma1 sigma2)^(1/2)).

    Numerical stability: ``scipy.linalg.sqrtm`` of the (non-symmetric) product sigma1 @ sigma2 can be
    inaccurate or non-finite when the covariances are singular (fewer videos than feature dimensions,
    the usual case with 400-d features) and returns a complex result with tiny imaginary parts from
    round-off. When the result is not finite, ``eps * I`` is added to both covariances and the root is
    recomputed; imaginary parts are dropped if the diagonal's are below 1e-3 (else ValueError, a sign
    of a broken input). The result is clipped at 0 (round-off can make identical sets slightly negative).
    """
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    s1, s2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    d = mu1.shape[0]
    if mu2.shape != (d,) or s1.shape != (d, d) or s2.shape != (d, d):
        raise ValueError(f"shape mismatch: mu {mu1.shape}/{mu2.shape}, sigma {s1.shape}/{s2.shape}")
    covmean = scipy.linalg.sqrtm(s1 @ s2)
    if not np.all(np.isfinite(covmean)):
        offset = np.eye(d) * eps
        covmean = scipy.linalg.sqrtm((s1 + offset) @ (s2 + offset))
    if np.iscomplexobj(covmean):
        imag = np.max(np.abs(np.diagonal(covmean).imag))
        if imag > 1e-3:
            raise ValueError(f"matrix square root has an imaginary component {imag:.3g}")
        covmean = covmean.real
    diff = mu1 - mu2
    value = float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * np.trace(covmean))
    return max(value, 0.0)


def fvd_from_features(feats_a: np.ndarray, feats_b: np.ndarray) -> float:
    """Fréchet distance between the Gaussians fitted to two (N, D) feature sets."""
    mu_a, s_a = feature_statistics(feats_a)
    mu_b, s_b = feature_statistics(feats_b)
    return frechet_distance(mu_a, s_a, mu_b, s_b)


# ------------------------------------------------------------------------------------- the network
def preprocess_videos(videos, size: int = I3D_INPUT_SIZE) -> torch.Tensor:
    """Videos -> float32 (N, 3, T, size, size) in [-1, 1].

    Accepts uint8 (N, T, H, W, 3) in [0, 255] (numpy or torch) or float (N, T, 3, H, W) in [-1, 1]
    (the dataset/sampler convention)."""
    x = torch.as_tensor(np.asarray(videos) if isinstance(videos, np.ndarray) else videos)
    if x.ndim != 5:
        raise ValueError(
            f"videos must be 5-D (N, T, H, W, 3) uint8 or (N, T, 3, H, W) float, got {tuple(x.shape)}"
        )
    if x.dtype == torch.uint8:
        if x.shape[-1] != 3:
            raise ValueError(f"uint8 videos must be (N, T, H, W, 3), got {tuple(x.shape)}")
        x = x.permute(0, 1, 4, 2, 3).float() / 127.5 - 1.0
    else:
        if x.shape[2] != 3:
            raise ValueError(f"float videos must be (N, T, 3, H, W) in [-1, 1], got {tuple(x.shape)}")
        x = x.float().clamp(-1.0, 1.0)
    n, t, c, h, w = x.shape
    if (h, w) != (size, size):
        x = F.interpolate(x.reshape(n * t, c, h, w), size=(size, size), mode="bilinear", align_corners=False)
        x = x.reshape(n, t, c, size, size)
    return x.permute(0, 2, 1, 3, 4).contiguous()  # (N, 3, T, S, S)


class _TinyExtractor(torch.nn.Module):
    """Random-init stand-in with the I3D TorchScript call signature (plumbing tests only, NOT I3D)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.conv1 = torch.nn.Conv3d(3, 8, kernel_size=3, stride=2, padding=1)
        self.conv2 = torch.nn.Conv3d(8, 16, kernel_size=3, stride=2, padding=1)
        self.head = torch.nn.Linear(16, dim)

    def forward(self, x: torch.Tensor, rescale: bool = False, resize: bool = False,
                return_features: bool = True) -> torch.Tensor:
        if rescale:  # [0, 255] -> [-1, 1], as the I3D file's flag
            x = x / 127.5 - 1.0
        if resize:
            n, c, t, h, w = x.shape
            x = F.interpolate(x, size=[t, 224, 224], mode="trilinear", align_corners=False)
        h = torch.relu(self.conv2(torch.relu(self.conv1(x))))
        feats = self.head(h.mean(dim=[2, 3, 4]))
        return feats if return_features else torch.softmax(feats, dim=-1)


def build_tiny_extractor(dim: int = 16, seed: int = 0) -> torch.jit.ScriptModule:
    """A scripted random-init feature extractor with the I3D call signature (``save_tiny_extractor`` writes
    it with its ``NOT_I3D_LABEL``). For plumbing tests only: its distances are not FVD."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        module = _TinyExtractor(dim)
    with warnings.catch_warnings():  # torch >= 2.10 marks TorchScript deprecated; the I3D file is TorchScript
        warnings.simplefilter("ignore", FutureWarning)
        return torch.jit.script(module.eval())


def save_tiny_extractor(path: str | Path, dim: int = 16, seed: int = 0) -> Path:
    """Write ``build_tiny_extractor`` to a TorchScript file carrying its not-I3D label."""
    path = Path(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        torch.jit.save(build_tiny_extractor(dim, seed), str(path), _extra_files={_LABEL_ATTR: NOT_I3D_LABEL})
    return path


def _missing(path: Any, what: str) -> FVDWeightsError:
    return FVDWeightsError(
        f"FVD needs the I3D TorchScript weights: set metrics.fvd.i3d=auto (downloaded once) or "
        f"metrics.fvd.i3d=/path/to/i3d_torchscript.pt ({what}); FVD is never computed with random weights."
    )


def load_i3d(
    path: str | Path | None, device: str | torch.device = "cpu"
) -> tuple[torch.jit.ScriptModule, str]:
    """Load the I3D TorchScript file from a local path: (module in eval mode, label).

    The label is ``"i3d_torchscript"`` for a real file, or ``NOT_I3D_LABEL`` for the tiny test extractor.
    Raises ``FVDWeightsError`` when ``path`` is unset, missing, or not a TorchScript file."""
    if path in (None, ""):
        raise _missing(path, "metrics.fvd.i3d is not set")
    if str(path) == "auto":  # the registered file (StyleGAN-V's I3D TorchScript), fetched once
        from vid3d.weights import fetch_url, get

        path = fetch_url(get("i3d"), what="metrics.fvd.i3d=auto")
    p = Path(path).expanduser()
    if not p.is_file():
        raise _missing(path, f"{p}: no such file")
    extra = {_LABEL_ATTR: ""}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            module = torch.jit.load(str(p), map_location=torch.device(device), _extra_files=extra)
    except Exception as e:  # not a TorchScript archive, corrupt, ...
        raise FVDWeightsError(
            f"metrics.fvd.i3d={p}: cannot load as TorchScript ({type(e).__name__}: {e})"
        ) from e
    label = extra[_LABEL_ATTR]
    label = label.decode() if isinstance(label, bytes) else label
    return module.eval(), (label or "i3d_torchscript")


def is_random_init_label(label: Any) -> bool:
    """True for a feature extractor whose weights are random (the tiny test extractor)."""
    return str(label).startswith("random-init")


def fvd_key(label: str) -> str:
    """The results key of an FVD entry: ``"fvd"`` for I3D, ``"fvd [random-init (not I3D)]"`` for the tiny
    extractor, so that code reading ``results[method]["fvd"]`` can never pick up a random-init number."""
    return f"{FVD_KEY} [{label}]" if is_random_init_label(label) else FVD_KEY


class FVDMetric:
    """FVD between sets of generated and ground-truth videos.

    Args:
        i3d: local path of ``i3d_torchscript.pt`` (required: ``FVDWeightsError`` otherwise).
        device: torch device for the network.
        batch_size: videos per forward pass.
    """

    def __init__(self, i3d: str | Path | None, device: str = "cpu", batch_size: int = 8) -> None:
        from .reproducibility import file_sha256

        self.path = None if i3d in (None, "") else Path(i3d)
        self.device = torch.device(device)
        self.model, self.label = load_i3d(i3d, self.device)
        self.sha256 = file_sha256(self.path)
        self.batch_size = int(batch_size)

    @torch.no_grad()
    def features(self, videos) -> np.ndarray:
        """(N, D) float64 features of videos (see ``preprocess_videos`` for the accepted layouts).
        A network that fails on the input raises ``FVDWeightsError`` naming the weights file."""
        out = []
        for i in range(0, len(videos), self.batch_size):
            x = preprocess_videos(videos[i:i + self.batch_size]).to(self.device)
            try:
                f = self.model(x, rescale=False, resize=False, return_features=True)
            except Exception as e:  # a TorchScript file that is not an I3D, or too few frames for it
                raise FVDWeightsError(
                    f"metrics.fvd.i3d={self.path}: the network failed on an input of shape {tuple(x.shape)} "
                    f"(N, 3, T, H, W) ({type(e).__name__}: {e})"
                ) from e
            out.append(f.detach().double().cpu().reshape(len(x), -1).numpy())
        return np.concatenate(out, axis=0)

    def sample_features(self, frames: np.ndarray, gt_features: np.ndarray) -> dict[str, Any]:
        """The ``fvd_features`` field of a record: the (D,) features of one generated (n, H, W, 3) uint8
        video, the (D,) features of its clip's ground-truth video, and the extractor's identity."""
        return {
            "extractor": self.label,
            "sha256": self.sha256,
            "generated": self.features(np.asarray(frames)[None])[0],
            "ground_truth": np.asarray(gt_features, dtype=np.float64),
        }

    def __call__(self, generated, ground_truth) -> dict[str, Any]:
        """{"fvd", "n_generated", "n_ground_truth", "feature_dim", "feature_extractor", "weights"}."""
        fg, fr = self.features(generated), self.features(ground_truth)
        return {
            "fvd": fvd_from_features(fg, fr),
            "n_generated": int(len(fg)),
            "n_ground_truth": int(len(fr)),
            "feature_dim": int(fg.shape[1]),
            "feature_extractor": self.label,
            "weights": str(self.path),
        }

    def describe(self) -> dict[str, Any]:
        return {"name": "fvd", "key": fvd_key(self.label), "feature_extractor": self.label,
                "weights": str(self.path), "weights_sha256": self.sha256,
                "input": f"(N, 3, T, {I3D_INPUT_SIZE}, {I3D_INPUT_SIZE}) in [-1, 1], bilinear resize",
                "call": "rescale=False, resize=False, return_features=True",
                "definition": (
                    "||mu_g - mu_r||^2 + tr(S_g + S_r - 2 (S_g S_r)^(1/2)) of Gaussians fitted to the "
                    "features of each trial's generated videos and of the GT videos of the same clips; mean "
                    "over trials; biased and high-variance with few videos: compare only at equal n"
                )}


# ------------------------------------------------------------------------- records -> a results entry
def _not_computed(reason: str, key: str = FVD_KEY) -> tuple[str, dict[str, Any]]:
    return key, {"computed": False, "reason": reason}


def fvd_entry(records: list[dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    """(key, entry) of the FVD of one method's records (every record, whether its pose estimation
    succeeded or not), from their ``fvd_features`` fields (``FVDMetric.sample_features``).

    Per trial t: FVD_t between the features of the trial-t generated videos and the ground-truth features
    of the same clips. The key is ``fvd_key(extractor)``. Entry: {"computed": True, "value" (mean of FVD_t
    over trials), "per_trial" {t: FVD_t}, "n_trials", "std_over_trials" (ddof=1; nan for one trial),
    "n_videos" {t: videos per set}, "n_generated", "n_ground_truth" (distinct clips), "feature_dim",
    "feature_extractor", "weights_sha256"}; or {"computed": False, "reason"} when no record has features
    (``metrics.fvd.i3d`` was not set), only some have (a run resumed with a different setting), the
    records come from different extractors, or a trial has fewer than 2 videos."""
    feats = [r.get("fvd_features") for r in records]
    have = [f for f in feats if f]
    if not have:
        return _not_computed("no I3D features in the records (metrics.fvd.i3d was not set)")
    identities = sorted({(str(f["extractor"]), str(f["sha256"])) for f in have})
    if len(identities) > 1:
        return _not_computed(f"records carry features of different extractors {identities}")
    label, sha = identities[0]
    key = fvd_key(label)
    if len(have) < len(records):
        return _not_computed(
            f"{len(records) - len(have)} of {len(records)} samples have no I3D features (evaluated without "
            "metrics.fvd.i3d, e.g. before a resume): evaluate into a fresh run dir with metrics.fvd.i3d set",
            key,
        )
    by_trial: dict[int, list[dict[str, Any]]] = {}
    for r in sorted(records, key=lambda r: (int(r["trial"]), str(r["clip_id"]))):
        by_trial.setdefault(int(r["trial"]), []).append(r["fvd_features"])
    small = {t: len(fs) for t, fs in by_trial.items() if len(fs) < 2}
    if small:
        return _not_computed(f"FVD needs >= 2 videos per trial; videos per trial: {small}", key)
    per_trial = {
        t: fvd_from_features(
            np.asarray([f["generated"] for f in fs], np.float64),
            np.asarray([f["ground_truth"] for f in fs], np.float64),
        )
        for t, fs in by_trial.items()
    }
    values = np.asarray(list(per_trial.values()))
    return key, {
        "computed": True,
        "value": float(values.mean()),
        "per_trial": per_trial,
        "n_trials": len(per_trial),
        "std_over_trials": float(values.std(ddof=1)) if len(values) > 1 else float("nan"),
        "n_videos": {t: len(fs) for t, fs in by_trial.items()},
        "n_generated": len(have),
        "n_ground_truth": len({str(r["clip_id"]) for r in records}),
        "feature_dim": len(have[0]["generated"]),
        "feature_extractor": label,
        "weights_sha256": sha,
    }


def find_fvd(row: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The (key, entry) of a results row's FVD entry (``"fvd"`` or ``"fvd [<label>]"``); ("fvd", {}) when
    the row has none."""
    for key, value in row.items():
        if key == FVD_KEY or key.startswith(f"{FVD_KEY} ["):
            return key, value
    return FVD_KEY, {}


def fvd_column(results: dict[str, dict[str, Any]]) -> str:
    """The FVD column name of a results table: ``"fvd"`` only when every row's entry has that key; a
    random-init entry in any row labels the whole column."""
    keys = sorted({find_fvd(row)[0] for row in results.values()} - {FVD_KEY})
    return keys[0] if keys else FVD_KEY
