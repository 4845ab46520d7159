"""nstlab.images: loading every kind of file, clear errors, resizing, the sample registry."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from nstlab import images
from nstlab.images import ImageError, as_image, list_images, load_image, resize, sample_image, save_image, to_pil


def _gradient(w: int = 48, h: int = 40) -> Image.Image:
    """An RGB image whose every pixel is distinct enough to check orientation and values."""
    x = np.linspace(0, 255, w, dtype=np.float64)[None, :].repeat(h, 0)
    y = np.linspace(0, 255, h, dtype=np.float64)[:, None].repeat(w, 1)
    arr = np.stack([x, y, 255 - x], axis=2).round().astype(np.uint8)
    return Image.fromarray(arr, "RGB")


def test_rgb_png_round_trip_exact(tmp_path):
    img = _gradient()
    img.save(tmp_path / "a.png")
    t = load_image(tmp_path / "a.png")
    assert t.shape == (1, 3, 40, 48) and t.dtype == torch.float32
    assert torch.equal(t[0].permute(1, 2, 0), torch.from_numpy(np.array(img)).float() / 255)
    save_image(t, tmp_path / "b.png")
    assert np.array_equal(np.asarray(Image.open(tmp_path / "b.png")), np.asarray(img))


@pytest.mark.parametrize("mode", ["L", "P", "CMYK", "RGBA", "LA", "I"])
def test_every_mode_becomes_rgb(tmp_path, mode):
    path = tmp_path / {"CMYK": "x.jpg", "I": "x.tif"}.get(mode, "x.png")
    _gradient().convert(mode).save(path)
    t = load_image(path)
    assert t.shape == (1, 3, 40, 48)
    assert 0.0 <= float(t.min()) and float(t.max()) <= 1.0
    if mode in ("L", "LA", "I"):  # greyscale: three equal channels
        assert torch.equal(t[:, 0], t[:, 1]) and torch.equal(t[:, 1], t[:, 2])


def test_rgba_transparent_pixels_composite_on_white(tmp_path):
    arr = np.zeros((40, 40, 4), np.uint8)  # fully transparent black
    Image.fromarray(arr, "RGBA").save(tmp_path / "t.png")
    assert torch.all(load_image(tmp_path / "t.png") == 1.0)


def test_16_bit_uses_the_full_range(tmp_path):
    arr = np.full((40, 40), 32768, np.uint16)
    arr[0, 0] = 65535
    Image.fromarray(arr).save(tmp_path / "deep.png")
    t = load_image(tmp_path / "deep.png")
    assert float(t[0, 0, 0, 0]) == pytest.approx(1.0)
    assert float(t[0, 0, 5, 5]) == pytest.approx(32768 / 65535, abs=1e-6)


def test_exif_orientation_is_applied(tmp_path):
    img = _gradient(60, 40)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    img.save(tmp_path / "rot.jpg", exif=exif, quality=95)
    t = load_image(tmp_path / "rot.jpg")
    assert t.shape == (1, 3, 60, 40)
    # After a clockwise turn the image's former left column (red ~ 0) is on top.
    assert float(t[0, 0, 0].mean()) < 0.1 < float(t[0, 0, -1].mean())


def test_max_size_bounds_long_side_and_keeps_aspect(tmp_path):
    _gradient(200, 100).save(tmp_path / "w.png")
    assert load_image(tmp_path / "w.png", max_size=64).shape == (1, 3, 32, 64)
    assert load_image(tmp_path / "w.png", max_size=500).shape == (1, 3, 100, 200)  # never enlarged


def test_file_objects_and_bytes(tmp_path):
    buf = io.BytesIO()
    _gradient().save(buf, format="PNG")
    a = load_image(io.BytesIO(buf.getvalue()))
    b = load_image(buf.getvalue())
    assert torch.equal(a, b)


def test_missing_file_error_names_it(tmp_path):
    with pytest.raises(ImageError, match=r"nope\.png: no such file"):
        load_image(tmp_path / "nope.png")


def test_directory_error(tmp_path):
    with pytest.raises(ImageError, match="directory"):
        load_image(tmp_path)


def test_not_an_image_error(tmp_path):
    (tmp_path / "notes.jpg").write_text("hello, I am text")
    with pytest.raises(ImageError, match=r"notes\.jpg: not an image"):
        load_image(tmp_path / "notes.jpg")


def test_truncated_image_error(tmp_path):
    buf = io.BytesIO()
    _gradient(200, 200).save(buf, format="JPEG")
    (tmp_path / "cut.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    with pytest.raises(ImageError, match=r"cut\.jpg: corrupt or truncated"):
        load_image(tmp_path / "cut.jpg")


def test_an_image_with_too_many_pixels_is_an_image_error(tmp_path, monkeypatch):
    _gradient(60, 60).save(tmp_path / "huge.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # PIL refuses over twice this: 3600 px here
    with pytest.raises(ImageError, match=r"huge\.png: too large \(Image size \(3600 pixels\) exceeds limit"):
        load_image(tmp_path / "huge.png")


def test_too_small_image_error(tmp_path):
    _gradient(31, 100).save(tmp_path / "thin.png")
    with pytest.raises(ImageError, match=r"thin\.png: image is 31x100 px.*at least 32"):
        load_image(tmp_path / "thin.png")


def test_errors_are_value_errors():
    assert issubclass(ImageError, ValueError)


def test_resize_long_side_and_explicit():
    t = torch.rand(2, 3, 50, 100)
    assert resize(t, 40).shape == (2, 3, 20, 40)
    assert resize(t, (10, 12)).shape == (2, 3, 10, 12)
    assert resize(t, 100) is t
    const = torch.full((1, 3, 64, 64), 0.25)
    assert torch.allclose(resize(const, 17), torch.full((1, 3, 17, 17), 0.25), atol=1e-6)


def test_to_pil_and_bad_shapes():
    pil = to_pil(torch.ones(1, 3, 8, 9))
    assert pil.size == (9, 8) and pil.getpixel((0, 0)) == (255, 255, 255)
    with pytest.raises(ValueError, match=r"\(8, 9\)"):
        to_pil(torch.ones(8, 9))


def test_save_image_rejects_unknown_suffix(tmp_path):
    with pytest.raises(ImageError, match="unknown image suffix"):
        save_image(torch.zeros(1, 3, 4, 4), tmp_path / "x.txt")


def test_registry_lists_the_bundled_images():
    content, style = list_images("content"), list_images("style")
    assert "tower_bridge" in content and "chelsea_cat" in content and len(content) == 10
    assert "van_gogh_cafe_terrace_at_night" in style and len(style) == 9
    t = sample_image("chelsea_cat", max_size=64)
    assert t.shape[0:2] == (1, 3) and max(t.shape[2:]) == 64
    with pytest.raises(ValueError):
        list_images("paintings")
    with pytest.raises(ImageError, match="no bundled image named 'mona_lisa'.*tower_bridge"):
        sample_image("mona_lisa")


def test_every_bundled_image_loads_and_has_attribution():
    readme = (images.images_dir() / "README.md").read_text()
    for kind in ("content", "style"):
        for name in list_images(kind):
            assert load_image(images.sample_image_path(name), max_size=40).shape[1] == 3
            assert name in readme, f"{name} has no attribution in images/README.md"


def test_as_image_accepts_tensor_path_and_name(tmp_path):
    _gradient().save(tmp_path / "g.png")
    assert as_image(tmp_path / "g.png", 24).shape == (1, 3, 20, 24)
    assert as_image("coffee", 32).shape[-1] == 32 or as_image("coffee", 32).shape[-2] == 32
    grey = as_image(torch.rand(1, 1, 10, 10))
    assert grey.shape == (1, 3, 10, 10)


def test_images_dir_prefers_the_variable_then_the_installed_copy_then_the_checkout(tmp_path, monkeypatch):
    monkeypatch.delenv("NSTLAB_IMAGES", raising=False)
    monkeypatch.setattr(images, "__file__", str(tmp_path / "site" / "nstlab" / "images.py"))
    with pytest.raises(ImageError, match="sample image folder not found"):
        images.images_dir()
    (tmp_path / "site" / "images").mkdir(parents=True)  # a checkout: images/ next to nstlab/
    assert images.images_dir() == tmp_path / "site" / "images"
    (tmp_path / "site" / "nstlab" / "sample_images").mkdir(parents=True)  # an installed copy
    assert images.images_dir() == tmp_path / "site" / "nstlab" / "sample_images"
    monkeypatch.setenv("NSTLAB_IMAGES", str(tmp_path / "mine"))
    with pytest.raises(ImageError, match="mine: sample image folder not found"):
        images.images_dir()
    (tmp_path / "mine").mkdir()
    assert images.images_dir() == tmp_path / "mine"


def test_dither_moves_each_value_by_at_most_half_a_grey_level_seeded() -> None:
    img = torch.tensor([0.0, 0.5, 1.0, 0.25]).view(1, 1, 2, 2).expand(1, 3, 2, 2).contiguous()
    a, b = images.dither(img, seed=1), images.dither(img, seed=1)
    assert torch.equal(a, b) and not torch.equal(a, images.dither(img, seed=2))  # seeded
    assert a.shape == img.shape and a.dtype == img.dtype
    assert float((a - img).abs().max()) <= 0.5 / 255 and float((a - img).abs().max()) > 0
    assert 0 <= float(a.min()) and float(a.max()) <= 1  # clamped at black and white
    noise = torch.rand(img.shape, generator=torch.Generator().manual_seed(1)) - 0.5
    torch.testing.assert_close(a, (img + noise / 255).clamp(0, 1), rtol=0, atol=0)  # U(-1/2, 1/2) grey levels
