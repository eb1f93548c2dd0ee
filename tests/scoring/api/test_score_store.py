"""How POST /scores stores its rows (scores/store.py): what the ORM reads back, retries, concurrent twins, another
writer holding SQLite, and a database connection lost under it."""

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from decimal import Decimal

import psycopg
import pytest
from sqlalchemy import select

from services.scoring.db import idempotency
from services.scoring.scores.models import Score
from tests.support import postgres_libpq_url


@pytest.fixture(scope="module")
def officer(suite, champion):  # noqa: ANN001, ANN201
    return suite.headers("officer.store", ["loan_officer"], branch="BJ001")


def _post(suite, headers, body, path="/scores"):  # noqa: ANN001, ANN202
    return suite.direct["scoring"].post(path, json=body, headers=headers)


def test_a_stored_score_reads_back_through_the_orm_as_answered(suite, officer, applicants):
    body = _post(suite, officer, {"features": applicants[10], "requested_amount": "7000.50"}).json()
    with suite.database("scoring").session() as session:
        stored = session.get(Score, body["id"])
    assert stored is not None and stored.shadow is False and stored.created_by
    assert stored.suggested_limit == Decimal(body["suggested_limit"]) and isinstance(stored.suggested_limit, Decimal)
    assert stored.created_at == datetime.fromisoformat(body["created_at"].replace("Z", "+00:00"))
    assert stored.pd == body["pd"] and stored.score == body["score"] and stored.grade == body["grade"]
    assert [r["feature"] for r in stored.reasons] == [r["feature"] for r in body["reasons"]]
    assert stored.warnings == [] and stored.points_per_feature and stored.inputs["duration_in_month"] == \
        applicants[10]["duration_in_month"]
    # And through the API's own read.
    again = suite.direct["scoring"].get(f"/scores/{body['id']}", headers=officer).json()
    assert again == body


def test_a_key_reused_for_another_request_is_refused_and_nothing_is_stored(suite, officer, applicants):
    headers = {**officer, "Idempotency-Key": "store-reused"}
    first = _post(suite, headers, {"features": applicants[11]})
    assert first.status_code == 201
    before = _count_scores_by(suite, first.json()["id"])
    other = _post(suite, headers, {"features": applicants[12]})
    assert other.status_code == 422 and other.headers["content-type"] == "application/problem+json"
    assert other.json()["errors"][0]["field"] == "header.Idempotency-Key"
    assert _count_scores_by(suite, first.json()["id"]) == before


def _count_scores_by(suite, score_id: str) -> int:  # noqa: ANN001
    """How many champion scores the author of `score_id` has."""
    from sqlalchemy import func

    with suite.database("scoring").session() as session:
        author = session.get(Score, score_id).created_by
        return session.execute(select(func.count()).where(Score.created_by == author,
                                                          Score.shadow == False)).scalar_one()  # noqa: E712


def test_concurrent_twins_with_one_key_store_one_score_and_get_one_answer(suite, officer, applicants):
    headers = {**officer, "Idempotency-Key": "store-twins"}
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: _post(suite, headers, {"features": applicants[13]}), range(4)))
    assert {a.status_code for a in answers} == {201}
    assert len({a.json()["id"] for a in answers}) == 1
    with suite.database("scoring").session() as session:
        twins = session.execute(select(Score.id).where(Score.id == answers[0].json()["id"])).all()
        keys = session.execute(select(idempotency.table.c.key).where(idempotency.table.c.key == "store-twins")).all()
    assert len(twins) == 1 and len(keys) == 1


def test_another_writer_holding_sqlite_is_waited_for_off_the_event_loop(suite, officer, applicants):
    if suite.backend != "sqlite":
        pytest.skip("SQLite's single writer")
    state = suite.services["scoring"].state.scoring
    database = suite.database("scoring")
    probe = _probe_row(suite, _post(suite, officer, {"features": applicants[14]}).json()["id"])
    blocker = database.engine.raw_connection()
    try:
        blocker.cursor().execute("BEGIN IMMEDIATE")  # another connection holds the write lock
        assert state.writer.store_now([probe]) is None  # would have had to wait: nothing stored, nothing raised
        released = threading.Timer(0.3, blocker.rollback)
        released.start()
        # The request cannot store on the loop; it waits in the thread pool until the other writer is done.
        response = _post(suite, officer, {"features": applicants[15]})
        released.join()
    finally:
        blocker.rollback()
        blocker.close()
    assert response.status_code == 201, response.text
    with database.session() as session:
        assert session.get(Score, response.json()["id"]) is not None
        assert session.get(Score, probe["id"]) is None
    # A challenger another test promoted shadows that request from a background thread, which takes the same turn:
    # let it finish first, or the probe meets a writer that is this process's own.
    state.shadow.drain()
    assert state.writer.store_now([probe]) is True  # free again: stored right away
    with database.session() as session:
        assert session.get(Score, probe["id"]) is not None


def _probe_row(suite, score_id: str) -> dict:  # noqa: ANN001
    """A copy of a stored score's row under a new id."""
    from shared.ids import new_id

    with suite.database("scoring").session() as session:
        row = session.get(Score, score_id).model_dump()
    return {**row, "id": new_id()}


def test_a_dropped_database_connection_is_a_503_to_retry_then_scoring_recovers(suite, officer, applicants):
    if suite.backend != "postgres":
        pytest.skip("a server that drops connections")
    _post(suite, officer, {"features": applicants[16]})  # the writer's pooled connections exist
    name = suite.database("scoring").engine.url.database
    with psycopg.connect(postgres_libpq_url(), autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
    statuses = [_post(suite, officer, {"features": applicants[17]}).status_code for _ in range(3)]
    assert statuses[0] in (201, 503) and statuses[-1] == 201, statuses
    if statuses[0] == 503:
        assert statuses[1:] == [201, 201]  # the whole pool was discarded, not one connection at a time
