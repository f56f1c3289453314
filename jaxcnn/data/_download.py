"""Downloads with checksum verification into a cache folder, shared by every data module.

A dataset is a set of files, each with a checksum written ``"<algorithm>:<hex digest>"``
(``"md5:..."`` or ``"sha256:..."``: the one its publisher gives) and a list of mirror
URLs. :func:`fetch` returns the folder holding them: files already there are used as
they are (a user's own copy is never second-guessed), missing ones are downloaded,
verified and moved in atomically. With no network the error names the folder and the
files to put there, so everything works offline once the files are in place.

The cache folder is ``$JAXCNN_DATA`` if set, else ``$XDG_CACHE_HOME/jaxcnn`` or
``~/.cache/jaxcnn``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable, Sequence

from jaxcnn._checks import fail

ALGORITHMS = ("md5", "sha256")


def cache_dir(name: str | None = None) -> Path:
    """The folder datasets are downloaded to (not created here).

    Example:
      >>> from jaxcnn.data import cache_dir
      >>> cache_dir("mnist").name
      'mnist'
    """
    root = os.environ.get("JAXCNN_DATA")
    if not root:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        root = os.path.join(base, "jaxcnn")
    return Path(root) / name if name else Path(root)


def _parse_checksum(checksum: str) -> tuple[str, str]:
    algo, _, digest = str(checksum).partition(":")
    if algo not in ALGORITHMS or not digest:
        fail("checksum", "checksum", "'md5:<hex>' or 'sha256:<hex>'", checksum)
    return algo, digest.lower()


def file_checksum(path, algorithm: str = "sha256") -> str:
    """The hex digest of a file, read in 1 MiB chunks.

    Example:
      >>> import tempfile, pathlib
      >>> from jaxcnn.data import file_checksum
      >>> with tempfile.TemporaryDirectory() as d:
      ...     p = pathlib.Path(d, "f")
      ...     _ = p.write_bytes(b"abc")
      ...     file_checksum(p, "md5")
      '900150983cd24fb0d6963f7d28e17f72'
    """
    if algorithm not in ALGORITHMS:
        fail("file_checksum", "algorithm", " or ".join(map(repr, ALGORITHMS)), algorithm)
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def verify_checksum(path, checksum: str) -> None:
    """Raises ``ValueError`` unless the file's digest is ``checksum`` (``"md5:<hex>"`` or
    ``"sha256:<hex>"``)."""
    algo, digest = _parse_checksum(checksum)
    got = file_checksum(path, algo)
    if got != digest:
        fail("verify_checksum", f"the {algo} of {path}", digest, got,
             "The file is corrupt or incomplete: delete it and download it again")


def download(urls: str | Sequence[str], dest, checksum: str, *,
             opener: Callable | None = None, timeout: float = 60.0) -> Path:
    """Downloads the first mirror that answers with the right checksum to ``dest``.

    The file is written to a temporary name beside ``dest`` and renamed only once
    verified, so an interrupted download never leaves a broken file behind. ``file://``
    URLs work (tests use them); ``opener(url, timeout=...)`` replaces
    ``urllib.request.urlopen``.

    Example:
      >>> import hashlib, pathlib, tempfile
      >>> from jaxcnn.data import download
      >>> with tempfile.TemporaryDirectory() as d:
      ...     src = pathlib.Path(d, "src.txt")
      ...     _ = src.write_bytes(b"data")
      ...     sha = "sha256:" + hashlib.sha256(b"data").hexdigest()
      ...     out = download(["file:///missing", src.as_uri()], pathlib.Path(d, "f"), sha)
      ...     out.read_bytes()
      b'data'

    Raises:
      OSError: no mirror could be reached or none gave the right checksum; the message
        lists each mirror and what went wrong.
    """
    urls = [urls] if isinstance(urls, str) else list(urls)
    opener = opener or urllib.request.urlopen
    _parse_checksum(checksum)
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    errors = []
    for url in urls:
        fd, tmp = tempfile.mkstemp(prefix=dest.name + ".", suffix=".part", dir=dest.parent)
        try:
            with os.fdopen(fd, "wb") as out, opener(url, timeout=timeout) as response:
                shutil.copyfileobj(response, out, 1 << 20)
            verify_checksum(tmp, checksum)
            os.replace(tmp, dest)
            return dest
        except (urllib.error.URLError, OSError, ValueError) as e:
            errors.append(f"{url}: {e}")
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
    raise OSError(f"download of {dest.name} failed from every mirror:\n  " + "\n  ".join(errors))


def fetch(dataset: str, files: dict[str, str], mirrors: Sequence[str], folder=None, *,
          download_missing: bool = True, opener: Callable | None = None) -> Path:
    """The folder holding every file of ``files`` (name -> checksum), downloading missing ones.

    Args:
      dataset: name used in messages and as the cache sub-folder when ``folder`` is None.
      files: file name -> ``"md5:..."``/``"sha256:..."`` checksum of the published file.
      mirrors: base URLs, tried in order; a file's URL is ``mirror + name``.
      folder: where the files are or go; default ``cache_dir(dataset)``.
      download_missing: False never touches the network.

    Raises:
      FileNotFoundError: files are missing and could not be downloaded; the message says
        which files to put where.

    Example:
      >>> import tempfile
      >>> from jaxcnn.data import fetch
      >>> with tempfile.TemporaryDirectory() as d:
      ...     fetch("demo", {"a.bin": "md5:" + "0" * 32}, ["https://example.org/"], d,
      ...           download_missing=False)  # doctest: +ELLIPSIS
      Traceback (most recent call last):
      FileNotFoundError: demo: a.bin not found in ... and downloading is switched off. Put ...
    """
    folder = Path(folder) if folder is not None else cache_dir(dataset)
    missing = [name for name in files if not (folder / name).is_file()]
    if not missing:
        return folder
    why = "downloading is switched off"
    if download_missing:
        try:
            for name in missing:
                download([m + name for m in mirrors], folder / name, files[name], opener=opener)
            return folder
        except OSError as e:
            why = f"the download failed ({e})"
    raise FileNotFoundError(
        f"{dataset}: {', '.join(missing)} not found in {folder} and {why}. Put the files there "
        f"(from {mirrors[0] if mirrors else 'the publisher'}), or pass the folder holding them")
