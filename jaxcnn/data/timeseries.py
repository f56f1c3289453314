"""Time-series classification data: MNIST-1D and the UCR/UEA archive files.

Every loader returns a :class:`TimeSeriesData` of numpy arrays, channels-last as the
layers want them: ``x`` is ``(N, L, C)`` float32, ``y`` int32 class indices ``(N,)``.

Archive formats read directly (no sktime/aeon needed):

* ``.ts`` (sktime/aeon, the UEA archive): ``#`` comments, ``@`` header lines, then one
  case per line after ``@data``: the dimensions separated by ``:``, values by ``,``, the
  class label (a string) last. Univariate and multivariate, equal and unequal length;
  ``?`` or ``NaN`` marks a missing value.
* ``.tsv`` (the UCR 2018 archive): one case per line, the label in column 0, values after
  it separated by tabs; variable-length series are padded with trailing ``NaN``.

Unequal lengths are **resampled** by default (linear interpolation onto the longest
training length), as the UCR 2018 archive itself did for its variable-length sets: the
classifiers here end in global average pooling and batch norm, which would otherwise have
to be told about padding through every layer. ``variable_length="pad"`` zero-pads at the
end instead and keeps the true ``lengths`` for models that mask. Missing values inside a
series are filled by linear interpolation (nearest value at the ends).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import NamedTuple

import numpy as np

from jaxcnn._checks import check_choice, fail


class TimeSeriesData(NamedTuple):
    """A train/test split of a classification set (numpy arrays).

    ``x_*``: ``(N, L, C)`` float32; ``y_*``: ``(N,)`` int32 indices into ``class_names``;
    ``lengths_*``: ``(N,)`` int32 true length of each series before resampling/padding.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple
    lengths_train: np.ndarray
    lengths_test: np.ndarray
    name: str = ""


# --------------------------------------------------------------------------- readers


def _float(token: str, where: str, lineno: int) -> float:
    token = token.strip()
    if token in ("?", "") or token.lower() == "nan":
        return math.nan
    try:
        value = float(token)
    except ValueError:
        fail(where, f"line {lineno}", "made of numbers (or '?'/NaN for missing values)",
             token, "Check the file for a stray character or a wrong delimiter")
    if math.isinf(value):
        fail(where, f"line {lineno}", "made of finite numbers (or '?'/NaN for missing values)",
             token)
    return value


def read_ts(path):
    """Reads a sktime/aeon ``.ts`` file of a classification problem.

    Args:
      path: the ``.ts`` file.

    Returns:
      ``(series, labels, class_names)``: a list of ``(L_i, C)`` float32 arrays (``NaN``
      where missing), the string label of each series, and the class names in the order
      the ``@classLabel`` header declares them.

    Example:
      >>> import tempfile, pathlib
      >>> f = pathlib.Path(tempfile.mkdtemp()) / "toy_TRAIN.ts"
      >>> _ = f.write_text("@problemName toy\\n@classLabel true up down\\n@data\\n"
      ...                  "1,2,3:4,5,6:up\\n3,2,?:6,5,4:down\\n")
      >>> series, labels, names = read_ts(f)
      >>> series[1].shape, labels, names
      ((3, 2), ['up', 'down'], ('up', 'down'))
    """
    path = Path(path)
    where = f"read_ts({path.name})"
    header, series, labels, in_data = {}, [], [], False
    with open(path, encoding="utf-8", errors="replace") as f:
        for lineno, raw in enumerate(f, start=1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            if not in_data:
                if not line.startswith("@"):
                    fail(where, f"line {lineno}",
                         "a '@' header line or a '#' comment before @data", line[:60])
                key, _, value = line[1:].partition(" ")
                key = key.lower()
                if key == "data":
                    in_data = True
                    dims = _dimensions(header, where)
                    class_names = _class_header(header, where)
                else:
                    header[key] = value.strip()
                continue
            if header.get("timestamps", "false").lower() == "true":
                fail(where, "@timeStamps", "false (timestamped series are not supported)", "true",
                     "Convert the file to plain values first")
            fields = line.split(":")
            if len(fields) < 2:
                fail(where, f"line {lineno}",
                     "one or more ':'-separated dimensions and a class label", line[:60])
            label = fields[-1].strip()
            if not label:
                fail(where, f"the label on line {lineno}", "a class label after the last ':'",
                     "nothing", "Is the line cut short?")
            if class_names and label not in class_names:
                fail(where, f"the label on line {lineno}", "one of " + ", ".join(class_names),
                     label)
            dims = dims or len(fields) - 1
            if len(fields) - 1 != dims:
                fail(where, f"line {lineno}", f"{dims} dimension(s) followed by a class label",
                     f"{len(fields) - 1} dimension(s)")
            chans = [[_float(t, where, lineno) for t in d.split(",")] for d in fields[:-1]]
            if len({len(c) for c in chans}) != 1:
                fail(where, f"the dimensions on line {lineno}", "all of the same length",
                     [len(c) for c in chans])
            series.append(np.asarray(chans, np.float32).T)
            labels.append(label)
    if not in_data:
        fail(where, "the file", "a .ts file with an @data line", "no @data line")
    if not series:
        fail(where, "the file", "at least one case after @data", "none")
    return series, labels, class_names or tuple(sorted(set(labels), key=_label_order))


def _dimensions(header, where):
    value = header.get("dimensions")
    if value is None:
        return None
    try:
        dims = int(value)
    except ValueError:
        dims = 0
    if dims < 1:
        fail(where, "@dimensions", "a positive int", value)
    return dims


def _class_header(header, where):
    value = header.get("classlabel")
    if value is None:
        return ()
    parts = value.split()
    if not parts or parts[0].lower() != "true":
        fail(where, "@classLabel", "true followed by the class names (a classification set)",
             value, "Regression .ts files (@targetLabel) are not supported")
    return tuple(parts[1:])


def _label_order(label: str):
    try:
        return (0, float(label), label)
    except ValueError:
        return (1, 0.0, label)


def read_tsv(path):
    """Reads a UCR 2018 ``.tsv`` file: the label in column 0, then the values.

    Trailing ``NaN`` (variable-length padding) is cut off; other ``NaN`` stay missing.

    Args:
      path: the ``.tsv`` file (tab-separated; commas are accepted too).

    Returns:
      ``(series, labels, class_names)`` as :func:`read_ts`, each series ``(L_i, 1)``; the
      labels are strings (``"1"``, not ``"1.0"``) and the class names sorted numerically.

    Example:
      >>> import tempfile, pathlib
      >>> f = pathlib.Path(tempfile.mkdtemp()) / "toy_TEST.tsv"
      >>> _ = f.write_text("1\\t0.5\\t1.5\\t2.5\\n-1\\t1.0\\t2.0\\tNaN\\n")
      >>> series, labels, names = read_tsv(f)
      >>> [s.shape for s in series], labels, names
      ([(3, 1), (2, 1)], ['1', '-1'], ('-1', '1'))
    """
    path = Path(path)
    where = f"read_tsv({path.name})"
    series, labels = [], []
    with open(path, encoding="utf-8", errors="replace") as f:
        for lineno, raw in enumerate(f, start=1):
            line = raw.strip()
            if not line:
                continue
            fields = line.split("\t") if "\t" in line else line.split(",")
            if len(fields) < 2:
                fail(where, f"line {lineno}", "a label and at least one value, tab-separated",
                     line[:60])
            label = _float(fields[0], where, lineno)
            if not math.isfinite(label):
                fail(where, f"the label on line {lineno}", "a number", fields[0])
            values = np.asarray([_float(t, where, lineno) for t in fields[1:]], np.float32)
            real = np.flatnonzero(~np.isnan(values))
            if real.size == 0:
                fail(where, f"line {lineno}", "a series with at least one value", "only NaN")
            series.append(values[: real[-1] + 1, None])
            labels.append(str(int(label)) if label == int(label) else str(label))
    if not series:
        fail(where, "the file", "at least one line", "an empty file")
    return series, labels, tuple(sorted(set(labels), key=_label_order))


# --------------------------------------------------------------------------- preprocessing


def fill_missing(s: np.ndarray) -> np.ndarray:
    """Fills ``NaN`` in a ``(L, C)`` series by linear interpolation along time, per channel.

    Example:
      >>> fill_missing(np.array([[np.nan], [1.0], [np.nan], [3.0]], np.float32))[:, 0]
      array([1., 1., 2., 3.], dtype=float32)
    """
    s = s.copy()
    t = np.arange(s.shape[0])
    for c in range(s.shape[1]):
        bad = np.isnan(s[:, c])
        if bad.all():
            s[:, c] = 0.0
        elif bad.any():
            s[bad, c] = np.interp(t[bad], t[~bad], s[~bad, c])
    return s


def znormalize(s: np.ndarray, eps: float = 1e-8) -> np.ndarray:
    r"""Per-series, per-channel z-normalisation along time.

    .. math::

       \hat x_{t,c} = \frac{x_{t,c} - \mu_c}{\sigma_c}, \quad \sigma_c \leftarrow 1
       \text{ if } \sigma_c < \varepsilon

    where :math:`\mu_c, \sigma_c` are the mean and (population) standard deviation of
    channel :math:`c` of series ``s`` ``(L, C)``; a constant channel is only centred.

    Example:
      >>> znormalize(np.array([[1.0], [3.0]], np.float32))[:, 0]
      array([-1.,  1.], dtype=float32)
    """
    mu = s.mean(axis=0, keepdims=True)
    sd = s.std(axis=0, keepdims=True)
    return ((s - mu) / np.where(sd < eps, 1.0, sd)).astype(np.float32)


def resample(s: np.ndarray, length: int) -> np.ndarray:
    """Linearly interpolates a ``(L, C)`` series onto ``length`` evenly spaced points
    (uniform scaling: first and last values are kept).

    Example:
      >>> resample(np.array([[0.0], [2.0]], np.float32), 3)[:, 0]
      array([0., 1., 2.], dtype=float32)
    """
    if s.shape[0] == length:
        return s.astype(np.float32)
    old = np.linspace(0.0, 1.0, s.shape[0]) if s.shape[0] > 1 else np.zeros(1)
    new = np.linspace(0.0, 1.0, length)
    return np.stack([np.interp(new, old, s[:, c]) for c in range(s.shape[1])], -1).astype(
        np.float32)


def to_array(series, length: int, variable_length: str = "resample") -> np.ndarray:
    """Stacks ``(L_i, C)`` series into ``(N, length, C)`` by resampling or zero-padding
    at the end (longer series are cut when padding)."""
    check_choice("to_array", "variable_length", variable_length, ("resample", "pad"))
    out = np.zeros((len(series), length, series[0].shape[1]), np.float32)
    for i, s in enumerate(series):
        if variable_length == "resample":
            out[i] = resample(s, length)
        else:
            n = min(length, s.shape[0])
            out[i, :n] = s[:n]
    return out


# --------------------------------------------------------------------------- loaders


def _find_split(data_dir: Path, name: str, split: str) -> Path:
    for folder in (data_dir / name, data_dir):
        for ext in (".ts", ".tsv"):
            p = folder / f"{name}_{split}{ext}"
            if p.exists():
                return p
    fail("load_ucr", f"the {split} file of {name!r}",
         f"{data_dir}/[{name}/]{name}_{split}.ts or .tsv", "no such file",
         "Pass --data-dir pointing at the folder that holds the archive's files",
         exc=FileNotFoundError)


def load_ucr(name: str, data_dir, *, znorm="auto", variable_length: str = "resample",
             length: int | None = None) -> TimeSeriesData:
    """Loads ``NAME_TRAIN`` and ``NAME_TEST`` (``.ts`` or ``.tsv``) of a UCR/UEA dataset.

    Looks in ``data_dir/NAME/`` and then ``data_dir/``. Class indices follow the order of
    the ``.ts`` header (or sorted labels for ``.tsv``).

    Args:
      name: the dataset name, e.g. ``"GunPoint"``.
      data_dir: the folder holding the files.
      znorm: z-normalise each series and channel (:func:`znormalize`), applied to the
        real values before resampling or padding: ``True``, ``False`` or ``"auto"``
        (default): univariate sets only, as each archive's papers do. The UCR univariate
        papers z-normalise every series; Ismail Fawaz et al. 2019 (``dl-4-tsc``) train on
        the multivariate archive raw, and there the per-channel level can be the signal:
        FCN on JapaneseVowels (12 cepstral channels), 200 passes, seed 0: 78.4 %
        z-normalised, 99.7 % raw.
      variable_length: ``"resample"`` (default) or ``"pad"`` for unequal lengths.
      length: the common length; default the longest training series when resampling,
        the longest series of either split when padding (so nothing is cut).

    Example:
      >>> import tempfile, pathlib
      >>> d = pathlib.Path(tempfile.mkdtemp())
      >>> _ = (d / "toy_TRAIN.tsv").write_text("1\\t0\\t1\\t2\\t3\\n2\\t3\\t2\\tNaN\\tNaN\\n")
      >>> _ = (d / "toy_TEST.tsv").write_text("2\\t1\\t2\\t4\\t8\\n")
      >>> data = load_ucr("toy", d)
      >>> data.x_train.shape, data.y_train.tolist(), data.class_names, data.lengths_train.tolist()
      ((2, 4, 1), [0, 1], ('1', '2'), [4, 2])
    """
    check_choice("load_ucr", "variable_length", variable_length, ("resample", "pad"))
    if not (isinstance(znorm, (bool, np.bool_)) or (isinstance(znorm, str) and znorm == "auto")):
        fail("load_ucr", "znorm", "True, False or 'auto'", znorm)  # not 1 / 0: bools only
    data_dir = Path(data_dir)
    splits = {}
    for split in ("TRAIN", "TEST"):
        path = _find_split(data_dir, name, split)
        splits[split] = (read_ts if path.suffix == ".ts" else read_tsv)(path)
    (s_tr, l_tr, names), (s_te, l_te, _) = splits["TRAIN"], splits["TEST"]
    if s_tr[0].shape[1] != s_te[0].shape[1]:
        fail("load_ucr", "the test set's channel count", f"{s_tr[0].shape[1]} as in TRAIN",
             s_te[0].shape[1])
    if znorm == "auto":
        znorm = s_tr[0].shape[1] == 1
    index = {c: i for i, c in enumerate(names)}
    unknown = sorted(set(l_te) - set(index), key=_label_order)
    if unknown:
        fail("load_ucr", "the test labels", "classes seen in TRAIN " + ", ".join(names), unknown)

    def prep(series):
        series = [fill_missing(s) for s in series]
        return [znormalize(s) for s in series] if znorm else series

    s_tr, s_te = prep(s_tr), prep(s_te)
    if length is None:
        longest = max(s.shape[0] for s in s_tr)
        length = longest if variable_length == "resample" else max(
            longest, max(s.shape[0] for s in s_te))
    return TimeSeriesData(
        to_array(s_tr, length, variable_length), np.asarray([index[c] for c in l_tr], np.int32),
        to_array(s_te, length, variable_length), np.asarray([index[c] for c in l_te], np.int32),
        tuple(names), np.asarray([s.shape[0] for s in s_tr], np.int32),
        np.asarray([s.shape[0] for s in s_te], np.int32), name)


def load_mnist1d(seed: int = 42, num_samples: int = 5000) -> TimeSeriesData:
    """MNIST-1D (Greydanus 2020), generated offline with the ``mnist1d`` package.

    The default arguments give the standard benchmark: 4000 train and 1000 test series of
    length 40, ten classes. Uses ``mnist1d.data.make_dataset`` (never ``get_dataset``,
    which downloads); numpy's global random state is restored afterwards.

    Args:
      seed: the generator seed (42 is the published dataset).
      num_samples: total number of series (80 % train); small values make quick tests.

    Example:
      >>> data = load_mnist1d(num_samples=100)
      >>> data.x_train.shape, data.x_test.shape
      ((80, 40, 1), (20, 40, 1))
    """
    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError:  # pragma: no cover
        fail("load_mnist1d", "the mnist1d package", "installed", "not found",
             "pip install mnist1d", exc=ImportError)
    args = get_dataset_args()
    args.seed, args.num_samples = int(seed), int(num_samples)
    rng_state = np.random.get_state()
    try:
        d = make_dataset(args)
    finally:
        np.random.set_state(rng_state)
    x_tr, x_te = (np.asarray(d[k], np.float32)[..., None] for k in ("x", "x_test"))
    return TimeSeriesData(x_tr, np.asarray(d["y"], np.int32), x_te,
                          np.asarray(d["y_test"], np.int32), tuple(str(i) for i in range(10)),
                          np.full(len(x_tr), x_tr.shape[1], np.int32),
                          np.full(len(x_te), x_te.shape[1], np.int32), "mnist1d")
