"""Typed experiment configs: a dataclass becomes a command line.

Every field needs a type annotation and a default; ``bool`` fields become
``--name/--no-name`` flags, ``Literal`` fields take one of their values, ``tuple[int, ...]``
fields take several values, ``Optional[X]`` accepts ``none``.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing

from jaxcnn._checks import fail

_SCALARS = (int, float, str)


def _unwrap_optional(tp):
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(tp)) == 2:
            return args[0], True
    return tp, False


def _parser_for(tp, where, name):
    """``(type callable, nargs, choices)`` for one annotation."""
    tp, optional = _unwrap_optional(tp)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Literal:
        kinds = {type(a) for a in args}
        if len(kinds) != 1 or not kinds <= set(_SCALARS):
            fail(where, f"the type of field {name!r}", "a Literal of ints, floats or strs", tp,
                 exc=TypeError)
        conv = kinds.pop()
        return _optional(conv, optional), None, list(args) + ([None] if optional else [])
    if origin in (tuple, list) and (origin is list or (len(args) == 2 and args[1] is Ellipsis)):
        inner = args[0] if args else None
        if inner not in _SCALARS:
            fail(where, f"the type of field {name!r}", "tuple[int, ...], tuple[float, ...] or "
                 "tuple[str, ...]", tp, exc=TypeError)
        return _optional(inner, optional), "*", None
    if tp in _SCALARS:
        return _optional(tp, optional), None, None
    fail(where, f"the type of field {name!r}", "int, float, str, bool, Optional, Literal or "
         "tuple[X, ...]", tp, exc=TypeError)


def _optional(conv, optional):
    if not optional:
        return conv

    def parse(text):
        return None if text.lower() == "none" else conv(text)

    parse.__name__ = conv.__name__
    return parse


def build_parser(cls, description=None) -> argparse.ArgumentParser:
    """The ``argparse`` parser of a config dataclass (see :func:`parse_config`)."""
    where = "parse_config"
    if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
        fail(where, "cls", "a dataclass type", cls, exc=TypeError)
    hints = typing.get_type_hints(cls)
    parser = argparse.ArgumentParser(description=description or (cls.__doc__ or "").strip(),
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    for field in dataclasses.fields(cls):
        name = field.name
        if field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            fail(where, f"field {name!r}", "given a default value", "no default",
                 "Every config field needs a default so the experiment runs without flags")
        default = (field.default if field.default is not dataclasses.MISSING
                   else field.default_factory())
        flags = [f"--{name}"] + ([f"--{name.replace('_', '-')}"] if "_" in name else [])
        tp = hints[name]
        if tp is bool:
            parser.add_argument(*flags, dest=name, action=argparse.BooleanOptionalAction,
                                default=default, help=f"(bool) {name}")
            continue
        conv, nargs, choices = _parser_for(tp, where, name)
        kwargs = dict(dest=name, type=conv, default=default, help=f"({_type_name(tp)}) {name}")
        if nargs:
            kwargs["nargs"] = nargs
        if choices:
            kwargs["choices"] = choices
        parser.add_argument(*flags, **kwargs)
    return parser


def _type_name(tp):
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def parse_config(cls, argv=None, *, description=None):
    """An instance of the dataclass ``cls`` from the command line (``argv``, default
    ``sys.argv[1:]``), every field overridable as ``--field value``.

    Every field must be typed (``int``, ``float``, ``str``, ``bool``, ``Optional[X]``,
    ``Literal[...]``, ``tuple[X, ...]``) and have a default. ``bool`` fields become
    ``--field/--no-field``; ``tuple`` fields take several values (``--widths 16 32``);
    underscores may be written as dashes (``--batch-size``).

    Example:
      >>> import dataclasses
      >>> from jaxcnn.train import parse_config
      >>> @dataclasses.dataclass
      ... class Config:
      ...     seed: int = 0
      ...     lr: float = 0.1
      ...     resume: bool = False
      ...     workdir: str = "runs/demo"
      >>> parse_config(Config, ["--lr", "0.05", "--resume", "--seed=3"])
      Config(seed=3, lr=0.05, resume=True, workdir='runs/demo')
    """
    parser = build_parser(cls, description)
    values = vars(parser.parse_args(argv))
    hints = typing.get_type_hints(cls)
    for name, value in values.items():
        origin = typing.get_origin(_unwrap_optional(hints[name])[0])
        if origin is tuple and isinstance(value, list):
            values[name] = tuple(value)
    return cls(**values)
