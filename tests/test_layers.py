"""The package's layers (nstlab/__init__.py): each module imports only from its own layer and those below.

The imports are read from the source (every ``import`` and ``from ... import`` statement, also inside
functions), so a lazy import cannot hide a dependency on a higher layer.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "nstlab"

LAYERS = {
    "settings": 0,
    "images": 1, "vgg": 1, "weights": 1, "losses": 1, "ssim": 1, "color": 1,  # the textbook
    "_kernels": 2,  # the engine's kernels
    "presets": 3, "optimize": 3, "fast": 3, "training_data": 3,  # the engine
    "plotting": 4, "widgets": 4, "checks": 4, "grading": 4, "cli": 4, "experiments": 4, "__main__": 4,  # the faces
}
LAYER_NAMES = ("settings", "textbook", "engine kernels", "engine", "faces")


def _module_name(path: Path) -> str:
    """'losses' for nstlab/losses.py; 'experiments' for anything in the nstlab/experiments package."""
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return parts[0]


def _nstlab_imports(path: Path, source: str | None = None) -> set[str]:
    """The top-level nstlab modules that a file imports (nstlab.x, from nstlab import x, relative imports);
    ``source`` stands for the file's text (the file need not exist then)."""
    package = ".".join(("nstlab", *path.relative_to(PACKAGE).parent.parts))
    found: set[str] = set()
    text = path.read_text() if source is None else source
    for node in ast.walk(ast.parse(text, filename=str(path))):
        if isinstance(node, ast.Import):
            modules = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            modules = [f"{module}.{a.name}" for a in node.names] if module == "nstlab" else [module]
        else:
            continue
        found |= {m.split(".")[1] for m in modules if m.startswith("nstlab.")}
    return {name for name in found if name in LAYERS}


def _files() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if p.name != "__init__.py" or p.parent != PACKAGE)


def test_every_module_has_a_layer_and_says_which() -> None:
    for path in _files():
        name = _module_name(path)
        assert name in LAYERS, f"{path.name}: add it to LAYERS in {Path(__file__).name}"
        if path.name == "__main__.py":
            continue
        doc = ast.get_docstring(ast.parse(path.read_text())) or ""
        layer = LAYER_NAMES[LAYERS[name]]
        words = {"settings": "process-wide", "textbook": "textbook", "engine kernels": "kernels",
                 "engine": "engine", "faces": "faces"}[layer]
        where = path.relative_to(PACKAGE)
        assert words in doc.lower(), f"{where}: its docstring should say it is in the {layer} layer"


@pytest.mark.parametrize("path", _files(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_import_runs_from_a_lower_layer_to_a_higher_one(path: Path) -> None:
    own = LAYERS[_module_name(path)]
    above = {m: LAYERS[m] for m in _nstlab_imports(path) if LAYERS.get(m, 0) > own}
    assert not above, f"{path.relative_to(PACKAGE)} (layer {own}) imports from higher layers: {above}"


def test_the_layer_checker_sees_lazy_and_relative_imports() -> None:
    source = (
        "from .settings import smoke_or\nfrom . import color\n\n"
        "def f():\n    from nstlab import plotting\n    import nstlab.widgets\n"
        "    from nstlab.optimize import stylize\n"
    )
    probe = PACKAGE / "_layer_probe.py"  # a module of the package that is never written: the source is given
    assert _nstlab_imports(probe, source) == {"settings", "color", "plotting", "widgets", "optimize"}
    assert not probe.exists()


def test_importing_nstlab_loads_no_figure_or_widget_library() -> None:
    code = (
        "import sys, nstlab, nstlab.losses, nstlab.optimize, nstlab.fast, nstlab.cli\n"
        "print(sorted(m for m in ('matplotlib', 'ipywidgets', 'IPython') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
