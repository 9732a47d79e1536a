"""The glossary of the Chinese edition (issue 30): one Chinese term for each idea, the tutorial's own
wording where it has one (the Chinese ResNet tutorial minires implements: 残差结构, 捷径分支,
虚线残差结构, 退化问题, 步距, 特征矩阵 ...).

``TERMS`` is what docs/glossary.md shows and what tests/test_book_zh.py checks: every translated
paragraph (msgstr) of the zh_CN catalogs whose English (msgid) names a term, as a word, outside
inline code and math, uses the term's Chinese (``zh``, as a substring). Entries are
``(english forms, zh, note)``; the first English form is the one the glossary page shows, the
others are its plurals and variants. A longer term's Chinese contains the shorter one's where the
English does ("projection shortcut" -> 虚线捷径分支 contains "shortcut" -> 捷径分支), so the
checks never contradict each other.
"""
import re

TUTORIAL = "tutorial"      # the note of a term taken from the tutorial's wording

TERMS = [
    (("residual block", "residual blocks", "residual structure"), "残差结构", TUTORIAL),
    (("shortcut", "shortcuts", "shortcut connection", "skip connection"), "捷径分支",
     "tutorial: “shortcut分支也叫做捷径分支”"),
    (("main path", "main branch"), "主分支", TUTORIAL),
    (("identity shortcut", "identity shortcuts"), "实线捷径分支",
     "drawn solid, as in the tutorial's figures; the block is a 实线残差结构"),
    (("projection shortcut", "projection shortcuts", "dashed shortcut", "dashed shortcuts"), "虚线捷径分支",
     "a 1x1 convolution (and BN), drawn dashed; the block is a 虚线残差结构"),
    (("solid residual block", "identity block"), "实线残差结构", "tutorial: the block whose shortcut keeps the shape"),
    (("dashed residual block", "projection block"), "虚线残差结构",
     "tutorial: the block whose shortcut changes the shape"),
    (("degradation problem", "degradation"), "退化", "tutorial: 退化问题 (the problem); 退化 alone for the effect"),
    (("plain network", "plain networks", "plain net", "plain nets"), "普通网络", "the paper's plain nets: no shortcuts"),
    (("residual network", "residual networks", "residual net", "residual nets"), "残差网络", ""),
    (("batch normalization", "batch normalisation", "batch norm"), "批量归一化",
     "the tutorial writes BN (batch normalization); the Chinese name once, then BN"),
    (("bottleneck", "bottlenecks", "bottleneck block"), "瓶颈", "1x1 reduce, 3x3, 1x1 expand: 瓶颈结构"),
    (("stride", "strides"), "步距", TUTORIAL),
    (("convolution", "convolutions", "convolutional"), "卷积", "tutorial: 卷积层 (convolutional layer)"),
    (("kernel", "kernels"), "卷积核", TUTORIAL),
    (("padding",), "填充", "the tutorial keeps the English word padding; 填充 (padding) on first use"),
    (("feature map", "feature maps"), "特征矩阵", "tutorial: 特征矩阵 (the tutorial's word; 特征图 elsewhere)"),
    (("channel", "channels"), "通道", "the tutorial mostly writes channel; 通道 (channel) on first use"),
    (("downsampling", "downsample"), "下采样", TUTORIAL),
    (("gradient", "gradients"), "梯度", TUTORIAL),
    (("vanishing gradient", "vanishing gradients"), "梯度消失", TUTORIAL),
    (("forward pass", "forward"), "前向", "forward: 前向传播; `forward` in code stays as it is"),
    (("backward pass", "backward", "backwards", "backpropagation"), "反向",
     "backward: 反向传播; `backward` in code stays as it is"),
    (("gradient check", "gradient checks", "gradient-check", "gradient checking"), "梯度检验", ""),
    (("learning rate", "learning rates"), "学习率", ""),
    (("epoch", "epochs"), "轮", "一轮 (epoch): one pass over the training set"),
    (("training set",), "训练集", ""),
    (("validation set", "validation sets"), "验证集", ""),
    (("test set", "test sets"), "测试集", ""),
    (("global average pooling",), "全局平均池化", ""),
    (("pooling",), "池化", ""),
    (("transfer learning",), "迁移学习", ""),
]

# The abbreviation a paragraph may use instead, once the book has named the idea: the tutorial
# writes BN for batch normalization (“BN（batch normalization）”).
SHORT = {"批量归一化": ("BN",)}

# Inline code and math are not prose: a term inside them is an identifier or a symbol.
NOT_PROSE = re.compile(r"``.*?``|`[^`]*`|\$\$.*?\$\$|\$[^$]*\$|\]\([^)]*\)", re.S)


def pattern(forms):
    """A case-insensitive whole-word regex for any of ``forms`` (a hyphen or a space between words)."""
    alts = sorted((re.escape(f).replace(r"\ ", r"[\s-]+").replace(r"\-", r"[\s-]+") for f in forms), key=len,
                  reverse=True)
    return re.compile(r"(?<![\w-])(?:" + "|".join(alts) + r")(?![\w-])", re.I)


def prose(text):
    """``text`` without its inline code, math and link targets."""
    return NOT_PROSE.sub(" ", text)


def missing_terms(msgid, msgstr):
    """[(english form found, Chinese term)] for each term ``msgid`` names that ``msgstr`` does not use."""
    english = prose(msgid)
    found = []
    for forms, zh, _ in TERMS:
        m = pattern(forms).search(english)
        if m and zh not in msgstr and not any(short in msgstr for short in SHORT.get(zh, ())):
            found.append((m.group(0), zh))
    return found
