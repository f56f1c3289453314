"""parse_config: a typed dataclass becomes a command line; run-folder helpers."""

import dataclasses
import json
from typing import Literal, Optional

import numpy as np
import pytest

from jaxcnn.train import parse_config
from jaxcnn.train._run import git_commit, to_jsonable, truncate_jsonl, write_json


@dataclasses.dataclass
class Config:
    seed: int = 0
    epochs: int = 10
    batch_size: int = 128
    lr: float = 0.1
    workdir: str = "runs/x"
    resume: bool = False
    ensemble: int = 1
    augment: bool = True
    model: Literal["lenet5", "resnet20"] = "lenet5"
    widths: tuple[int, ...] = (16, 32)
    limit: Optional[int] = None


def test_defaults_and_every_kind_of_flag():
    assert parse_config(Config, []) == Config()
    cfg = parse_config(Config, ["--seed", "3", "--batch-size", "64", "--lr=0.01", "--resume",
                                "--no-augment", "--model", "resnet20", "--widths", "8", "16",
                                "24", "--limit", "100"])
    assert cfg == Config(seed=3, batch_size=64, lr=0.01, resume=True, augment=False,
                         model="resnet20", widths=(8, 16, 24), limit=100)
    assert parse_config(Config, ["--limit", "none"]).limit is None
    assert parse_config(Config, ["--batch_size", "7"]).batch_size == 7


def test_bad_values_are_rejected_by_argparse(capsys):
    with pytest.raises(SystemExit):
        parse_config(Config, ["--seed", "x"])
    assert "invalid int value: 'x'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parse_config(Config, ["--model", "vgg"])
    assert "invalid choice: 'vgg'" in capsys.readouterr().err


def test_config_errors():
    with pytest.raises(TypeError, match="parse_config: cls must be a dataclass type, got 3"):
        parse_config(3, [])

    @dataclasses.dataclass
    class NoDefault:
        seed: int

    with pytest.raises(ValueError, match="parse_config: field 'seed' must be given a default "
                                         "value, got 'no default'. Every config field needs"):
        parse_config(NoDefault, [])

    @dataclasses.dataclass
    class BadType:
        shape: dict = dataclasses.field(default_factory=dict)

    with pytest.raises(TypeError, match="parse_config: the type of field 'shape' must be int, "
                                        "float, str, bool, Optional, Literal or tuple"):
        parse_config(BadType, [])

    @dataclasses.dataclass
    class BadTuple:
        pair: tuple[int, int] = (1, 2)

    with pytest.raises(TypeError, match=r"the type of field 'pair' must be int, .* or "
                                        r"tuple\[X, ...\], got tuple\[int, int\]"):
        parse_config(BadTuple, [])

    @dataclasses.dataclass
    class BadItems:
        names: tuple[dict, ...] = ()

    with pytest.raises(TypeError, match=r"the type of field 'names' must be tuple\[int, ...\], "
                                        r"tuple\[float, ...\] or tuple\[str, ...\]"):
        parse_config(BadItems, [])

    @dataclasses.dataclass
    class BadLiteral:
        mode: Literal["a", 1] = "a"

    with pytest.raises(TypeError, match="the type of field 'mode' must be a Literal of ints, "
                                        "floats or strs"):
        parse_config(BadLiteral, [])


def test_json_helpers(tmp_path):
    row = {"a": np.float32(1.5), "b": np.arange(3), "c": float("nan"), "d": (1, 2),
           "e": Config(), "f": tmp_path}
    out = to_jsonable(row)
    assert out["a"] == 1.5 and out["b"] == [0, 1, 2] and out["c"] is None and out["d"] == [1, 2]
    assert out["e"]["widths"] == [16, 32] and out["f"] == str(tmp_path)
    write_json(tmp_path / "x.json", row)
    assert json.loads((tmp_path / "x.json").read_text())["a"] == 1.5
    path = tmp_path / "m.jsonl"
    path.write_text("".join(json.dumps({"step": s}) + "\n" for s in (1, 2, 3, 4)))
    truncate_jsonl(path, 2)
    assert [json.loads(r)["step"] for r in path.read_text().splitlines()] == [1, 2]
    info = git_commit(tmp_path)  # not a git checkout
    assert info is None
