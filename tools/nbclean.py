"""Keep the course's notebooks clean: no outputs except the expected text of checked cells.

    python tools/nbclean.py notebooks/*.ipynb          strip outputs (checked cells keep theirs)
    python tools/nbclean.py --record notebooks/X.ipynb run X in smoke mode and store the output
                                                        of its `# NBVAL_CHECK_OUTPUT` cells

nbval compares a checked cell's output with the one stored in the notebook, so those cells (and only
those) carry their expected text output (plain, and HTML where there is one) and an execution count of 1
(nbval skips cells without one). tests/test_notebooks.py enforces this.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import nbformat

CHECK_MARK = "# NBVAL_CHECK_OUTPUT"


def is_checked(cell) -> bool:
    return cell.cell_type == "code" and cell.source.lstrip().startswith(CHECK_MARK)


TEXT_TYPES = ("text/plain", "text/html")
"""What a checked cell's result keeps: its text, and its HTML where it has one (a table, a banner), which nbval
compares too (it fails on an output type the stored result lacks)."""


def text_only(outputs: list) -> list:
    """Keep stdout streams and text results only (never pictures, widgets or stderr)."""
    kept = []
    for out in outputs:
        if out.get("output_type") == "stream" and out.get("name") == "stdout":
            kept.append(out)
        elif out.get("output_type") == "execute_result" and "text/plain" in out.get("data", {}):
            out["data"] = {key: value for key, value in out["data"].items() if key in TEXT_TYPES}
            out["metadata"] = {}
            kept.append(out)
    return kept


def clean(nb, executed=None):
    """Strip outputs, execution counts and run metadata; checked cells keep text outputs."""
    for i, cell in enumerate(nb.cells):
        cell.metadata.pop("execution", None)
        if cell.cell_type != "code":
            continue
        source_outputs = executed.cells[i].outputs if executed is not None else cell.outputs
        checked = is_checked(cell)
        cell.outputs = text_only(source_outputs) if checked else []
        # nbval compares only cells that were run: a checked cell keeps a count (always 1).
        cell.execution_count = 1 if checked and cell.outputs else None
        for out in cell.outputs:
            if "execution_count" in out:
                out["execution_count"] = cell.execution_count
    nb.metadata.pop("widgets", None)
    return nb


def record(path: Path):
    from nbclient import NotebookClient

    os.environ.update(NSTLAB_SMOKE="1", NSTLAB_WEIGHTS=os.environ.get("NSTLAB_WEIGHTS", "random"), MPLBACKEND="Agg")
    nb = nbformat.read(path, as_version=4)
    executed = nbformat.read(path, as_version=4)
    resources = {"metadata": {"path": str(path.parent)}}
    NotebookClient(executed, timeout=600, kernel_name="python3", resources=resources).execute()
    return clean(nb, executed)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--record", action="store_true", help="execute and store the checked cells' outputs")
    args = parser.parse_args(argv)
    for path in args.notebooks:
        nb = record(path) if args.record else clean(nbformat.read(path, as_version=4))
        nbformat.write(nb, path)
        print(f"{path}: {'recorded' if args.record else 'cleaned'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
