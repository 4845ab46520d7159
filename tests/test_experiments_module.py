"""nstlab.experiments is written in sections, one per group of notebooks: no name may be defined twice."""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

import nstlab.experiments


def test_no_top_level_name_is_defined_twice():
    tree = ast.parse(Path(nstlab.experiments.__file__).read_text())
    names = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.append(node.name)
        elif isinstance(node, ast.Assign):
            names += [t.id for t in node.targets if isinstance(t, ast.Name)]
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.append(node.target.id)
    twice = [name for name, count in Counter(names).items() if count > 1]
    assert not twice, f"defined more than once in nstlab/experiments.py: {twice}"


def test_every_visualize_function_is_documented():
    for name in dir(nstlab.experiments):
        if name.startswith("visualize_"):
            assert getattr(nstlab.experiments, name).__doc__, name
