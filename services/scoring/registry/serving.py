"""Which models this process serves: the registry's champion and challenger, re-read at most every N seconds,
with loaded bundles cached by sha256, so a promotion or rollback reaches every process without a restart."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

from sqlmodel import select

from services.scoring.registry.models import ModelState, ModelVersion
from services.scoring.registry.service import load_model_bundle
from services.scoring.registry.store import ArtifactStore
from services.scoring.training.bundle import ModelBundle
from services.scoring.training.models import FeatureSpec
from shared.db import Database
from shared.errors import Problem


@dataclass(frozen=True)
class LoadedModel:
    """A served model version; what every score reads of it is read once (ORM attributes cost microseconds)."""

    model: ModelVersion
    bundle: ModelBundle

    @cached_property
    def id(self) -> str:
        return self.model.id

    @cached_property
    def role(self) -> str:
        return self.model.role

    @cached_property
    def label(self) -> str:
        return self.model.label

    @cached_property
    def reason_unit(self) -> str:
        return self.bundle.model_meta(self.role)["reason_meta"]["unit"]

    def schema(self) -> list[FeatureSpec]:
        return self.bundle.schema(self.role)


@dataclass(frozen=True)
class Served:
    champion: LoadedModel
    challenger: LoadedModel | None


class ServingModels:
    def __init__(self, database: Database, store: ArtifactStore, refresh_seconds: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.database = database
        self.store = store
        self.refresh_seconds = refresh_seconds
        self.clock = clock
        self._lock = threading.Lock()
        self._bundles: dict[str, ModelBundle] = {}
        self._served: Served | None = None
        self._checked_at: float | None = None

    def invalidate(self) -> None:
        """After this process changed the registry, re-read it on the next request."""
        with self._lock:
            self._checked_at = None

    def fresh(self) -> Served | None:
        """The served models if no re-read is due (no database work: safe on the event loop), else None."""
        with self._lock:
            if self._checked_at is None or self._served is None or \
                    self.clock() - self._checked_at >= self.refresh_seconds:
                return None
            return self._served

    def current(self) -> Served:
        with self._lock:
            now = self.clock()
            if self._checked_at is None or now - self._checked_at >= self.refresh_seconds or self._served is None:
                self._served = self._read()
                self._checked_at = now
            if self._served is None:
                raise Problem(503, "Service unavailable",
                              "No champion model is registered; run `loancrm up` or register and promote one.")
            return self._served

    def _read(self) -> Served | None:
        with self.database.session() as session:
            rows = session.exec(select(ModelVersion).where(
                ModelVersion.state.in_([ModelState.CHAMPION, ModelState.CHALLENGER]))).all()  # type: ignore[attr-defined]
            loaded = {}
            for model in rows:
                if model.artifact_sha256 not in self._bundles:
                    self._bundles[model.artifact_sha256] = load_model_bundle(session, self.store, model)
                loaded[model.state] = LoadedModel(model, self._bundles[model.artifact_sha256])
        # Bundles no longer served are dropped, so a long-lived process does not keep every past model.
        in_use = {m.model.artifact_sha256 for m in loaded.values()}
        self._bundles = {sha: b for sha, b in self._bundles.items() if sha in in_use}
        if ModelState.CHAMPION not in loaded:
            return None
        return Served(loaded[ModelState.CHAMPION], loaded.get(ModelState.CHALLENGER))
