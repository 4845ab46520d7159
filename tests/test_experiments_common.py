"""nstlab.experiments.common (what several notebooks share) and the package's layout: tables and banners, the one
default size and step count, the run cache, the one figure of several runs, the distortions and the yardsticks."""

from __future__ import annotations

import ast
import inspect
import json
import math
from collections import Counter
from pathlib import Path

import pytest
import torch
from torchvision.transforms.functional import gaussian_blur

import nstlab
from figure_checks import data_under_legends
from nstlab import experiments as ex
from nstlab import fast, plotting
from nstlab.experiments import common
from nstlab.images import sample_image
from nstlab.optimize import PRESETS, resolve_options, stylize
from nstlab.plotting import MAX_FIGURE_WIDTH

SIZE, STEPS = 64, 2
CONTENT, STYLE = "tower_bridge", "van_gogh_cafe_terrace_at_night"
ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "nstlab" / "experiments"

pytestmark = pytest.mark.usefixtures("random_weights_and_private_cache")


def _rand(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


# ----------------------------------------------------------------------------- Table, rows_table and Banner


def test_table_aligns_numbers_right_and_keeps_raw_values():
    rows = [{"name": "a", "value": 1.23456}, {"name": "long name", "value": 10}, {"name": "c"}]
    t = ex.Table(["name", "value"], rows)
    lines = str(t).splitlines()
    assert lines[0].split() == ["name", "value"]
    assert lines[2].endswith(" 1.23") and lines[3].endswith("   10")  # right-aligned, 3 significant digits
    assert t.column("value") == [1.23456, 10, ""]
    assert "<td>long name</td>" in t._repr_html_()
    with pytest.raises(KeyError, match="no column 'missing'"):
        t.column("missing")


def test_table_html_puts_the_title_above_the_table_not_in_a_caption():
    t = ex.Table(["a"], [{"a": 1}], title="a title much wider than the one narrow column")
    html = t._repr_html_()
    assert "<caption" not in html  # a caption wraps to the width of the table
    assert html.index("a title much wider") < html.index("<table>")
    assert "<caption" not in ex.Table(["a"], [{"a": 1}])._repr_html_() and "<table>" in t._repr_html_()


def test_table_per_column_format():
    t = ex.Table(["x", "y"], [{"x": 12.345, "y": 12.345}], formats={"y": ".1f"})
    assert str(t).splitlines()[-1].split() == ["12.3", "12.3"]
    t = ex.Table(["x", "y"], [{"x": 123456.0, "y": 123456.0}], formats={"y": ".1f"})
    assert str(t).splitlines()[-1].split() == ["1.23e+05", "123456.0"]


def test_rows_table_collects_the_columns_and_formats_floats():
    table = ex.rows_table([{"a": 1.23456789, "b": "x"}, {"a": 2.0, "c": 3}], title="T", digits=3)
    assert table.columns == ["a", "b", "c"]
    text = str(table)
    assert text.splitlines()[0] == "T" and "1.23" in text and "1.2345" not in text
    assert "<table>" in table._repr_html_()
    with pytest.raises(ValueError, match="no rows"):
        ex.rows_table([])


def test_banner_frames_its_text_and_warns_visibly():
    warning = ex.Banner("random weights", "details here", warning=True)
    text = str(warning)
    assert "RANDOM WEIGHTS" in text and "details here" in text
    assert text.splitlines()[0] == text.splitlines()[-1] and set(text.splitlines()[0]) == {"!"}
    assert "#b00020" in warning._repr_html_()
    assert set(str(ex.Banner("ok")).splitlines()[0]) == {"="}


# ----------------------------------------------------------------------------- the one default size and step count


def test_one_default_size_and_step_count(monkeypatch):
    monkeypatch.setenv("NSTLAB_SMOKE", "1")
    assert (ex.course_size(None), ex.course_steps(None)) == (64, 5)
    monkeypatch.setenv("NSTLAB_SMOKE", "0")
    assert (ex.course_size(None), ex.course_steps(None)) == (ex.COURSE_SIZE, ex.COURSE_STEPS) == (256, 300)
    assert ex.COURSE_STEPS == PRESETS["gatys"]["steps"]  # a direct call runs as long as stylize's preset
    assert (ex.course_size(48), ex.course_steps(7)) == (48, 7)  # a value given always wins


@pytest.mark.parametrize("mode", nstlab.settings.MODES)
def test_the_course_defaults_follow_the_mode_as_the_engines_do(monkeypatch, mode):
    monkeypatch.delenv("NSTLAB_SMOKE", raising=False)
    nstlab.set_mode(mode)
    expected = {"real": (256, 300), "quick": (128, 60), "smoke": (64, 5)}[mode]
    assert (ex.course_size(None), ex.course_steps(None)) == expected
    if mode != "smoke":  # the tests' engine runs 10 steps, the course's figures 5
        engine = resolve_options()
        assert (engine["size"], engine["steps"][0]) == expected


def test_experiments_called_without_size_or_steps_take_the_course_defaults(monkeypatch):
    # real mode, with the defaults shrunk so that the runs stay tiny: every kind of run must follow them
    monkeypatch.setenv("NSTLAB_SMOKE", "0")
    monkeypatch.setattr(common, "COURSE_SIZE", 40)
    monkeypatch.setattr(common, "COURSE_STEPS", 2)
    one = {"content_layers": ["relu1_1"], "style_layers": ["relu1_1"], "progress": False}
    runs = [
        *ex.content_reconstructions("coffee", ["relu1_1"]).values(),
        *ex.texture_syntheses("van_gogh_harvest", {"one": ["relu1_1"]}).values(),
        *ex.run_variants("coffee", "van_gogh_harvest", {"a": one}).values(),
    ]
    for result in runs:
        assert max(result.image.shape[-2:]) == 40 and len(result.history["total"]) == 2
    speed = ex.compare_speed(fast.TransformerNet(channels=4, n_residual=1), "coffee", "van_gogh_harvest",
                             device="cpu", repeats=1, **{k: v for k, v in one.items() if k != "progress"})
    assert max(speed.size_hw) == 40 and speed.steps == 2


# ----------------------------------------------------------------------------- runs, remembered


def test_run_variants_is_seeded_and_keeps_the_order(sweep_images):
    c, s = sweep_images
    results = ex.run_variants(c, s, {"b": {}, "a": {"style_weight": 10.0}}, size=SIZE, steps=STEPS)
    assert list(results) == ["b", "a"]
    assert not torch.equal(results["b"].image, results["a"].image)
    for r in results.values():
        assert r.image.shape[-2:] == c.shape[-2:]
        assert len(r.history["total"]) == STEPS and all(math.isfinite(v) for v in r.history["total"])
    ex.clear_run_cache()
    again = ex.run_variants(c, s, {"b": {}}, size=SIZE, steps=STEPS)["b"]
    assert again is not results["b"] and torch.equal(again.image, results["b"].image)  # recomputed, same pixels
    with pytest.raises(ValueError, match="no variants"):
        ex.run_variants(c, s, {})


def test_identical_runs_are_computed_once(sweep_images):
    c, s = sweep_images
    ex.clear_run_cache()
    first = ex.stylize_variant(c, s, size=SIZE, steps=1, progress=False)
    assert ex.stylize_variant(c.clone(), s, size=SIZE, steps=1, progress=True) is first  # progress aside
    same = {"size": SIZE, "steps": 1, "tv_weight": PRESETS["gatys"]["tv_weight"]}
    assert ex.stylize_variant(c, s, preset="gatys", **same) is first  # the same resolved options
    novak = {k: v for k, v in PRESETS["novak"].items() if k != "steps"}
    assert ex.stylize_variant(c, s, size=SIZE, steps=1, **novak) is ex.stylize_variant(c, s, preset="novak", **same)
    assert ex.stylize_variant(c, s, size=SIZE, steps=1, seed=1, init="noise") is not first
    assert ex.stylize_variant(c, s, size=SIZE, steps=1, callback=lambda info: None) is not first
    assert ex.stylize_variant(c.flip(-1), s, size=SIZE, steps=1) is not first


def test_stylize_variant_on_the_normalized_vgg_names_the_real_weights(sweep_images):
    c, s = sweep_images
    plain = ex.stylize_variant(c, s, size=SIZE, steps=STEPS, progress=False)
    normalized = ex.stylize_variant(c, s, normalized_vgg=True, size=SIZE, steps=STEPS, progress=False)
    assert normalized.weights_name == "random" and normalized.settings["normalized_vgg"] is True
    assert plain.settings["normalized_vgg"] is False
    assert not torch.equal(plain.image, normalized.image)


def test_run_variants_reports_each_run_on_the_same_inputs_and_seed():
    reports = []
    variants = {"a": {}, "b": {}, "strong style": {"style_weight": 1e5}}
    results = ex.run_variants(
        CONTENT, STYLE, variants, report=lambda *r: reports.append(r), size=64, steps=1, progress=False
    )
    assert list(results) == list(variants)
    assert reports == [("a", 0, 3), ("b", 1, 3), ("strong style", 2, 3)]
    assert torch.equal(results["a"].image, results["b"].image)  # same inputs, same seed
    assert not torch.equal(results["a"].image, results["strong style"].image)
    assert results["strong style"].settings["style_weight"] == 1e5
    assert [r.settings["seed"] for r in results.values()] == [0, 0, 0]
    assert all(len(r.history["total"]) == 1 and math.isfinite(r.best_loss) for r in results.values())


def test_run_variants_takes_a_list_of_styles_as_stylize_does(sweep_images):
    c, s = sweep_images
    other = nstlab.sample_image("van_gogh_harvest", SIZE)
    options = {"size": SIZE, "steps": 1, "progress": False}
    mixed = ex.run_variants(c, [s, other], {"mixed": {}}, **options)["mixed"]
    assert torch.equal(mixed.image, stylize(c, [s, other], seed=0, weights="auto", **options).image)
    assert not torch.equal(mixed.image, ex.run_variants(c, s, {"one": {}}, **options)["one"].image)
    assert ex.run_variants(c, [s, other], {"again": {}}, **options)["again"] is mixed  # remembered too


def test_visualize_stylize_titles_its_options(sweep_images):
    c, s = sweep_images
    fig = ex.visualize_stylize(c, s, size=SIZE, steps=STEPS, init="noise", normalized_vgg=True)
    assert "init=noise" in fig.get_suptitle() and "normalized_vgg=True" in fig.get_suptitle()
    assert "RANDOM" in fig.get_supxlabel()


# ----------------------------------------------------------------------------- plot_runs, the figure of several runs


def test_plot_runs_lays_out_images_and_curves(sweep_images):
    c, s = sweep_images
    results = ex.run_variants(c, s, {"x": {}, "y": {"optimizer": "adam"}}, size=SIZE, steps=STEPS)
    fig = ex.plot_runs(results, ("total", "style"), {"content": c, "style": s}, time_axis=True)
    top, bottom = fig.subfigs
    assert len(top.axes) == 4 and [ax.get_title().split("\n")[0] for ax in top.axes] == ["content", "style", "x", "y"]
    assert [ax.get_title() for ax in bottom.axes] == ["total loss vs step", "style loss vs step", "total loss vs time"]
    assert all(len(ax.get_lines()) == 2 for ax in bottom.axes)
    assert "RANDOM" in fig.get_supxlabel()
    # one legend for the three plots, under them; none inside an axes
    assert [t.get_text() for t in bottom.legends[0].get_texts()] == ["x", "y"]
    assert all(ax.get_legend() is None for ax in bottom.axes) and data_under_legends(fig) == 0
    with pytest.raises(ValueError):
        ex.plot_runs({})


def test_plot_runs_draws_a_one_step_run_as_dots(sweep_images):
    c, s = sweep_images
    results = ex.run_variants(c, s, {"x": {}, "y": {"style_weight": 10.0}}, size=SIZE, steps=1)
    fig = ex.plot_runs(results, ("content", "style"))
    plots = fig.subfigs[-1].axes
    assert all(len(line.get_xdata()) == 1 and line.get_marker() == "o" for ax in plots for line in ax.get_lines())


def test_plot_runs_titles_each_run_with_its_distances_and_fits_the_notebook():
    results = ex.run_variants(CONTENT, STYLE, {"a": {}, "b": {"style_weight": 10.0}}, size=32, steps=2)
    rows = ex.evaluate_results(results, CONTENT, STYLE)
    titles = ex.metric_titles(rows, show=("style loss",))
    fig = ex.plot_runs(results, ("content", "style"), {"content": CONTENT, "style": STYLE}, titles, suptitle="two runs")
    assert len(fig.axes) == 4 + 2
    assert "style loss" in fig.axes[2].get_title() and fig.axes[2].get_title().startswith("a")
    assert fig.get_suptitle() == "two runs" and fig.get_size_inches()[0] <= MAX_FIGURE_WIDTH
    plots = fig.subfigs[-1]
    assert [t.get_text() for t in plots.legends[0].get_texts()] == ["a", "b"]  # one legend, under the plots
    assert all(ax.get_legend() is None for ax in plots.axes) and data_under_legends(fig) == 0
    assert all(line.get_marker() == "o" for ax in plots.axes for line in ax.get_lines())  # 2 steps: dots
    assert min(ax.title.get_fontsize() for ax in fig.axes) >= 10
    assert len(ex.plot_runs(results, terms=("style",)).axes) == 2 + 1
    assert len(ex.plot_runs(results, terms=()).axes) == 2
    with pytest.raises(ValueError, match="no results"):
        ex.plot_runs({})


def test_metric_titles_put_the_chosen_columns_under_each_name():
    rows = [{"image": "a", "style loss": 0.123456, "SSIM to content": 0.5}, {"image": "b", "style loss": 2.0}]
    assert ex.metric_titles(rows, show=("style loss", "SSIM to content")) == {
        "a": "a\nstyle loss 0.123\nSSIM to content 0.5", "b": "b\nstyle loss 2"
    }


def _plot_runs_layout(fig, terms):
    """plot_runs' layout: the plots of ``terms`` in the last subfigure, one legend under them, the footer."""
    plots = fig.subfigs[-1]
    assert [ax.get_title() for ax in plots.axes][: len(terms)] == [f"{term} loss vs step" for term in terms]
    assert len(plots.legends) == 1 and all(ax.get_legend() is None for ax in plots.axes)
    assert "RANDOM" in fig.get_supxlabel() and fig.get_size_inches()[0] <= MAX_FIGURE_WIDTH
    return [ax.get_title() for sub in fig.subfigs[:-1] for ax in sub.axes]


def test_the_figures_of_images_above_loss_curves_are_one_figure(sweep_images):
    # notebook 02's reconstructions, notebook 05's comparisons and notebook 08's colour runs all draw plot_runs
    c, s = sweep_images
    reconstructions = ex.visualize_content_reconstructions(c, ["relu1_2"], size=32, steps=1)
    assert _plot_runs_layout(reconstructions, ("content",))[0] == "original"
    comparison = ex.visualize_comparison("init", c, s, size=SIZE, steps=1)
    assert _plot_runs_layout(comparison, ("total", "content", "style"))[:2] == ["content", "style"]
    colours = ex.visualize_color_preservation("chelsea_cat", "van_gogh_night_cafe", size=32, steps=1)
    assert len(_plot_runs_layout(colours, ("content", "style"))) == 2 + len(ex.COLOR_VARIANTS)


# ----------------------------------------------------------------------------- distortions


@pytest.mark.parametrize("kind", ex.DISTORTIONS)
def test_distort_at_zero_strength_is_the_identity_and_grows_with_strength(kind):
    img = sample_image("chelsea_cat", 32)
    assert torch.allclose(ex.distort(img, kind, 0.0), img, atol=1e-6)
    small = float((ex.distort(img, kind, 0.05 if kind != "blur" else 0.5) - img).pow(2).mean())
    large = float((ex.distort(img, kind, 0.3 if kind != "blur" else 3.0) - img).pow(2).mean())
    assert 0 < small < large


def test_distort_rejects_an_unknown_kind():
    with pytest.raises(ValueError, match="kind must be one of"):
        ex.distort(sample_image("chelsea_cat", 32), "jpeg", 0.1)


def test_noise_and_blur_are_the_textbook_operations():
    img = sample_image("chelsea_cat", 48)
    n = torch.randn(img.shape, generator=torch.Generator().manual_seed(3))
    assert torch.equal(ex.distort(img, "noise", 0.1, seed=3), (img + 0.1 * n).clamp(0, 1))  # seeded Gaussian noise
    for sigma in (0.5, 1.0, 3.0):  # torchvision's Gaussian blur, reflect padding, window 2⌈3σ⌉+1
        k = 2 * math.ceil(3 * sigma) + 1
        expected = gaussian_blur(img, [k, k], [sigma, sigma])
        torch.testing.assert_close(ex.distort(img, "blur", sigma), expected, atol=1e-5, rtol=0)


def test_blur_keeps_shape_and_constants():
    flat = torch.full((1, 3, 12, 10), 0.3)
    out = ex.distort(flat, "blur", 1.5)
    assert out.shape == flat.shape
    torch.testing.assert_close(out, flat)


# ----------------------------------------------------------------------------- yardsticks


def test_evaluate_images_is_zero_for_the_content_itself():
    content = sample_image("chelsea_cat", 48)
    noise = _rand(*content.shape, seed=7).float()
    rows = {r["image"]: r for r in ex.evaluate_images({"same": content, "noise": noise}, "chelsea_cat", STYLE)}
    same, other = rows["same"], rows["noise"]
    assert same["content loss"] == pytest.approx(0.0, abs=1e-6)
    assert same["SSIM to content"] == pytest.approx(1.0, abs=1e-5)
    assert same["LPIPS to content"] == pytest.approx(0.0, abs=1e-4)
    assert other["content loss"] > same["content loss"] and other["SSIM to content"] < 0.5
    assert all(math.isfinite(v) for row in rows.values() for k, v in row.items() if k != "image")
    with pytest.raises(ValueError, match="one size"):
        ex.evaluate_images({"a": content, "b": noise[..., :40]}, "chelsea_cat", STYLE)


# ----------------------------------------------------------------------------- the package: one module per notebook


NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
MODULES = sorted(PACKAGE.glob("nb*.py"))


def _top_level_names(path: Path) -> list[str]:
    names = []
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.append(node.name)
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                names += [t.id for t in ast.walk(target) if isinstance(t, ast.Name)]
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.append(node.target.id)
    return names


def test_every_module_serves_its_notebook_and_says_so():
    stems = {p.stem for p in NOTEBOOKS}
    for path in MODULES:
        stem = path.stem.removeprefix("nb")
        assert stem in stems, f"{path.name}: no notebooks/{stem}.ipynb"
        doc = ast.get_docstring(ast.parse(path.read_text())) or ""
        assert doc.startswith(f"Notebook {stem[:2]}") and "faces layer" in doc, path.name
    assert len(MODULES) == len(NOTEBOOKS) - 1  # all but notebook 10, the playground (nstlab.widgets)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_notebook_names_where_its_experiments_live_at_its_top(path):
    top = "".join(json.loads(path.read_text())["cells"][0]["source"])
    module = PACKAGE / f"nb{path.stem}.py"
    where = f"nstlab/experiments/nb{path.stem}.py" if module.exists() else "nstlab/widgets.py"
    assert where in top.split("\n\n")[1], f"{path.name}: its first paragraph should name {where}"


def test_no_name_is_defined_in_two_modules_of_the_package():
    names = [name for path in sorted(PACKAGE.glob("*.py")) for name in _top_level_names(path)]
    twice = [name for name, count in Counter(names).items() if count > 1]
    assert not twice, f"defined in more than one module of nstlab/experiments: {twice}"


def test_the_package_exports_every_public_name_of_its_modules():
    for path in [PACKAGE / "common.py", *MODULES]:
        for name in _top_level_names(path):
            if not name.startswith("_"):
                assert getattr(ex, name) is getattr(getattr(ex, path.stem), name), f"{path.stem}.{name}"
    assert sorted(ex.__all__) == sorted(n for p in [PACKAGE / "common.py", *MODULES] for n in _top_level_names(p)
                                        if not n.startswith("_"))


def test_every_visualize_function_is_documented():
    for name in dir(ex):
        if name.startswith("visualize_"):
            assert getattr(ex, name).__doc__, name


@pytest.mark.parametrize("module", [ex, plotting], ids=["experiments", "plotting"])
def test_figure_functions_follow_the_naming_rule(module):
    # visualize_* runs and draws, plot_* draws what it is given: a function returning a Figure is one of them;
    # *_table returns a Table, *_rows the rows as data
    for name, fn in inspect.getmembers(module, inspect.isfunction):
        if name.startswith("_"):
            continue
        returns = inspect.signature(fn).return_annotation
        assert not name.startswith("show_"), name
        if returns == "Figure":
            assert name.startswith(("visualize_", "plot_")), name
        if name.startswith(("visualize_", "plot_")):
            assert returns == "Figure", name
        if name.endswith("_table"):
            assert returns == "Table", name
        if name.endswith("_rows"):
            assert returns == "list[dict[str, Any]]", name
