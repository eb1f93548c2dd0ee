"""The least any POST /scores can cost on this stack, served beside the real one: a bench-only app that takes the
same body through FastAPI (the service's own `ScoreInput`), runs the champion's ONNX graph once and commits one row
to SQLite (WAL, synchronous=NORMAL, as the service does), behind the kernel's request middleware. No token check,
input contract, reason codes, policy, hashing, idempotency or shadow: whatever the real route costs beyond this
is ours to cut; what this costs beyond /health/live is the framework, the model run and the write.

    LOANCRM_BENCH_BUNDLE=champion.zip LOANCRM_BENCH_DB=ref.db uvicorn --factory bench.scoring_reference:app
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import uuid

from fastapi import FastAPI
from fastapi.responses import Response

from services.scoring.scores.models import ScoreInput
from services.scoring.training.bundle import load_bundle
from services.scoring.training.models import PD_OUTPUT, SCORE_OUTPUT
from services.scoring.training.runtime import feeds_from_rows
from shared.logging import configure_logging
from shared.middleware import KernelMiddleware, Metrics
from shared.settings import KernelSettings


def app() -> FastAPI:
    configure_logging("reference", "WARNING")  # as the bench runs the suite: no access log line per request
    bundle = load_bundle(os.environ["LOANCRM_BENCH_BUNDLE"])
    session, schema = bundle.session(), bundle.schema()
    db = sqlite3.connect(os.environ["LOANCRM_BENCH_DB"], isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("CREATE TABLE IF NOT EXISTS scores (id TEXT PRIMARY KEY, pd REAL, score REAL, inputs TEXT)")
    lock = threading.Lock()
    reference = FastAPI()
    limits = KernelSettings.model_fields  # the kernel's defaults, as a service runs with them
    reference.add_middleware(KernelMiddleware, metrics=Metrics("reference"),
                             max_header_bytes=limits["max_header_bytes"].default,
                             max_body_bytes=limits["max_body_bytes"].default, hsts=False)

    @reference.get("/health/live")
    async def live() -> dict[str, str]:
        return {"status": "ok", "service": "reference"}

    @reference.post("/scores", status_code=201)
    async def score(command: ScoreInput) -> Response:
        pd_, points = session.run([PD_OUTPUT, SCORE_OUTPUT], feeds_from_rows(schema, [command.features]))
        row = (uuid.uuid4().hex, float(pd_[0]), float(points[0]), json.dumps(command.features))
        with lock:
            db.execute("BEGIN")
            db.execute("INSERT INTO scores VALUES (?, ?, ?, ?)", row)
            db.execute("COMMIT")
        return Response(json.dumps({"id": row[0], "pd": row[1], "score": row[2]}), status_code=201,
                        media_type="application/json")

    return reference
