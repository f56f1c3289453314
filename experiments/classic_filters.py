"""The classic "effect of different filters" figure, computed with ``jaxcnn.ops.conv``.

Command (writes ``runs/classic_filters/filters.png``; about 3 s on a 2-core CPU):

    python experiments/classic_filters.py [--image PATH] [--workdir runs/classic_filters]

By default the image is scikit-learn's bundled photo ``china.jpg`` (offline), turned to
grayscale; ``--image`` takes any image file Pillow reads. Each hand-made kernel from
``jaxcnn.initializers.KERNELS`` (identity, edge, sharpen, box and Gaussian blur, Sobel x/y,
Laplacian, emboss) is applied with ``ops.conv(..., padding="SAME",
padding_mode="reflect")``, and the results are shown side by side with their kernels.
"""

from __future__ import annotations

import dataclasses
import pathlib
from typing import Optional

import jax.numpy as jnp
import numpy as np

import _cli
from _cli import option
from jaxcnn import ops
from jaxcnn.initializers import KERNELS, classic_kernel


@dataclasses.dataclass
class Config:
    """Apply the classic hand-made kernels to one image."""

    image: Optional[str] = option(None, "Image file (any format Pillow reads), turned to "
                                        "grayscale.", shown="scikit-learn's china.jpg",
                                  metavar="PATH")
    workdir: str = option("runs/classic_filters", "Folder that receives filters.png.",
                          metavar="PATH")
    debug: bool = option(False, "Show the Python traceback of an error instead of one line.")


def load_gray(path: str | None) -> np.ndarray:
    """A grayscale image in [0, 1] as ``(H, W)``."""
    if path is None:
        from sklearn.datasets import load_sample_image
        rgb = load_sample_image("china.jpg")
    else:
        from PIL import Image
        rgb = np.asarray(Image.open(path).convert("RGB"))
    return (rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)) / 255.0


def apply_kernels(gray: np.ndarray) -> dict[str, np.ndarray]:
    """Every classic kernel applied to the image (one batched conv per kernel)."""
    x = jnp.asarray(gray)[None, :, :, None]
    return {name: np.asarray(ops.conv(x, classic_kernel(name), padding="SAME",
                                      padding_mode="reflect"))[0, :, :, 0]
            for name in KERNELS}


def plot(results: dict[str, np.ndarray], path: pathlib.Path):
    from matplotlib.figure import Figure
    fig = Figure(figsize=(3 * len(results) / 2, 6.5), layout="constrained")
    axes = fig.subplots(2, (len(results) + 1) // 2)
    for ax in axes.flat:
        ax.axis("off")
    for ax, (name, img) in zip(axes.flat, results.items()):
        ax.imshow(img, cmap="gray", vmin=np.percentile(img, 1), vmax=np.percentile(img, 99))
        kernel = KERNELS[name]
        shown = (np.array2string(kernel.round(2)) if kernel.shape[0] == 3
                 else "5x5 Gaussian, sigma 1")
        ax.set_title(f"{name}\n{shown}", fontsize=6, family="monospace")
    fig.savefig(path, dpi=100)


def main(argv=None):
    parser = _cli.parser(Config, __doc__)
    cfg = Config(**vars(parser.parse_args(argv)))
    with _cli.reported(parser, cfg.debug):
        out = pathlib.Path(cfg.workdir)
        out.mkdir(parents=True, exist_ok=True)
        results = apply_kernels(load_gray(cfg.image))
        plot(results, out / "filters.png")
    print(f"wrote {out / 'filters.png'}")
    return results


if __name__ == "__main__":
    main()
