"""What every benchmark records beside its numbers: when, on which CPU, under what load,
with which command. Imported by the scripts in this folder (run from the repository root
or from here: Python puts the script's folder on the path)."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time


def now():
    """The current UTC time as ``YYYY-MM-DD HH:MM UTC``."""
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())


def cpu_name():
    """The CPU's model name from ``/proc/cpuinfo``, else the platform's processor string."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def lscpu():
    """The model name, core count and caches from ``lscpu`` (empty without it)."""
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    except OSError:
        return {}
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    keep = ("Model name", "CPU(s)", "Thread(s) per core", "L2 cache", "L3 cache")
    return {k: fields[k].strip() for k in keep if k in fields}


def load_text():
    """``load average a, b, c`` (1, 5 and 15 minutes)."""
    return "load average " + ", ".join(f"{v:.2f}" for v in os.getloadavg())


def command():
    """The command line that ran this script, as run from the repository root."""
    return "python benchmarks/" + " ".join([os.path.basename(sys.argv[0])] + sys.argv[1:])


def machine(**extra):
    """The common header of a results file: date, CPU, cores, 1-minute load average at the
    start and the command, plus ``extra``. Set ``meta["load_end"] = os.getloadavg()[0]``
    when done."""
    return {"date": now(), "cpu": cpu_name(), "cores": os.cpu_count(),
            "load_start": os.getloadavg()[0], "command": command(), **extra}
