"""A built wheel (what a regular ``pip install .`` installs) carries the sample images and their attribution,
and an installed copy finds them without the checkout. Built offline from a copy of the sources, so the
checkout gets no build/ or egg-info."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SOURCES = ("pyproject.toml", "README.md", "nstlab", "images", "setup.py", "setup.cfg", "MANIFEST.in")
"""What a build may read (those that exist are copied)."""


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel built from a copy of the sources, offline (setuptools from this environment)."""
    root = tmp_path_factory.mktemp("build")
    src = root / "src"
    src.mkdir()
    for name in SOURCES:
        path = REPO / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        elif path.is_file():
            shutil.copy2(path, src / name)
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q"]
    done = subprocess.run(
        [*command, "-w", str(root / "dist"), str(src)], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
    (found,) = (root / "dist").glob("nstlab-*.whl")
    return found


def _bundled_files() -> list[str]:
    """Every file under images/, relative to it (README.md, the attribution, content/*, style/*)."""
    folder = REPO / "images"
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def test_the_wheel_carries_every_bundled_image_and_the_attribution(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    carried = sorted(n.removeprefix("nstlab/sample_images/") for n in names if n.startswith("nstlab/sample_images/"))
    assert carried == _bundled_files()
    assert "README.md" in carried and any(n.startswith("content/") for n in carried)
    modules = {str(path.relative_to(REPO)) for path in (REPO / "nstlab").rglob("*.py")}
    assert modules <= names, sorted(modules - names)  # every module, the experiments package's too


def test_an_installed_copy_finds_its_images_away_from_the_checkout(wheel, tmp_path):
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    code = (
        "import nstlab, nstlab.images as im\n"
        "print(nstlab.__file__); print(im.images_dir())\n"
        "print(tuple(nstlab.sample_image('tower_bridge').shape)); print(len(nstlab.list_images('style')))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "NSTLAB_IMAGES"}
    env["PYTHONPATH"] = str(site)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=elsewhere, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    package, folder, shape, styles = done.stdout.split("\n")[:4]
    assert Path(package).parent == site / "nstlab"
    assert Path(folder) == site / "nstlab" / "sample_images"
    assert shape.startswith("(1, 3, ") and int(styles) == len(list((REPO / "images" / "style").iterdir()))


# ----------------------------------------------------------------------------- the dependencies

CONDA_NAMES = {"torch": "pytorch"}
"""PyPI names that conda-forge spells otherwise."""


def _requirements() -> dict[str, list[str]]:
    """pyproject.toml's requirements: the package's ("core") and each extra's, as written."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return {"core": project["dependencies"], **project["optional-dependencies"]}


def test_the_package_needs_no_jupyterlab_and_the_extras_split_the_course_and_the_tests() -> None:
    requirements = _requirements()
    names = {group: {r.split(">")[0].split("=")[0] for r in reqs} for group, reqs in requirements.items()}
    assert "pygments" in names["core"]  # checks.show_source highlights with it
    assert not names["core"] & {"jupyterlab", "nbval", "pytest", "scikit-image"}
    assert names["lab"] == {"jupyterlab"} and {"pytest", "nbval", "scikit-image"} <= names["test"]


def test_environment_yml_lists_what_pyproject_toml_requires() -> None:
    """environment.yml (for conda) mirrors pyproject.toml: every requirement of the package, the lab and the tests,
    with the same version bound, and nothing else besides python and pip (the benchmark's peer is left out)."""
    groups = {group: reqs for group, reqs in _requirements().items() if group != "bench"}  # bench: a peer, by pip
    wanted = {CONDA_NAMES.get(name, name) + ">=" + bound
              for reqs in groups.values() for name, bound in (r.split(">=") for r in reqs)}
    text = (REPO / "environment.yml").read_text()
    lines = text[text.index("\ndependencies:"):].splitlines()
    listed = {line.strip()[2:].split("#")[0].strip() for line in lines if line.startswith("  - ")}
    assert listed - wanted == {"python>=3.10", "pip", "pip:"} and wanted <= listed
