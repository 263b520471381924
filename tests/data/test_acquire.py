"""python -m vid3d.data.acquire end to end on small local videos (no network): the frames nearest to each
timestamp come out, the layout reads back, resume skips finished clips, missing / corrupt / private videos
are counted by reason; the yt-dlp path runs against a fake ``yt-dlp`` executable written here."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import numpy as np
import pytest

from vid3d.data.acquire.__main__ import main
from vid3d.data.acquire.videos import classify_ytdlp_error, youtube_id
from vid3d.data.clips import Re10kClipDataset
from vid3d.data.formats.re10k import read_camera_file

FPS = 10  # frame i is shown from i * 100 ms
H, W = 64, 96
N_FRAMES = 30
STEP, BASE = 6, 20  # frame i is a flat grey of level BASE + STEP * i (survives H.264 to well under STEP / 2)
FX, FY, CX, CY = 0.5, 0.6, 0.5, 0.5


def write_video(path: Path, n: int = N_FRAMES) -> None:
    """An H.264 mp4 whose frame i (pts i / FPS s) is the grey level BASE + STEP * i."""
    import av

    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264", rate=FPS)
        s.width, s.height, s.pix_fmt = W, H, "yuv420p"
        for i in range(n):
            img = np.full((H, W, 3), BASE + STEP * i, np.uint8)
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts = i
            for pkt in s.encode(frame):
                out.mux(pkt)
        for pkt in s.encode():
            out.mux(pkt)


def frame_index(img: np.ndarray) -> int:
    return int(round((float(img.mean()) - BASE) / STEP))


def write_cameras(path: Path, video_id: str, timestamps_us: list[int]) -> None:
    lines = [f"https://www.youtube.com/watch?v={video_id}"]
    for k, ts in enumerate(timestamps_us):
        pose = [1, 0, 0, 0.1 * k, 0, 1, 0, 0, 0, 0, 1, 0]
        lines.append(" ".join(map(str, [ts, FX, FY, CX, CY, 0, 0, *pose])))
    path.write_text("\n".join(lines) + "\n")


# timestamps (us) and the frame nearest to each: on a frame, 30 ms after one, 70 ms after one (-> next)
CLIP_TIMES = {
    "clipA1": ([0, 100_000, 230_000, 370_000], [0, 1, 2, 4]),
    "clipA2": ([1_500_000, 1_630_000, 1_780_000], [15, 16, 18]),
    "clipB1": ([500_000, 900_000, 2_100_000, 2_900_000], [5, 9, 21, 29]),
}
VIDEO_OF = {"clipA1": "vidAAAAAAAA", "clipA2": "vidAAAAAAAA", "clipB1": "vidBBBBBBBB"}


@pytest.fixture()
def world(tmp_path):
    """Camera folder (published layout: {cams}/test/*.txt) and a local video folder."""
    cams = tmp_path / "cams" / "test"
    cams.mkdir(parents=True)
    videos = tmp_path / "videos"
    videos.mkdir()
    for clip, (ts, _) in CLIP_TIMES.items():
        write_cameras(cams / f"{clip}.txt", VIDEO_OF[clip], ts)
    write_video(videos / "vidAAAAAAAA.mp4")
    write_video(videos / "vidBBBBBBBB.mp4")
    write_cameras(cams / "clipMissing.txt", "vidMISSING1", [0, 100_000])  # no such video
    write_cameras(cams / "clipCorrupt.txt", "vidCORRUPT1", [0, 100_000])
    (videos / "vidCORRUPT1.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(2000))
    write_cameras(cams / "clipLate.txt", "vidBBBBBBBB", [2_800_000, 4_000_000])  # video ends at 2.9 s
    return tmp_path, cams.parent, videos


def run(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as e:
        return int(e.code)


def check_clip(split_dir: Path, clip: str) -> None:
    ts, want = CLIP_TIMES[clip]
    files = sorted((split_dir / clip).iterdir())
    assert sorted(f.name for f in files) == sorted(f"{t}.png" for t in ts)
    import cv2

    for t, k in zip(ts, want):
        img = cv2.imread(str(split_dir / clip / f"{t}.png"))
        assert img.shape == (H, W, 3)
        assert frame_index(img) == k, (clip, t)


def test_from_local_end_to_end_resume_and_reasons(world, capsys):
    tmp, cams, videos = world
    out = tmp / "out"
    argv = ["re10k", "--split", "test", "--cameras", str(cams), "--out", str(out),
            "--from-local", str(videos), "--workers", "2"]
    assert run(argv) == 0
    printed = capsys.readouterr().out
    split = out / "test"
    for clip in CLIP_TIMES:
        check_clip(split, clip)
        assert (split / f"{clip}.txt").read_bytes() == (cams / "test" / f"{clip}.txt").read_bytes()
    for bad in ("clipMissing", "clipCorrupt", "clipLate"):
        assert not (split / f"{bad}.txt").exists() and not (split / bad).exists()
    assert not [p for p in split.iterdir() if p.name.startswith(".")]  # no temporary folder left
    for clip in CLIP_TIMES:  # one progress line per clip in a log
        assert f"{clip}: written" in printed
    summary = json.loads((out / "acquire_test_summary.json").read_text())
    assert summary["written"] == 3 and summary["already_present"] == 0
    assert summary["unavailable_clips_by_reason"] == {
        "frames_missing": 1, "not_found_locally": 1, "unreadable_video": 1
    }
    assert summary["unavailable_videos_by_reason"] == {"not_found_locally": 1, "unreadable_video": 1,
                                                       "frames_missing": 1}
    assert "3 clips written, 0 already present, 3 unavailable" in printed

    # the readers take the layout: cameras as written, frames through Re10kClipDataset
    ds = Re10kClipDataset(out, "test", num_frames=3, height=H, width=W, window_start="first")
    assert sorted(c.clip_id for c in ds.clips) == sorted(CLIP_TIMES)
    cams_b = read_camera_file(split / "clipB1.txt")
    np.testing.assert_array_equal(cams_b.timestamps, CLIP_TIMES["clipB1"][0])
    item = ds[[c.clip_id for c in ds.clips].index("clipB1")]
    got = [frame_index(f.permute(1, 2, 0).float().numpy() * 127.5 + 127.5) for f in item["frames"]]
    assert got == [5, 9, 21]  # FixedInterval(1) from the first frame
    assert sum(ds.skipped.values()) == 0

    # resume: finished clips are skipped (files untouched), a clip whose camera file is gone is redone
    mtime = (split / "clipA1" / "0.png").stat().st_mtime_ns
    (split / "clipB1.txt").unlink()
    assert run(argv) == 0
    printed = capsys.readouterr().out
    summary = json.loads((out / "acquire_test_summary.json").read_text())
    assert summary["written"] == 1 and summary["already_present"] == 2
    assert (split / "clipA1" / "0.png").stat().st_mtime_ns == mtime
    assert "clipB1: written" in printed and "clipA1: written" not in printed
    check_clip(split, "clipB1")


def test_size_list_and_jpg(world, capsys):
    tmp, cams, videos = world
    out = tmp / "out"
    lst = tmp / "ids.txt"
    lst.write_text("# two clips, one without a camera file\nclipA2\nnotAClip\n")
    argv = ["re10k", "--cameras", str(cams), "--out", str(out), "--from-local", str(videos),
            "--list", str(lst), "--size", "32x32", "--image-ext", "jpg"]
    assert run(argv) == 0
    split = out / "test"
    assert sorted(p.name for p in split.iterdir() if not p.name.startswith(".")) == ["clipA2", "clipA2.txt"]
    import cv2

    for t, k in zip(*CLIP_TIMES["clipA2"]):
        img = cv2.imread(str(split / "clipA2" / f"{t}.jpg"))
        assert img.shape == (32, 32, 3) and frame_index(img) == k
    # 96x64 -> centre 64x64 crop (x0 = 16) -> x0.5: fx 0.5 * 96 px * 0.5 / 32 px = 0.75, fy stays 0.6,
    # a centred principal point stays centred
    c = read_camera_file(split / "clipA2.txt")
    np.testing.assert_allclose(c.K_norm[:, 0, 0], 0.75, atol=1e-9)
    np.testing.assert_allclose(c.K_norm[:, 1, 1], 0.6, atol=1e-9)
    np.testing.assert_allclose(c.K_norm[:, :2, 2], 0.5, atol=1e-9)
    src = read_camera_file(cams / "test" / "clipA2.txt")
    np.testing.assert_array_equal(c.w2c, src.w2c)
    summary = json.loads((out / "acquire_test_summary.json").read_text())
    assert summary["written"] == 1 and summary["missing_camera_files"] == ["notAClip"]


def test_user_errors_are_one_line(world, capsys, monkeypatch, tmp_path):
    _, cams, videos = world
    out = tmp_path / "o"
    assert run(["re10k", "--cameras", str(cams), "--out", str(out), "--from-local", str(videos),
                "--size", "big"]) == 2
    assert capsys.readouterr().err.strip().count("\n") == 0
    assert run(["acid", "--cameras", str(cams), "--out", str(out), "--from-local", str(videos),
                "--list", "pixelsplat_re10k"]) == 2
    assert "another dataset" in capsys.readouterr().err
    assert run(["re10k", "--cameras", str(cams), "--out", str(out), "--from-local", str(videos),
                "--list", "no_such_preset"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pixelsplat_re10k" in err
    # no yt-dlp anywhere: the install line, exit 2, nothing written
    empty = tmp_path / "emptybin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.setattr(sys, "executable", str(empty / "python"))
    assert run(["re10k", "--cameras", str(cams), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pip install 'vid3d[acquire]'" in err
    assert not out.exists()


FAKE_YTDLP = r'''#!{python}
import os, shutil, sys
args = sys.argv[1:]
out = args[args.index("-o") + 1]
url = args[-1]
vid = url.split("v=")[-1]
with open(os.environ["FAKE_LOG"], "a") as f:
    f.write(vid + " " + " ".join(args) + "\n")
if vid == "vidPRIVATE1":
    sys.stderr.write("ERROR: [youtube] vidPRIVATE1: Private video. Sign in if you've been granted access\n")
    sys.exit(1)
if vid == "vidREMOVED1":
    sys.stderr.write("ERROR: [youtube] vidREMOVED1: Video unavailable. "
                     "This video has been removed by the uploader\n")
    sys.exit(1)
shutil.copy(os.path.join(os.environ["FAKE_SRC"], vid + ".mp4"), out.replace("%(ext)s", "mp4"))
'''


def test_ytdlp_path_with_a_fake_executable(world, capsys, monkeypatch):
    tmp, cams, videos = world
    for f in ("clipMissing", "clipCorrupt", "clipLate"):
        (cams / "test" / f"{f}.txt").unlink()
    write_cameras(cams / "test" / "clipPriv.txt", "vidPRIVATE1", [0])
    write_cameras(cams / "test" / "clipGone.txt", "vidREMOVED1", [0])
    bindir = tmp / "bin"
    bindir.mkdir()
    exe = bindir / "yt-dlp"
    exe.write_text(FAKE_YTDLP.replace("{python}", sys.executable))
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    log = tmp / "calls.log"
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setenv("FAKE_LOG", str(log))
    monkeypatch.setenv("FAKE_SRC", str(videos))
    out = tmp / "out"
    assert run(["re10k", "--cameras", str(cams), "--out", str(out), "--workers", "3"]) == 0
    for clip in CLIP_TIMES:
        check_clip(out / "test", clip)
    calls = log.read_text().splitlines()
    ids = sorted(c.split()[0] for c in calls)
    assert ids == ["vidAAAAAAAA", "vidBBBBBBBB", "vidPRIVATE1", "vidREMOVED1"]  # one download per video
    assert all("https://www.youtube.com/watch?v=" in c and " -o " in c for c in calls)
    summary = json.loads((out / "acquire_test_summary.json").read_text())
    assert summary["written"] == 3
    assert summary["unavailable_videos_by_reason"] == {"private": 1, "removed": 1}
    assert "Private video" in summary["unavailable"]["clipPriv"]["message"]
    assert not (out / ".videos").exists()  # downloads removed once their clips are written


def test_youtube_ids_and_error_reasons():
    assert youtube_id("https://www.youtube.com/watch?v=abcdefghijk") == "abcdefghijk"
    assert youtube_id("https://youtu.be/abcdefghijk?t=3") == "abcdefghijk"
    assert youtube_id("https://www.youtube.com/embed/a-b_cdefghi") == "a-b_cdefghi"
    assert youtube_id("abcdefghijk") == "abcdefghijk"
    assert youtube_id("https://example.com/watch?v=abcdefghijk") is None
    assert youtube_id("https://www.youtube.com/watch?v=short") is None
    assert classify_ytdlp_error("ERROR: [youtube] x: Private video. Sign in") == "private"
    removed = "ERROR: [youtube] x: Video unavailable. This video has been removed by the uploader"
    assert classify_ytdlp_error(removed) == "removed"
    assert classify_ytdlp_error("ERROR: x: Video unavailable") == "unavailable"
    assert classify_ytdlp_error("ERROR: Sign in to confirm your age") == "age_restricted"
    assert classify_ytdlp_error("ERROR: HTTP Error 503") == "download_failed"
