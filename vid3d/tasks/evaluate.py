"""evaluate(cfg): run the benchmark that the eval config selects (``cfg.benchmark``, conf/benchmark).

A benchmark is a class with ``run(cfg) -> dict`` chosen by its ``_target_`` (camera: CameraBenchmark,
sparse: SparseBenchmark); a new benchmark is one module + one YAML in conf/benchmark. The ``_target_`` comes
from the composed config (conf/ and the command line), never from a file a user hands in.
"""

from __future__ import annotations

from hydra.utils import instantiate
from omegaconf import DictConfig

from vid3d.tasks.common import task_wrapper


@task_wrapper
def evaluate(cfg: DictConfig) -> dict:
    spec = cfg.get("benchmark")
    if spec is None or "_target_" not in spec:
        raise ValueError("the eval config selects no benchmark: benchmark=camera|sparse (conf/benchmark)")
    return instantiate(spec).run(cfg)
