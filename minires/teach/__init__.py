"""Teaching: proving gradients, exercises, experiments, and the book's figures drawn from the code
(the plots of a run are minires/viz.py).

    gradcheck.py        check_module, check_function: float64 central differences
    gradcheck_cases.py  the layers ``minires gradcheck`` proves, one case each
    exercises.py        write a forward and backward yourself; ``check`` proves it
    exercises_layers.py the layer exercises (relu, linear, conv2d, batchnorm, maxpool, grouped conv)
    exercises_blocks.py the block exercises (basic block, projection block)
    exercises_common.py what a spec is, and the helpers both spec files use
    hints_zh.py         the checker's reports and hints in Chinese (MINIRES_LANG=zh or lang="zh")
    experiments.py      the paper's degradation experiment, in minutes
    summary.py          a model's layers, shapes and parameters, as a table; trace: the shapes of one forward
    diagrams.py         FIGURES: the book's figures, each drawn from the models and functions it shows
                        (diagrams_nets, _family, _layers, _ops, _train: one file per subject)
"""
from .gradcheck import check_function, check_module
from .summary import summary

__all__ = ["check_function", "check_module", "summary"]
