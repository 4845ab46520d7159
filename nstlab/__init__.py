"""nstlab: neural style transfer, step by step.

The package behind the notebook course. Its modules form layers; each imports only from its own
layer and those below it (tests/test_layers.py reads the imports to hold this):

0. ``settings``: process-wide switches (the course's mode: real, quick or smoke; device, memory allocator).
1. Textbook: ``images``, ``vgg``, ``losses``, ``ssim``, ``color``. Each formula is one short function
   that reads like the formula; the notebooks point to these and the exercises check against them.
2. Engine kernels: ``_kernels`` (private), the fast paths, held equal to the textbook by
   tests/test_kernels.py.
3. Engine: ``presets`` and ``optimize`` (``stylize``), ``fast`` (Johnson et al.'s networks) and its
   ``training_data``. No figures, widgets or command-line parsing.
4. Faces: ``experiments`` (one module per notebook), ``plotting``, ``widgets``, ``checks``, ``cli``.

Figure functions follow one naming rule: ``visualize_*`` runs an experiment and draws it, ``plot_*``
draws results it is given, ``*_table`` returns a table to display, ``*_rows`` returns a table's rows
as data. ``import nstlab`` loads no figure or widget library.
"""

from .fast import TransformerNet, load_model, stylize_fast, train_fast
from .images import ImageError, list_images, load_image, resize, sample_image, save_image, to_pil
from .optimize import PRESETS, InsufficientMemoryError, Result, StepInfo, stylize
from .settings import course_value, default_device, is_smoke, mode, set_mode, smoke_or
from .vgg import CONV_LAYERS, VGG19_LAYERS, VGGFeatures, WeightsUnavailableError

__all__ = [
    "CONV_LAYERS", "PRESETS", "VGG19_LAYERS", "ImageError", "InsufficientMemoryError", "Result", "StepInfo",
    "TransformerNet", "VGGFeatures", "WeightsUnavailableError", "course_value", "default_device", "is_smoke",
    "list_images", "load_image", "load_model", "mode", "resize", "sample_image", "save_image", "set_mode", "smoke_or",
    "stylize", "stylize_fast", "to_pil", "train_fast",
]

__version__ = "0.1.0"
