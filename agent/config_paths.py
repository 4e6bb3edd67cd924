"""`--check-config`: the file system paths a configuration names exist, are readable, right kind.

Path options are declared with `path_option(default, kind)` (agent.options). Only the sections of
enabled collectors are checked, and only on `--check-config` (the unit's ExecStartPre): at start
and on reload a missing path is what the collector reports, as a metric, every cycle.
"""

from __future__ import annotations

import dataclasses
import os
import stat

from agent.config import Config
from agent.options import DIRECTORY, PATH_KIND


def path_problems(config: Config) -> list[str]:
    """One line per path option of an enabled collector that is not what it must be."""
    if config.backend == "fake":  # the simulator supplies the node's files
        return []
    problems: list[str] = []
    for section in dataclasses.fields(config.collectors):
        options = getattr(config.collectors, section.name)
        if not getattr(options, "enabled", True):
            continue
        for found in dataclasses.fields(options):
            kind = found.metadata.get(PATH_KIND)
            value = getattr(options, found.name)
            if kind is None or not value:
                continue
            why = path_problem(value, kind)
            if why:
                problems.append(f"collectors.{section.name}.{found.name}: {why}")
    return problems


def path_problem(path: str, kind: str) -> str | None:
    """Why `path` is not `kind` (DIRECTORY or READABLE) for this process, or None."""
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError) as err:
        return f'"{path}": {getattr(err, "strerror", None) or err}'
    if kind == DIRECTORY:
        if not stat.S_ISDIR(mode):
            return f'"{path}": not a directory'
        if not os.access(path, os.R_OK | os.X_OK):
            return f'"{path}": not readable by this user'
        return None
    if stat.S_ISDIR(mode):
        return f'"{path}": a directory, expected {kind}'
    if not os.access(path, os.R_OK):
        return f'"{path}": not readable by this user'
    return None
