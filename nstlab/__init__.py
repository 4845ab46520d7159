"""nstlab: neural style transfer, step by step.

The package behind the notebook course: a VGG19 feature extractor with the papers' layer names,
the losses of Gatys et al. and its successors, colour tools, and an optimisation engine.
"""

from .fast import TransformerNet, load_model, stylize_fast, train_fast
from .images import ImageError, list_images, load_image, resize, sample_image, save_image, to_pil
from .optimize import PRESETS, InsufficientMemoryError, Result, StepInfo, stylize
from .settings import default_device, is_smoke, smoke_or
from .vgg import CONV_LAYERS, VGG19_LAYERS, VGGFeatures, WeightsUnavailableError

__version__ = "0.1.0"
