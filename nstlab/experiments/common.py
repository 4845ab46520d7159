"""What several notebooks' experiments share — faces layer, serving notebooks 00-11.

- :class:`Table`, :func:`rows_table` and :class:`Banner`: what a notebook cell shows besides a figure;
- :func:`weights_banner`: which VGG19 weights are in use, at the top of every notebook;
- :func:`course_size` and :func:`course_steps`: the course's one default size and step count, in its mode;
- the run cache: :func:`stylize_variant`, :func:`run_variants`, :func:`clear_run_cache`, and
  :func:`visualize_stylize`, the one-run figure of the widgets of notebooks 04-06;
- :func:`plot_runs`: the one figure of several runs, their images above their loss curves;
- :func:`distort`: brightness, contrast, noise and blur (notebooks 04, 07 and 09);
- the yardsticks, the same for every method: :func:`evaluate_images`, :func:`evaluate_results`
  (notebooks 07 and 09).
"""

from __future__ import annotations

import hashlib
import html
import math
import os
import textwrap
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from nstlab import losses, plotting
from nstlab.images import as_image, resize
from nstlab.optimize import Result, resolve_options, stylize
from nstlab.plotting import image_rows_figure
from nstlab.presets import QUICK_SIZE, QUICK_STEPS_SHARE, SMOKE_SIZE
from nstlab.settings import course_value, is_smoke
from nstlab.ssim import gaussian_window, ssim
from nstlab.vgg import (
    GATYS_STYLE_LAYERS, VGGFeatures, WeightsCheck, WeightsUnavailableError, check_weights, vgg19_features,
)
from nstlab.weights import imagenet_checkpoint_path

# ----------------------------------------------------------------------------- tables and banners


@dataclass(repr=False)
class Table:
    """A small table for the notebooks: HTML in Jupyter, aligned plain text in ``print`` and elsewhere.

    ``rows`` hold the raw values (numbers stay numbers, so code and tests can read them); floats
    are shown with ``formats[column]`` if given, else ``floatfmt``. A row may leave a column out.
    ``column(name)`` returns one column's values.
    """

    columns: list[str]
    rows: list[dict[str, Any]]
    title: str | None = None
    floatfmt: str = ".3g"
    formats: dict[str, str] = field(default_factory=dict)

    def column(self, name: str) -> list[Any]:
        """The values of one column, top to bottom ("" where a row leaves it out)."""
        if name not in self.columns:
            raise KeyError(f"Table has no column {name!r}; columns: {self.columns}")
        return [row.get(name, "") for row in self.rows]

    def _cell(self, row: dict[str, Any], column: str) -> str:
        value = row.get(column, "")
        return format(value, self.formats.get(column, self.floatfmt)) if isinstance(value, float) else str(value)

    def __str__(self) -> str:
        cells = [[self._cell(row, c) for c in self.columns] for row in self.rows]
        widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(self.columns)]
        numeric = [all(isinstance(row[c], (int, float)) for row in self.rows if c in row) for c in self.columns]

        def line(values: list[str]) -> str:
            return "  ".join(
                v.rjust(w) if right else v.ljust(w) for v, w, right in zip(values, widths, numeric)
            ).rstrip()

        head = [self.title] if self.title else []
        return "\n".join(head + [line(self.columns), line(["-" * w for w in widths])] + [line(r) for r in cells])

    __repr__ = __str__

    def _repr_html_(self) -> str:
        esc = html.escape
        head = "".join(f"<th>{esc(c)}</th>" for c in self.columns)
        body = "".join(
            "<tr>" + "".join(f"<td>{esc(self._cell(row, c))}</td>" for c in self.columns) + "</tr>"
            for row in self.rows
        )
        # the title above the table, not a <caption>: a caption wraps to the width of a narrow table
        title = f"<div style='font-weight:bold;margin:4px 0'>{esc(self.title)}</div>" if self.title else ""
        return f"<div>{title}<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"


def _fmt_value(value: Any, digits: int) -> str:
    if isinstance(value, bool) or not isinstance(value, (float, np.floating)):
        return str(value)
    return f"{value:.{digits}g}"


def rows_table(rows: Sequence[Mapping[str, Any]], title: str | None = None, digits: int = 4) -> Table:
    """A list of dicts (one per row) as a :class:`Table` (HTML in a notebook, text in ``print``).

    Inputs:
    - rows: dicts; the columns are their keys in order of first appearance.
    - title: shown above; digits: significant digits of floats.
    Returns:
    - the Table (its ``rows`` are the dicts given).
    """
    if not rows:
        raise ValueError("rows_table: no rows given")
    columns = list(dict.fromkeys(key for row in rows for key in row))
    return Table(columns=columns, rows=[dict(row) for row in rows], title=title, floatfmt=f".{digits}g")


@dataclass(frozen=True)
class Banner:
    """A line that must not be missed (e.g. the weights in use): a coloured box in Jupyter, framed text elsewhere.

    ``detail`` may hold several lines ("\\n"), each wrapped on its own. ``quiet``: one plain line instead, the
    text and the detail's first line (for news that needs no attention).
    """

    text: str
    detail: str = ""
    warning: bool = False
    quiet: bool = False

    def _lines(self) -> list[str]:
        return [line for paragraph in self.detail.splitlines() for line in textwrap.wrap(paragraph, 88) or [""]]

    def __str__(self) -> str:
        if self.quiet:
            return " — ".join([self.text, *self.detail.splitlines()[:1]])
        body = [self.text.upper()] + self._lines()
        width = max(len(line) for line in body) + 4
        frame = ("!" if self.warning else "=") * width
        return "\n".join([frame] + [f"  {line}".rstrip() for line in body] + [frame])

    __repr__ = __str__

    def _repr_html_(self) -> str:
        if self.quiet:
            return f"<div style='color:#1b5e20;margin:2px 0'>{html.escape(str(self))}</div>"
        colour = "#b00020" if self.warning else "#1b5e20"
        background = "#fdecea" if self.warning else "#e8f5e9"
        lines = "".join(f"<div>{html.escape(line) or '&nbsp;'}</div>" for line in self.detail.splitlines())
        return (
            f"<div style='border:3px solid {colour};background:{background};padding:10px 14px;margin:6px 0'>"
            f"<div style='font-size:20px;font-weight:bold;color:{colour}'>{html.escape(self.text)}</div>"
            f"<div style='margin-top:4px;white-space:pre-wrap'>{lines}</div></div>"
        )


_WEIGHTS_CHECK_TIMEOUT = 5.0
"""Seconds :func:`weights_banner` lets ``check_weights`` wait for the download address when the file is missing."""


def _weights_check(weights: str | None) -> WeightsCheck:
    """``nstlab weights check``'s finding for the notebooks' "auto" weights, or for weights a notebook names."""
    if weights in (None, "auto"):
        return check_weights(_WEIGHTS_CHECK_TIMEOUT)
    asked = [f"the notebook asks for weights={weights!r}"]
    return WeightsCheck(str(weights), asked, 'WEIGHTS = "auto" in its first cell')


def _after_the_fix(weights: str | None) -> str:
    """What to do once the weights check's fix is done, in the kernel that shows the banner."""
    if weights not in (None, "auto"):
        return "then: run the notebook again from the top"
    if os.environ.get("NSTLAB_WEIGHTS", "").strip() not in ("", "auto", "imagenet"):
        return ("then: a kernel has the environment of the JupyterLab that started it, even after a restart: change "
                "NSTLAB_WEIGHTS where JupyterLab is started, then start JupyterLab again")
    return ("then: no restart needed, the next cell that builds a network loads the file: re-run this cell to check, "
            "then the cells whose pictures should use it")


def _banner_detail(meaning: str, check: WeightsCheck, weights: str | None) -> str:
    """The warning's lines: what the weights mean for the pictures, the weights check, what to do after its fix."""
    found, *rest = check.lines()
    return "\n".join([meaning, f"nstlab weights check: {found}", *rest, _after_the_fix(weights)])


def weights_banner(weights: str | None = "auto") -> Banner:
    """Which VGG19 weights the notebook uses, as a :class:`Banner`: one quiet line for the ImageNet network, else
    a warning that says what that means for the pictures, why (the findings and fix of ``nstlab weights check``,
    :func:`nstlab.vgg.check_weights`), and what to do once that is fixed.

    Inputs: weights: the notebook's WEIGHTS ("auto" follows NSTLAB_WEIGHTS).
    """
    try:
        vgg = VGGFeatures(["relu1_1"], weights=weights, device="cpu")
    except WeightsUnavailableError:
        check = _weights_check(weights)
        meaning = "No VGG19 weights could be loaded: every cell that needs the network stops with an error."
        return Banner("VGG19: no weights", _banner_detail(meaning, check, weights), warning=True)
    if vgg.weights_name == "imagenet" or Path(vgg.weights_name).name == imagenet_checkpoint_path().name:
        return Banner(vgg.label, "trained on ImageNet (torchvision IMAGENET1K_V1), as in the papers", quiet=True)
    if vgg.weights_name == "random":
        meaning = ("An untrained, seeded VGG19 is in use: the pictures show colour and texture transfer only, not "
                   "what the ImageNet-trained network gives.")
    else:
        meaning = f"VGG19 weights from {vgg.weights_name}, not the ImageNet file: the pictures show what they learnt."
    check = _weights_check(weights)
    return Banner(vgg.label, _banner_detail(meaning, check, weights), warning=True)


# ----------------------------------------------------------------------------- inputs, sizes and steps

COURSE_SIZE, COURSE_STEPS = 256, 300
"""The default long side (px) and optimisation steps per run of every experiment called without them, in the
real mode; quick mode (live teaching): 128 px, 60 steps, the engine's quick defaults (nstlab.presets) for them;
smoke mode (the tests): 64 px, 5 steps. 300 steps is the presets' own count; the notebooks pass their SIZE and
STEPS."""


def course_size(size: int | None) -> int:
    """``size``, or the course's default long side in its mode: COURSE_SIZE px (quick: 128, smoke: 64)."""
    return course_value(real=COURSE_SIZE, quick=QUICK_SIZE, smoke=SMOKE_SIZE) if size is None else size


def course_steps(steps: int | None) -> int:
    """``steps``, or the course's default optimisation steps per run in its mode: COURSE_STEPS (quick: 60,
    smoke: 5)."""
    if steps is not None:
        return steps
    return course_value(real=COURSE_STEPS, quick=round(COURSE_STEPS * QUICK_STEPS_SHARE), smoke=5)


def _image(image: Any, size: int | tuple[int, int] | None = None) -> torch.Tensor:
    """A tensor, a path, a bundled image name or a ``widgets.ImagePicker`` -> (1, 3, H, W) in [0, 1].

    ``size`` (long side, or (H, W)) resizes the result as :func:`nstlab.images.resize` does.
    """
    picker = getattr(image, "image", None)
    if callable(picker) and not isinstance(image, torch.Tensor):  # a widgets.ImagePicker
        image = picker(size if isinstance(size, int) else None)
    return as_image(image, size)


def _styles(style: Any) -> torch.Tensor | list[torch.Tensor]:
    """One style image as :func:`_image` reads it, or a list or tuple of them (a list: ``stylize`` mixes them)."""
    return [_image(s) for s in style] if isinstance(style, (list, tuple)) else _image(style)


# ----------------------------------------------------------------------------- runs, remembered

SWEEP_CONTENT, SWEEP_STYLE = "tower_bridge", "van_gogh_cafe_terrace_at_night"
"""The pair the engine's preset weights were tuned on (see nstlab.optimize.PRESETS): notebooks 04-06's defaults."""

RUN_CACHE_SIZE = 32
"""How many results :func:`stylize_variant` remembers (the notebooks repeat their baseline run)."""

_RUNS: dict[str, Result] = {}


def clear_run_cache() -> None:
    """Forget the results remembered by :func:`stylize_variant`."""
    _RUNS.clear()


def _run_key(content: torch.Tensor, style: torch.Tensor | list[torch.Tensor], options: Mapping[str, Any]) -> str | None:
    """A fingerprint of the inputs' pixels, of every resolved option and of the weights they load now; None if the
    run has a callback."""
    if options.get("callback") is not None or isinstance(options.get("init"), torch.Tensor):
        return None
    opts = resolve_options(**{k: v for k, v in options.items() if k != "progress"})
    opts.pop("progress")
    opts.pop("preset")  # the resolved options decide the run, however they were given
    # the weights the run would load now: "auto" gives ImageNet's once their file is placed, without a restart
    used = vgg19_features(opts["weights"], opts["pooling"])[1]
    digest = hashlib.sha1(repr((sorted(opts.items(), key=str), os.environ.get("NSTLAB_WEIGHTS"), used)).encode())
    digest.update(b"styles" if isinstance(style, list) else b"style")
    for t in [content, *style] if isinstance(style, list) else [content, style]:
        digest.update(repr((tuple(t.shape), t.dtype)).encode())
        digest.update(t.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def stylize_variant(content: Any, style: Any, **options: Any) -> Result:
    """:func:`nstlab.optimize.stylize`, remembering its results.

    A run is deterministic (seeded, bit-for-bit on CPU), so the last RUN_CACHE_SIZE results are
    remembered: the same inputs and options (``progress`` aside) return the same Result without
    recomputing. Runs with a callback are never cached. ``clear_run_cache()`` forgets them.

    Inputs: content, style: as ``stylize`` (ImagePickers too; style may be a list); options: any
    ``stylize`` option.
    Returns: the Result.
    """
    content, style = _image(content), _styles(style)
    key = _run_key(content, style, options)
    if key is not None and key in _RUNS:
        return _RUNS[key]
    result = stylize(content, style, **options)
    if key is not None:
        _RUNS[key] = result
        while len(_RUNS) > RUN_CACHE_SIZE:
            del _RUNS[next(iter(_RUNS))]  # the oldest
    return result


def _given(**options: Any) -> dict[str, Any]:
    """The options that are not None: overrides for :func:`run_variants` (None keeps the preset's value)."""
    return {name: value for name, value in options.items() if value is not None}


def run_variants(
    content: Any,
    style: Any,
    variants: Mapping[Any, Mapping[str, Any]],
    size: int | None = None,
    steps: int | None = None,
    seed: int = 0,
    weights: str | None = "auto",
    report: Callable[[Any, int, int], None] | None = None,
    **common: Any,
) -> dict[Any, Result]:
    """Run :func:`stylize_variant` once per variant on the same inputs, size, steps, seed and weights.

    Inputs:
    - content, style: tensors, paths, bundled names or ImagePickers (style may be a list of them).
    - variants: {name: options overriding ``common``}.
    - size, steps: per run (default :func:`course_size`, :func:`course_steps`).
    - report: called as report(name, i, n) before run i of n (the compare widget's progress line).
    - common: options for every run (a progress bar per run unless smoke mode or progress=False).
    Returns: {name: Result}, in the order of ``variants``.
    """
    if not variants:
        raise ValueError("run_variants: no variants given")
    size = course_size(size)
    base = {"size": size, "steps": course_steps(steps), "seed": seed, "weights": weights, "progress": not is_smoke()}
    c, s = _image(content, size), _styles(style)
    results = {}
    for i, (name, variant) in enumerate(variants.items()):
        if report is not None:
            report(name, i, len(variants))
        results[name] = stylize_variant(c, s, **{**base, **common, **variant})
    return results


def _preset_value(name: str, options: Mapping[str, Any]) -> Any:
    """The value of option ``name`` in the preset that ``options`` choose (default "gatys")."""
    return resolve_options(**{k: v for k, v in options.items() if k == "preset"})[name]


def _option_summary(options: Mapping[str, Any]) -> str:
    """Options on one line, "k=v, ...": floats as %g, a list of more than four layers as "16 layers"."""
    shown = {k: v for k, v in options.items() if k not in ("progress", "weights", "callback")}
    parts = []
    for k, v in shown.items():
        if isinstance(v, float):
            v = f"{v:g}"
        elif isinstance(v, (list, tuple)) and len(v) > 4:
            v = f"{len(v)} layers"
        parts.append(f"{k}={v}")
    return ", ".join(parts)


def visualize_stylize(
    content: Any = SWEEP_CONTENT,
    style: Any = SWEEP_STYLE,
    size: int | None = None,
    steps: int | None = None,
    seed: int = 0,
    weights: str | None = "auto",
    **options: Any,
) -> Figure:
    """One run of :func:`stylize_variant` drawn by ``plotting.plot_result`` (the widgets of notebooks 04-06).

    Inputs: content, style: images or ImagePickers; size, steps: default :func:`course_size`,
    :func:`course_steps`; options: any ``stylize`` option, and ``normalized_vgg``.
    Returns: the Figure, titled with the options used.
    """
    size = course_size(size)
    c, s = _image(content, size), _image(style)
    options = {"progress": not is_smoke(), **options}
    result = stylize_variant(c, s, size=size, steps=course_steps(steps), seed=seed, weights=weights, **options)
    fig = plotting.plot_result(result, c, s)
    fig.suptitle(f"{_option_summary(options) or 'gatys preset'} — {size} px, seed {seed}", fontsize=10)
    return fig


# ----------------------------------------------------------------------------- figures of several runs

LOSS_PLOT_HEIGHT = 3.3
"""Inches for a row of loss plots (with their titles, axis labels and the legend under them)."""


def _footer(results: Mapping[Any, Result]) -> str:
    return plotting.runs_footer(list(results.values()))


def _legend_below(part: Any, ax: Axes, fontsize: float = 9) -> None:
    """One legend for all the plots of ``part`` (their curves share labels and colours), under them."""
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        part.legend(handles, labels, loc="outside lower center", ncols=min(len(labels), 4), fontsize=fontsize)


def _final(result: Result, term: str) -> float:
    return float(result.history[term][-1])


def _run_description(results: Mapping[Any, Result]) -> str:
    """E.g. "200 lbfgs steps, 256 px" from the first result's history and settings."""
    first = next(iter(results.values()))
    return f"{len(first.history['total'])} {first.settings['optimizer']} steps, {first.settings['size']} px"


def metric_titles(rows: Sequence[Mapping[str, Any]], show: Sequence[str]) -> dict[str, str]:
    """Panel titles for :func:`plot_runs`: each row's "image" (a run's name) and its columns ``show``, a line
    each (rows of :func:`evaluate_results`, or any dicts with an "image" key). Returns {name: title}."""
    titles = {}
    for row in rows:
        shown = [f"{key} {_fmt_value(row[key], 3)}" for key in show if key in row]
        titles[row["image"]] = "\n".join([str(row["image"]), *shown])
    return titles


def _draw_curves(ax: Axes, curves: Mapping[Any, tuple[Sequence[float], Sequence[float]]]) -> None:
    """One line per {label: (x, y)}, dots on short curves; a log y axis when every value is > 0."""
    for label, (x, y) in curves.items():
        ax.plot(x, y, label=str(label), **plotting.curve_markers(len(y)))
    values = np.concatenate([np.asarray(y, dtype=float) for _, y in curves.values()] or [np.zeros(0)])
    if values.size and np.all(values > 0):
        ax.set_yscale("log")
    ax.grid(alpha=0.3)


def plot_runs(
    results: Mapping[Any, Result],
    terms: Sequence[str] = ("content", "style"),
    inputs: Mapping[str, Any] | None = None,
    titles: Mapping[Any, str] | None = None,
    time_axis: bool = False,
    suptitle: str | None = None,
    fontsize: float = 10,
) -> Figure:
    """Several runs: the inputs and one image per run, and below them one plot per loss term, a curve per run.

    Inputs:
    - results: {name: Result}, e.g. from :func:`run_variants`.
    - terms: keys of ``Result.history`` ("total", "content", "style", "tv"), one plot each (log y
      axis when every value is > 0); none: the images alone.
    - inputs: images shown first, {title: tensor, path, bundled name or ImagePicker}.
    - titles: {name: panel title} (default: the name and the run's final ``terms``; see
      :func:`metric_titles`); fontsize: of the panel titles.
    - time_axis: one more plot, the total loss against wall-clock seconds (cumulative step times).
    - suptitle: a title on top (say there what all the runs share, so their names can be short).
    Returns: the Figure, at most MAX_FIGURE_WIDTH wide: subfigures for the rows of images (one
    height per row), then the plots with one legend under them; the weights footer.
    """
    if not results:
        raise ValueError("plot_runs: no results given")
    panels = [(title, _image(img)) for title, img in (inputs or {}).items()]
    for name, r in results.items():
        default = f"{name}\n{plotting.final_losses(r.history, terms)}".rstrip()
        panels.append(((titles or {}).get(name, default), r.image))
    n_plots = len(terms) + int(time_axis)
    fig, _, below = image_rows_figure(panels, below=LOSS_PLOT_HEIGHT if n_plots else 0.0, fontsize=fontsize,
                                      min_width=4.0 * n_plots, suptitle=suptitle, footer=_footer(results))
    if below is None:
        return fig
    plots = below.subplots(1, n_plots, squeeze=False)[0]
    for ax, term in zip(plots, terms):
        _draw_curves(ax, {name: (np.arange(len(r.history.get(term, []))), r.history.get(term, []))
                          for name, r in results.items()})
        ax.set_ylabel(f"{term} loss")
        ax.set_title(f"{term} loss vs step", fontsize=10)
        plotting.step_axis(ax)
    if time_axis:
        _draw_curves(plots[-1], {name: (np.cumsum(r.step_times), r.history["total"]) for name, r in results.items()})
        plots[-1].set(xlabel="wall-clock time (s)", ylabel="total loss")
        plots[-1].set_title("total loss vs time", fontsize=10)
    _legend_below(below, plots[0])
    return fig


# ----------------------------------------------------------------------------- distortions

DISTORTIONS = ("brightness", "contrast", "noise", "blur")
"""The distortions of :func:`distort`, as in Wang et al.'s "same MSE, different SSIM" figure."""


def _blur(img: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur with reflect padding, window 2⌈3σ⌉+1 (at most the image's size).

    Inputs: img: (N, C, H, W); sigma: standard deviation in pixels (<= 0.01 returns img).
    Returns: (N, C, H, W).
    """
    if sigma <= 0.01:
        return img
    r = min(math.ceil(3 * sigma), min(img.shape[-2:]) - 1)
    w = gaussian_window(2 * r + 1, sigma, dtype=img.dtype, device=img.device)
    c = img.shape[1]
    out = F.pad(img, (r, r, r, r), mode="reflect")
    out = F.conv2d(out, w.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(out, w.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def distort(img: torch.Tensor, kind: str, strength: float, seed: int = 0) -> torch.Tensor:
    """One of the :data:`DISTORTIONS` at a given strength t, clamped to [0, 1].

    "brightness": x + t; "contrast": mu + (1 - t)(x - mu) (mu the mean of each channel);
    "noise": x + t n with seeded n ~ N(0, 1); "blur": Gaussian blur of sigma = t pixels.

    Inputs:
    - img: (N, C, H, W) in [0, 1]; strength t >= 0; seed: for "noise".
    Returns:
    - (N, C, H, W) in [0, 1].
    """
    if kind not in DISTORTIONS:
        raise ValueError(f"distort: kind must be one of {DISTORTIONS}, got {kind!r}")
    if kind == "brightness":
        out = img + strength
    elif kind == "contrast":
        mu = img.mean(dim=(2, 3), keepdim=True)
        out = mu + (1 - strength) * (img - mu)
    elif kind == "noise":
        noise = torch.randn(img.shape, generator=torch.Generator().manual_seed(seed), dtype=img.dtype)
        out = img + strength * noise.to(img.device)
    else:
        out = _blur(img, strength)
    return out.clamp(0, 1)


# ----------------------------------------------------------------------------- yardsticks

EVAL_CONTENT_LAYER = "relu4_2"
"""The content layer of the method-independent yardstick (Gatys' conv4_2)."""


def normalized_style_term(x_feat: torch.Tensor, style_feat: torch.Tensor) -> float:
    """The engine's normalised style term of one layer, E_l(G, A) / E_l(0, A) (losses.StyleTarget), for
    one image x (1, C, H, W) and the style image's features (1, C, Hs, Ws) of any size."""
    target = losses.style_target(losses.gram_matrix(style_feat, "hw"), x_feat.shape[-2] * x_feat.shape[-1])
    return float(losses.normalized_style_loss({0: losses.gram_matrix(x_feat)}, {0: target}, {0: 1.0}))


def _lpips_between(fx: Mapping[str, torch.Tensor], fy: Mapping[str, torch.Tensor]) -> float:
    """:func:`nstlab.losses.perceptual_distance` over ``losses.LPIPS_LAYERS`` of two feature dicts."""
    layers = losses.LPIPS_LAYERS
    return float(losses.perceptual_distance({k: fx[k] for k in layers}, {k: fy[k] for k in layers}))


def evaluate_images(
    images: Mapping[str, torch.Tensor],
    content: Any,
    style: Any,
    weights: str | None = "auto",
    content_layer: str = EVAL_CONTENT_LAYER,
    style_layers: Sequence[str] = GATYS_STYLE_LAYERS,
) -> list[dict[str, Any]]:
    """Distances of each image to the content and style images, the same for every method.

    - "content loss": mean (F - P)^2 / mean P^2 at ``content_layer``;
    - "style loss": mean over ``style_layers`` of E_l / E_l(0, A) (Gatys, uniform weights, no
      shift, no SSIM factor); these two are the "gatys" preset's own normalised terms;
    - "SSIM to content": :func:`nstlab.ssim.ssim` on RGB;
    - "LPIPS to content", "LPIPS to style": :func:`nstlab.losses.perceptual_distance` over
      ``LPIPS_LAYERS`` (the style image resized to the image's H, W: the distance compares positions).

    Inputs:
    - images: {name: (1, 3, H, W)} in [0, 1], all of the same H, W.
    - content, style: tensors, paths, bundled names or ImagePickers (resized here).
    - weights: VGG19 weights (None/"auto": NSTLAB_WEIGHTS).
    Returns:
    - one dict per image: {"image": name, the five distances (floats)}.
    """
    if not images:
        raise ValueError("evaluate_images: no images given")
    shapes = {tuple(img.shape) for img in images.values()}
    if len(shapes) != 1 or len(next(iter(shapes))) != 4 or next(iter(shapes))[:2] != (1, 3):
        raise ValueError(f"evaluate_images: images must all be (1, 3, H, W) of one size, got shapes {sorted(shapes)}")
    hw = tuple(next(iter(images.values())).shape[-2:])
    style_layers = list(style_layers)
    vgg = VGGFeatures([content_layer, *style_layers, *losses.LPIPS_LAYERS], weights=weights)
    style_full = _image(style)
    content_hw = resize(_image(content), hw).to(vgg.device)
    rows = []
    with torch.no_grad():
        fc = vgg(content_hw)
        fs = vgg(resize(style_full, max(hw)).to(vgg.device))
        fs_hw = vgg(resize(style_full, hw).to(vgg.device))
        for name, img in images.items():
            x = img.to(vgg.device)
            fx = vgg(x)
            style_terms = [normalized_style_term(fx[layer], fs[layer]) for layer in style_layers]
            rows.append({
                "image": name,
                "content loss": float(losses.normalized_content_loss(fx[content_layer], fc[content_layer])),
                "style loss": sum(style_terms) / len(style_terms),
                "SSIM to content": float(ssim(x, content_hw)),
                "LPIPS to content": _lpips_between(fx, fc),
                "LPIPS to style": _lpips_between(fx, fs_hw),
            })
    return rows


def evaluate_results(
    results: Mapping[str, Result], content: Any, style: Any, weights: str | None = "auto"
) -> list[dict[str, Any]]:
    """:func:`evaluate_images` of each result's image, plus its own final "total loss" and "steps".

    Inputs:
    - results: {name: Result} (e.g. from :func:`run_variants`); content, style: the inputs used.
    Returns:
    - one dict per result: {"image", "steps", "own total loss", the five distances}.
    """
    rows = evaluate_images({name: r.image for name, r in results.items()}, content, style, weights)
    for row, result in zip(rows, results.values()):
        total = result.history["total"]
        row["steps"] = len(total)
        row["own total loss"] = total[-1] if total else float("nan")
    order = ["image", "steps", "own total loss"]
    return [{**{k: row[k] for k in order}, **{k: v for k, v in row.items() if k not in order}} for row in rows]
