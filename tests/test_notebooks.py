"""The course's notebooks: committed clean, in order, each following the course conventions.

nbval runs them (``pytest --nbval-lax notebooks/``); these tests check what nbval does not.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
sys.path.insert(0, str(ROOT / "tools"))
from nbclean import CHECK_MARK, TEXT_TYPES, is_checked  # noqa: E402

import nbformat  # noqa: E402


def _load(path: Path):
    return nbformat.read(path, as_version=4)


def test_the_course_is_there_in_order():
    names = [p.stem for p in NOTEBOOKS]
    prefixes = [n.split("_", 1)[0] for n in names]
    assert prefixes == [f"{i:02d}" for i in range(len(names))], names
    assert len(names) >= 12


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_without_outputs_except_checked_cells(path):
    nb = _load(path)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        if is_checked(cell):
            assert cell.outputs, f"cell {i} is {CHECK_MARK} but stores no expected output"
            assert cell.execution_count == 1, f"cell {i}: nbval only compares cells with an execution count"
            for out in cell.outputs:
                assert out["output_type"] in ("stream", "execute_result"), f"cell {i}: {out['output_type']}"
                if out["output_type"] == "execute_result":
                    assert "text/plain" in out["data"] and set(out["data"]) <= set(TEXT_TYPES), f"cell {i}: not text"
        else:
            assert not cell.outputs, f"cell {i} carries outputs; strip them with tools/nbclean.py"
            assert cell.execution_count is None, f"cell {i} has an execution count"
    assert "widgets" not in nb.metadata


def _code_cells(path: Path) -> list:
    return [c for c in _load(path).cells if c.cell_type == "code"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_setup_cell_shows_its_values_in_every_mode_and_how_to_switch(path):
    setup = _code_cells(path)[0].source
    assert "import nstlab" in setup
    lines = setup.splitlines()
    for name in ("SIZE", "STEPS"):
        (line,) = [line for line in lines if line.startswith(f"{name} = ")]
        assert line.startswith(f"{name} = nstlab.course_value(real="), line  # the quick values in sight
    assert '# nstlab.set_mode("quick")' in lines, "the setup cell says how to switch to quick mode"
    assert lines.index('# nstlab.set_mode("quick")') < lines.index(next(x for x in lines if x.startswith("SIZE")))
    assert "NSTLAB_MODE=quick" in setup


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_notebook_shows_the_weights_banner_at_its_top(path):
    """The first code cell after the setup shows which weights are in use; nbval compares its text, which
    under NSTLAB_WEIGHTS=random (as CI runs) is the random-weights warning."""
    banner = _code_cells(path)[1]
    assert is_checked(banner)
    assert banner.source.splitlines()[-1].split("#")[0].strip().endswith("weights_banner(WEIGHTS)")
    (out,) = banner.outputs
    text = out["data"]["text/plain"]
    assert text.splitlines()[1].strip() == "VGG19: RANDOM (UNTRAINED) WEIGHTS"
    assert "nstlab weights check: the course will use RANDOM (untrained) VGG19 weights" in text
    assert "fix: unset NSTLAB_WEIGHTS" in text
    assert "#b00020" in out["data"]["text/html"]  # the red box JupyterLab shows, compared by nbval too


@pytest.mark.parametrize("path", [p for p in NOTEBOOKS if p.stem >= "02"], ids=lambda p: p.name)
def test_every_notebook_from_02_has_a_widget(path):
    source = "\n".join(c.source for c in _load(path).cells if c.cell_type == "code")
    assert "widgets." in source


@pytest.mark.parametrize("stem", ["02", "03", "04", "06", "07", "08", "09", "11"])
def test_exercise_notebooks_have_checks(stem):
    (path,) = [p for p in NOTEBOOKS if p.stem.startswith(stem)]
    source = "\n".join(c.source for c in _load(path).cells if c.cell_type == "code")
    assert "checks.check_" in source


def test_some_cells_are_checked_by_nbval():
    checked = sum(is_checked(c) for p in NOTEBOOKS for c in _load(p).cells)
    assert checked >= 5


@pytest.mark.parametrize("stem, name", [("02", "content_loss"), ("03", "gram_matrix"), ("04", "tv_loss")])
def test_the_functions_of_notebook_05_are_saved_where_they_are_written(stem, name):
    (path,) = [p for p in NOTEBOOKS if p.stem.startswith(stem)]
    source = "\n".join(c.source for c in _load(path).cells if c.cell_type == "code")
    assert f'checks.save_solution(my_{name}, "{name}")' in source
    (nb05,) = [p for p in NOTEBOOKS if p.stem.startswith("05")]
    assert f'checks.load_solution("{name}")' in "\n".join(c.source for c in _load(nb05).cells)


def _anchor(heading: str) -> str:
    """GitHub's anchor of a Markdown heading: lower case, punctuation dropped, spaces to hyphens."""
    kept = "".join(ch for ch in heading.strip().lower() if ch.isalnum() or ch in " -_")
    return kept.replace(" ", "-")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_notebook_ends_with_questions_answered_for_teachers(path):
    cells = [c for c in _load(path).cells if c.cell_type == "markdown"]
    questions = [c for c in cells if c.source.startswith("## Questions to think about")]
    assert len(questions) == 1, "one 'Questions to think about' cell"
    link = questions[0].source.split("../docs/answers.md#")[1].split(")")[0]
    answers = (ROOT / "docs" / "answers.md").read_text()
    anchors = {_anchor(line[3:]) for line in answers.splitlines() if line.startswith("## ")}
    assert link in anchors, f"docs/answers.md has no section #{link}"
    assert path.stem[:2] == link[:2]
    if path.stem != "00_setup_and_images":  # notebook 00 ends with its references
        assert cells[-1] is questions[0], "the questions close the notebook"
