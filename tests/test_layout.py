"""The repository's layout (issue 36): the package stands without the lab notebook, and the scripts folders
are run as packages, never by editing ``sys.path``.

- ``vid3d/`` never imports, runs or opens anything under ``experiments/``: no import of an ``experiments``
  module and no string in code (docstrings and comments may point a reader to an experiment log) that names
  the folder as a path or a path part.
- ``benchmarks/`` and ``experiments/`` hold no ``sys.path`` edit: benchmarks run as ``python -m
  benchmarks.<name>`` (a package), experiment scripts import the installed ``vid3d``.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def docstring_nodes(tree: ast.AST) -> set[int]:
    """ids of the string constants that are module, class or function docstrings."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                out.add(id(body[0].value))
    return out


def experiments_references(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    docs = docstring_nodes(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.split(".")[0] == "experiments"]
        elif (
            isinstance(node, ast.ImportFrom)
            and not node.level
            and (node.module or "").split(".")[0] == "experiments"
        ):
            found.append(node.module)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
            text = node.value
            if (
                text.strip("/") == "experiments"
                or "experiments/" in text
                or "experiments." in text.split()[0:1]
            ):
                found.append(f"line {node.lineno}: {text[:80]!r}")
    return found


def test_package_never_references_experiments():
    bad = {
        str(p.relative_to(ROOT)): r
        for p in (ROOT / "vid3d").rglob("*.py")
        if (r := experiments_references(p))
    }
    assert not bad, f"vid3d/ must not import, run or open experiments/ (move the code into vid3d): {bad}"


def test_the_check_sees_a_reference(tmp_path):
    """The scan above finds each way code could reach experiments/ (so a pass means something)."""
    cases = {
        "import experiments.cpu_camera_control.toy_shift\n": 1,
        "from experiments.x import y\n": 1,
        'P = ROOT / "experiments" / "x.py"\n': 1,
        'cmd = ["python", "experiments/cpu_camera_control/toy_shift.py"]\n': 1,
        '"""See experiments/cpu_camera_control/README.md."""\n# experiments/x\nX = 1\n': 0,
    }
    for i, (code, n) in enumerate(cases.items()):
        f = tmp_path / f"m{i}.py"
        f.write_text(code)
        assert len(experiments_references(f)) == n, code


def sys_path_edits(path: Path) -> list[int]:
    """Lines of ``sys.path.insert/append/extend`` calls and ``sys.path`` assignments in ``path``."""
    lines = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        target = None
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            target = node.func.value
        elif isinstance(node, ast.Assign | ast.AugAssign):
            target = node.targets[0] if isinstance(node, ast.Assign) else node.target
        if (
            isinstance(target, ast.Attribute)
            and target.attr == "path"
            and isinstance(target.value, ast.Name)
            and target.value.id == "sys"
        ):
            lines.append(node.lineno)
    return sorted(lines)


def test_no_sys_path_edits_in_scripts():
    files = [*(ROOT / "benchmarks").rglob("*.py"), *(ROOT / "experiments").rglob("*.py")]
    bad = {str(p.relative_to(ROOT)): lines for p in files if (lines := sys_path_edits(p))}
    # also in code that a script writes for a child process (a string), and in shell scripts
    scripts = [*files, *(ROOT / "benchmarks").rglob("*.sh"), *(ROOT / "experiments").rglob("*.sh")]
    bad |= {str(p.relative_to(ROOT)): "text" for p in scripts if "sys.path." in p.read_text()}
    assert not bad, f"run scripts as modules (python -m benchmarks.<name>) instead of editing sys.path: {bad}"


def test_sys_path_check_sees_an_edit(tmp_path):
    f = tmp_path / "m.py"
    f.write_text(
        "import sys\nsys.path.insert(0, 'x')\nsys.path.append('y')\nsys.path = ['z']\nsys.path += ['w']\n"
    )
    assert sys_path_edits(f) == [2, 3, 4, 5]


def test_benchmarks_is_a_package():
    assert (ROOT / "benchmarks" / "__init__.py").is_file()


def test_experiments_readme_lists_every_folder():
    readme = (ROOT / "experiments" / "README.md").read_text()
    folders = sorted(p.name for p in (ROOT / "experiments").iterdir() if p.is_dir())
    missing = [f for f in folders if f"`{f}/`" not in readme]
    assert not missing, f"experiments/README.md does not list {missing}"


def test_the_dated_task_hint_answers_in_one_line(capsys):
    """eval.py's dated hint (remove after 2027-03-01): ``task=`` names its replacement, exit 2."""
    import importlib.util

    import pytest

    spec = importlib.util.spec_from_file_location("vid3d_eval_entry", ROOT / "eval.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    mod.refuse_old_task_override(["ckpt=x", "benchmark=camera"])  # nothing to say
    with pytest.raises(SystemExit) as e:
        mod.refuse_old_task_override(["task=sparse"])
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and len(err.splitlines()) == 1 and "benchmark=camera|sparse|recon" in err
