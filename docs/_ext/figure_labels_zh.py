"""The figures' texts in Chinese (issue 30): {figure: its labels}, for ``figures.py``.

A figure's texts are ``minires.teach.diagrams.LABELS[figure]`` (English); each key here replaces
the English text of the same key, with the same ``{placeholders}`` (filled by the figure from the
code: a model's name, a count, a shape). The terms are the glossary's (docs/_ext/glossary.py):
残差结构 residual block, 捷径分支 shortcut, 实线/虚线捷径分支 identity/projection shortcut, 主分支
main path, 步距 stride, 特征矩阵 feature map, 通道 channel ... Code, identifiers, shapes and
numbers stay as they are. tests/test_book_zh.py checks that every figure has its Chinese, key by
key, and that each is drawn with the CJK font.
"""

ZH_CN = {
    "resnet34": {
        "title": "{model}：{blocks} 个残差结构，其中 {dashed} 个的捷径分支改变形状（虚线）；输入 {input}",
        "stem": "起始层", "head": "输出层", "input": "输入", "identity": "实线捷径分支",
        "projection": "虚线捷径分支（1x1 卷积，形状改变）",
        "zero-pad": "补零捷径分支（选项 A，形状改变）",
        "sum": "(+)：主分支 + 捷径分支，然后 ReLU", "model": "ResNet-34",
    },
    "basic_block": {
        "title": "基本残差结构（{model} 的 {identity} 与 {projection}）：两个 3x3 卷积和一条捷径分支",
        "input": "输入", "output": "输出", "identity": "实线捷径分支",
        "projection": "虚线捷径分支（形状改变）", "zero-pad": "补零捷径分支", "sum": "相加",
    },
    "degradation": {
        "title": "{data} 上的退化问题：{steps} 步，批大小 {batch}；普通网络与残差网络的训练误差",
        "plain": "普通网络", "resnet": "残差网络", "plain_net": "普通网络-{depth}", "resnet_net": "ResNet-{depth}",
        "xlabel": "迭代次数", "ylabel": "训练误差（%），各小批量的滑动平均",
    },
    "resnet50": {
        "title": "{model}：{blocks} 个残差结构，其中 {dashed} 个的捷径分支改变形状（虚线）；输入 {input}",
        "stem": "起始层", "head": "输出层", "input": "输入", "identity": "实线捷径分支",
        "projection": "虚线捷径分支（1x1 卷积，形状改变）",
        "zero-pad": "补零捷径分支（选项 A，形状改变）",
        "sum": "(+)：主分支 + 捷径分支，然后 ReLU", "model": "ResNet-50（瓶颈结构）",
    },
    "resnet20": {
        "title": "{model}：{blocks} 个残差结构，其中 {dashed} 个的捷径分支改变形状（虚线）；输入 {input}",
        "stem": "起始层", "head": "输出层", "input": "输入", "identity": "实线捷径分支",
        "projection": "虚线捷径分支（1x1 卷积，形状改变）",
        "zero-pad": "补零捷径分支（选项 A，形状改变）",
        "sum": "(+)：主分支 + 捷径分支，然后 ReLU", "model": "CIFAR-10 的 ResNet-20（6n+2，n = 3）",
    },
    "bottleneck_block": {
        "title": "瓶颈结构（{model} 的 {identity} 与 {projection}）：1x1 降维、3x3、1x1 升维，加一条捷径分支",
        "input": "输入", "output": "输出", "identity": "实线捷径分支",
        "projection": "虚线捷径分支（形状改变）", "zero-pad": "补零捷径分支", "sum": "相加",
    },
    "stride_v1_v15": {
        "title": "每个阶段的第一个瓶颈结构在哪里把尺寸减半：v1（论文）与 v1.5（torchvision）",
        "v1": "resnet50_v1：步距在第一个 1x1 上", "v1.5": "resnet50：步距在 3x3 上",
        "note": "步距为 2 的 1x1 卷积每四个位置只读一个，其余都跳过；放在 3x3 上则每个输入位置都会被读到。"
                "两种版本的捷径分支（{shortcut}）步距都为 2。",
    },
    "im2col": {
        "title": "im2col：{h}x{w} 图像的每个 {k}x{k} 窗口变成一列（{rows} x {cols} 矩阵）",
        "image": "输入 x[0, 0]（值即像素的编号）", "columns": "col.reshape(C*KH*KW, N*OH*OW)",
        "rows": "行 (c, i, j)：卷积核的元素", "cols": "列 (n, oh, ow)：输出像素",
        "window": "窗口 (oh, ow) = {window} 即第 {column} 列",
    },
    "col2im": {
        "title": "col2im 做加法：{h}x{w} 图像的每个像素被多少个窗口覆盖（对全 1 的列矩阵做 col2im）",
        "panel": "{k}x{k} 卷积核，步距 {s}，填充 {p}：{windows} 个窗口",
        "note": "一个像素的梯度是读过它的所有窗口之和：反向传播必须累加，不能覆盖。",
    },
    "same_padding": {
        "title": "偶数长度 {size} 的输入，步距 {stride}，卷积核 {kernel}：填充加在哪里",
        "same": "TensorFlow/Keras padding='same'：前面填充 {before}，后面 {after} -> {out} 个输出",
        "symmetric": "PyTorch padding={p}：前面填充 {before}，后面 {after} -> {out} 个输出",
        "window": "输出 {o}", "unread": "从未被读取",
        "stem": "{stem} 上 7x7/2 的起始层：'same' 填充 ({sb}, {sa})，PyTorch 的 padding=3 填充 (3, 3)："
                "两者读取的像素不同，权重不经平移就不能通用。",
    },
    "all_reduce": {
        "title": "{W} 个 rank 上的数据并行：各算自己的分片，一次 all-reduce，各处走同一步",
        "rank": "rank {r}：样本 {items}\n它的梯度 |g_{r}| = {norm:.4f}",
        "reduce": "all-reduce：对 {W} 个 rank 求和，再 / {W}\n（average_gradients：一条消息）",
        "after": "rank {r}：|g| = {norm:.4f}",
        "note": "一个进程算全部 {n} 个样本：|g| = {single:.4f}；平均后的梯度与它至多相差 {diff:.1e}。\n"
                "模型：线性分类器（4 个特征，3 个类别）和交叉熵，float64；分片由 DistributedSampler 划分（seed {seed}，第 0 轮）。",
    },
    "conv_matmul": {
        "title": "卷积就是一次矩阵乘法：{model} 的 {layer}，输入 {inp}",
        "weights": "权重 W\n{O} x {K}", "columns": "列矩阵（im2col）\n{K} x {P}", "output": "输出 Y\n{O} x {P}",
        "rows_w": "O = {O}", "k": "C*KH*KW = {C}*{KH}*{KW} = {K}", "p": "N*OH*OW = {N}*{OH}*{OW} = {P}",
        "note": "Y 经 reshape 即为输出 (N, O, OH, OW) = {out}。列矩阵的值数是输入的 {ratio:.2f} 倍："
                "每个像素被读它的每个窗口各复制一次。",
    },
    "batch_norm": {
        "title": "批量归一化：每个通道一个均值、一个方差，各由 N*H*W = {N}*{H}*{W} = {count} 个值算出",
        "before": "x（训练批次）", "after": "y = (x - mean) / sqrt(var + eps)（权重 1，偏置 0）",
        "channel": "通道", "value": "值", "mean": "该通道的均值 ± 标准差",
    },
    "relu_maxpool": {
        "title": "梯度流向哪里：ReLU 在 x > 0 处让它通过；最大池化把每个窗口的梯度交给窗口中的最大值",
        "x": "x", "relu_y": "ReLU(x)", "relu_dx": "dy 处处为 1 时的 dx",
        "pool_x": "x，{k}x{k} 窗口（步距 {s}）", "pool_y": "max-pool(x)", "pool_dy": "dy（给定）",
        "pool_dx": "dx：每个 dy 交给其窗口的最大值",
    },
    "shortcut_a_b": {
        "title": "CIFAR ResNet-20，{block}：形状在此改变 {inp} -> {out}",
        "A": "选项 A（shortcut='A'）：下采样，\n新增的通道补零；{params} 个参数",
        "B": "选项 B（shortcut='B'）：1x1 卷积 /2\n和批量归一化；{params} 个参数",
        "xlabel": "输入通道", "ylabel": "输出通道",
        "note": "每个矩阵都是实测的：捷径分支（eval 模式）对只在一个通道为 1、其余为 0 的输入的响应。"
                "整个网络：选项 A 有 {a_total:,} 个参数，B 有 {b_total:,} 个。",
    },
    "grouped_conv": {
        "title": "分组卷积：每个输出通道看到哪些输入通道（实测）",
        "panel": "{model} {layer}：{C} -> {O} 通道，groups={G}，{params:,} 个权重",
        "xlabel": "输入通道", "ylabel": "输出通道",
        "note": "每组 {per} 个输入通道有自己的 {per} 个卷积核：{G} 个小卷积并排（ResNeXt 的基数）。"
                "同样宽度的普通卷积：{dense:,} 个权重。",
    },
    "params_per_stage": {
        "title": "参数在哪里：ImageNet ResNet 各部分的参数量，从模型中数出",
        "xlabel": "参数量（百万）", "stem": "起始层（conv1，bn1）", "fc": "fc（1000 类）", "total": "{total:.1f} M",
    },
    "lr_schedules": {
        "title": "{total:,} 步的学习率调度，基础学习率 {lr}（make_schedule）",
        "step": "阶梯：在 {milestones} 处 /10", "cosine": "余弦降到 0",
        "warmup": "线性预热 {warmup:,} 步后余弦下降", "constant": "恒定",
        "xlabel": "步数", "ylabel": "学习率", "log": "同上，对数坐标",
    },
    "receptive_field": {
        "title": "{model} 的感受野：每层的一个位置看到多少个输入像素",
        "xlabel": "主分支上的层（卷积和最大池化，按前向传播调用它们的顺序）",
        "ylabel": "感受野（像素，单边）", "input": "输入：{size} 像素", "jump": "{jump} px / 步",
        "note": "（各阶段上方：其输出中相邻两个位置之间相隔的输入像素数）",
    },
    "layouts": {
        "title": "同一个张量，内存中的两种顺序：N={N}，C={C}，H={H}，W={W}",
        "logical": "张量：{C} 个 {H}x{W} 的通道（格子：c,h,w）",
        "first": "NCHW，data_format='{first}'（PyTorch，minires）：沿 (N, C, H, W) 的步距 {strides}",
        "last": "NHWC，data_format='{last}'（Keras）：沿 (N, C, H, W) 的步距 {strides}",
        "memory": "内存，地址 0 ->",
        "note": "步距以元素计：沿某个轴 +1 时在内存中前进的距离。minires 内部按 NCHW 计算；"
                "channels_last 的模型在两端各做一次转置（视图，不复制）。",
    },
    "gradient_norms": {
        "title": "初始化时每个卷积权重的梯度：普通网络-{depth} 与 ResNet-{depth}"
                 "（一次反向传播，批大小 {N}，{size}x{size} 随机图像）",
        "plain": "普通网络-{depth}：最大 / 最小 = {ratio:,.0f}", "resnet": "ResNet-{depth}：最大 / 最小 = {ratio:,.0f}",
        "xlabel": "卷积，从输入端起", "ylabel": "|dL/dW|",
    },
    "depth_comparison": {
        "title": "深度：每个阶段的残差结构数，以及各模型计入的带权重层数",
        "imagenet": "ImageNet ResNet（34 层及以下为基本残差结构，50 层起为瓶颈结构）",
        "cifar": "论文中的 CIFAR-10 网络（6n+2，每个阶段 n 个残差结构）",
        "xlabel": "残差结构数", "depth": "{layers} 层", "log": "残差结构总数（对数坐标）",
        "cifar_depth": "{layers} 层：{stages} 个阶段 x {n} 个结构",
    },
}
