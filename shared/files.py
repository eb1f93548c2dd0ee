"""The var folder: databases, keys and generated secrets, readable by the service's own user only."""

from __future__ import annotations

import os
import stat
from pathlib import Path


def secure_var_dir(path: Path) -> None:
    """Make files this process creates from now on 0600 (folders 0700), create `path` 0700, and take group and
    other access away from what an earlier run (or an older version) left in it."""
    os.umask(0o077)
    path.mkdir(parents=True, exist_ok=True)
    for folder, dirs, files in os.walk(path):
        _private(Path(folder))
        for name in files:
            _private(Path(folder) / name)
        dirs[:] = [d for d in dirs if not (Path(folder) / d).is_symlink()]


def _private(path: Path) -> None:
    try:
        mode = path.lstat().st_mode
        if stat.S_ISLNK(mode) or not mode & 0o077:
            return
        path.chmod(stat.S_IMODE(mode) & 0o700)
    except OSError:
        pass  # a file we do not own: not ours to fix, and nothing this process wrote
