"""torchvision's ResNet-18 state dict loaded into ``jaxcnn.models.resnet18``: same logits.

Run: ``python benchmarks/from_torch.py [--size 224] [--batch 4] [--out benchmarks/results/from_torch.md]``

torchvision cannot be installed beside torch 2.13 here, so the torch side is
torchvision's ResNet-18 written out by hand with torchvision's module names
(``tests/_torch_models.py``; its ``state_dict`` has the keys and order of
``torchvision.models.resnet18()``'s). Batch-norm statistics and affine parameters are
randomised, so eval mode uses converted state as well as parameters. Prints and writes
the largest absolute difference of the logits, eval mode, float32, CPU.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import _torch_models as tm  # noqa: E402

from jaxcnn.convert import from_torch  # noqa: E402
from jaxcnn.models import resnet18  # noqa: E402
from jaxcnn.train import num_params  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=224, help="image height and width")
    parser.add_argument("--batch", type=int, default=4, help="images compared")
    parser.add_argument("--out", default=None, help="also write the result to this file")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    module = tm.randomize_batch_norm(tm.resnet18(1000))
    model = resnet18(1000, small_input=False)
    t0 = time.perf_counter()
    params, state = from_torch(model, module.state_dict(), (args.size, args.size, 3))
    convert_s = time.perf_counter() - t0
    x = torch.randn(args.batch, 3, args.size, args.size)
    with torch.no_grad():
        expected = module(x).numpy()
    logits, _ = jax.jit(lambda p, s, x: model.apply(p, s, x, train=False))(
        params, state, jnp.asarray(x.permute(0, 2, 3, 1).numpy()))
    diff = float(np.abs(np.asarray(logits) - expected).max())
    same_top1 = bool((np.asarray(logits).argmax(1) == expected.argmax(1)).all())
    text = (f"# torchvision ResNet-18 state dict -> jaxcnn.models.resnet18\n\n"
            f"{time.strftime('%Y-%m-%d %H:%M')} UTC, jax {jax.__version__}, torch "
            f"{torch.__version__}, {jax.devices()[0].device_kind}; command: "
            f"`python benchmarks/from_torch.py --size {args.size} --batch {args.batch}`\n\n"
            f"- {len(module.state_dict())} state-dict entries, {num_params(params):,} parameters; "
            f"from_torch took {convert_s:.2f} s\n"
            f"- logits of {args.batch} random {args.size}x{args.size} images: largest "
            f"|jaxcnn - torch| = {diff:.2e} (largest |logit| {np.abs(expected).max():.2f}); "
            f"same top-1 class: {same_top1}\n")
    print(text)
    if args.out:
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
