"""Get RealEstate10K / ACID: videos named by the published camera files -> frames in the RealEstate10K layout.

``python -m vid3d.data.acquire re10k|acid --split test --cameras DIR --out ROOT [--list FILE|PRESET]``
reads the published camera files (``DIR/{split}/<clip>.txt`` or ``DIR/<clip>.txt``: a URL line, then
``timestamp_us fx fy cx cy 0 0`` + 12 numbers per frame), downloads each YouTube video once with yt-dlp
(or takes ``--from-local VIDEOS/<youtube id>.mp4``), keeps the frame nearest to each timestamp, optionally
centre-crops/resizes it (``--size HxW``; the intrinsics are adjusted to match) and writes
``ROOT/{split}/<clip>.txt`` + ``ROOT/{split}/<clip>/<timestamp>.png|jpg``, which ``data=re10k|acid`` reads.
Modules: ``videos`` (where a video comes from), ``extract`` (frames at timestamps), ``run`` (the jobs).
"""

from .run import AcquireOptions, Summary, acquire

__all__ = ["AcquireOptions", "Summary", "acquire"]
