"""Debian packages that recipes and benchmarks read their images from, installed with apt when missing."""
from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence


def install(packages: Sequence[str], needed_by: str) -> None:
    """Install `packages` with apt (needs root); exit with a one-line reason naming `needed_by`
    where there is no apt."""
    if shutil.which("apt-get") is None:
        raise SystemExit(f"{needed_by} needs Debian's packages: " + " ".join(packages))
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", *packages], check=True, env=env)
