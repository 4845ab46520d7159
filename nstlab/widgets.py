"""ipywidgets controls for the notebooks — faces layer. The widgets are thin: each one calls a plain function
(``stylize``, ``experiments.run_variants``, ``StylePanel.options``, ``ImagePicker.image``) that the tests call too.

- :func:`log_slider`: a log-scale slider for a loss weight or a learning rate.
- :func:`preset_dropdown`: the presets, setting a style-weight slider to the chosen preset's β.
- :class:`ImagePicker`: a bundled image from a dropdown, or an uploaded file.
- :func:`rerun`: controls + a Run button around a slow function; it runs once at creation.
- :class:`StylePanel`: the playground, every option of ``stylize`` with a live preview and Stop.
- :func:`compare_widget`: several settings on the same inputs (``experiments.run_variants``), as a grid.
"""

from __future__ import annotations

import html
import io
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

import ipywidgets as widgets
import matplotlib.pyplot as plt
import torch
from IPython.display import HTML as DisplayHTML
from IPython.display import Image as DisplayImage
from IPython.display import display
from ipywidgets.widgets.widget_description import DescriptionWidget
from matplotlib.figure import Figure

from nstlab import plotting
from nstlab.experiments import run_variants
from nstlab.images import ImageError, list_images, load_image, sample_image
from nstlab.optimize import PRESETS, Result, StepInfo, resolve_options, stylize
from nstlab.presets import CONTENT_LOSSES, INITS, OPTIMIZERS, PRECISIONS
from nstlab.vgg import VGGFeatures

WIDE = {"description_width": "initial"}


def log_slider(
    description: str, value: float, min_exp: float, max_exp: float, step: float = 0.1
) -> widgets.FloatLogSlider:
    """A base-10 log slider from 10**min_exp to 10**max_exp, starting at ``value``."""
    if not 10**min_exp <= value <= 10**max_exp:
        raise ValueError(f"log_slider {description!r}: value {value:g} is outside [1e{min_exp:g}, 1e{max_exp:g}]")
    return widgets.FloatLogSlider(
        value=value,
        base=10,
        min=min_exp,
        max=max_exp,
        step=step,
        description=description,
        readout_format=".2g",
        continuous_update=False,
        style=WIDE,
    )


def preset_dropdown(style_weight: widgets.FloatLogSlider, value: str = "gatys") -> widgets.Dropdown:
    """A Dropdown of the ``stylize`` presets that sets the ``style_weight`` slider to the chosen preset's β
    (each preset's β is tuned to its own style loss), as the playground does. The slider starts at ``value``'s."""
    dropdown = widgets.Dropdown(options=list(PRESETS), value=value, description="preset")
    style_weight.value = PRESETS[value]["style_weight"]

    def follow(change: dict) -> None:
        style_weight.value = PRESETS[change["new"]]["style_weight"]

    dropdown.observe(follow, "value")
    return dropdown


def _label_beside(toggle: widgets.ToggleButtons) -> widgets.ToggleButtons:
    """Keep a ToggleButtons' description on the buttons' line (JupyterLab shows it above them otherwise), set
    as the other controls' labels: ipywidgets' class of one-line controls aligns it right, with their margin.
    Unless set, the label gets the other controls' 80 px and the buttons fit their text."""
    toggle.add_class("widget-inline-hbox")
    toggle.layout.display, toggle.layout.flex_flow, toggle.layout.align_items = "flex", "row", "center"
    toggle.style.description_width = toggle.style.description_width or "80px"
    toggle.style.button_width = toggle.style.button_width or "auto"
    return toggle


def _line_up(controls: list[DescriptionWidget]) -> None:
    """Give every control the longest description's width (at least ipywidgets' 80 px), so that the
    controls of a form start in one column, and widen each by as much: the control itself keeps
    ipywidgets' 220 px, a Dropdown gets 300 px (room for "van_gogh_cafe_terrace_at_night").
    A Checkbox's description sits right of the box: not counted."""
    longest = max((len(c.description) for c in controls if not isinstance(c, widgets.Checkbox)), default=0)
    label = f"{max(longest + 1, 11)}ch"
    for c in controls:
        c.style.description_width = label
        c.layout.width = f"calc({label} + {300 if isinstance(c, widgets.Dropdown) else 220}px)"


def _error_html(text: str) -> str:
    return f"<span style='color:#b00020'>{html.escape(text)}</span>"


MAX_UPLOAD_BYTES = 100_000_000
"""The largest file an :class:`ImagePicker` takes; a larger upload gets a one-line "too large" message.

A file reaches the kernel only if the Jupyter server passes a websocket message that large: Tornado's
default is 10 MiB, and a larger upload is then dropped before the kernel sees anything (the browser's
copy of that upload button then waits for it for good). ``./dev.sh course`` raises the server's limit
to 512 MiB; README.md ("Uploads") says how to raise it on another server or a JupyterHub."""

UPLOAD_TIP = (
    f"an image file up to {MAX_UPLOAD_BYTES / 1e6:.0f} MB (up to 10 MB where the Jupyter server keeps its "
    "default message limit: there a larger file never arrives; choosing a bundled image resets the button)"
)


def _load_upload(upload: Mapping[str, Any], size: int | None) -> torch.Tensor:
    """One item of a FileUpload's value as (1, 3, H, W) in [0, 1], long side at most ``size``.
    Raises ImageError naming the file if it is too large or not a usable image."""
    content = memoryview(upload["content"])
    if content.nbytes > MAX_UPLOAD_BYTES:
        raise ImageError(
            f"{upload['name']}: too large ({content.nbytes / 1e6:.1f} MB; uploads up to "
            f"{MAX_UPLOAD_BYTES / 1e6:.0f} MB)"
        )
    data = io.BytesIO(content.tobytes())
    data.name = upload["name"]  # so the error names the file
    return load_image(data, max_size=size)


class ImagePicker:
    """A dropdown of the bundled ``kind`` images ("content" or "style") plus a file upload.

    ``.image(size)`` returns the uploaded image if there is one (a bad or too large file is reported
    in ``.message``, under the controls, and the dropdown's image is used instead), else the bundled
    one. Choosing from the dropdown discards the upload. ``.widget`` is the container to display.
    """

    def __init__(self, kind: str, value: str | None = None) -> None:
        names = list_images(kind)
        if value is not None and value not in names:
            raise ValueError(f"ImagePicker: no bundled {kind} image {value!r}; choose from {names}")
        self.dropdown = widgets.Dropdown(options=names, value=value or names[0], description=kind, style=WIDE)
        self.upload = self._new_upload()
        # As wide as the controls above it and wrapping there, instead of widening the picker: a width of 0
        # adds nothing to the box's width, the minimum of 100 % then fills it.
        self.message = widgets.HTML(layout=widgets.Layout(width="0", min_width="100%"))
        self._controls = widgets.HBox([self.dropdown, self.upload])
        self.widget = widgets.VBox([self._controls, self.message])
        self.dropdown.observe(self._discard_upload, "value")

    def _new_upload(self) -> widgets.FileUpload:
        upload = widgets.FileUpload(accept="image/*", multiple=False, description="upload", tooltip=UPLOAD_TIP)
        upload.observe(lambda _: self.image(), "value")  # check the file at once
        return upload

    def _discard_upload(self, _: Any = None) -> None:
        """Drop the upload by putting a new button in place: that also revives a button whose file never
        reached the kernel (see :data:`MAX_UPLOAD_BYTES`)."""
        old, self.upload = self.upload, self._new_upload()
        self._controls.children = (self.dropdown, self.upload)
        old.close()
        self.message.value = ""

    def image(self, size: int | None = None) -> torch.Tensor:
        """The picked image, (1, 3, H, W) in [0, 1], its long side shrunk to at most ``size``."""
        if self.upload.value:
            upload = self.upload.value[0]
            try:
                img = _load_upload(upload, size)
            except ImageError as err:
                self.message.value = _error_html(f"{err} — using {self.dropdown.value} instead")
            else:
                self.message.value = f"using the upload {html.escape(upload['name'])}"
                return img
        else:
            self.message.value = ""
        return sample_image(self.dropdown.value, max_size=size)


def _show(value: Any) -> None:
    """Display a function's return value: a Figure as a PNG (then closed), anything else as is."""
    if isinstance(value, Figure):
        display(DisplayImage(data=plotting.figure_png(value)))
        plt.close(value)  # a pyplot figure would otherwise be shown again at the end of the cell
    elif value is not None:
        display(value)


def _in_kernel() -> bool:
    """True inside a Jupyter kernel, where widgets and display handles reach a front end."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython comes with ipywidgets
        return False
    shell = get_ipython()
    return shell is not None and hasattr(shell, "kernel")


def rerun(fn: Callable[..., Any], **controls: Any) -> widgets.VBox:
    """Controls, a Run button and an output area around ``fn``, for computations too slow to
    re-run on every slider move (the "interact" pattern with an explicit button).

    Inputs:
    - fn: called as fn(**values); what it returns (a Figure or any displayable) is shown.
    - controls: ipywidgets value widgets (their ``.value`` is passed), ImagePickers (passed as
      they are; call ``.image(size)``), or plain values (passed unchanged).
    Returns: the VBox (controls, button, output). fn runs once now, with the initial values, and
    again on every click; everything it shows (progress bars, then its result) goes to the output
    area. Errors of the first call are raised; later ones appear in the output.
    The controls' labels get one width, so that they line up.
    """
    picked = [c for c in controls.values() if isinstance(c, (widgets.ValueWidget, ImagePicker))]
    _line_up([c.dropdown if isinstance(c, ImagePicker) else c
              for c in picked if isinstance(c, (DescriptionWidget, ImagePicker))])
    shown = [c.widget if isinstance(c, ImagePicker) else _label_beside(c) if isinstance(c, widgets.ToggleButtons) else c
             for c in picked]
    button = widgets.Button(description="Run", button_style="primary", icon="play")
    out = widgets.Output()

    def call() -> None:
        values = {k: c.value if isinstance(c, widgets.ValueWidget) else c for k, c in controls.items()}
        _show(fn(**values))

    def on_click(_: widgets.Button) -> None:
        button.disabled, button.description = True, "Running…"
        out.clear_output()
        try:
            with out:  # in a kernel the output widget shows (and swallows) a traceback
                call()
        finally:
            button.disabled, button.description = False, "Run"

    button.on_click(on_click)
    # The first run happens before the box is shown (it is the cell's value). In a notebook its output
    # area is shown on its own meanwhile, so that the progress bars are live; once the run is done that
    # view is emptied, and the box shows the same output in place.
    live = display(out, display_id=True) if _in_kernel() else None
    failure: list[Exception] = []
    with out:
        try:
            call()
        except Exception as err:  # raised below, where the output widget cannot swallow it
            failure.append(err)
    if failure:
        raise failure[0]
    if live is not None:
        live.update(DisplayHTML(""))
    return widgets.VBox([*shown, button, out])


# ----------------------------------------------------------------------------- the playground

PRESET_CONTROLS = (
    "content_weight", "style_weight", "tv_weight", "optimizer", "lr", "init", "activation_shift",
    "chained", "layer_weighting", "ssim_weighting", "steps",
)
"""The options a change of preset resets (the others keep their values)."""

PLOT_EVERY_SECONDS = 1.0
"""The live loss plot is redrawn at most this often (drawing it costs more than a small step)."""

PRESERVE_COLOR_CHOICES = ("none", "luminance", "histogram")
"""The "keep colours" choices; "none" stands for preserve_color=None (a Dropdown shows a None value as blank)."""

PREVIEW_SIDE = 320
"""The long side of the panel's preview, in screen pixels."""


def preview_size(height: int, width: int, side: int = PREVIEW_SIDE) -> tuple[str, str]:
    """CSS (width, height) that show an image of height x width pixels with its long side at ``side`` px."""
    scale = side / max(height, width)
    return f"{max(1, round(width * scale))}px", f"{max(1, round(height * scale))}px"


class StylePanel:
    """The full control panel over :func:`nstlab.optimize.stylize`.

    Inputs:
    - content, style: bundled image names to start with (uploads are possible in the panel).
    - defaults: any ``stylize`` options. Those with a control set its starting value; the others
      (e.g. ``weights``, ``style_layers``, ``pooling``) are passed to every run unchanged.
    ``options()`` gives the ``stylize`` options the controls describe; ``run()`` runs it with a
    live preview, loss plot and progress bar; ``stop()`` (the Stop button) ends the run early,
    keeping the best image so far. ``result`` holds the last Result, ``widget`` the panel.
    """

    def __init__(
        self, content: str = "tower_bridge", style: str = "van_gogh_cafe_terrace_at_night", **defaults: Any
    ) -> None:
        own = sorted({"callback", "callback_every", "progress"} & set(defaults))
        if own:
            raise TypeError(f"StylePanel: {own} are set by the panel itself")
        opts = resolve_options(**defaults)  # checks the names and values, fills size/steps for the mode
        controlled = set(PRESET_CONTROLS) | {"preset", "size", "scales", "seed", "preserve_color", "content_loss",
                                             "precision"}
        self._fixed = {k: v for k, v in defaults.items() if k not in controlled}
        self.result: Result | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._history: dict[str, list[float]] = {}
        self._every = 1
        self._plotted = 0.0
        self._label = self._weights_label()

        self.content = ImagePicker("content", content)
        self.style = ImagePicker("style", style)
        self.preset = widgets.Dropdown(options=list(PRESETS), value=opts["preset"], description="preset")
        self.optimizer = _label_beside(widgets.ToggleButtons(
            options=list(OPTIMIZERS), description="optimizer", style={"button_width": "64px"}
        ))
        self.lr = log_slider("lr", 1.0, -5, 1)
        self.init = widgets.Dropdown(options=list(INITS), description="init")
        self.content_weight = log_slider("content weight", 1.0, -4, 4)
        self.style_weight = log_slider("style weight", 1.0, -2, 8)
        self.tv_weight = log_slider("TV weight", 1.0, -4, 4)
        self.use_tv = widgets.Checkbox(value=True, description="total variation")
        self.steps = widgets.IntSlider(min=1, max=2000, description="steps", continuous_update=False)
        self.size = widgets.IntSlider(min=32, max=1024, step=16, description="size (px)", continuous_update=False)
        self.scales = widgets.IntSlider(value=1, min=1, max=4, description="scales", continuous_update=False)
        self.seed = widgets.IntText(description="seed")
        self.activation_shift = widgets.Checkbox(description="activation shift", tooltip="s = −1, as Novak & Nikulin")
        self.chained = widgets.Checkbox(description="chained Grams")
        self.geometric = widgets.Checkbox(description="geometric layer weights")
        self.ssim_weighting = widgets.Checkbox(description="SSIM weighting")
        self.preserve_color = widgets.Dropdown(options=PRESERVE_COLOR_CHOICES, description="keep colours")
        self.precision = widgets.Dropdown(options=list(PRECISIONS), value="auto", description="precision")
        self.content_loss = widgets.Dropdown(options=CONTENT_LOSSES, description="content loss")
        self.run_button = widgets.Button(description="Run", button_style="primary", icon="play")
        self.stop_button = widgets.Button(description="Stop", button_style="danger", icon="stop", disabled=True)
        self.progress = widgets.IntProgress(value=0, min=0, max=1, description="progress")
        self.status = widgets.HTML()
        self.preview = widgets.Image(format="png", layout=widgets.Layout(
            width=f"{PREVIEW_SIDE}px", height="0px", object_fit="contain", visibility="hidden"
        ))  # sized to each image's shape as it is shown
        self.loss_plot = widgets.Image(format="png", layout=widgets.Layout(width="600px"))  # its text at 100 dpi

        self._set_controls(
            opts, ("size", "scales", "seed", "preserve_color", "content_loss", "precision") + PRESET_CONTROLS
        )
        self.preset.observe(self._on_preset, "value")
        self.optimizer.observe(self._on_optimizer, "value")
        self.run_button.on_click(lambda _: self.run(block=False))
        self.stop_button.on_click(lambda _: self.stop())

        # The options in a grid, four to a row where the page is wide enough: every label gets 100 px (a
        # Checkbox leaves that space empty before its box), so the controls start in columns.
        options = [
            self.preset, self.optimizer, self.lr, self.init,
            self.content_weight, self.style_weight, self.tv_weight, self.use_tv,
            self.steps, self.size, self.scales, self.seed,
            self.activation_shift, self.chained, self.geometric, self.ssim_weighting,
            self.preserve_color, self.content_loss, self.precision,
        ]
        for control in options:
            control.style.description_width = "100px"
            control.layout.width = "auto"
        grid = widgets.GridBox(options, layout=widgets.Layout(
            grid_template_columns="repeat(auto-fill, minmax(270px, 1fr))", grid_gap="2px 12px"
        ))
        wrap = widgets.Layout(flex_flow="row wrap")
        rows = [
            widgets.HBox([self.content.widget, self.style.widget], layout=wrap),
            grid,
            widgets.HBox([self.run_button, self.stop_button, self.progress], layout=wrap),
            self.status,
            widgets.HBox([self.preview, self.loss_plot], layout=widgets.Layout(flex_flow="row wrap",
                                                                                align_items="flex-start")),
        ]
        self.widget = widgets.VBox(rows)
        self._status(self._label, "ready")

    # -- controls <-> options

    def _repr_mimebundle_(self, **kwargs: Any) -> dict | None:
        """Displaying the panel object shows its widget (``panel`` alone in a cell)."""
        return self.widget._repr_mimebundle_(**kwargs)

    def _set_controls(self, opts: Mapping[str, Any], names: tuple[str, ...]) -> None:
        """Set the controls of ``names`` from a resolved options dict."""
        values = {
            "size": opts["size"],
            "scales": len(opts["scale_fractions"]),
            "seed": opts["seed"],
            "preserve_color": opts["preserve_color"] or "none",
            "content_loss": opts["content_loss"],
            "content_weight": opts["content_weight"],
            "style_weight": opts["style_weight"],
            "tv_weight": opts["tv_weight"] or 1.0,  # 0 is "TV off"; the slider keeps a usable value
            "optimizer": opts["optimizer"],
            "lr": opts["lr"],
            "init": opts["init"],
            "activation_shift": opts["activation_shift"] != 0,
            "chained": opts["chained"],
            "layer_weighting": opts["layer_weighting"] == "geometric",
            "ssim_weighting": opts["ssim_weighting"],
            "steps": opts["steps"][-1],
            "precision": opts["precision"],
        }
        for name in names:
            control = self.geometric if name == "layer_weighting" else getattr(self, name)
            slider = isinstance(control, widgets.FloatLogSlider)
            if slider and not 10**control.min <= values[name] <= 10**control.max:
                raise ValueError(f"StylePanel: {name}={values[name]:g} is outside the slider's range")
            control.value = values[name]
        if "tv_weight" in names:
            self.use_tv.value = opts["tv_weight"] > 0

    def _on_preset(self, change: dict) -> None:
        self._set_controls(resolve_options(change["new"], **self._fixed), PRESET_CONTROLS)

    def _on_optimizer(self, change: dict) -> None:
        self.lr.value = resolve_options(self.preset.value, optimizer=change["new"], **self._fixed)["lr"]

    def options(self) -> dict[str, Any]:
        """The ``stylize`` keyword arguments the controls describe (plus the fixed defaults)."""
        return {
            **self._fixed,
            "preset": self.preset.value,
            "content_weight": self.content_weight.value,
            "style_weight": self.style_weight.value,
            "tv_weight": self.tv_weight.value if self.use_tv.value else 0.0,
            "optimizer": self.optimizer.value,
            "lr": self.lr.value,
            "init": self.init.value,
            "activation_shift": PRESETS["novak"]["activation_shift"] if self.activation_shift.value else 0.0,
            "chained": self.chained.value,
            "layer_weighting": "geometric" if self.geometric.value else "uniform",
            "ssim_weighting": self.ssim_weighting.value,
            "preserve_color": None if self.preserve_color.value == "none" else self.preserve_color.value,
            "content_loss": self.content_loss.value,
            "steps": self.steps.value,
            "size": self.size.value,
            "scales": self.scales.value,
            "seed": self.seed.value,
            "precision": self.precision.value,
        }

    # -- running

    def _weights_label(self) -> str:
        try:
            return VGGFeatures(["relu1_1"], weights=self._fixed.get("weights")).label
        except Exception as err:  # e.g. ImageNet weights missing: say so instead of failing
            return f"VGG19 weights unavailable: {err}"

    def _status(self, label: str, text: str, error: bool = False) -> None:
        shown = _error_html(text) if error else html.escape(text)
        self.status.value = f"<b>{html.escape(label)}</b> — {shown}"

    def _on_step(self, info: StepInfo) -> bool:
        """The stylize callback: record the losses, update the widgets; False once Stop is pressed."""
        for name, value in info.losses.items():
            self._history.setdefault(name, []).append(value)
        self._history.setdefault("scale", []).append(info.scale)
        done = info.step + 1
        self.progress.max, self.progress.value = info.total_steps, done
        if done % self._every == 0 or done == 1:  # the first step at once: the last run's picture is hidden
            self._show_preview(info.image)
            self._status(self._label, f"step {done}/{info.total_steps}, total loss {info.losses['total']:.4g}")
        if time.monotonic() - self._plotted > PLOT_EVERY_SECONDS:
            self._show_losses(self._history)
            self._plotted = time.monotonic()
        return not self._stop.is_set()

    def _show_preview(self, image: torch.Tensor) -> None:
        """Show a (1, 3, H, W) image in the preview in its own shape, its long side ``PREVIEW_SIDE`` px."""
        self.preview.value = plotting.image_png(image)
        self.preview.layout.width, self.preview.layout.height = preview_size(*image.shape[-2:])
        self.preview.layout.visibility = "visible"

    def _show_losses(self, history: dict[str, list[float]]) -> None:
        self.loss_plot.value = plotting.figure_png(plotting.plot_losses(history, title="losses"))
        self.loss_plot.layout.visibility = "visible"

    def _hide_last_run(self) -> None:
        """At a run's start: the last run's picture and losses must not pass for this one's (their space stays)."""
        self.preview.value = b""
        self.preview.layout.visibility = self.loss_plot.layout.visibility = "hidden"

    def run(self, block: bool = True) -> Result | None:
        """Stylize with :meth:`options`. block=False runs in a background thread (the Run button),
        so Stop can be pressed; block=True returns the Result (errors are shown, then raised)."""
        if not block:
            if self._thread is not None and self._thread.is_alive():
                return None
            self._thread = threading.Thread(target=self._run_quietly, daemon=True)
            self._thread.start()
            return None
        opts = self.options()
        self._history = {}
        self._every = max(1, opts["steps"] * opts["scales"] // 10)  # about 10 previews per run
        self._plotted = time.monotonic()
        self._label = self._weights_label()
        self.run_button.disabled, self.stop_button.disabled = True, False
        self.progress.value = 0
        self._hide_last_run()
        self._status(self._label, "running…")
        try:
            content, style = self.content.image(opts["size"]), self.style.image()
            result = stylize(content, style, **opts, callback=self._on_step, callback_every=1, progress=False)
        except Exception as err:
            self._status(self._label, f"{type(err).__name__}: {err}", error=True)
            raise
        finally:
            self._stop.clear()
            self.run_button.disabled, self.stop_button.disabled = False, True
        self.result = result
        self._show_preview(result.best_image if result.interrupted else result.image)
        self._show_losses(result.history)
        if result.interrupted:  # by Stop; the summary would name the mechanism ("stopped by callback")
            text = "stopped, showing the best image so far: " + replace(result, stopped_reason=None).summary()
        else:
            text = "done: " + result.summary()
        self._status(plotting.runs_footer([result]), text)
        return result

    def _run_quietly(self) -> None:
        try:
            self.run(block=True)
        except Exception:  # already shown in the status line
            pass

    def stop(self) -> None:
        """Stop the current (or the next) run at its next step; the best image so far is kept."""
        self._stop.set()


# ----------------------------------------------------------------------------- compare


def compare_widget(
    content: Any, style: Any, variants: Mapping[str, Mapping[str, Any]], **common: Any
) -> dict[str, Result]:
    """Several settings on the same inputs, with a progress line, then the grid of results.

    Inputs: as :func:`nstlab.experiments.run_variants` (which runs them, and remembers them): content,
    style (may be a list), variants: {name: options overriding ``common``}, common: ``size``, ``steps``,
    ``seed``, ``weights`` and any other ``stylize`` option.
    Returns: {name: Result}, in the order of ``variants``.
    """
    bar = widgets.IntProgress(value=0, min=0, max=len(variants), description="compare")
    line = widgets.HTML()
    display(widgets.HBox([bar, line]))

    def report(name: str, i: int, n: int) -> None:
        bar.value, line.value = i, f"running <b>{html.escape(name)}</b> ({i + 1}/{n})…"

    results = run_variants(content, style, variants, report=report, **common)
    bar.value, line.value = len(variants), "done"
    _show(plotting.plot_results_grid(results))
    return results
