"""POST /studies/relationship keeps the report, GET reads it and its chart, a retry with the same key replays it.
The extract is a generated one here (the customer service's features route lands separately; the lead wires the
end-to-end run); what reaches the peers is tested in test_extract.py and tests/monitoring/api/test_outcomes.py."""

from __future__ import annotations

from datetime import date

import pytest

from services.scoring.study import flows
from tests.scoring.study.generate import portfolio


@pytest.fixture
def generated(monkeypatch):  # noqa: ANN001, ANN201
    async def extract(customer, monitoring, *, as_of: date, window_months: int, credentials):  # noqa: ANN001, ANN202
        table = portfolio(n=2000, seed=9, effect=-0.4)
        return flows.Extract(table=table, counts={"loans_in_extract": len(table)})

    monkeypatch.setattr(flows, "extract", extract)


def test_a_study_is_kept_and_read_with_its_chart(suite, generated) -> None:  # noqa: ANN001
    scoring = suite.direct["scoring"]
    analyst = suite.headers("analyst.study", ["risk_analyst"])
    body = {"as_of": "2025-06-30", "window_months": 12}
    first = scoring.post("/studies/relationship", json=body, headers={**analyst, "Idempotency-Key": "study-1"})
    assert first.status_code == 201, first.text
    study = first.json()
    assert study["report"]["sample"]["n"] == 2000
    assert all(r["direction"] == "lowers default" for r in study["report"]["relationship"])
    again = scoring.post("/studies/relationship", json=body, headers={**analyst, "Idempotency-Key": "study-1"})
    assert again.json()["id"] == study["id"] and again.headers["idempotent-replayed"] == "true"
    auditor = suite.headers("auditor.study", ["auditor"])
    read = scoring.get(f"/studies/relationship/{study['id']}", headers=auditor)
    assert read.status_code == 200 and read.json()["report"] == study["report"]
    chart = scoring.get(study["chart"], headers=auditor)
    assert chart.status_code == 200 and chart.headers["content-type"] == "image/png"
    assert chart.content[:4] == b"\x89PNG"
    assert scoring.get("/studies/relationship/nope", headers=auditor).status_code == 404


def test_too_few_defaults_is_a_422_not_a_500(suite, monkeypatch) -> None:  # noqa: ANN001
    async def tiny(customer, monitoring, *, as_of, window_months, credentials):  # noqa: ANN001, ANN202
        table = portfolio(n=100, seed=1)
        return flows.Extract(table=table, counts={})

    monkeypatch.setattr(flows, "extract", tiny)
    response = suite.direct["scoring"].post("/studies/relationship", json={"as_of": "2025-06-30"},
                                            headers=suite.headers("analyst.study", ["risk_analyst"]))
    assert response.status_code == 422 and "defaults" in response.json()["detail"]
