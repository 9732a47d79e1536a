"""The book's figures, drawn from the code itself, so that they cannot drift from it (issue 28).

Each figure is a function ``draw_<name>(path=None, labels=None)`` that builds what it shows --
a model and one forward on zeros, the real im2col, the padding rules, the schedules, a
backward -- and returns the matplotlib Figure (written atomically to ``path`` when given). Its
texts are a module-level dict (``RESNET34_LABELS`` ...); ``labels`` overrides any of them, so
another edition can pass its translations. Layer names, shapes and numbers are not texts.

The figures that state facts compute them in a function of their own beside the drawing
(``network_facts``, ``stride_facts``, ``padding_facts`` ...), which the tests hold against the models.

    FIGURES                 {name: draw function}, in the book's order
    LABELS                  {name: that figure's texts}: the strings a translation replaces
    draw_all(out, only)     every figure (or those named) written to out/NAME.png

The drawing is spread over files by subject: diagrams_nets.py (networks and blocks),
diagrams_ops.py (im2col, padding, the convolution's shapes), diagrams_layers.py (batch norm,
ReLU and max-pool, memory layouts), diagrams_family.py (parameters, depth, receptive field,
gradients at initialisation), diagrams_train.py (schedules, data parallelism, degradation);
what they share is diagrams_common.py. ``tools/make_figures.py OUT_DIR`` writes them all.
"""
import os

from .diagrams_common import block_facts, network_facts, texts, trace
from .diagrams_family import (DEPTH_LABELS, FIELD_LABELS, NORMS_LABELS, PARAMS_LABELS, depth_facts,
                              draw_depth_comparison, draw_gradient_norms, draw_params_per_stage, draw_receptive_field,
                              gradient_norm_facts, params_facts, receptive_field_facts)
from .diagrams_layers import (BATCH_NORM_LABELS, LAYOUT_LABELS, ROUTING_LABELS, batch_norm_facts, draw_batch_norm,
                              draw_layouts, draw_relu_maxpool, layout_facts, routing_facts)
from .diagrams_nets import (BASIC_BLOCK_LABELS, BOTTLENECK_LABELS, RESNET20_LABELS, RESNET34_LABELS,
                            RESNET50_LABELS, SHORTCUT_LABELS, STRIDE_LABELS, draw_basic_block, draw_bottleneck_block,
                            draw_network, draw_resnet20, draw_resnet34, draw_resnet50, draw_shortcut_options,
                            draw_stride_placement, shortcut_facts, stride_facts)
from .diagrams_ops import (COL2IM_LABELS, CONV_MATMUL_LABELS, GROUPED_LABELS, IM2COL_LABELS, PADDING_LABELS,
                           col2im_facts, conv_matmul_facts, draw_col2im, draw_conv_matmul, draw_grouped_conv,
                           draw_im2col, draw_same_padding, grouped_facts, im2col_facts, padding_facts)
from .diagrams_train import (ALL_REDUCE_LABELS, DEGRADATION_LABELS, SCHEDULE_LABELS, all_reduce_facts,
                             degradation_result, draw_all_reduce, draw_degradation, draw_lr_schedules,
                             schedule_facts)

FIGURES = {
    "resnet34": draw_resnet34,
    "resnet50": draw_resnet50,
    "basic_block": draw_basic_block,
    "bottleneck_block": draw_bottleneck_block,
    "stride_v1_v15": draw_stride_placement,
    "im2col": draw_im2col,
    "col2im": draw_col2im,
    "same_padding": draw_same_padding,
    "degradation": draw_degradation,
    "all_reduce": draw_all_reduce,
    "conv_matmul": draw_conv_matmul,
    "batch_norm": draw_batch_norm,
    "relu_maxpool": draw_relu_maxpool,
    "shortcut_a_b": draw_shortcut_options,
    "grouped_conv": draw_grouped_conv,
    "params_per_stage": draw_params_per_stage,
    "lr_schedules": draw_lr_schedules,
    "receptive_field": draw_receptive_field,
    "layouts": draw_layouts,
    "resnet20": draw_resnet20,
    "gradient_norms": draw_gradient_norms,
    "depth_comparison": draw_depth_comparison,
}

# Each figure's texts, by the figure's name: what a translation replaces (draw_all's ``labels``).
LABELS = {
    "resnet34": RESNET34_LABELS, "resnet50": RESNET50_LABELS, "basic_block": BASIC_BLOCK_LABELS,
    "bottleneck_block": BOTTLENECK_LABELS, "stride_v1_v15": STRIDE_LABELS, "im2col": IM2COL_LABELS,
    "col2im": COL2IM_LABELS, "same_padding": PADDING_LABELS, "degradation": DEGRADATION_LABELS,
    "all_reduce": ALL_REDUCE_LABELS, "conv_matmul": CONV_MATMUL_LABELS, "batch_norm": BATCH_NORM_LABELS,
    "relu_maxpool": ROUTING_LABELS, "shortcut_a_b": SHORTCUT_LABELS, "grouped_conv": GROUPED_LABELS,
    "params_per_stage": PARAMS_LABELS, "lr_schedules": SCHEDULE_LABELS, "receptive_field": FIELD_LABELS,
    "layouts": LAYOUT_LABELS, "resnet20": RESNET20_LABELS, "gradient_norms": NORMS_LABELS,
    "depth_comparison": DEPTH_LABELS,
}

__all__ = ["FIGURES", "LABELS", "draw_all", "draw_network", "texts", "trace", "network_facts", "block_facts",
           "stride_facts", "shortcut_facts", "im2col_facts", "col2im_facts", "padding_facts", "conv_matmul_facts",
           "grouped_facts", "batch_norm_facts", "routing_facts", "layout_facts", "params_facts", "depth_facts",
           "receptive_field_facts", "gradient_norm_facts", "schedule_facts", "all_reduce_facts",
           "degradation_result", *(f.__name__ for f in FIGURES.values())]


def draw_all(out, only=None, labels=None, log=print):
    """Write each figure of ``FIGURES`` (or those named in ``only``) to ``out``/NAME.png; the paths.

    ``labels``: {name: that figure's labels} for the figures to translate. An unknown name is
    refused before anything is drawn.
    """
    names = list(FIGURES) if not only else list(only)
    unknown = [n for n in names + list(labels or {}) if n not in FIGURES]
    if unknown:
        raise ValueError(f"no figure called {unknown}; the figures are {list(FIGURES)}")
    os.makedirs(out, exist_ok=True)
    paths = []
    for name in names:
        path = os.path.join(out, f"{name}.png")
        FIGURES[name](path=path, labels=(labels or {}).get(name))
        if log:
            log(path)
        paths.append(path)
    return paths
