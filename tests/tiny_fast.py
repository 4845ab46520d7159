"""The tiny feed-forward network of the tests of nstlab.fast and of notebook 11's experiments."""

from __future__ import annotations

STYLE = "van_gogh_night_cafe"
# A tiny network and shallow VGG layers keep a training step to a few hundredths of a second.
TINY = dict(
    size=32,
    batch_size=2,
    channels=8,
    n_residual=1,
    content_layers=["relu2_2"],
    style_layers=["relu1_2", "relu2_2"],
    progress=False,
    weights="random",
    device="cpu",
)
