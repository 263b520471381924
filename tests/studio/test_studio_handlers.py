"""The page's handlers take their controls by name (``vid3d.studio.app.handler``): the parameters Gradio
sees (its API's names and order) are the controls', and the handler gets them as one ``Controls``.
Fast: no gradio needed (the page itself: tests/studio/test_studio_page.py, slow)."""

import inspect

from vid3d.studio.app import GENERATE, SHOW_INPUT, SHOW_PATH, Controls, handler

# the /generate endpoint's parameters as gradio_client callers know them (positional order included)
API_GENERATE = (
    "input_kind", "image", "clip_index", "path_kind", "preset", "amplitude", "speed", "pose_file", "table",
    "steps", "seed", "g_min", "g_max", "fov", "static",
)


def test_handler_signature_is_the_controls_then_the_functions_own_parameters():
    progress = object()

    def generate(c, progress=progress):
        """Doc."""
        return c, progress

    h = handler(generate, GENERATE)
    params = list(inspect.signature(h).parameters.values())
    assert tuple(p.name for p in params) == (*API_GENERATE, "progress")
    assert params[-1].default is progress and all(p.default is inspect.Parameter.empty for p in params[:-1])
    assert (h.__name__, h.__doc__) == ("generate", "Doc.")  # Gradio's api_name and description
    values = [f"v{i}" for i in range(len(GENERATE))]
    c, p = h(*values, "P")
    assert c == Controls(*values) and p == "P"
    assert h(*values)[1] is progress


def test_each_handler_gets_only_its_controls():
    h = handler(lambda c: c, SHOW_PATH)
    c = h(*range(len(SHOW_PATH)))
    assert [getattr(c, n) for n in SHOW_PATH] == list(range(len(SHOW_PATH)))
    assert c.steps is None and c.static is None  # not a control of the path preview
    assert SHOW_INPUT == ("input_kind", "image", "clip_index", "fov")
    assert set(SHOW_INPUT) <= set(SHOW_PATH) <= set(GENERATE)
