"""The temporal transformer blocks of a diffusers SVD UNet, in one fixed order.

Published camera modules put one layer in every temporal block; a converted checkpoint numbers those
layers by this order, so it must not depend on the order diffusers registers submodules in: down blocks,
then the mid block, then up blocks, each by its numeric indices.
"""

from __future__ import annotations

import torch.nn as nn
from diffusers.models.attention import TemporalBasicTransformerBlock

_PART_RANK = {"down_blocks": 0, "mid_block": 1, "up_blocks": 2}


def _order(path: str) -> tuple:
    parts = path.split(".")
    return (_PART_RANK.get(parts[0], 3), *[(int(p), "") if p.isdigit() else (-1, p) for p in parts[1:]])


def temporal_blocks(unet: nn.Module) -> list[tuple[str, nn.Module]]:
    """(path, block) of every ``TemporalBasicTransformerBlock`` in ``unet``: down, mid, up, by index."""
    found = [(p, m) for p, m in unet.named_modules() if isinstance(m, TemporalBasicTransformerBlock)]
    return sorted(found, key=lambda pm: _order(pm[0]))
