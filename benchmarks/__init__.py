"""Performance scripts: speed and memory of vid3d's parts, each printing a table and writing JSON under
``benchmarks/results/``. Run from the repository root as modules: ``python -m benchmarks.<name>``.

Not to be confused with the *evaluation* benchmarks (``conf/benchmark/``: ``eval.py benchmark=camera |
sparse | recon``), which score a model's videos; those live in ``vid3d.tasks`` and ``vid3d.evaluation``.
Nothing in ``vid3d`` imports this package.
"""
