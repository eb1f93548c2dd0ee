"""Test data a banker would recognise: valid resident IDs, mobile numbers, one officer per test."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path

from sqlalchemy import Engine, create_engine, text

from loancrm import migrate
from services.customer.customers.validation import check_digit
from tests.support import Suite, database_urls

_rng = random.Random()


def birth_date() -> date:
    return date(1960, 1, 1) + timedelta(days=_rng.randrange(35 * 365))


def national_id(born: date | None = None) -> str:
    region = _rng.choice(("110105", "310104", "440305", "510107", "330106"))
    first17 = f"{region}{born or birth_date():%Y%m%d}{_rng.randrange(1000):03d}"
    return first17 + check_digit(first17)


def phone() -> str:
    return f"1{_rng.choice('3456789')}{_rng.randrange(10**9):09d}"


def unique(prefix: str) -> str:
    return f"{prefix}.{uuid.uuid4().hex[:8]}"


def key() -> dict[str, str]:
    return {"Idempotency-Key": uuid.uuid4().hex}


def person(**overrides: object) -> dict[str, object]:
    born = overrides.pop("born", None) or birth_date()
    body: dict[str, object] = {
        "name": "Zhang San", "date_of_birth": born.isoformat(), "national_id": national_id(born), "phone": phone(),
        "email": "zhang.san@example.com", "monthly_income": "18000.00", "branch": "BJ001",
    }
    body.update(overrides)
    return body


class Actors:
    """Fresh users per test (the suite is shared within a module)."""

    def __init__(self, suite: Suite) -> None:
        self.suite = suite

    def user(self, role: str, branch: str | None = None) -> dict[str, str]:
        return self.suite.headers(unique(role.replace("_", "")), [role], branch)

    def officer(self, branch: str = "BJ001") -> dict[str, str]:
        return self.user("loan_officer", branch)

    def admin(self) -> dict[str, str]:
        return self.suite.headers("admin")

    def register(self, headers: dict[str, str], **overrides: object) -> dict[str, object]:
        response = self.suite.direct["customer"].post("/customers", json=person(**overrides),
                                                      headers={**headers, **key()})
        assert response.status_code == 201, response.text
        return response.json()


@contextmanager
def older_customer_database(backend: str, tmp: Path, revision: str) -> Iterator[tuple[str, Engine]]:
    """A customer database migrated only to `revision`, for rows an older version wrote: its URL and an engine."""
    with database_urls(backend, tmp) as urls:
        url = urls["customer"]
        migrate.upgrade(url, "customer", revision)
        engine = create_engine(url)
        try:
            yield url, engine
        finally:
            engine.dispose()


def insert_older_customer(engine: Engine, row_id: str, **columns: str) -> None:
    """A customer row as an older schema held it: the required columns and `columns`."""
    values = {"id": row_id, "kind": "individual", "status": "active", "branch": "BJ001", "kyc_status": "pending",
              "created_by": "me", "version": 1, "created_at": "2026-11-23 09:00:00",
              "updated_at": "2026-11-23 09:00:00", **columns}
    with engine.begin() as conn:
        conn.execute(text(f"INSERT INTO customers ({', '.join(values)}) VALUES "
                          f"({', '.join(':' + name for name in values)})"), values)
