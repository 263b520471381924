import numpy as np
import pytest

iio = pytest.importorskip("imageio.v3")

from vid3d.sampling.trajectories import make_trajectory  # noqa: E402
from vid3d.viz import plot_trajectory, side_by_side, write_frames, write_video  # noqa: E402

LEVELS = np.array([20, 60, 100, 140, 180, 220, 240], dtype=np.uint8)


def _frames(h=33, w=47):
    """F = 7 frames of constant grey levels (odd size on purpose)."""
    return np.broadcast_to(LEVELS[:, None, None, None], (len(LEVELS), h, w, 3)).copy()


def test_write_video_mp4_decodes(tmp_path):
    path = write_video(tmp_path / "out" / "video.mp4", _frames(), fps=8)
    assert path.exists() and list(path.parent.iterdir()) == [path]  # no temporary left behind
    decoded = iio.imread(path, plugin="pyav")
    assert decoded.shape == (7, 34, 48, 3)  # padded to even
    np.testing.assert_allclose(decoded[:, 10, 10].mean(-1), LEVELS, atol=6)  # lossy but close
    assert iio.improps(path, plugin="pyav").n_images == 7


def test_write_video_gif_and_errors(tmp_path):
    write_video(tmp_path / "a.gif", _frames(16, 16), fps=4)
    assert iio.imread(tmp_path / "a.gif").shape[:3] == (7, 16, 16)
    with pytest.raises(ValueError):
        write_video(tmp_path / "b.mp4", _frames().astype(np.float32))
    with pytest.raises(ValueError):
        write_video(tmp_path / "b.mp4", _frames()[..., 0])


def test_write_frames_lossless(tmp_path):
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, size=(3, 9, 11, 3), dtype=np.uint8)
    paths = write_frames(tmp_path / "frames", frames)
    assert [p.name for p in paths] == ["00000.png", "00001.png", "00002.png"]
    for p, f in zip(paths, frames):
        np.testing.assert_array_equal(iio.imread(p), f)


def test_side_by_side():
    a = np.zeros((4, 10, 6, 3), np.uint8)
    b = np.full((4, 8, 5, 3), 200, np.uint8)
    out = side_by_side([a, b])
    assert out.shape == (4, 10, 11, 3)
    assert (out[:, :, :6] == 0).all() and (out[:, :8, 6:] == 200).all() and (out[:, 8:, 6:] == 255).all()
    assert side_by_side([a, a], gap=2).shape == (4, 10, 14, 3)
    with pytest.raises(ValueError):
        side_by_side([a, b[:3]])


def test_plot_trajectory(tmp_path):
    gt = make_trajectory("orbit_left", 10).c2w
    est = gt.copy()
    est[:, :3, 3] *= 1.1
    img = plot_trajectory({"GT": gt, "estimated": est}, path=tmp_path / "plot.png", size_px=320)
    assert img.shape == (320, 320, 3) and img.dtype == np.uint8

    def has_colour(rgb):  # both trajectories drawn in their matplotlib colours (tab:blue, tab:orange)
        return int((np.abs(img.astype(int) - np.array(rgb)).max(-1) < 30).sum()) > 50

    assert has_colour((31, 119, 180)) and has_colour((255, 127, 14))
    single = plot_trajectory({"GT": gt}, size_px=320)
    assert not (np.abs(single.astype(int) - np.array((255, 127, 14))).max(-1) < 30).any()
    np.testing.assert_array_equal(iio.imread(tmp_path / "plot.png")[..., :3], img)
    with pytest.raises(ValueError):
        plot_trajectory({"bad": np.zeros((3, 4))})


def test_side_by_side_labels_and_frame_numbers():
    rng = np.random.default_rng(0)
    gt = rng.integers(0, 256, (3, 20, 60, 3), dtype=np.uint8)
    gen = rng.integers(0, 256, (3, 20, 60, 3), dtype=np.uint8)
    plain = side_by_side([gt, gen], gap=4)
    out = side_by_side([gt, gen], gap=4, labels=["ground truth", "generated"], frame_numbers=True)
    head = out.shape[1] - plain.shape[1]
    assert head > 0 and out.shape[0] == 3 and out.shape[2] == plain.shape[2]
    np.testing.assert_array_equal(out[:, head:], plain)  # the videos themselves are untouched
    strip = out[:, :head]
    left, right = strip[:, :, :60], strip[:, :, 64:]
    assert (left < 128).any() and (right < 128).any()  # dark text on the white strip over each video
    np.testing.assert_array_equal(left[0], left[2])  # the first label is the same on every frame
    assert not np.array_equal(right[0], right[1])  # the frame number (right end) changes
    assert not np.array_equal(left[0, :, :30], right[0, :, :30])  # different words
    with pytest.raises(ValueError, match="2 labels for 1 videos"):
        side_by_side([gt], labels=["a", "b"])


@pytest.mark.parametrize("size_px", [256, 480])
def test_trajectory_plot_keeps_title_axis_labels_and_legend_inside_the_canvas(size_px):
    """The training media draw the plot at 256 px: every label must lie inside the image (issue 34)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from vid3d.sampling.trajectories import make_trajectory
    from vid3d.viz.trajectory_plot import trajectory_figure

    paths = {"trajectory": make_trajectory("orbit_left", 8).c2w, "other": make_trajectory("move_up", 8).c2w}
    fig = trajectory_figure(paths, title="camera trajectory", size_px=size_px)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    ax = fig.axes[0]
    parts = {
        "title": fig._suptitle,
        "x label": ax.xaxis.label,
        "y label": ax.yaxis.label,
        "z label": ax.zaxis.label,
        "legend": ax.get_legend(),
    }
    for name, artist in parts.items():
        box = artist.get_window_extent(renderer)
        assert box.width > 0 and artist.get_visible(), name
        inside = box.x0 >= 0 and box.y0 >= 0 and box.x1 <= size_px and box.y1 <= size_px
        assert inside, f"{name} at {box} leaves the {size_px} px canvas"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["trajectory", "other"]
