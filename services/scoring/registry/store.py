"""Bundle bytes: kept in the database (every process and host can read them) and cached as files under
<var_dir>/models/<sha256>.zip; whatever is read is checked against its sha256 first."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from sqlmodel import Session

from services.scoring.registry.models import ModelArtifact


class ArtifactCorrupt(Exception):
    pass


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class ArtifactStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, sha256: str) -> Path:
        return self.root / f"{sha256}.zip"

    def _cache(self, sha256: str, data: bytes) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        # Written aside and renamed, so a reader in another process never sees half a file.
        tmp = self._path(sha256).with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(data)
        tmp.replace(self._path(sha256))

    def put(self, session: Session, data: bytes) -> str:
        sha256 = sha256_of(data)
        if session.get(ModelArtifact, sha256) is None:
            session.add(ModelArtifact(sha256=sha256, data=data, size=len(data)))
        self._cache(sha256, data)
        return sha256

    def load(self, session: Session, sha256: str) -> bytes:
        path = self._path(sha256)
        if path.exists():
            data = path.read_bytes()
            if sha256_of(data) == sha256:
                return data
        row = session.get(ModelArtifact, sha256)
        if row is None:
            raise ArtifactCorrupt(f"artifact {sha256} is not in the registry")
        if sha256_of(row.data) != sha256:
            raise ArtifactCorrupt(f"artifact {sha256} does not match its sha256")
        self._cache(sha256, row.data)
        return row.data
