"""The course's experiments as plain functions — faces layer: one module per notebook, so that a reader
goes from ``notebooks/NN_name.ipynb`` to ``nstlab/experiments/nbNN_name.py`` in one jump. Each notebook and
its widgets call these, and so do the tests.

- ``common``: what several notebooks share: tables and banners (``weights_banner``, at every notebook's top), the
  one default size and step count (``course_size``, ``course_steps``), the run cache (``stylize_variant``,
  ``run_variants``), the figure of several runs (``plot_runs``), the distortions (``distort``) and the yardsticks
  (``evaluate_images``);
- ``nb00_setup_and_images``: the environment, the bundled images, preprocessing;
- ``nb01_vgg_features``: VGG19's layer table, receptive fields, what each depth keeps;
- ``nb02_content_loss``: reconstructions from white noise through one layer at a time;
- ``nb03_gram_matrices_and_style``: the style-loss conventions, texture synthesis (with the student's Gram too);
- ``nb05_gatys_style_transfer``: the algorithm written out (``gatys_loop``), the α/β sweep, the style layers
  taken cumulatively, the survey's raw α, one design choice at a time, the normalised VGG19;
- ``nb04_total_variation``: TV of noisy and smooth images, TV denoising, the TV weight sweep;
- ``nb06_improved_style_transfer``: Novak & Nikulin's four changes, alone and together;
- ``nb07_ssim_weighted_style``: SSIM step by step, SSIM between Grams, the SSIM-weighted style loss;
- ``nb08_color_preservation``: YIQ, luminance-only transfer (from the student's functions too), colour
  histogram matching;
- ``nb09_evaluating_style_transfer``: Yuan & Huang's perceptual-distance experiments, the LPIPS-form content loss;
- ``nb11_fast_style_transfer``: one training step written out, a trained feed-forward network and its speed,
  every method side by side (the survey's Fig. 10).

Notebook 10, the playground, has no module here: its panel and compare grid are
``nstlab.widgets.StylePanel`` and ``nstlab.widgets.compare_widget``, which runs ``common.run_variants``.

Figure functions follow the package's naming rule (``nstlab/__init__.py``): ``visualize_*`` runs an
experiment and draws it (the notebooks' widget cells wrap them with :func:`nstlab.widgets.rerun`),
``plot_*`` draws results it is given, ``*_table`` returns a table to display, ``*_rows`` a table's rows as data.
Every public name of every module is available here: ``from nstlab import experiments; experiments.distort``.
"""

from __future__ import annotations

from .common import (
    Table, rows_table, Banner, COURSE_SIZE, COURSE_STEPS, course_size, course_steps, SWEEP_CONTENT, SWEEP_STYLE,
    RUN_CACHE_SIZE, clear_run_cache, stylize_variant, run_variants, visualize_stylize, LOSS_PLOT_HEIGHT,
    metric_titles, plot_runs, DISTORTIONS, distort, EVAL_CONTENT_LAYER, normalized_style_term, evaluate_images,
    evaluate_results, weights_banner
)
from .nb00_setup_and_images import (
    environment_table, visualize_bundled_images, visualize_preprocessing,
    visualize_imagenet_normalization
)
from .nb01_vgg_features import (
    receptive_fields, vgg_layer_table, visualize_layer_geometry, activation_table
)
from .nb02_content_loss import (
    RECONSTRUCTION_LAYERS, paper_name, layer_label, optimize_pixels, plot_pixel_loops, content_reconstructions,
    plot_content_reconstructions, visualize_content_reconstructions, visualize_content_reconstruction
)
from .nb03_gram_matrices_and_style import (
    GRAM_CONVENTIONS, style_loss_conventions, gram_convention_table, size_dependence_table, texture_syntheses,
    plot_texture_syntheses, visualize_texture_syntheses, visualize_texture_synthesis, plot_texture_with
)
from .nb05_gatys_style_transfer import (
    GATYS_COMPARISONS, visualize_comparison, STYLE_WEIGHT_FACTORS, style_weight_sweep, visualize_style_weight_sweep,
    layer_loss_scales, visualize_layer_scales, normalization_factor_table, GATYS_CONTENT_LAYER, gatys_targets,
    gatys_loop, loop_agreement, LOOP_TOLERANCE, FIRST_STEP_TOLERANCE, plot_loop_vs_stylize, CUMULATIVE_STYLE_LAYERS,
    CUMULATIVE_BETA_FACTORS, cumulative_style_runs, plot_cumulative_style_grid, visualize_cumulative_style_grid,
    SURVEY_ALPHA, raw_weight_runs, raw_scale_rows
)
from .nb04_total_variation import (
    DENOISE_STEPS, tv_table, visualize_tv_noise, psnr, tv_denoise, visualize_tv_denoising, TV_WEIGHT_FACTORS,
    tv_weight_sweep, visualize_tv_weight_sweep
)
from .nb06_improved_style_transfer import (
    SCHEME_LABELS, gram_sparsity, gram_sparsity_table, visualize_gram_shift, visualize_layer_weights, NOVAK_ABLATION,
    variants_table, novak_ablation, visualize_novak_ablation, visualize_novak_options
)
from .nb07_ssim_weighted_style import (
    ssim_components, visualize_ssim_components, match_distortions, visualize_equal_distance, gram_ssim_rows,
    visualize_gram_ssim, ssim_reweighting_rows, visualize_ssim_reweighting, preset_differences, SSIM_VARIANTS,
    visualize_ssim_vs_gatys
)
from .nb08_color_preservation import (
    visualize_yiq_channels, visualize_luminance_matching, color_statistics, gaussian_color_distance,
    histogram_matching_rows, visualize_histogram_matching, COLOR_VARIANTS, visualize_color_preservation,
    luminance_transfer_with
)
from .nb09_evaluating_style_transfer import (
    YUAN_HUANG_INTENSITY, intensity_rows, contrast_images, contrast_rows, single_layer_style_runs,
    single_layer_content_runs, LPIPS_CONTENT_VARIANTS, lpips_content_runs, visualize_evaluation
)
from .nb11_fast_style_transfer import (
    stylize_test_images, plot_training, visualize_training, SpeedComparison, compare_speed, training_step,
    own_training_run, SURVEY_FIG10_VARIANTS, survey_methods, plot_survey_methods
)

__all__ = [
    "Table", "rows_table", "Banner", "COURSE_SIZE", "COURSE_STEPS", "course_size", "course_steps", "SWEEP_CONTENT",
    "SWEEP_STYLE", "RUN_CACHE_SIZE", "clear_run_cache", "stylize_variant", "run_variants", "visualize_stylize",
    "LOSS_PLOT_HEIGHT", "metric_titles", "plot_runs", "DISTORTIONS", "distort", "EVAL_CONTENT_LAYER",
    "normalized_style_term", "evaluate_images", "evaluate_results", "weights_banner", "environment_table",
    "visualize_bundled_images", "visualize_preprocessing", "visualize_imagenet_normalization", "receptive_fields",
    "vgg_layer_table", "visualize_layer_geometry", "activation_table", "RECONSTRUCTION_LAYERS", "paper_name",
    "layer_label", "optimize_pixels", "plot_pixel_loops", "content_reconstructions", "plot_content_reconstructions",
    "visualize_content_reconstructions", "visualize_content_reconstruction", "GRAM_CONVENTIONS", "style_loss_conventions", "gram_convention_table",
    "size_dependence_table", "texture_syntheses", "plot_texture_syntheses", "visualize_texture_syntheses",
    "visualize_texture_synthesis", "plot_texture_with", "GATYS_COMPARISONS",
    "visualize_comparison", "STYLE_WEIGHT_FACTORS", "style_weight_sweep", "visualize_style_weight_sweep",
    "layer_loss_scales", "visualize_layer_scales", "normalization_factor_table", "GATYS_CONTENT_LAYER",
    "gatys_targets", "gatys_loop", "loop_agreement", "LOOP_TOLERANCE", "FIRST_STEP_TOLERANCE",
    "plot_loop_vs_stylize", "CUMULATIVE_STYLE_LAYERS", "CUMULATIVE_BETA_FACTORS", "cumulative_style_runs",
    "plot_cumulative_style_grid", "visualize_cumulative_style_grid", "SURVEY_ALPHA", "raw_weight_runs",
    "raw_scale_rows", "DENOISE_STEPS", "tv_table", "visualize_tv_noise", "psnr", "tv_denoise",
    "visualize_tv_denoising", "TV_WEIGHT_FACTORS", "tv_weight_sweep", "visualize_tv_weight_sweep", "SCHEME_LABELS",
    "gram_sparsity", "gram_sparsity_table", "visualize_gram_shift", "visualize_layer_weights", "NOVAK_ABLATION",
    "variants_table", "novak_ablation", "visualize_novak_ablation", "visualize_novak_options", "ssim_components",
    "visualize_ssim_components", "match_distortions", "visualize_equal_distance", "gram_ssim_rows",
    "visualize_gram_ssim", "ssim_reweighting_rows", "visualize_ssim_reweighting", "preset_differences",
    "SSIM_VARIANTS", "visualize_ssim_vs_gatys", "visualize_yiq_channels", "visualize_luminance_matching",
    "color_statistics", "gaussian_color_distance", "histogram_matching_rows", "visualize_histogram_matching",
    "COLOR_VARIANTS", "visualize_color_preservation", "luminance_transfer_with", "YUAN_HUANG_INTENSITY",
    "intensity_rows", "contrast_images", "contrast_rows", "single_layer_style_runs", "single_layer_content_runs",
    "LPIPS_CONTENT_VARIANTS", "lpips_content_runs", "visualize_evaluation", "stylize_test_images", "plot_training",
    "visualize_training", "SpeedComparison", "compare_speed", "training_step", "own_training_run",
    "SURVEY_FIG10_VARIANTS", "survey_methods", "plot_survey_methods",
]
