"""Reading an experiment's ``--help``: shared by the experiment tests."""

import re

import pytest


def help_text(experiment, capsys):
    """What ``experiment.main(["--help"])`` prints (it exits with 0)."""
    with pytest.raises(SystemExit) as exit_:
        experiment.main(["--help"])
    assert exit_.value.code == 0
    return capsys.readouterr().out


def option_lines(text):
    """``{flag: its help}`` from argparse's help (a flag line and its indented help)."""
    options, flag = {}, None
    for line in text.splitlines():
        m = re.match(r"  (--[\w-]+)", line)
        if m:
            flag = m.group(1)
            options[flag] = line[m.end():]
        elif flag and line.startswith("      "):
            options[flag] += " " + line.strip()
        else:
            flag = None
    return {k: " ".join(v.split()) for k, v in options.items()}
