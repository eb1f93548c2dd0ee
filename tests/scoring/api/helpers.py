"""Customers made through the real customer service, for scoring by customer_id."""

from __future__ import annotations

import itertools
import random
import socket

_WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
_CHECK = "10X98765432"
_serial = itertools.count(random.randint(100, 800) * 1000)


def national_id(n: int) -> str:
    """A valid resident ID born 1990-03-DD (DD = 1 + n % 28), serial n % 1000."""
    body = f"110105199003{1 + n % 28:02d}{n % 1000:03d}"
    return body + _CHECK[sum(int(d) * w for d, w in zip(body, _WEIGHTS)) % 11]


def new_customer(suite, headers, *, consent: bool = True, branch: str = "BJ001") -> str:  # noqa: ANN001
    n = next(_serial)
    body = {"kind": "individual", "name": f"Applicant {n}", "date_of_birth": f"1990-03-{1 + n % 28:02d}",
            "national_id": national_id(n), "phone": f"138{n:08d}", "branch": branch}
    created = suite.direct["customer"].post("/customers", json=body,
                                            headers={**headers, "Idempotency-Key": f"new-customer-{n}"})
    assert created.status_code == 201, created.text
    customer_id = created.json()["id"]
    if consent:
        granted = suite.direct["customer"].post(f"/customers/{customer_id}/consents",
                                                headers={**headers, "Idempotency-Key": f"consent-{n}"},
                                                json={"purpose": "credit_bureau_query", "source": "branch_form"})
        assert granted.status_code == 201, granted.text
    return customer_id


def closed_port() -> int:
    """A port nothing listens on: a peer that is down, for real."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def acknowledge_terms(suite, application_id: str, headers, **terms) -> dict:  # noqa: ANN001
    """Show the customer an approved application's terms and record their acknowledgement, as disbursement needs."""
    path = f"/applications/{application_id}/disclosure"
    shown = suite.direct["scoring"].put(path, json=terms, headers=headers)
    assert shown.status_code == 200, shown.text
    acknowledged = suite.direct["scoring"].post(f"{path}/acknowledgement", json={"channel": "branch"},
                                                headers=headers)
    assert acknowledged.status_code == 200, acknowledged.text
    return acknowledged.json()
