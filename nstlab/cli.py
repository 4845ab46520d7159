"""The ``nstlab`` command line — faces layer: ``stylize``, ``images``, ``train-fast``, ``stylize-fast``,
``weights download``, ``weights check`` and ``course export-nbgrader``.

Every failure the user can fix (a missing file, a bad option, weights that cannot be loaded, too
large a size) is one line ``nstlab: error: ...`` on stderr and exit code 1; argparse's own usage
errors are one line too and exit with 2. Each subcommand is built by one ``_add_*`` function.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

import torch

from nstlab import fast, grading, weights
from nstlab.presets import CONTENT_LOSSES, PRECISIONS
from nstlab.images import IMAGE_SUFFIXES, ImageError, list_images, save_image
from nstlab.optimize import PRESETS, InsufficientMemoryError, stylize
from nstlab.vgg import WeightsUnavailableError, check_weights

PROG = "nstlab"
USER_ERRORS = (
    ImageError, ValueError, WeightsUnavailableError, InsufficientMemoryError, torch.OutOfMemoryError, OSError
)


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are a single line (no usage block)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


def _add_stylize(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser(
        "stylize",
        help="optimise an image to have CONTENT's content and STYLE's style",
        description="Neural style transfer by optimisation (Gatys et al.). Writes OUT (an image) and "
        "OUT with suffix .json (settings, losses per step, timings). Options left out take the "
        "preset's value; see nstlab.optimize.PRESETS and DEFAULTS for every default and its source.",
    )
    p.add_argument("content", help="content image: a file, or the name of a bundled image (see 'nstlab images')")
    p.add_argument("style", nargs="+", help="one or more style images (several are blended)")
    p.add_argument("-o", "--output", required=True, type=Path, metavar="OUT.png", help="output image file")
    p.add_argument("--preset", choices=sorted(PRESETS), default="gatys", help="method (default: gatys)")
    p.add_argument("--size", type=_positive_int, help="long side of the result in pixels")
    p.add_argument("--steps", type=_positive_int, help="optimisation steps per scale")
    p.add_argument("--scales", type=_positive_int, help="coarse-to-fine scales, each 2x smaller (default 1)")
    p.add_argument("--style-weights", type=_float, nargs="+", metavar="W", help="blend weights, one per style")
    p.add_argument("--style-scale", type=_float, help="style long side relative to the output's")
    p.add_argument("--content-weight", type=_float)
    p.add_argument("--style-weight", type=_float)
    p.add_argument("--tv-weight", type=_float)
    p.add_argument("--preserve-color", choices=["luminance", "histogram"])
    p.add_argument("--content-loss", choices=CONTENT_LOSSES, help="l2 (Gatys) or lpips (Yuan & Huang's LPIPS form)")
    p.add_argument("--init", choices=["content", "noise", "style"])
    p.add_argument("--optimizer", choices=["lbfgs", "adam"])
    p.add_argument("--lr", type=_float, help="learning rate (L-BFGS: step multiplier)")
    p.add_argument("--pooling", choices=["max", "avg"])
    p.add_argument(
        "--normalized-vgg", action="store_true", default=None, help="Gatys et al.'s normalized VGG19 of the weights"
    )
    p.add_argument(
        "--weights", metavar="imagenet|random|PATH", help="VGG19 weights (default: $NSTLAB_WEIGHTS, else imagenet)"
    )
    p.add_argument("--seed", type=int)
    p.add_argument("--device", help="e.g. cpu, cuda, mps (default: automatic)")
    _add_precision(p)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(run=_run_stylize)


def _add_precision(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--precision", choices=PRECISIONS, default="auto",
        help="what the networks compute in (default auto: bf16 on a CPU with native bf16 or a GPU, else fp32)",
    )


OPTION_ARGS = (
    "size", "steps", "scales", "style_weights", "style_scale", "content_weight", "style_weight", "tv_weight",
    "preserve_color", "init", "optimizer", "lr", "pooling", "normalized_vgg", "weights", "seed", "device", "precision",
    "content_loss",
)


def _run_stylize(args: argparse.Namespace) -> int:
    out: Path = args.output
    if out.suffix.lower() not in IMAGE_SUFFIXES:
        raise ImageError(f"{out}: unknown image suffix {out.suffix!r}; use one of {sorted(IMAGE_SUFFIXES)}")
    options = {name: getattr(args, name) for name in OPTION_ARGS if getattr(args, name) is not None}
    style = args.style if len(args.style) > 1 else args.style[0]
    result = stylize(args.content, style, preset=args.preset, progress=not args.no_progress, **options)
    json_path = out.with_suffix(".json")
    save_image(result.image, out)
    json_path.write_text(result.to_json() + "\n")
    print(f"{PROG}: wrote {out} and {json_path} ({result.summary()})")
    if result.stopped_reason is not None and not result.interrupted:
        print(f"{PROG}: error: stopped early: {result.stopped_reason}", file=sys.stderr)
        return 1
    return 0


def _add_images(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser("images", help="list the bundled sample images", description="List the bundled images.")
    p.set_defaults(run=_run_images)


def _run_images(args: argparse.Namespace) -> int:
    for kind in ("content", "style"):
        print(f"{kind}:")
        for name in list_images(kind):
            print(f"  {name}")
    return 0


def _add_fast(commands: argparse._SubParsersAction) -> None:
    """``train-fast`` and ``stylize-fast`` (Johnson et al.'s feed-forward networks, :mod:`nstlab.fast`)."""
    p = commands.add_parser(
        "train-fast",
        help="train a feed-forward style network (Johnson et al.)",
        description="Train a feed-forward network for one style on crops of a folder of photos. MODEL.pth "
        "is written every --checkpoint-every steps and on Ctrl-C: run the same command again to resume.",
    )
    p.add_argument("--style", required=True, help="style image: a file or the name of a bundled style image")
    p.add_argument(
        "--content-dir",
        type=Path,
        help=f"folder of training photos (default: the bundled content images minus {', '.join(fast.HELD_OUT)})",
    )
    p.add_argument(
        "-o", "--output", required=True, type=Path, metavar="MODEL.pth",
        help="the trained network, also the resumable checkpoint",
    )
    p.add_argument("--steps", type=int, help="total training steps (default 2000)")
    p.add_argument("--size", type=int, help="crop side in pixels (default 256)")
    p.add_argument("--batch-size", type=int, help="crops per step (default 4)")
    p.add_argument(
        "--lr", type=float, default=fast.DEFAULT_LR, help=f"Adam learning rate (default {fast.DEFAULT_LR:g})"
    )
    p.add_argument("--content-weight", type=float, default=fast.DEFAULT_CONTENT_WEIGHT)
    p.add_argument("--style-weight", type=float, default=fast.DEFAULT_STYLE_WEIGHT)
    p.add_argument("--tv-weight", type=float, default=fast.DEFAULT_TV_WEIGHT)
    p.add_argument("--channels", type=int, default=32, help="width of the network's first layer (default 32)")
    p.add_argument("--checkpoint-every", type=int, help="steps between checkpoints (default 100)")
    p.add_argument("--restart", action="store_true", help="start again even if MODEL.pth exists")
    p.add_argument(
        "--weights", metavar="imagenet|random|PATH", help="VGG19 weights (default: $NSTLAB_WEIGHTS or imagenet)"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", help="e.g. cpu, cuda, mps (default: automatic)")
    _add_precision(p)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(run=_run_train_fast)

    p = commands.add_parser(
        "stylize-fast",
        help="stylise an image with a trained feed-forward network",
        description="Stylise IMAGE with a network trained by 'nstlab train-fast': one forward pass.",
    )
    p.add_argument("model", type=Path, metavar="MODEL.pth")
    p.add_argument("image", metavar="IMAGE", help="content image: a file or the name of a bundled image")
    p.add_argument("-o", "--output", required=True, type=Path, metavar="OUT.png", help="output image file")
    p.add_argument("--size", type=int, help="long side of the result (default: the image's own size)")
    p.add_argument("--device", help="e.g. cpu, cuda, mps (default: automatic)")
    _add_precision(p)
    p.set_defaults(run=_run_stylize_fast)


def _run_train_fast(args: argparse.Namespace) -> int:
    """Handler of ``nstlab train-fast``: 0 when done, 130 when interrupted (checkpoint saved),
    1 when stopped by a non-finite loss."""
    result = fast.train_fast(
        args.style,
        args.content_dir,
        steps=args.steps,
        size=args.size,
        batch_size=args.batch_size,
        lr=args.lr,
        content_weight=args.content_weight,
        style_weight=args.style_weight,
        tv_weight=args.tv_weight,
        channels=args.channels,
        checkpoint=args.output,
        checkpoint_every=args.checkpoint_every,
        resume=not args.restart,
        seed=args.seed,
        device=args.device,
        weights=args.weights,
        progress=not args.no_progress,
        precision=args.precision,
    )
    if result.interrupted:
        print(
            f"nstlab: {result.stopped_reason}; checkpoint {args.output} is at step {result.steps}: "
            "run the same command to resume"
        )
        return 130
    if result.stopped_reason is not None:
        print(f"{PROG}: error: {result.stopped_reason}")
        return 1
    if not result.step_times:
        print(f"{PROG}: {args.output} already has {result.steps} steps; nothing to do (raise --steps to train longer)")
    else:
        print(f"{PROG}: wrote {args.output} ({result.summary()})")
    return 0


def _run_stylize_fast(args: argparse.Namespace) -> int:
    """Handler of ``nstlab stylize-fast``: writes OUT and returns 0."""
    if args.output.suffix.lower() not in IMAGE_SUFFIXES:
        raise ImageError(
            f"{args.output}: unknown image suffix {args.output.suffix!r}; use one of {sorted(IMAGE_SUFFIXES)}"
        )
    if args.size is not None and args.size < fast.TransformerNet.MIN_SIDE:
        raise ValueError(f"stylize-fast: --size must be >= {fast.TransformerNet.MIN_SIDE}, got {args.size}")
    model = fast.load_model(args.model, args.device)
    began = time.perf_counter()
    image = fast.stylize_fast(model, args.image, args.size, args.precision)
    seconds = time.perf_counter() - began
    save_image(image, args.output)
    h, w = image.shape[-2:]
    trained_with = model.meta.get("weights_name", "?")
    print(f"{PROG}: wrote {args.output} ({h}x{w} px in {seconds:.2f} s; network trained with {trained_with} VGG19)")
    return 0


def _add_weights(commands: argparse._SubParsersAction) -> None:
    """``weights download`` and ``weights check`` (the ImageNet VGG19 file, :mod:`nstlab.weights`)."""
    p = commands.add_parser(
        "weights",
        help="get or check the ImageNet VGG19 weights",
        description="Get the ImageNet VGG19 file (548 MB) or check which weights the course will use.",
    )
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    get = actions.add_parser(
        "download",
        help="download and verify the ImageNet VGG19 file",
        description="Download torchvision's ImageNet VGG19 file into the torch hub cache, where the course "
        "looks for it, or into DIR (a USB stick, a shared folder: then set NSTLAB_WEIGHTS=DIR/FILE on each "
        "machine). The file is checked against the SHA-256 prefix in its name before it is put in place.",
    )
    get.add_argument("--to", type=Path, metavar="DIR", help="folder to download into (default: the torch hub cache)")
    get.add_argument("--no-progress", action="store_true", help="no progress bar")
    get.set_defaults(run=_run_weights_download)
    check = actions.add_parser(
        "check",
        help="say which weights the course will use, and why",
        description="Say which VGG19 weights the notebooks (weights='auto') will use and why, and what fixes it. "
        "Exit status 1 when they would run without trained weights.",
    )
    check.set_defaults(run=_run_weights_check)


def _run_weights_download(args: argparse.Namespace) -> int:
    """Handler of ``nstlab weights download``: 0 once the verified file is in place."""
    target = weights.download_target(args.to)
    if weights.is_verified(target):
        print(f"{PROG}: {target} is already there; its SHA-256 matches its name")
        return 0
    print(f"{PROG}: downloading {weights.imagenet_url()} to {target}")
    path = weights.download(args.to, progress=not args.no_progress)
    print(f"{PROG}: wrote {path} ({path.stat().st_size / 1e6:.1f} MB); its SHA-256 matches its name")
    if args.to is not None:
        print(f"{PROG}: to use it, on each machine: export NSTLAB_WEIGHTS={path.resolve()}")
    return 0


def _run_weights_check(args: argparse.Namespace) -> int:
    """Handler of ``nstlab weights check``: 0 when the course gets trained weights, else 1."""
    report = check_weights()
    print("\n".join(f"{PROG}: {line}" if i == 0 else line for i, line in enumerate(report.lines())))
    return 0 if report.ok else 1


def _add_course(commands: argparse._SubParsersAction) -> None:
    """``course export-nbgrader`` (the course as nbgrader assignments, :mod:`nstlab.grading`)."""
    p = commands.add_parser("course", help="the course for teachers: export it for grading",
                            description="The course's notebooks for a class.")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    export = actions.add_parser(
        "export-nbgrader",
        help="write an nbgrader course folder: one assignment per notebook with exercises",
        description="Write an nbgrader course folder into DIR: source/<notebook>/ for each notebook with exercises "
        "(answer cells holding the reference solutions, locked test cells with points and hidden tests) and "
        "nbgrader_config.py (grading in smoke mode with the untrained VGG19, a time limit per cell). Then, in "
        "DIR: nbgrader generate_assignment <notebook>. docs/teaching.md walks through a term.",
    )
    export.add_argument("directory", type=Path, metavar="DIR", help="the course folder to create")
    export.add_argument("--notebooks", type=Path, default=grading.NOTEBOOKS, metavar="DIR",
                        help="the course's notebooks (default: the repository's notebooks/)")
    export.add_argument("--timeout", type=_positive_int, default=grading.CELL_TIMEOUT, metavar="S",
                        help=f"seconds a cell may run when grading (default {grading.CELL_TIMEOUT})")
    export.set_defaults(run=_run_course_export)


def _run_course_export(args: argparse.Namespace) -> int:
    """Handler of ``nstlab course export-nbgrader``."""
    written = grading.export_nbgrader(args.directory, notebooks=args.notebooks, timeout=args.timeout)
    points = {ex.notebook: 0 for ex in grading.GRADED}
    for ex in grading.GRADED:
        points[ex.notebook] += ex.points
    for path in written:
        n = points[path.stem[:2]]
        print(f"{PROG}: wrote {path} ({n} point{'' if n == 1 else 's'})")
    print(f"{PROG}: wrote {args.directory / 'nbgrader_config.py'}; next, in {args.directory}: "
          f"nbgrader generate_assignment {written[0].stem}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The ``nstlab`` parser: one subcommand per ``_add_*`` function."""
    parser = _Parser(prog=PROG, description="nstlab: neural style transfer, step by step.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_stylize(commands)
    _add_images(commands)
    _add_fast(commands)
    _add_weights(commands)
    _add_course(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (0 ok, 1 error, 2 usage error, 130 Ctrl-C)."""
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except USER_ERRORS as err:
        message = " ".join(str(err).split())  # one line, even for multi-line messages
        print(f"{PROG}: error: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
