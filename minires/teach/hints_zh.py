"""The exercise checker's words in Chinese: a catalog {English: Chinese}, and ``say(text, lang)``.

English is the key: the checker (exercises.py) and the specs (exercises_layers.py,
exercises_blocks.py) write English, and ``say`` looks each text up when the language is 'zh'.
A text with computed values is a template, ``"{t} has the wrong sign"``: the checker passes the
values (``say(template, lang, t="dx")``), or, for a hint a spec has already formatted, ``say``
matches it against the catalog's templates and puts the same values into the Chinese one. Code,
identifiers, numbers and shapes are never translated. The terms are the seed tutorial's
(残差结构 residual block, 主分支 main path, 捷径分支 shortcut, 虚线捷径分支 projection shortcut,
步距 stride, 卷积核 kernel, BN batch normalization); tests/test_hints_zh.py fails when a hint a
spec can give has no translation here.

The language: ``lang`` 'en' or 'zh'; None means ``MINIRES_LANG`` from the environment, read at
each check (unset or empty: English). Any other value raises a ValueError naming it.
"""
import os
import re

LANGS = ("en", "zh")


def language(lang=None):
    """'en' or 'zh': ``lang`` itself, or for None the environment's ``MINIRES_LANG`` (unset: 'en')."""
    if lang is None:
        raw = os.environ.get("MINIRES_LANG", "")
        if raw.strip() == "":
            return "en"
        if raw.strip() not in LANGS:
            raise ValueError(f"MINIRES_LANG must be en or zh (or unset), got {raw!r}")
        return raw.strip()
    if lang not in LANGS:
        raise ValueError(f"lang must be 'en', 'zh' or None (None: MINIRES_LANG, unset means 'en'), got {lang!r}")
    return lang


def say(text, lang="en", **fields):
    """``text`` in ``lang`` ('en' or 'zh'), with ``fields`` put into its {placeholders} if given.
    A text the catalog lacks stays English (tests/test_hints_zh.py keeps that from happening)."""
    if lang == "zh":
        text = translate(text) if not fields else ZH.get(text, text)
    return text.format(**fields) if fields else text


def translate(text):
    """The Chinese of an English text: the catalog's own entry, else the template it is an instance
    of, filled with the same values (a value that is itself in the catalog, translated); else ``text``
    unchanged (``known(text)`` says whether it has one)."""
    if text in ZH:
        return ZH[text]
    for pattern, zh in _TEMPLATES:
        m = pattern.fullmatch(text)
        if m:
            return zh.format(**{k: ZH.get(v, v) for k, v in m.groupdict().items()})
    return text


def known(text):
    """Whether ``text`` has a Chinese translation (an entry, or an instance of a template)."""
    return text in ZH or any(p.fullmatch(text) for p, _ in _TEMPLATES)


_BIASED = ("training-mode batch norm normalises by the BIASED batch variance (divide by M = N*H*W, NumPy's default "
           "ddof=0); the unbiased one is only for the running variance. It scales xhat by about sqrt((M-1)/M)")
_BIASED_ZH = ("训练模式的 BN 用的是有偏的批方差（除以 M = N*H*W，NumPy 默认的 ddof=0）；无偏方差只用于 running "
              "variance（滑动方差）。它把 xhat 缩放了大约 sqrt((M-1)/M) 倍")
_MIXED = ("dy was reshaped to (O, -1) straight from (N, O, OH, OW), which mixes images and channels: move O to the "
          "front first, dy.transpose(1, 0, 2, 3).reshape(O, -1), so that its columns are the output pixels (n, p, q) "
          "in X_col's order")
_MIXED_ZH = ("dy 直接从 (N, O, OH, OW) reshape 成了 (O, -1)，这会把不同图像和不同通道混在一起：先把 O 移到最前面，"
             "dy.transpose(1, 0, 2, 3).reshape(O, -1)，这样它的每一列才是按 X_col 顺序排列的输出像素 (n, p, q)")
_CONV_DX = "Y_row = W_row @ X_col, so dX_col = W_row.T @ dY_row, then col2im back to (N, C, H, W)"
_CONV_DX_ZH = "Y_row = W_row @ X_col，所以 dX_col = W_row.T @ dY_row，再用 col2im 变回 (N, C, H, W)"
_POOL = "each window's dy goes to the position of the window's maximum (0 elsewhere); padding never wins"
_POOL_ZH = "每个窗口的 dy 只传给该窗口最大值所在的位置（其他位置为 0）；填充（padding）永远不会是最大值"
_BLOCK_ORDER = "go backwards through bn2, conv2, the inner ReLU, bn1, conv1"
_BLOCK_ORDER_ZH = "依次反向经过 bn2、conv2、内部的 ReLU、bn1、conv1"

ZH = {
    # ------------------------------------------------------------------ the report (exercises.py)
    "{fn} (with {case})": "{fn}（参数 {case}）",
    "{fn}: not done yet (NotImplementedError{detail}). Write it, run its cell, then run this check again.":
        "{fn}：还没有完成（NotImplementedError{detail}）。写好它，运行它所在的单元格，然后再运行一次这个检查。",
    "{title}: FAIL (the gradient check passes, a rule does not)": "{title}：未通过（梯度检验通过了，但有一条规则没有满足）",
    "{title}: FAIL": "{title}：未通过",
    "{fn}: PASS (largest relative error {e}; every case passes: {cases})":
        "{fn}：通过（最大相对误差 {e}；每种情形都通过：{cases}）",
    "{fn}: PASS (largest relative error {e})": "{fn}：通过（最大相对误差 {e}）",
    "WRONG": "错误",
    "hint: ": "提示：",
    "ok      (relative error {e})": "正确    （相对误差 {e}）",
    "WRONG   (relative error {e}, tolerance {tol})": "错误    （相对误差 {e}，容差 {tol}）",
    "worst entries, yours vs numerical: {worst}": "相差最大的元素，你的值 vs 数值梯度：{worst}",
    "{title}: ERROR, your function raised {type}: {e}": "{title}：出错，你的函数抛出了 {type}：{e}",
    "at line {n} of {fn}: {code}": "位置：{fn} 的第 {n} 行：{code}",
    "(it was called with {shapes}, dy {dy_shape})": "（调用时传入的是 {shapes}，dy {dy_shape}）",
    "a shape mismatch: your function made {produced} where {expected} was needed":
        "形状不匹配：你的函数算出了 {produced}，而这里需要的是 {expected}",
    "shape {d}": "形状 {d}",
    "{a}'s shape": "{a} 的形状",
    "N*{hw} = {v}: {whose}'s pixels": "N*{hw} = {v}：{whose} 的像素个数",
    "{n} values": "{n} 个值",
    "one {type}": "一个 {type}",
    "your function should return {n} arrays ({names}), got {got}": "你的函数应当返回 {n} 个数组（{names}），实际得到的是{got}",
    "{g} should be an array of shape {shape}, got {type}": "{g} 应当是形状为 {shape} 的数组，实际得到的是 {type}",
    "{g} should have shape {shape} (the shape of {x}), got {got}: ":
        "{g} 的形状应当是 {shape}（即 {x} 的形状），实际得到的是 {got}：",
    "it is transposed; check the order of the matrix product (and where the transpose goes)":
        "它被转置了；检查矩阵乘法的顺序（以及转置应该放在哪里）",
    "the right sizes in the wrong order: an axis is swapped; check your transpose/reshape":
        "各维的大小对了，顺序错了：有两个轴互换了；检查你的 transpose/reshape",
    "the right number of entries: a reshape (or keepdims) is missing": "元素个数是对的：少了一次 reshape（或 keepdims）",
    "check which axes you sum over (a gradient has the shape of the thing it is the gradient of)":
        "检查你是对哪些轴求和的（梯度的形状与它所对应的量的形状相同）",
    "{t} contains NaN or inf: a division by zero, or the square root of a negative number?":
        "{t} 中有 NaN 或 inf：是不是除以了零，或者对负数开了平方根？",
    "{t} is all zeros: is it still a placeholder?": "{t} 全是零：它是不是还是占位的代码？",
    "{t} has the wrong sign": "{t} 的符号反了",
    "{t} has the right pattern but is scaled by {k}{frac}: a stray or missing factor (a mean where a sum belongs, "
    "a missing 1/M ...)": "{t} 的模式是对的，但被缩放了 {k} 倍{frac}：多了或少了一个因子（该求和的地方求了平均，少了 1/M ……）",
    " (about 1/{n})": "（约 1/{n}）",
    "compare your formula with the derivation, term by term": "把你的公式与推导逐项对照",
    "{ok} of {n} exercises pass": "{n} 道练习中通过了 {ok} 道",
    "pass": "通过", "fail": "未通过", "not done": "未完成", "error": "出错",
    # ------------------------------------------------------------------ relu
    "the gradient passes everywhere: ReLU blocks it where x <= 0 (multiply by the mask x > 0)":
        "梯度在所有位置都传了过去：ReLU 在 x <= 0 处会挡住梯度（乘以掩码 x > 0）",
    "that is the local derivative alone: the chain rule multiplies it by dy": "这只是局部导数：链式法则还要把它乘以 dy",
    "the mask is the wrong way round: the gradient passes where x > 0": "掩码反了：梯度应当在 x > 0 处通过",
    "the mask must come from the forward's input x, not from dy": "掩码必须来自前向传播的输入 x，而不是来自 dy",
    "wrong only where x > 0: there the gradient passes unchanged (dx = dy)": "只在 x > 0 处出错：那里梯度原样通过（dx = dy）",
    "wrong only where x <= 0: there ReLU passes no gradient (dx = 0)": "只在 x <= 0 处出错：那里 ReLU 不传梯度（dx = 0）",
    "dx = dy where x > 0, and 0 elsewhere": "在 x > 0 处 dx = dy，其他位置为 0",
    # ------------------------------------------------------------------ linear
    "the SUM of dy over the batch (every example adds its share), not the mean":
        "是 dy 在整个批次上的和（每个样本都贡献自己的一份），不是平均值",
    "dW = dy.T @ x sums over the batch; no division by N": "dW = dy.T @ x 已经对批次求和了；不要再除以 N",
    "y = x @ W.T, so dx = dy @ W (shape (N, IN))": "y = x @ W.T，所以 dx = dy @ W（形状 (N, IN)）",
    "y = x @ W.T, so dW = dy.T @ x (shape (OUT, IN))": "y = x @ W.T，所以 dW = dy.T @ x（形状 (OUT, IN)）",
    "b is added to every row, so db = dy summed over the batch": "b 加到了每一行上，所以 db = dy 在批次上求和",
    # ------------------------------------------------------------------ conv2d
    _MIXED: _MIXED_ZH,
    "right where windows do not overlap, wrong where they do: col2im must ADD the contributions of overlapping "
    "windows (+=, not =)": "窗口不重叠的地方是对的，重叠的地方错了：col2im 必须把重叠窗口的贡献累加起来（用 +=，不是 =）",
    "that is X_col @ dY.T, dW_row TRANSPOSED (C*KH*KW, O), and the reshape to (O, C, KH, KW) hid it: "
    "dW_row = dY @ X_col.T": "这是 X_col @ dY.T，即转置了的 dW_row (C*KH*KW, O)，而 reshape 成 (O, C, KH, KW) "
                             "把这个错误掩盖了：dW_row = dY @ X_col.T",
    "two mistakes: X_col @ dY.T is dW_row transposed (use dY @ X_col.T), and " + _MIXED:
        "两个错误：X_col @ dY.T 是转置了的 dW_row（应当用 dY @ X_col.T），另外，" + _MIXED_ZH,
    "the kernel's rows and columns are swapped (KH and KW): dW_row's columns are in X_col's row order (c, i, j)":
        "卷积核的行和列互换了（KH 与 KW）：dW_row 的列按 X_col 的行顺序 (c, i, j) 排列",
    "this is the backward of the kernel flipped in space: the forward is a cross-correlation; use W_row.T @ dY then "
    "col2im (or flip the kernel back)": "这是空间上翻转了的卷积核的反向传播：前向传播是互相关；应当用 W_row.T @ dY，"
                                        "再用 col2im（或者把卷积核翻转回来）",
    "flipped in space: dW[o, c, i, j] pairs dy with the input at offset (i, j) of each window, no flip":
        "在空间上翻转了：dW[o, c, i, j] 把 dy 与每个窗口中偏移 (i, j) 处的输入配对，不需要翻转",
    "a sum of dy over the batch and the positions (axes 0, 2, 3), not a mean":
        "是 dy 在批次和各位置上（轴 0, 2, 3）的和，不是平均值",
    "a sum over the positions too, no averaging": "对各位置也是求和，不取平均",
    "at every pixel your dx is the contribution of ONE window, where the right dx is the sum over all the windows "
    "that contain the pixel: an assignment (=) where you must add (+=), so the contributions of overlapping windows "
    "are lost": "在每个像素上，你的 dx 只是一个窗口的贡献，而正确的 dx 是包含该像素的所有窗口的贡献之和：该累加（+=）"
                "的地方用了赋值（=），于是重叠窗口的贡献丢失了",
    _CONV_DX: _CONV_DX_ZH,
    _CONV_DX + "; the stride-1 case passes, so check the stride and padding you pass to col2im":
        _CONV_DX_ZH + "；步距为 1 的情形通过了，所以检查你传给 col2im 的步距（stride）和填充（padding）",
    "dW_row = dY_row @ X_col.T, reshaped to (O, C, KH, KW)": "dW_row = dY_row @ X_col.T，再 reshape 成 (O, C, KH, KW)",
    "db = dy summed over axes (0, 2, 3)": "db = dy 在轴 (0, 2, 3) 上求和",
    # ------------------------------------------------------------------ batchnorm
    "off by about the mean of dy (times gamma/std) in each channel: did you forget the mean term? The batch mean "
    "depends on every x, so each x also moves every output through it":
        "每个通道都差了大约 dy 的均值（乘以 gamma/std）：是不是漏了均值项？批均值依赖于每一个 x，所以每个 x "
        "还会通过它影响每一个输出",
    "did you forget the variance term (- xhat * mean(dxhat * xhat))? The batch variance depends on x too":
        "是不是漏了方差项（- xhat * mean(dxhat * xhat)）？批方差也依赖于 x",
    "you treated the mean and variance as constants: that is the eval-mode gradient; in training mode both depend "
    "on x and each adds a term": "你把均值和方差当成了常数：那是评估模式（eval）下的梯度；在训练模式下两者都依赖于 x，"
                                 "各自会多出一项",
    "the factor gamma is missing (dxhat = gamma * dy)": "少了因子 gamma（dxhat = gamma * dy）",
    "dy is multiplied by the NORMALISED xhat, not by x": "dy 要乘的是归一化之后的 xhat，而不是 x",
    "a sum over N, H and W, not a mean": "是在 N、H、W 上求和，不是求平均",
    "a sum of dy over N, H and W, not a mean": "是 dy 在 N、H、W 上的和，不是平均值",
    "the unbiased variance (ddof=1, dividing by M - 1): " + _BIASED:
        "用了无偏方差（ddof=1，除以 M - 1）：" + _BIASED_ZH,
    "scaled by {k}, about sqrt((M-1)/M) = {s} for M = {M}: the unbiased variance (ddof=1, dividing by M - 1): "
    + _BIASED: "被缩放了 {k} 倍，约为 sqrt((M-1)/M) = {s}（M = {M}）：用了无偏方差（ddof=1，除以 M - 1）：" + _BIASED_ZH,
    "batch norm in a conv net averages over N, H and W per channel (axis=(0, 2, 3)), you averaged over axis 0 only "
    "(BatchNorm1d's habit), which gives every pixel (c, h, w) a mean and variance of its own":
        "卷积网络中的 BN 对每个通道在 N、H、W 上求平均（axis=(0, 2, 3)），而你只在轴 0 上求了平均（BatchNorm1d 的做法），"
        "这样每个像素 (c, h, w) 都有了自己的均值和方差",
    "off by a constant in each channel: look at the mean term, - mean(dxhat) over (N, H, W), which comes from the "
    "batch mean depending on x": "每个通道都差了一个常数：检查均值项 - mean(dxhat)（在 (N, H, W) 上），"
                                 "它来自批均值对 x 的依赖",
    "off by a multiple of xhat in each channel: look at the variance term, - xhat * mean(dxhat * xhat), which comes "
    "from the batch variance depending on x": "每个通道都差了 xhat 的一个倍数：检查方差项 - xhat * mean(dxhat * xhat)，"
                                              "它来自批方差对 x 的依赖",
    "dgamma and dbeta are right, so xhat and dy are right: look at the two terms the batch statistics add to dx":
        "dgamma 和 dbeta 是对的，所以 xhat 和 dy 是对的：检查批统计量给 dx 带来的那两项",
    "dx = inv_std * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)), means over axes (0, 2, 3) per channel, with "
    "dxhat = gamma * dy": "dx = inv_std * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat))，均值按通道在轴 (0, 2, 3) "
                          "上计算，其中 dxhat = gamma * dy",
    "dgamma = sum of dy * xhat over axes (0, 2, 3)": "dgamma = dy * xhat 在轴 (0, 2, 3) 上的和",
    "dbeta = sum of dy over axes (0, 2, 3)": "dbeta = dy 在轴 (0, 2, 3) 上的和",
    # ------------------------------------------------------------------ maxpool
    "the gradient went to every position of the window: only the window's maximum moved the output, so only it "
    "gets dy (0 elsewhere)": "梯度传给了窗口中的每个位置：只有窗口中的最大值影响了输出，所以只有它得到 dy（其他位置为 0）",
    _POOL: _POOL_ZH,
    _POOL + "; where windows overlap (this case), their gradients ADD": _POOL_ZH + "；窗口重叠时（本情形），它们的梯度要累加",
    "on an input with tied maxima your function raised {type}: {e}": "在有并列最大值的输入上，你的函数抛出了 {type}：{e}",
    "a gradient check passes, but with ties the rule breaks: a 1 sent into window {idx} (x = {xs}, its maximum {m}) "
    "adds up to {s} in dx, not 1. Each window passes its dy on ONCE: route it to one of the tied maxima (minires and "
    "PyTorch take the first), not to each of them":
        "梯度检验通过了，但有并列最大值时规则不成立：送入窗口 {idx}（x = {xs}，最大值 {m}）的 1 在 dx 中加起来是 {s}，"
        "而不是 1。每个窗口的 dy 只能传一次：把它传给并列最大值中的一个（minires 和 PyTorch 取第一个），而不是每一个",
    "a 1 sent into window {idx} (x = {xs}, its maximum {m}) reached a position that is not one of that window's "
    "maxima": "送入窗口 {idx}（x = {xs}，最大值 {m}）的 1 到达了一个不是该窗口最大值的位置",
    # ------------------------------------------------------------------ grouped_conv2d
    "each group's dx is right but lands in another group's channels: group g's input channels are g*C/G ... "
    "(g+1)*C/G - 1, the same slice the forward read": "每一组的 dx 是对的，但落到了另一组的通道上：第 g 组的输入通道是 "
                                                      "g*C/G ... (g+1)*C/G - 1，与前向传播读取的切片相同",
    "you sliced dy and W by the input channels' groups (C/G = {cg} each); dy's groups are of the OUTPUT channels: "
    "group g's filters and dy's channels are g*O/G ... (g+1)*O/G - 1 (O/G = {og}), its input channels g*C/G ... "
    "(g+1)*C/G - 1": "你按输入通道的分组（每组 C/G = {cg} 个）切分了 dy 和 W；dy 的分组是按输出通道分的："
                     "第 g 组的卷积核和 dy 的通道是 g*O/G ... (g+1)*O/G - 1（O/G = {og}），"
                     "它的输入通道是 g*C/G ... (g+1)*C/G - 1",
    "group g is an ordinary convolution: input channels g*C/G ... (g+1)*C/G - 1, filters g*O/G ... (g+1)*O/G - 1 "
    "and the same channels of dy; dx is the G groups' dx side by side along the channels":
        "第 g 组就是一个普通的卷积：输入通道 g*C/G ... (g+1)*C/G - 1，卷积核 g*O/G ... (g+1)*O/G - 1，"
        "以及 dy 的相同通道；dx 是 G 组各自的 dx 沿通道并排拼接",
    "dW[filters of group g] = that group's ordinary dW: its slice of dy with its slice of x's channels":
        "dW[第 g 组的卷积核] = 该组的普通 dW：由该组的 dy 切片和该组的 x 通道切片算出",
    # ------------------------------------------------------------------ basic_block (残差结构)
    "only the main path's gradient: x also feeds the shortcut, so add the shortcut's gradient (for an identity "
    "shortcut, the gradient after the final ReLU)": "只有主分支的梯度：x 还输入了捷径分支，所以要加上捷径分支的梯度"
                                                    "（对实线捷径分支来说，就是经过最后那个 ReLU 之后的梯度）",
    "the shortcut's gradient must also go through the final ReLU: add the masked gradient, not dy":
        "捷径分支的梯度也必须经过最后那个 ReLU：加上乘过掩码的梯度，而不是 dy",
    "every gradient is off: route dy through the final ReLU (mask: output > 0) before splitting into main path and "
    "shortcut": "所有梯度都不对：先让 dy 经过最后那个 ReLU（掩码：output > 0），再分到主分支和捷径分支",
    "the main path must also get the gradient after the final ReLU, not dy": "主分支得到的也必须是经过最后那个 ReLU 之后的梯度，而不是 dy",
    "the shortcut plus the main path's backward (conv1 ... bn2), not the shortcut twice":
        "应当是捷径分支加上主分支（conv1 ... bn2）的反向传播，而不是两次捷径分支",
    "every parameter's gradient is right, so the main path is: look at the shortcut's gradient and the final sum":
        "每个参数的梯度都是对的，所以主分支是对的：检查捷径分支的梯度和最后的相加",
    _BLOCK_ORDER + " in turn, each with its own backward": _BLOCK_ORDER_ZH + "，每一层用它自己的反向传播",
    "dx = (main path's backward of dz) + dz, where dz = dy * (output > 0)":
        "dx = （dz 经主分支的反向传播）+ dz，其中 dz = dy * (output > 0)",
    "layer 2's gradients (dW2, dgamma2, dbeta2) are right, so the gradient that reaches conv2's output is right; layer "
    "1's batch norm gets a wrong one. Look between them: conv2's input gradient (dh), and the inner ReLU, whose mask "
    "must come from ITS input (bn1's output)": "第 2 层的梯度（dW2、dgamma2、dbeta2）是对的，所以到达 conv2 输出的梯度是对的；"
                                               "第 1 层的 BN 得到的梯度却是错的。检查两者之间：conv2 的输入梯度（dh），"
                                               "以及内部的 ReLU，它的掩码必须来自它自己的输入（bn1 的输出）",
    "layer 2's gradients and bn1's dgamma1 and dbeta1 are right, so the gradient at bn1's output is right: look at "
    "bn1's input gradient (its dx) and at conv1's weight gradient": "第 2 层的梯度以及 bn1 的 dgamma1、dbeta1 都是对的，"
                                                                   "所以 bn1 输出处的梯度是对的：检查 bn1 的输入梯度（它的 dx）"
                                                                   "和 conv1 的权重梯度",
    # ------------------------------------------------------------------ projection_block (虚线残差结构)
    "only the main path's gradient: x also feeds the projection shortcut (the 1x1 convolution of stride 2); add the "
    "shortcut's dx": "只有主分支的梯度：在虚线残差结构里，x 还输入了虚线捷径分支（步距为 2 的 1x1 卷积）；加上捷径分支的 dx",
    "only the shortcut's gradient: add the main path's dx": "只有捷径分支的梯度：加上主分支的 dx",
    "route dy through the final ReLU (mask: output > 0) before splitting into main path and shortcut":
        "先让 dy 经过最后那个 ReLU（掩码：output > 0），再分到主分支和捷径分支",
    "this gradient skipped the final ReLU: both paths start from dy * (output > 0)":
        "这个梯度跳过了最后那个 ReLU：两条分支都从 dy * (output > 0) 开始",
    "{hw} (N*H*W = {nhw}) is x's size, {ohw} (N*OH*OW = {nohw}) the block's output's: a step taken at stride 1 "
    "where the stride is 2. Check the stride of {conv} in your backward":
        "{hw}（N*H*W = {nhw}）是 x 的大小，{ohw}（N*OH*OW = {nohw}）是这个残差结构输出的大小：某一步按步距 1 计算了，"
        "而步距应当是 2。检查你的反向传播中{conv}的步距",
    "conv1's 3x3 convolution (stride 2, padding 1)": " conv1 的 3x3 卷积（步距 2，填充 1）",
    "the shortcut's 1x1 convolution (stride 2, no padding)": "捷径分支上 1x1 卷积（步距 2，无填充）",
    "every parameter's gradient is right: look at how the two paths' dx are summed":
        "每个参数的梯度都是对的：检查两条分支的 dx 是怎样相加的",
    _BLOCK_ORDER + " (stride 2, padding 1), each with its own backward":
        _BLOCK_ORDER_ZH + "（步距 2，填充 1），每一层用它自己的反向传播",
    "the shortcut is conv_s (1x1, stride 2, no padding) then bn_s; its gradients start from dz = dy * (output > 0), "
    "like the main path's": "捷径分支是 conv_s（1x1，步距 2，无填充）接 bn_s；它的梯度和主分支一样，"
                            "从 dz = dy * (output > 0) 开始",
    "dx = (main path's backward of dz) + (shortcut's backward of dz), dz = dy * (output > 0)":
        "dx = （dz 经主分支的反向传播）+（dz 经捷径分支的反向传播），dz = dy * (output > 0)",
}

_TEMPLATES = [(re.compile("".join(f"(?P<{part[1:-1]}>.+?)" if re.fullmatch(r"\{\w+\}", part) else re.escape(part)
                                  for part in re.split(r"(\{\w+\})", en))), zh)
              for en, zh in ZH.items() if re.search(r"\{\w+\}", en)]
