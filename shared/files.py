"""The var folder: databases, keys and generated secrets, readable by the service's own user only."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

from shared.settings import SettingsError


class MissingSecret(SettingsError):
    """A secret is neither configured nor may be generated here; the message names the variable to set."""


def generated_once(path: Path, make: Callable[[], str], *, allowed: bool, variable: str) -> str:
    """The secret stored at `path`, else one made now and written 0600 so every later start reuses it.

    A deployment whose var folder does not outlive its container says `allowed=False`: a key generated there
    would be lost with the container, and with it every record it encrypted."""
    if path.exists():
        return path.read_text().strip()
    if not allowed:
        raise MissingSecret(f"{variable}: not set, and LOANCRM_GENERATE_SECRETS is false, so none is generated "
                            f"into {path.parent}; set it (or a file of that name in LOANCRM_SECRETS_DIR)")
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process of the suite won the race: use its secret
        return path.read_text().strip()
    value = make()
    with os.fdopen(fd, "w") as handle:
        handle.write(value + "\n")
    return value


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
