"""Tests for nstlab.widgets: the plain functions behind the controls, at 64 px and a few steps."""

from __future__ import annotations

import datetime
import io

import ipywidgets
import pytest
import torch
from matplotlib.figure import Figure
from PIL import Image

from nstlab import plotting, widgets
from nstlab.images import load_image, sample_image
from nstlab.optimize import DEFAULT_LR_BY_OPTIMIZER, PRESETS, Result, resolve_options
from nstlab.settings import course_value

CONTENT, STYLE = "tower_bridge", "van_gogh_cafe_terrace_at_night"

# The panels run stylize with the weights NSTLAB_WEIGHTS names: the untrained VGG19 here, whether or not the
# test command set it (offline, "auto" would try to download the ImageNet file).
pytestmark = pytest.mark.usefixtures("random_weights_and_private_cache")


def test_log_slider_range_and_value():
    slider = widgets.log_slider("style weight", 1e3, -2, 8)
    assert isinstance(slider, ipywidgets.FloatLogSlider)
    assert (slider.base, slider.min, slider.max, slider.step, slider.value) == (10, -2, 8, 0.1, 1e3)
    assert slider.description == "style weight"
    with pytest.raises(ValueError, match=r"value 1e\+09 is outside \[1e-2, 1e8\]"):
        widgets.log_slider("style weight", 1e9, -2, 8)


def _png_upload(name: str, data: bytes) -> dict:
    return {"name": name, "type": "image/png", "size": len(data), "content": memoryview(data),
            "last_modified": datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)}


def _png_bytes(h: int = 40, w: int = 48) -> bytes:
    pixels = (torch.rand(h, w, 3, generator=torch.Generator().manual_seed(0)) * 255).byte().numpy()
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="png")
    return buffer.getvalue()


def test_image_picker_bundled_and_uploaded():
    picker = widgets.ImagePicker("style", STYLE)
    assert torch.equal(picker.image(64), sample_image(STYLE, 64))
    assert picker.dropdown.options == tuple(widgets.list_images("style"))

    data = _png_bytes()
    picker.upload.value = (_png_upload("mine.png", data),)
    got = picker.image()
    assert torch.equal(got, load_image(data)) and got.shape == (1, 3, 40, 48)
    assert picker.image(24).shape == (1, 3, 20, 24)
    assert "mine.png" in picker.message.value

    picker.dropdown.value = "van_gogh_harvest"  # choosing a bundled image discards the upload
    assert picker.upload.value == ()
    assert torch.equal(picker.image(64), sample_image("van_gogh_harvest", 64))


def test_image_picker_too_large_upload_is_one_line_and_the_picker_keeps_working(monkeypatch):
    monkeypatch.setattr(widgets, "MAX_UPLOAD_BYTES", 1_000_000)
    picker = widgets.ImagePicker("content", CONTENT)
    picker.upload.value = (_png_upload("phone.png", bytes(1_500_000)),)
    assert picker.message.value == widgets._error_html(
        "phone.png: too large (1.5 MB; uploads up to 1 MB) — using tower_bridge instead"
    )
    assert torch.equal(picker.image(64), sample_image(CONTENT, 64))
    data = _png_bytes()
    picker.upload.value = (_png_upload("mine.png", data),)  # the next upload is taken
    assert picker.message.value == "using the upload mine.png" and torch.equal(picker.image(), load_image(data))
    assert "100 MB" in widgets.UPLOAD_TIP and picker.upload.tooltip == widgets.UPLOAD_TIP


def test_choosing_a_bundled_image_puts_a_new_upload_button_in_place():
    """A button whose file never reached the kernel waits for it for good in the browser: a new one revives it."""
    picker = widgets.ImagePicker("style", STYLE)
    old = picker.upload
    old.value = (_png_upload("mine.png", _png_bytes()),)
    picker.dropdown.value = "van_gogh_harvest"
    assert picker.upload is not old and old.comm is None  # the old one is closed
    assert picker.widget.children[0].children == (picker.dropdown, picker.upload)
    assert picker.upload.value == () and picker.message.value == ""
    picker.upload.value = (_png_upload("again.png", _png_bytes()),)
    assert picker.message.value == "using the upload again.png"  # the new button is watched too


def test_each_picker_message_sits_under_its_own_controls():
    panel = widgets.StylePanel(size=64, steps=1)
    row = panel.widget.children[0]
    assert row.children == (panel.content.widget, panel.style.widget)
    for picker in (panel.content, panel.style):
        controls, message = picker.widget.children
        assert isinstance(picker.widget, ipywidgets.VBox) and controls.children == (picker.dropdown, picker.upload)
        assert message is picker.message  # under the controls, as wide as they are, wrapping there:
        assert (message.layout.width, message.layout.min_width) == ("0", "100%")


def test_image_picker_bad_upload_shows_a_message():
    picker = widgets.ImagePicker("content", CONTENT)
    picker.upload.value = (_png_upload("notes.png", b"this is not an image"),)
    assert "notes.png: not an image file" in picker.message.value  # shown as soon as it is uploaded
    assert torch.equal(picker.image(64), sample_image(CONTENT, 64))
    assert "using tower_bridge instead" in picker.message.value
    with pytest.raises(ValueError, match="no bundled content image 'nope'"):
        widgets.ImagePicker("content", "nope")


def test_rerun_calls_once_then_on_every_click():
    calls = []

    def experiment(weight, steps, label):
        calls.append((weight, steps, label))
        fig = Figure()
        fig.subplots().plot([0, steps], [0, weight])
        return fig

    weight = widgets.log_slider("weight", 1.0, -2, 2)
    steps = ipywidgets.IntSlider(value=3, min=1, max=10)
    box = widgets.rerun(experiment, weight=weight, steps=steps, label="fixed")
    assert calls == [(1.0, 3, "fixed")]
    assert box.children[:2] == (weight, steps)
    button, out = box.children[2], box.children[3]
    assert isinstance(button, ipywidgets.Button) and isinstance(out, ipywidgets.Output)

    weight.value, steps.value = 10.0, 7
    button.click()
    assert calls[-1] == (10.0, 7, "fixed") and len(calls) == 2
    assert not button.disabled and button.description == "Run"


def test_rerun_passes_image_pickers_and_raises_first_errors():
    picker = widgets.ImagePicker("content", CONTENT)
    seen = []
    box = widgets.rerun(lambda image: seen.append(image.image(64).shape), image=picker)
    assert seen == [sample_image(CONTENT, 64).shape]
    assert box.children[0] is picker.widget

    def broken(x):
        raise RuntimeError("bad experiment")

    with pytest.raises(RuntimeError, match="bad experiment"):
        widgets.rerun(broken, x=ipywidgets.IntSlider(value=1))


def test_toggle_buttons_keep_their_label_on_the_buttons_line():
    """ipywidgets 8 in JupyterLab puts a ToggleButtons' description above the buttons unless its box is a
    row; rerun and the panel lay out every ToggleButtons they show as one (checked in a browser)."""
    pooling = ipywidgets.ToggleButtons(options=["max", "avg"], description="pooling")
    assert pooling.layout.display is None  # the default: label above
    box = widgets.rerun(lambda pooling: None, pooling=pooling)
    panel = widgets.StylePanel()
    assert pooling.style.description_width == "11ch"  # rerun lines the labels up (below)
    for toggle in (box.children[0], panel.optimizer):
        assert (toggle.layout.display, toggle.layout.flex_flow, toggle.layout.align_items) == ("flex", "row", "center")
        # ipywidgets' class of one-line controls: its label aligned right, with their margin (checked in a browser)
        assert "widget-inline-hbox" in toggle._dom_classes
    # compact buttons after an 80-px label, unless the caller chose otherwise (the panel's 64-px buttons)
    assert pooling.style.button_width == "auto"
    assert (panel.optimizer.style.description_width, panel.optimizer.style.button_width) == ("100px", "64px")


def test_rerun_lines_up_the_labels():
    picker = widgets.ImagePicker("content", CONTENT)
    beta = widgets.log_slider("β (style weight)", 1.0, -3, 4)
    steps = ipywidgets.IntSlider(value=1, description="steps")
    box_ = ipywidgets.Checkbox(description="a long checkbox description, not a label")
    widgets.rerun(lambda **_: None, content=picker, style_weight=beta, steps=steps, flag=box_, size=64)
    # the longest label, "β (style weight)", is 16 characters: every control gets 17ch
    assert {c.style.description_width for c in (picker.dropdown, beta, steps, box_)} == {"17ch"}
    assert {c.layout.width for c in (beta, steps, box_)} == {"calc(17ch + 220px)"}
    assert picker.dropdown.layout.width == "calc(17ch + 300px)"  # the longest image name is not cut off
    short = ipywidgets.IntSlider(description="n")
    widgets.rerun(lambda n: None, n=short)
    assert short.style.description_width == "11ch"  # never narrower than ipywidgets' 80 px


def test_preset_dropdown_sets_the_presets_style_weight():
    beta = widgets.log_slider("β", 1.0, -3, 4)
    preset = widgets.preset_dropdown(beta, value="novak")
    assert list(preset.options) == list(PRESETS) and beta.value == pytest.approx(PRESETS["novak"]["style_weight"])
    for name in PRESETS:
        preset.value = name
        assert beta.value == pytest.approx(PRESETS[name]["style_weight"])
    beta.value = 100.0  # the student's own choice stays until the preset changes
    assert preset.value == list(PRESETS)[-1] and beta.value == pytest.approx(100.0)


def test_panel_defaults_follow_the_engine():
    panel = widgets.StylePanel()
    opts = panel.options()
    expected = resolve_options()
    assert opts["size"] == expected["size"] == course_value(real=256, quick=128, smoke=64)
    assert opts["steps"] == expected["steps"][0]
    for name in ("preset", "content_weight", "style_weight", "tv_weight", "optimizer", "lr", "init", "seed",
                 "activation_shift", "chained", "layer_weighting", "ssim_weighting", "preserve_color", "content_loss"):
        assert opts[name] == expected[name], name
    assert opts["scales"] == 1
    assert "RANDOM (untrained)" in panel.status.value
    resolve_options(**opts)  # the panel's options are valid stylize options


def test_panel_options_sit_in_one_grid_with_one_label_width():
    """The option controls line up in columns (checked in a browser): one GridBox, every label 100 px."""
    panel = widgets.StylePanel()
    grid = next(c for c in panel.widget.children if isinstance(c, ipywidgets.GridBox))
    assert panel.preset in grid.children and panel.seed in grid.children and panel.preserve_color in grid.children
    assert len(grid.children) == 19
    assert {c.style.description_width for c in grid.children} == {"100px"}
    assert all(c.indent for c in grid.children if isinstance(c, ipywidgets.Checkbox))  # the box after the label column


def test_panel_controls_map_to_options():
    panel = widgets.StylePanel(weights="random", pooling="avg", size=96, style_weight=1e4)
    assert panel.options()["size"] == 96 and panel.options()["style_weight"] == 1e4
    assert panel.options()["weights"] == "random" and panel.options()["pooling"] == "avg"
    # "keep colours" shows "none" (a Dropdown shows a None value as an empty box) and passes None
    assert panel.preserve_color.value == "none" and panel.options()["preserve_color"] is None
    assert widgets.StylePanel(preserve_color="histogram").preserve_color.value == "histogram"
    assert panel.precision.value == "auto" and panel.options()["precision"] == "auto"
    assert widgets.StylePanel(precision="fp32").options()["precision"] == "fp32"
    assert panel.content_loss.value == "l2" and widgets.StylePanel(content_loss="lpips").content_loss.value == "lpips"

    panel.preset.value = "novak"  # the preset sets the method toggles and weights
    opts = panel.options()
    assert (opts["activation_shift"], opts["chained"], opts["layer_weighting"]) == (-1.0, True, "geometric")
    assert opts["style_weight"] == PRESETS["novak"]["style_weight"] and opts["size"] == 96

    panel.use_tv.value = False
    panel.ssim_weighting.value = True
    panel.preserve_color.value = "luminance"
    panel.activation_shift.value = False
    panel.scales.value = 2
    panel.seed.value = 7
    panel.content_weight.value = 0.1
    panel.content_loss.value = "lpips"
    opts = panel.options()
    assert opts["content_loss"] == "lpips"
    assert opts["tv_weight"] == 0.0 and opts["ssim_weighting"] is True
    assert opts["preserve_color"] == "luminance" and opts["activation_shift"] == 0.0
    assert (opts["scales"], opts["seed"], opts["content_weight"]) == (2, 7, 0.1)

    panel.optimizer.value = "adam"  # lr follows the optimizer
    assert panel.options()["lr"] == DEFAULT_LR_BY_OPTIMIZER["adam"]
    panel.preset.value = "ssim"
    opts = panel.options()
    assert (opts["optimizer"], opts["lr"], opts["ssim_weighting"]) == ("adam", PRESETS["ssim"]["lr"], True)
    assert panel.use_tv.value  # the preset's tv_weight turns TV back on


def test_panel_rejects_bad_defaults():
    with pytest.raises(TypeError, match="unknown option"):
        widgets.StylePanel(style_wieght=1.0)
    with pytest.raises(TypeError, match="set by the panel"):
        widgets.StylePanel(callback=print)
    with pytest.raises(ValueError, match="style_weight=1e\\+12 is outside"):
        widgets.StylePanel(style_weight=1e12)


def test_panel_run_updates_progress_preview_and_status():
    panel = widgets.StylePanel(size=64, steps=3)
    result = panel.run()
    assert isinstance(result, Result) and panel.result is result
    assert not result.interrupted and len(result.history["total"]) == 3
    assert (panel.progress.value, panel.progress.max) == (3, 3)
    assert bytes(panel.preview.value).startswith(b"\x89PNG") and bytes(panel.loss_plot.value).startswith(b"\x89PNG")
    assert Image.open(io.BytesIO(bytes(panel.preview.value))).size == tuple(reversed(result.image.shape[-2:]))
    h, w = result.image.shape[-2:]
    assert (h, w) == (32, 64)  # tower_bridge is twice as wide as high: so is the preview
    assert (panel.preview.layout.width, panel.preview.layout.height) == ("320px", "160px")
    assert panel.preview.layout.visibility == panel.loss_plot.layout.visibility == "visible"
    assert "RANDOM (untrained)" in panel.status.value and "done" in panel.status.value
    assert not panel.run_button.disabled and panel.stop_button.disabled
    assert panel._history["total"] == result.history["total"]


def test_preview_size_keeps_the_shape():
    assert widgets.preview_size(128, 256) == ("320px", "160px")
    assert widgets.preview_size(256, 128) == ("160px", "320px")
    assert widgets.preview_size(100, 100, side=50) == ("50px", "50px")
    assert widgets.preview_size(1, 4000) == ("320px", "1px")


def test_panel_hides_the_last_runs_picture_when_a_run_starts():
    panel = widgets.StylePanel(size=64, steps=2)
    panel.run()
    assert bytes(panel.preview.value).startswith(b"\x89PNG")
    on_step, seen = panel._on_step, []

    def look(info):
        if not seen:  # the first step of the second run, before it shows anything
            seen.append((bytes(panel.preview.value), panel.preview.layout.visibility,
                         panel.loss_plot.layout.visibility, panel.status.value))
        return on_step(info)

    panel._on_step = look
    panel.run()
    assert seen[0][:3] == (b"", "hidden", "hidden") and "running" in seen[0][3]
    assert panel.preview.layout.visibility == "visible" and bytes(panel.preview.value).startswith(b"\x89PNG")


def test_panel_runs_the_lpips_content_loss():
    panel = widgets.StylePanel(size=64, steps=2)
    panel.content_loss.value = "lpips"
    result = panel.run()
    assert result.settings["content_loss"] == "lpips" and result.settings["content_layers"][0] == "relu1_2"


def test_panel_stop_keeps_the_best_image():
    panel = widgets.StylePanel(size=64, steps=3)
    on_step = panel._on_step

    def stop_at_once(info):
        panel.stop()  # as the Stop button does, while the run is going
        return on_step(info)

    panel._on_step = stop_at_once
    result = panel.run()
    assert result.interrupted and result.stopped_reason == "stopped by callback"
    assert len(result.history["total"]) == 1 and result.best_step == 0
    assert "— stopped, showing the best image so far: 1 steps in" in panel.status.value
    assert "callback" not in panel.status.value
    assert bytes(panel.preview.value) == plotting.image_png(result.best_image)

    panel._on_step = on_step
    panel.steps.value = 1
    panel.stop()  # pressed before the run: it stops at the first step
    assert panel.run().interrupted
    assert not panel.run().interrupted  # the flag does not outlive a run


def test_panel_run_button_runs_in_a_thread():
    panel = widgets.StylePanel(size=64, steps=1)
    panel.run_button.click()
    panel._thread.join(timeout=120)
    assert panel.result is not None and len(panel.result.history["total"]) == 1


def test_panel_errors_are_shown_and_raised():
    panel = widgets.StylePanel(size=64, steps=2, style_layers=["relu1_1"])
    panel.chained.value = True
    with pytest.raises(ValueError, match="needs at least 2 layers"):
        panel.run()
    assert "needs at least 2 layers" in panel.status.value and "color:#b00020" in panel.status.value
    assert not panel.run_button.disabled


def test_compare_widget_returns_the_results(capsys):
    results = widgets.compare_widget(CONTENT, STYLE, {"gatys": {}}, size=64, steps=1, progress=False)
    assert list(results) == ["gatys"] and len(results["gatys"].history["total"]) == 1
    assert "Image" in capsys.readouterr().out  # the grid was displayed (as text outside a kernel)


def test_style_panel_displays_as_its_widget():
    bundle = widgets.StylePanel()._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
