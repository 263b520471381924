"""The studio's page wiring (needs the studio extra, gradio): heavy work shares one queue slot, cancel
jumps the queue. Marked slow: CI installs the studio extra just before its slow step."""

from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
gr = pytest.importorskip("gradio", reason="the studio extra is not installed: pip install -e '.[studio]'")

from vid3d.studio.app import build_app  # noqa: E402
from vid3d.studio.runner import Studio  # noqa: E402

ASSET = (
    Path(__file__).resolve().parents[2]
    / "assets"
    / "cpu_camera_control"
    / "epipolar_32x48_hx3big.safetensors"
)


@pytest.fixture(scope="module")
def page():
    studio = Studio(ASSET)  # reads the checkpoint's header only; the model loads on the first generate
    return studio, build_app(studio)


def test_generate_reconstruct_and_score_share_one_queue_slot(page):
    _, app = page
    fns = {f.name: f for f in app.fns.values()}
    for name in ("generate", "reconstruct", "score"):
        assert fns[name].queue is True
        assert fns[name].concurrency_limit == 1 and fns[name].concurrency_id == "work", name


def test_cancel_is_not_queued_behind_the_run_it_cancels(page):
    studio, app = page
    cancel = next(f for f in app.fns.values() if f.name == "cancel")
    assert cancel.queue is False
    studio.cancel.clear()
    assert "Cancelling" in cancel.fn()
    assert studio.cancel.is_set()
    studio.cancel.clear()


def test_the_page_serves_the_model_at_its_training_size(page):
    studio, _ = page
    assert (studio.info.kind, studio.info.height, studio.info.width, studio.info.num_frames) == (
        "checkpoint",
        32,
        48,
        8,
    )


def test_the_api_parameters_are_the_controls_by_name(page):
    from vid3d.studio.app import GENERATE, SHOW_INPUT, SHOW_PATH

    api = page[1].get_api_info()["named_endpoints"]
    for endpoint, names in (("/generate", GENERATE), ("/show_path", SHOW_PATH), ("/show_input", SHOW_INPUT)):
        assert tuple(p["parameter_name"] for p in api[endpoint]["parameters"]) == names, endpoint
