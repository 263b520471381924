"""The exported pipeline's former module path, kept for folders exported before it moved to
``vid3d.sampling.pipeline``: their ``vid3d_pipeline.py`` imports ``CameraVideoPipeline`` from here, and
``python -m vid3d.sampling.export`` keeps working. New code imports ``vid3d.sampling.pipeline``."""

from vid3d.sampling.pipeline import CameraVideoPipeline, main

__all__ = ["CameraVideoPipeline", "main"]

if __name__ == "__main__":
    raise SystemExit(main())
