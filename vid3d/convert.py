"""Convert a published camera model's released checkpoint into a vid3d checkpoint.

    python -m vid3d.convert cameractrl CameraCtrl_svdxt.ckpt outputs/cameractrl_svdxt.ckpt
    python -m vid3d.convert motionctrl motionctrl_svd.ckpt outputs/motionctrl_svd.ckpt
    python -m vid3d.convert cameractrl FILE OUT model/backbone=tiny     # any Hydra override of the model

The model config is composed from ``conf/`` (``model=cameractrl_svd``, or ``cameractrl_svdxt`` when the file's
frame table has 25 positions; ``model=motionctrl_svd``), built (the frozen backbone from
``model.backbone.source``), and every released weight is mapped (``vid3d/models/published/*_keys.py``) and
checked against it. The output is read by ``eval.py ckpt=OUT``, ``sample.py ckpt=OUT`` and ``init_from=OUT``
like any vid3d checkpoint. The file is read with ``torch.load(weights_only=True)``: one that needs pickle is
refused.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

# the released training size of each model option (recorded in the checkpoint like a training run's)
TRAIN_SIZE = {
    "cameractrl_svd": ([320, 576], 14),
    "cameractrl_svdxt": ([320, 576], 25),
    "motionctrl_svd": ([576, 1024], 14),
}


def default_model(kind: str, released: dict) -> str:
    if kind == "motionctrl":
        return "motionctrl_svd"
    from vid3d.models.published.cameractrl_keys import frame_positions

    return "cameractrl_svdxt" if frame_positions(released) == 25 else "cameractrl_svd"


def compose_model_config(model: str, overrides: list[str]) -> dict:
    """``conf/``'s ``model`` node for ``model=<model>`` plus the user's overrides, resolved, as plain data."""
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    from vid3d.config import CONFIG_DIR
    from vid3d.errors import InputError

    chosen = [o for o in overrides if o.startswith("model=")]
    try:
        with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
            cfg = compose("train", overrides=[*(chosen or [f"model={model}"]), *overrides])
        return OmegaConf.to_container(cfg.model, resolve=True)
    except (HydraException, OmegaConfBaseException) as e:
        raise InputError(f"override: {str(e).splitlines()[0]}") from None


def convert(kind: str, src: str | Path, dst: str | Path, overrides: list[str] = ()) -> Path:
    """Write the vid3d checkpoint of the released file ``src`` to ``dst`` (atomically); returns ``dst``."""
    from vid3d.errors import InputError
    from vid3d.models.checkpoint import save_checkpoint_file
    from vid3d.models.published.release import converted_checkpoint, load_released, released_state
    from vid3d.models.schema import build_model, stored_model_config

    src, dst = Path(src), Path(dst)
    if dst.exists() and dst.resolve() == src.resolve():
        raise InputError(f"{dst}: the output would replace the released file; choose another OUT")
    released = load_released(src)
    name = default_model(kind, released)
    chosen = next((o.split("=", 1)[1] for o in overrides if o.startswith("model=")), name)
    composed = compose_model_config(name, list(overrides))
    # the checkpoint stores which registered backbone it needs, never where its files come from (the
    # user's model.backbone.source / SVD_PATH here, pretrained.source when it is evaluated)
    model_config = stored_model_config(composed)
    user = {k: composed.get("backbone", {}).get(k) for k in ("source", "revision", "local_files_only")}
    model = build_model(model_config, where=f"model={chosen}", pretrained=user)
    state = released_state(kind, released, model, str(src))
    size, frames = TRAIN_SIZE.get(chosen, (None, None))
    extra = {"converted_from": src.name, "published_model": kind}
    if size:
        extra.update(image_size=size, num_frames=frames)
    save_checkpoint_file(converted_checkpoint(model, model_config, state, str(src), extra), dst)
    numbers = sum(t.numel() for t in state.values())
    print(f"{src} -> {dst}: model={chosen}, {len(state)} weights ({numbers} numbers)")
    return dst


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m vid3d.convert",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("kind", choices=["cameractrl", "motionctrl"], help="the published model")
    parser.add_argument("file", help="the released checkpoint (.ckpt / .pth / .safetensors)")
    parser.add_argument("out", help="the vid3d checkpoint to write")
    parser.add_argument(
        "overrides", nargs="*", help="Hydra overrides of the model config (model/backbone=...)"
    )
    a = parser.parse_args(argv)
    from vid3d.errors import user_errors

    with user_errors():
        convert(a.kind, a.file, a.out, a.overrides)
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
