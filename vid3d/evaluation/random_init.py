"""Labels for numbers computed with random weights (plumbing checks): never reported as the real ones."""

from __future__ import annotations

RANDOM_INIT_SUFFIX = " [random-init poses]"
RANDOM_INIT_WARNING = (
    "pose estimator built with random weights (pose.random_init=true): a plumbing check of the evaluation "
    "path. These are NOT DUSt3R (or any real estimator's) numbers and must not be reported as such."
)
FVD_RANDOM_INIT_WARNING = (
    "FVD feature extractor is a random-init network, not I3D (metrics.fvd.i3d is a file written by "
    "vid3d.evaluation.fvd.save_tiny_extractor): its 'fvd [random-init (not I3D)]' entries are a plumbing "
    "check of the evaluation path, NOT FVD, and must not be reported as such."
)


def is_random_init(estimator) -> bool:
    """True when the estimator says its weights are random (``describe()["weights"]``)."""
    return str(estimator.describe().get("weights", "")).startswith("random-init")
