"""Input throughput on CIFAR-10 JPEGs: the streaming path against the in-memory path.

Run: ``nice -n 10 python benchmarks/input_pipeline.py --data ../shared/data/cifar10-jpeg.tar.gz
[--extract-to /tmp/cifar10-jpeg] [--batches 40] [--batch-size 128] [--out benchmarks/results]``

The archive is extracted once into ``--extract-to`` (outside the repository): streaming
reads files at random, which a ``.tar.gz`` does not allow. Each path delivers
``--batches`` batches of the training set to the device (after a warm-up of 3 batches),
as the training loop consumes them; images/s = batch size x batches / seconds.

* in memory (``fit``'s path): :func:`jaxcnn.data.load_image_folder` decodes the whole set
  once (train and test; its rate reported apart), the set is put on the device
  and each batch is a gather of a random row of indices (``data["x"][idx]``, jitted).
* streaming: :func:`jaxcnn.data.stream_image_folder` (read and decode each JPEG when its
  batch is due) with 1 and 8 reading threads, and with worker processes (their start
  reported apart); and :func:`jaxcnn.data.stream_npz` on a memory-mapped ``.npz`` of the
  decoded set (what to convert a folder to when decoding is the bottleneck).

Results go to ``<out>/input_pipeline.md`` with the date, CPU, versions and command.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import sys
import tarfile
import time
from pathlib import Path

import _meta


def extract(archive: Path, dest: Path) -> Path:
    """The archive's ``train`` folder, extracted into ``dest`` once."""
    marker = dest / ".complete"
    if not marker.exists():
        dest.mkdir(parents=True, exist_ok=True)
        with tarfile.open(archive) as tar:
            tar.extractall(dest, filter="data")
        marker.touch()
    found = [p for p in dest.rglob("train") if p.is_dir()]
    return found[0]


def rate(batches, n, batch_size, consume):
    """Images per second over ``n`` batches after 3 warm-up batches."""
    import jax

    for _ in range(3):
        jax.block_until_ready(consume(next(batches)))
    t = time.perf_counter()
    for _ in range(n):
        out = consume(next(batches))
    jax.block_until_ready(out)
    return n * batch_size / (time.perf_counter() - t)


def in_memory(train: Path, n, batch_size):
    import jax
    import numpy as np

    from jaxcnn.data import load_image_folder

    t = time.perf_counter()
    ds = load_image_folder(train.parent)  # train/ and test/: the 50,000 training images
    decode = (len(ds.x_train) + len(ds.x_test)) / (time.perf_counter() - t)
    data = jax.device_put({"x": ds.x_train, "y": ds.y_train})
    gather = jax.jit(lambda d, idx: {"x": d["x"][idx], "y": d["y"][idx]})
    steps = len(ds.x_train) // batch_size  # one epoch's order, as fit computes it
    order = np.random.default_rng(0).permutation(len(ds.x_train))[:steps * batch_size]
    rows = iter(order.reshape(steps, batch_size).astype(np.int32))
    return decode, rate(rows, n, batch_size, lambda idx: gather(data, idx)["x"]), ds


def streaming(make, n, batch_size):
    t = time.perf_counter()
    it = iter(make())
    first = next(it)
    start = time.perf_counter() - t
    del first
    return start, rate(it, n, batch_size, lambda b: b["x"])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, help="cifar10-jpeg.tar.gz (or its extracted folder)")
    p.add_argument("--extract-to", default="/tmp/cifar10-jpeg",
                   help="where the archive is extracted once (outside the repository)")
    p.add_argument("--batches", type=int, default=40, help="batches timed per path")
    p.add_argument("--batch-size", type=int, default=128, help="images per batch")
    p.add_argument("--workers", type=int, default=2, help="worker processes for the worker row")
    p.add_argument("--out", default="benchmarks/results", help="folder of input_pipeline.md")
    args = p.parse_args(argv)

    import grain
    import jax
    import numpy as np
    import PIL

    from jaxcnn.data import stream_image_folder, stream_npz

    data = Path(args.data)
    train = extract(data, Path(args.extract_to)) if data.is_file() else data / "train"
    n, bs = args.batches, args.batch_size
    rows = []
    decode, mem, ds = in_memory(train, n, bs)
    rows.append(("in memory: load_image_folder once, gather on the device", mem,
                 f"decoding the {len(ds.x_train) + len(ds.x_test):,} train and test images "
                 f"first: {decode:,.0f} images/s"))
    for threads in (1, 8):
        start, r = streaming(lambda: stream_image_folder(train, batch_size=bs, seed=0,
                                                         threads=threads), n, bs)
        rows.append((f"stream_image_folder, threads={threads}", r, f"first batch {start:.2f} s"))
    if args.workers:
        start, r = streaming(lambda: stream_image_folder(train, batch_size=bs, seed=0,
                                                         workers=args.workers), n, bs)
        rows.append((f"stream_image_folder, workers={args.workers}", r,
                     f"first batch {start:.1f} s (the worker processes start)"))
    npz = Path(args.extract_to) / "train.npz"
    np.savez(npz, train_images=ds.x_train, train_labels=ds.y_train)
    start, r = streaming(lambda: stream_npz(npz, batch_size=bs, seed=0), n, bs)
    rows.append(("stream_npz, memory-mapped .npz of the decoded set", r,
                 f"first batch {start:.2f} s"))

    command = "python " + " ".join(shlex.quote(a) for a in sys.argv)
    lines = [
        "# Input pipeline: CIFAR-10 JPEGs, streaming against in memory", "",
        f"{_meta.now()} on {_meta.cpu_name()} "
        f"({os.cpu_count()} cores, {jax.default_backend()}), load average "
        f"{os.getloadavg()[0]:.1f}; jax {jax.__version__}, grain {grain.__version__}, "
        f"numpy {np.__version__}, pillow {PIL.__version__}, python {platform.python_version()}",
        "", f"Command: `{command}`", "",
        f"Batches of {bs} 32x32x3 uint8 images delivered to the device, {n} batches timed "
        "after 3 of warm-up (`benchmarks/input_pipeline.py` says what each row measures).", "",
        "| path | images/s | note |", "|---|---:|---|",
        *[f"| {name} | {r:,.0f} | {note} |" for name, r, note in rows], ""]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "input_pipeline.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
