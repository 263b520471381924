"""No silent toy training: which backbone and which freeze policy a training run really gets.

- **Real data, no backbone chosen** (``data.synthetic`` false and ``model/backbone`` left at the model
  option's default, ``tiny``, with the freeze policy on): the seed's recipe, the pretrained SVD backbone
  (``conf/model/backbone/svd.yaml``: SVD-XT from the Hugging Face cache, downloaded on first use). Pass
  ``model/backbone=tiny`` to train the tiny random-init backbone on real data anyway.
- **A random-init backbone with the freeze policy on**: the policy would keep every UNet weight outside its
  groups (the spatial layers) at its random initialisation for the whole run. Unless those weights come from
  ``init_from`` (a checkpoint that trained them), the UNet is added to the trained groups
  (``module.trainable += [unet]``) with one warning saying so. VAE and image encoder stay frozen.
"""

from __future__ import annotations

import logging

from omegaconf import DictConfig, OmegaConf, open_dict

from vid3d.config import CONFIG_DIR

log = logging.getLogger("vid3d")

TINY_TARGET = "vid3d.models.backbone.build_tiny_backbone"
WHOLE_UNET = ("unet", "all")  # freeze groups that train every UNet weight


def freeze_policy_on(trainable) -> bool:
    return not any(g in WHOLE_UNET for g in (trainable or []))


def backbone_left_at_default(cfg: DictConfig) -> bool:
    """True when this is a Hydra run in which neither the command line nor an experiment chose the backbone
    (``model/backbone`` is the model option's default, ``tiny``). Outside a Hydra run (a config composed by
    a test or a script): False, the config is taken as chosen."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return False
    hc = HydraConfig.get()
    if hc.runtime.choices.get("model/backbone") != "tiny":
        return False
    for o in hc.overrides.task:
        key = o.split("=", 1)[0].lstrip("+~")
        if key == "model/backbone" or key.startswith("model.backbone"):
            return False
    return True


def choose_backbone(cfg: DictConfig) -> bool:
    """Real data + backbone left at its default + freeze policy on -> ``model.backbone`` becomes the seed
    recipe's pretrained SVD (in place). Returns whether it did."""
    if cfg.data.get("synthetic", False) or not freeze_policy_on(cfg.module.get("trainable")):
        return False
    if not backbone_left_at_default(cfg):
        return False
    node = OmegaConf.load(CONFIG_DIR / "model" / "backbone" / "svd.yaml")
    with open_dict(cfg):
        cfg.model.backbone = node
    log.info(
        "real data (data.synthetic=false) and no backbone chosen: the seed recipe's pretrained SVD backbone "
        "(model/backbone=svd, weights %s) with the freeze policy %s; model/backbone=tiny trains the tiny "
        "random-init backbone instead", node.weights, list(cfg.module.trainable),
    )
    return True


def random_frozen_unet_weights(model, trainable: list[str], loaded: set[str]) -> list[str]:
    """Names of UNet parameters that the freeze policy ``trainable`` keeps frozen and that were not loaded
    from a checkpoint (``loaded``): with a random-init backbone they would stay random for the whole run.
    Leaves ``requires_grad`` as the policy sets it (the module applies the policy again)."""
    from vid3d.models.freeze import apply_freeze_policy

    trained = {n for names in apply_freeze_policy(model, list(trainable)).values() for n in names}
    return [
        n for n, _ in model.named_parameters()
        if n.startswith("backbone.unet.") and n not in trained and n not in loaded
    ]


def train_random_unet(cfg: DictConfig, model, loaded: set[str]) -> list[str]:
    """A random-init backbone under the freeze policy: add ``unet`` to ``cfg.module.trainable`` (in place)
    when some frozen UNet weights would stay at their random init, with one warning. Returns those names."""
    if OmegaConf.select(cfg, "model.backbone._target_") != TINY_TARGET:
        return []
    trainable = list(cfg.module.get("trainable") or [])
    if not freeze_policy_on(trainable):
        return []
    random_frozen = random_frozen_unet_weights(model, trainable, loaded)
    if not random_frozen:
        return []
    cfg.module.trainable = [*trainable, "unet"]
    log.warning(
        "model.backbone is random-init (build_tiny_backbone): the freeze policy module.trainable=%s would "
        "keep %d UNet tensors (e.g. %s) at their random init for the whole run, so the whole UNet trains "
        "(module.trainable=%s). For the seed recipe (pretrained SVD, policy on) pass model/backbone=svd.",
        trainable, len(random_frozen), random_frozen[0], list(cfg.module.trainable),
    )
    return random_frozen


def fetch_pretrained(cfg: DictConfig) -> None:
    """Resolve a pretrained SVD backbone's files now (the HF cache, downloading what is missing), so that
    missing weights stop a run in seconds with one line, before the data is prepared."""
    node = OmegaConf.select(cfg, "model.backbone")
    if node is None or node.get("_target_") != "vid3d.models.backbone.load_svd_backbone":
        return
    from vid3d.weights.svd import resolve_svd_source

    resolve_svd_source(
        node.get("source"), node.get("weights"), node.get("revision"),
        bool(node.get("local_files_only", False)), node.get("variant"),
    )


def preflight(cfg: DictConfig) -> None:
    """What ``train.py`` does before its heavy imports: the backbone choice (``choose_backbone``: only here,
    in the entry point, where Hydra's record of this run's choices is this run's) and the pretrained
    backbone's files (``fetch_pretrained``). Light: no torch, diffusers or Lightning. ``train(cfg)`` called
    from Python takes its config as given."""
    choose_backbone(cfg)
    fetch_pretrained(cfg)
