"""``minires explain``: where in an image a model finds its evidence (Grad-CAM) or which pixels
its score is most sensitive to (saliency), drawn over the image as the model saw it.

The model, its weights and its preprocessing are ``minires predict``'s (commands.py): a
checkpoint of ``minires train`` (--checkpoint), published weights (--weights), or random weights
with a warning. The picture written is the image after that preprocessing (resized and cropped),
with the heat map over it and the top classes in the title; the map itself comes from
minires/explain.py.
"""
import os
import sys

from .options import UsageError

TOP = 3                  # classes named in the title
METHODS = ("gradcam", "saliency")
TITLES = {"gradcam": "Grad-CAM", "saliency": "saliency"}


def cmd_explain(args):
    """The heat map of one image for one class, over the image, written as a PNG."""
    from .. import explain
    from ..files import check_regular_file
    _check_options(args)
    check_regular_file(args.image, OSError, "image", note=f"; give one image in it (e.g. {args.image}/cat.jpg)")
    out = args.out or f"{os.path.splitext(os.path.basename(args.image))[0]}-{args.method}.png"
    _check_out(out)
    model, x, picture, top, classes = _load(args)
    target = _target(args.target, len(classes), top)
    layer = None
    if args.method == "gradcam":
        layer = explain.default_layer(model) if args.layer is None else args.layer
        try:
            explain.find_layer(model, layer)
        except ValueError as e:              # an unknown name: the message lists the model's layers
            raise UsageError(f"--layer: {e}") from None
        try:
            heat = explain.grad_cam(model, x, target=target, layer=layer)
        except ValueError as e:              # a layer that is there but gives no feature map ('fc')
            if args.layer is not None and str(e).startswith(f"layer {layer!r}"):
                raise UsageError(f"--layer: {e}") from None
            raise
    else:
        heat = explain.saliency(model, x, target=target)
    heat = explain.upsample(heat, picture.shape[:2])[0]
    how = f"{TITLES[args.method]} ({layer})" if layer else TITLES[args.method]
    _draw(picture, explain.overlay(picture, heat), out, how, target, classes, top)
    print(f"{args.image}: {how} for {classes[target]} ({target}); top: "
          + ", ".join(f"{name} {p:.1%}" for _, name, p in top))
    print(f"saved {out}")
    return 0


def _check_options(args):
    """Options that do not go together: a usage error, before any work."""
    if args.checkpoint is not None and args.weights is not None:
        raise UsageError("--checkpoint brings its own model and preprocessing; drop --weights")
    if args.layer is not None and args.method != "gradcam":
        raise UsageError(f"--layer is Grad-CAM's (the feature maps it weighs); --method {args.method} "
                         "looks at the input pixels: drop --layer")
    if args.out is not None and not args.out.lower().endswith(".png"):
        raise UsageError(f"--out must name a .png file, got {args.out!r}")


def _check_out(out):
    """The picture's path: not a folder, and its folder not a file (exit code 1, like any path)."""
    from ..files import check_folder
    if os.path.isdir(out):
        raise IsADirectoryError(f"{out}: a folder, not a picture file")
    check_folder(os.path.dirname(out) or ".", NotADirectoryError)


def _load(args):
    """(model, x on the model's device, the picture the model saw (H, W, 3) or (H, W) uint8, the top
    classes [(index, name, p)], the class names), as ``minires predict`` loads and prepares them."""
    import numpy as np

    from ..backend import device_of, to_device
    from ..data.images import square_image
    from ..predict.classify import classify, default_resize, load_pretrained, random_model
    from ..predict.imagenet import imagenet_classes
    from ..predict.trained import classify_trained, load_trained, prepare_trained
    if args.checkpoint is not None:
        model, info = load_trained(args.checkpoint, device=args.device)
        if args.model and args.model != info["name"]:
            raise ValueError(f"{args.checkpoint} holds a {info['name']}, not a {args.model}")
        classes = list(info["classes"])
        top = classify_trained(model, info, [args.image], topk=min(TOP, len(classes)))[0]
        x = prepare_trained(args.image, info)
        picture = square_image(args.image, info["image_shape"][1], channels=info["image_shape"][0])
        picture = picture[0] if picture.shape[0] == 1 else picture.transpose(1, 2, 0)
    else:
        name = args.model or "resnet50"
        model = (load_pretrained(args.weights, args.model, device=args.device) if args.weights is not None
                 else random_model(name, device=args.device))
        if args.weights is None:
            print(f"WARNING: no --checkpoint or --weights, so {name}'s weights are random (seed 0): the map "
                  "and the classes below mean nothing. Published weights: see the README.", file=sys.stderr)
        elif getattr(model, "weights_note", None):
            print(f"note: {model.weights_note}", file=sys.stderr)
        K = model.fc.weight.shape[0]
        classes = imagenet_classes() if K == 1000 else [str(i) for i in range(K)]
        picture, x = _prepare(model, args.image, default_resize(args.weights) if args.weights else 256, 224)
        top = classify(model, [args.image], topk=min(TOP, K), classes=classes,
                       resize=default_resize(args.weights) if args.weights else 256, crop=224)[0]
    params = model.parameters()
    dtype = params[0].data.dtype if params else np.float32
    return model, to_device(x.astype(dtype), device_of(params[0].data)), picture, top, classes


def _prepare(model, image, resize, crop):
    """(picture (crop, crop, 3) uint8, batch (1, ...) float32): the image as ``classify`` prepares it
    for ``model``; the batch is made from the picture, so the map lies over the pixels that made it."""
    import numpy as np

    from ..predict.preprocess import (center_crop, check_resized, check_sizes, image_name, pil_image,
                                      preprocess_imagenet, resize_shorter_side, rgb_image)
    from ..predict.preprocess_keras import preprocess_keras
    mode = getattr(model, "preprocessing", None)
    name = image_name(image)
    if mode in ("caffe", "tf"):                      # Keras: the whole image to crop x crop, nearest
        seen = rgb_image(image).resize((crop, crop), pil_image().NEAREST)
        return np.asarray(seen, dtype=np.uint8), preprocess_keras(seen, mode, size=crop, data_format=model.data_format)
    check_sizes(resize, crop)
    image = rgb_image(image)
    check_resized(name, *image.size, resize)
    seen = center_crop(resize_shorter_side(image, resize), crop)
    return np.asarray(seen, dtype=np.uint8), preprocess_imagenet(seen, resize=crop, crop=crop)


def _target(target, K, top):
    """--target checked against the model's classes (a usage error saying the range); None: the top class."""
    if target is None:
        return top[0][0]
    if not 0 <= target < K:
        raise UsageError(f"--target must be a class index in 0..{K - 1} (the model has {K} classes), got {target}")
    return target


def _draw(picture, shown, out, how, target, classes, top):
    """The image as the model saw it beside the overlay, titled with the class explained and the top
    classes, written atomically to ``out``."""
    from ..viz import finish_figure, pyplot
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(8, 4.6))
    for ax, what in zip(axes, (picture, shown)):
        ax.imshow(what, cmap="gray" if what.ndim == 2 else None, vmin=0, vmax=255 if what.dtype.kind == "u" else 1,
                  interpolation="nearest" if what.shape[0] < 64 else "antialiased")
        ax.axis("off")
    ranked = "\n".join(f"{rank}. {name[:40]}  {p:.1%}" for rank, (_, name, p) in enumerate(top, 1))
    fig.suptitle(f"{how} for: {classes[target][:40]} ({target})\n{ranked}", fontsize=10, x=0.02, ha="left")
    os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
    finish_figure(fig, out)
