"""The package's imports run one way (issue 15): every ``vid3d`` module imports only from its own layer or
the layers below, and no group of modules imports itself round in a cycle. Function-level imports count
too (a lazy import is still a dependency). A new top-level package or module must be given a layer here.

Layers, bottom to top:
    0  geometry, atomic, errors, config(_schema,       pure math, file safety, user errors, config (and
       _errors), viz, weights, progress,          its one-line errors), plots; the registry of pretrained
       wandb_setup                                files and their fetching; progress bars and log lines;
                                                  W&B set-up (mode, group, run id) for every layer above
    1  data, models, reconstruction              datasets; networks, checkpoints; 3D Gaussians
    2  sampling                                  samplers, trajectories, the sampling pipeline
    3  training, evaluation                      Lightning glue; benchmarks, metrics, pose estimators
    4  tasks, tools, report, demo, convert       what the entry points run
    5  studio                                    the local web app over the entry points' pieces
"""

from __future__ import annotations

import ast
from pathlib import Path

import vid3d

PACKAGE = Path(vid3d.__file__).resolve().parent
LAYERS = {
    "geometry": 0, "atomic": 0, "errors": 0, "config": 0, "config_schema": 0, "config_errors": 0, "viz": 0,
    "weights": 0, "progress": 0, "wandb_setup": 0,
    "data": 1, "models": 1, "reconstruction": 1,
    "sampling": 2,
    "training": 3, "evaluation": 3,
    "tasks": 4, "tools": 4, "report": 4, "demo": 4, "convert": 4,
    "studio": 5,
}  # fmt: skip


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> set[str]:
    """Absolute names of the vid3d modules ``path`` imports (relative imports resolved; for ``from a import
    b`` the module ``a.b`` when it exists, else ``a``)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            subs = {f"{mod}.{a.name}" for a in node.names}
            found |= {s for s in subs if s in MODULES} or {mod}
    return {m for m in found if m == "vid3d" or m.startswith("vid3d.")}


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def component(module: str) -> str:
    return module.split(".")[1] if "." in module else "vid3d"


def graph() -> dict[str, set[str]]:
    return {m: {d for d in imported_modules(p) if d in MODULES and d != m} for m, p in MODULES.items()}


def test_every_component_has_a_layer():
    assert {component(m) for m in MODULES} - {"vid3d"} <= set(LAYERS), (
        "give the new package a layer in LAYERS (and in the docstring)"
    )


def test_no_import_runs_up():
    upward = sorted(
        f"{m} -> {d}"
        for m, deps in graph().items()
        for d in deps
        if component(m) != "vid3d" and component(d) != "vid3d"
        and LAYERS[component(d)] > LAYERS[component(m)]
    )
    assert not upward, "imports that run up a layer:\n" + "\n".join(upward)


def test_evaluation_never_imports_training():
    """Within layer 3 the arrow runs one way: training may use evaluation (the camera gap during training),
    evaluation never uses training (W&B set-up lives below both, in ``wandb_setup``)."""
    back = sorted(f"{m} -> {d}" for m, deps in graph().items() for d in deps
                  if component(m) == "evaluation" and component(d) == "training")
    assert not back, "evaluation imports training:\n" + "\n".join(back)


def test_no_import_cycle():
    """Strongly connected components of the module graph (Tarjan): each must be a single module. A
    package's ``__init__`` re-exporting its own submodules is not a cycle (the submodules do not need it)."""
    g = graph()
    g = {m: {d for d in deps if not (MODULES[d].name == "__init__.py" and m.startswith(d + "."))}
         for m, deps in g.items()}
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in g[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in sorted(g):
        if v not in index:
            visit(v)
    assert not cycles, f"import cycles: {cycles}"


def test_the_checker_sees_lazy_and_relative_imports():
    """Known case: a function-level relative import is found and resolved."""
    src = PACKAGE / "models" / "attention" / "modules.py"
    deps = imported_modules(src)
    assert "vid3d.models.attention.epipolar" in deps and "vid3d.geometry" in deps
    assert "vid3d.models.checkpoint" in imported_modules(PACKAGE / "tasks" / "common.py")  # in a function


def test_math_layers_import_without_diffusers_and_checkpoint_paths_without_torch():
    """`vid3d.models` resolves names lazily: the math (geometry, EDM, attention) never pulls in diffusers,
    and the checkpoint module (the entry points' early ``ckpt=`` check) not even torch."""
    import subprocess
    import sys

    probe = (
        "import sys, vid3d.models.checkpoint; assert 'torch' not in sys.modules, 'torch'; "
        "import vid3d.geometry, vid3d.models.edm, vid3d.models.attention; "
        "assert 'diffusers' not in sys.modules and 'transformers' not in sys.modules, 'diffusers'"
    )
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
