"""The experiments' shared command line: typed configs, one-line errors, several processes.

A config is a dataclass that extends :class:`RunOptions` (the flags every experiment shares)
and declares each field with :func:`option`: a default and one sentence of help; a
``tuple[X, ...]`` field takes one or more values (``--code-sizes 16 32``). Then::

    parser = _cli.parser(Config, __doc__)
    cfg = _cli.parse(parser, Config, argv)  # argparse errors: usage line, exit status 2
    return _cli.run(parser, cfg, train)     # train(cfg, mesh) -> summary dict

gives ``--help`` with a sentence and the real default of every option, one spelling per
flag (``--batch-size``), and these errors:

* a value argparse can check (an unknown ``--model``, ``--resume`` without ``--workdir``):
  the usage line and the message, exit status 2;
* a data or run error (``ValueError``, ``OSError``, ``EOFError``, ``FloatingPointError``
  from the loaders or ``fit``, ``ImportError`` of an optional dependency): one line on
  stderr, exit status 1; ``--debug`` shows the Python traceback instead.

:func:`run` first joins a multi-process run when one is asked for (``--coordinator-address``,
``--num-processes``, ``--process-id``, ``$JAX_COORDINATOR_ADDRESS``, or ``--distributed``
for what JAX detects on SLURM, Open MPI or TPU pods) and makes the data-parallel mesh
(:mod:`jaxcnn.distributed`) that ``train`` hands to ``fit(mesh=...)``.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import types
import typing
import zipfile
from typing import Literal, Optional

import jax

from jaxcnn import distributed, enable_compilation_cache

#: what :func:`run` reports as one line: the errors of reading data and of running ``fit``
#: (ImportError: an optional dependency such as tensorboardX is missing)
ERRORS = (ValueError, OSError, EOFError, FloatingPointError, zipfile.BadZipFile, ImportError)


def option(default, help: str, *, shown: str | None = None, metavar: str | None = None):
    """A config field: its ``default``, one sentence of ``help``, ``shown``, the default as
    ``--help`` states it when the value itself (``None``) would not say it, and the
    ``metavar`` naming the value in ``--help``."""
    return dataclasses.field(default=default, metadata={"help": help, "shown": shown,
                                                        "metavar": metavar})


def per_dataset(presets: dict, name: str) -> str:
    """``"digits 30, mnist 10, ..."``: a field's default in each dataset's preset (the value
    alone when every preset has the same)."""
    values = {dataset: preset[name] for dataset, preset in presets.items()}
    if len(set(values.values())) == 1:
        return str(next(iter(values.values())))
    return ", ".join(f"{dataset} {value}" for dataset, value in values.items())


def unset_from(cfg, preset: dict) -> dict:
    """The preset's value of every field ``cfg`` leaves unset (``None``), to pass to
    ``dataclasses.replace``."""
    return {k: v for k, v in preset.items() if getattr(cfg, k) is None}


def run_folder(shown: str):
    """The ``workdir`` option, its default folder described by ``shown``."""
    return option(None, "Run folder (config, metrics, checkpoints, result, plots).",
                  shown=shown, metavar="PATH")


@dataclasses.dataclass
class RunOptions:
    """The options every experiment takes, in the same spelling."""

    seed: int = option(0, "Seed of the initialisation, the data order, augmentation and "
                          "dropout.")
    ensemble: int = option(1, "Train this many members in one vmapped step and report their "
                              "mean prediction.")
    workdir: Optional[str] = run_folder("a folder under runs/")
    resume: bool = option(False, "Continue the run in --workdir from its last checkpoint.")
    plots: bool = option(True, "Write the plots into the run folder.")
    progress: Optional[bool] = option(None, "Draw a progress bar (otherwise one line per "
                                            "epoch).", shown="on when stderr is a terminal")
    tensorboard: bool = option(False, "Also write the metrics for TensorBoard into "
                                      "<workdir>/tensorboard (needs tensorboardX: pip install "
                                      "'jaxcnn[tensorboard]').")
    compile_cache: bool = option(True, "Keep compiled programs on disk for later runs "
                                       "(jaxcnn.enable_compilation_cache).")
    debug: bool = option(False, "Show the Python traceback of an error instead of one line.")
    # Several processes (jaxcnn.distributed): the same command on every process.
    coordinator_address: Optional[str] = option(
        None, "Address of process 0, which serves the run; joins a run of --num-processes "
              "processes.", shown="$JAX_COORDINATOR_ADDRESS, else one process",
        metavar="HOST:PORT")
    num_processes: Optional[int] = option(
        None, "Number of processes of a multi-process run.",
        shown="$JAX_NUM_PROCESSES, else detected on SLURM / Open MPI / TPU pods")
    process_id: Optional[int] = option(
        None, "This process's index in [0, --num-processes).",
        shown="$JAX_PROCESS_ID, else detected like --num-processes")
    distributed: bool = option(False, "Join a multi-process run whose settings JAX detects "
                                      "(SLURM, Open MPI, TPU pods); implied by the three "
                                      "options above.")
    data_parallel: Optional[bool] = option(
        None, "Split every batch over all devices of all processes (the batch size must be "
              "a multiple of the device count).", shown="on when there is more than one device")


_METAVARS = {int: "N", float: "X", str: "TEXT"}
_GROUPS = {"seed": "run options", "coordinator_address": "several processes and devices"}


# ------------------------------------------------------------------------------- parser


class _Switch(argparse.BooleanOptionalAction):
    """``--name/--no-name`` whose help is the text given (Python 3.11 appends the raw
    default to it)."""

    def __init__(self, *args, help=None, **kwargs):
        super().__init__(*args, help=help, **kwargs)
        self.help = help


def _unwrap_optional(tp):
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return tp


def _convert(tp, optional):
    def parse(text):
        return None if optional and text.lower() == "none" else tp(text)

    parse.__name__ = tp.__name__  # argparse names the type in "invalid int value"
    return parse


def _shown(field) -> str:
    if field.metadata.get("shown"):
        return field.metadata["shown"]
    if isinstance(field.default, bool):
        return "on" if field.default else "off"
    if isinstance(field.default, tuple):
        return " ".join(map(str, field.default))
    return str(field.default)


def parser(cls, doc: str, *, without=()) -> argparse.ArgumentParser:
    """The command line of the config dataclass ``cls``; ``doc`` (the experiment's module
    docstring) gives the description, its first paragraph. Fields named in ``without``
    (e.g. ``("ensemble",)`` where the experiment has no use for a shared option) are not
    offered and keep their default."""
    hints = typing.get_type_hints(cls)
    first = doc.strip().split("\n\n")[0]
    out = argparse.ArgumentParser(description=first, epilog="The file's header gives the "
                                  "commands and their measured results.",
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    shared = {f.name for f in dataclasses.fields(RunOptions)}
    fields = [f for f in dataclasses.fields(cls) if f.name not in without]
    group = out.add_argument_group("experiment options")
    for field in [f for f in fields if f.name not in shared] + [f for f in fields
                                                                 if f.name in shared]:
        if field.name in _GROUPS:
            group = out.add_argument_group(_GROUPS[field.name])
        flag = "--" + field.name.replace("_", "-")
        help, metavar = field.metadata["help"], field.metadata["metavar"]
        tp = hints[field.name]
        inner = _unwrap_optional(tp)
        kwargs = dict(dest=field.name, default=field.default)
        if typing.get_origin(inner) is tuple:  # tuple[X, ...]: one or more values
            kwargs.update(nargs="+")
            inner = typing.get_args(inner)[0]
            tp = inner
        if inner is bool:
            kwargs.update(action=_Switch)
        elif typing.get_origin(inner) is Literal:
            choices = list(typing.get_args(inner))
            kwargs.update(type=type(choices[0]), choices=choices)
            if len(choices) > 6:  # a long list goes into the help, not the usage line
                metavar = metavar or "NAME"
                help += " One of: " + ", ".join(map(str, choices)) + "."
            kwargs.update(metavar=metavar)
        else:
            kwargs.update(type=_convert(inner, inner is not tp),
                          metavar=metavar or _METAVARS[inner])
        text = f"{help} Default: {_shown(field)}."
        group.add_argument(flag, help=text.replace("%", "%%"), **kwargs)  # argparse formats it
    return out


def parse(parser: argparse.ArgumentParser, cls, argv=None):
    """The config from ``argv`` (default ``sys.argv[1:]``); checks the options shared by
    every experiment (argparse's errors: usage line, exit status 2)."""
    values = vars(parser.parse_args(argv))
    cfg = cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})
    if cfg.resume and cfg.workdir is None:
        parser.error("--resume needs --workdir, the run folder to continue")
    if cfg.ensemble < 1:
        parser.error(f"--ensemble must be at least 1, got {cfg.ensemble}")
    if (cfg.num_processes is not None or cfg.process_id is not None) and not (
            cfg.coordinator_address or os.environ.get("JAX_COORDINATOR_ADDRESS")
            or cfg.distributed):
        parser.error("--num-processes and --process-id need --coordinator-address (or "
                     "$JAX_COORDINATOR_ADDRESS, or --distributed where JAX detects it)")
    return cfg


# ------------------------------------------------------------------------------- run


def _env_int(name):
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else None


def start(cfg):
    """Joins a multi-process run when ``cfg`` asks for one, enables the compilation cache
    and returns the data-parallel mesh (``None``: one device, no mesh)."""
    address = cfg.coordinator_address or os.environ.get("JAX_COORDINATOR_ADDRESS")
    count = cfg.num_processes if cfg.num_processes is not None else _env_int("JAX_NUM_PROCESSES")
    index = cfg.process_id if cfg.process_id is not None else _env_int("JAX_PROCESS_ID")
    if cfg.distributed or address or count is not None or index is not None:
        host, _, port = (address or "").rpartition(":")
        local = host in ("127.0.0.1", "localhost")  # a one-machine run listens locally only
        distributed.initialize(address, count, index,
                               bind_address=f"127.0.0.1:{port}" if local else None)
    if cfg.compile_cache:
        enable_compilation_cache()
    wanted = cfg.data_parallel if cfg.data_parallel is not None else jax.device_count() > 1
    return distributed.data_mesh() if wanted else None


def loggers(cfg) -> tuple:
    """``fit``'s ``loggers`` for ``cfg``: TensorBoard when ``--tensorboard`` asks for it."""
    return ("tensorboard",) if cfg.tensorboard else ()


def is_main_process() -> bool:
    """Whether this process writes the run's report (process 0 of a multi-process run)."""
    return jax.process_index() == 0


def one_line(error: BaseException) -> str:
    """``error``'s message on one line (its lines joined with ``"; "``)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return "; ".join(lines) or type(error).__name__


@contextlib.contextmanager
def reported(parser: argparse.ArgumentParser, debug: bool):
    """A data or run error (:data:`ERRORS`) inside the block becomes one line on stderr and
    exit status 1, unless ``debug``."""
    try:
        yield
    except ERRORS as error:
        if debug:
            raise
        parser.exit(1, f"{parser.prog}: error: {one_line(error)} (--debug shows the "
                       "traceback)\n")


def run(parser: argparse.ArgumentParser, cfg, train):
    """``train(cfg, mesh)`` after :func:`start`, its errors :func:`reported`."""
    with reported(parser, cfg.debug):
        return train(cfg, start(cfg))
