"""The 360° view and the portrait, with peers answering and with peers down."""

import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from services.customer.main import create_app
from services.customer.portrait.scheduled import refresh_segments
from shared.settings import KernelSettings
from tests.customer.factory import key, unique


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def customer_with_peers_down(suite):
    """The same customer database, but scoring and monitoring point at ports nobody listens on."""
    kernel = KernelSettings(**{**suite.kernel.model_dump(), "scoring_url": f"http://127.0.0.1:{_closed_port()}",
                               "monitoring_url": f"http://127.0.0.1:{_closed_port()}"})
    app = create_app(kernel, verifier=suite.services["customer"].state.verifier, transports={})
    with TestClient(app, base_url="http://customer") as client:
        yield client


def _contact(api, customer_id, headers, days_ago, channel="phone"):
    at = (datetime.now(UTC) - timedelta(days=days_ago)).isoformat()
    body = {"channel": channel, "direction": "outbound", "purpose": "service", "outcome": "reached",
            "occurred_at": at}
    logged = api.post(f"/customers/{customer_id}/interactions", json=body, headers={**headers, **key()})
    assert logged.status_code == 201


def test_with_peers_down_the_overview_still_answers_and_marks_them_unavailable(api, actors, customer_with_peers_down):
    officer = actors.officer("OV01")
    customer = actors.register(officer, branch="OV01")
    _contact(api, customer["id"], officer, 3)
    api.post(f"/customers/{customer['id']}/consents", json={"purpose": "marketing", "source": "app"},
             headers={**officer, **key()})
    response = customer_with_peers_down.get(f"/customers/{customer['id']}/overview", headers=officer)
    assert response.status_code == 200, response.text
    view = response.json()
    for section in ("score", "loans", "alerts"):
        assert view[section]["status"] == "unavailable" and "unavailable" in view[section]["reason"]
    assert view["customer"]["id"] == customer["id"] and view["customer"]["pii_view"] == "full"
    assert len(view["recent_interactions"]) == 1
    assert {c["purpose"]: c["allowed"] for c in view["consents"]}["marketing"] is True
    assert view["portrait"]["contacts_90d"] == 1 and view["portrait"]["score_status"] == "unavailable"
    # The portrait contract the scoring service relies on answers too.
    portrait = customer_with_peers_down.get(f"/customers/{customer['id']}/portrait", headers=officer)
    assert portrait.status_code == 200 and portrait.json()["latest_grade"] is None
    assert customer_with_peers_down.get(f"/customers/{customer['id']}/overview",
                                        headers=actors.officer("OV99")).status_code == 404


def test_the_overview_masks_for_collectors_and_reads_the_peers_that_answer(api, actors):
    customer = actors.register(actors.officer("OV02"), branch="OV02")
    view = api.get(f"/customers/{customer['id']}/overview", headers=actors.user("collector"))
    assert view.status_code == 200, view.text
    body = view.json()
    assert body["customer"]["pii_view"] == "masked" and "*" in body["customer"]["national_id"]
    # In-process peers answer; whatever they answer, each section says which way it went.
    for section in ("score", "loans", "alerts"):
        assert body[section]["status"] in {"available", "unavailable"}
    if body["loans"]["status"] == "available":
        assert body["loans"]["items"] == []


def test_the_portrait_reflects_contacts_complaints_and_satisfaction(api, actors):
    branch = unique("PT").replace(".", "")[:10]
    officer = actors.officer(branch)
    customer = actors.register(officer, branch=branch, monthly_income="30000.00", assets="2000000.00")
    for days in (100, 110, 120, 130, 10):
        _contact(api, customer["id"], officer, days)
    complaint = {"kind": "complaint", "channel": "branch", "category": "fees"}
    api.post(f"/customers/{customer['id']}/complaints", json=complaint, headers={**officer, **key()})
    for marks in (5, 2):
        survey = api.post(f"/customers/{customer['id']}/surveys", json={"channel": "app", "officer": "me"},
                          headers={**officer, **key()}).json()
        answer = {d: marks for d in ("service_efficiency", "service_quality", "product_range", "staff_attitude",
                                     "resolution_speed")}
        api.post(f"/surveys/{survey['id']}/answer", json={**answer, "nps": 4}, headers=officer)
    portrait = api.get(f"/customers/{customer['id']}/portrait", headers=officer).json()
    assert portrait["contacts_90d"] == 1 and portrait["contacts_prior_90d"] == 4
    assert portrait["days_since_last_contact"] == 10 and portrait["complaints_12m"] == 1
    assert portrait["csat_avg"] == 3.5 and portrait["csat_trend"] == -3.0 and portrait["nps_latest"] == 4
    assert portrait["monthly_income"] == "30000.00" and portrait["value_tier"] == "platinum"
    assert portrait["retention_risk"] is True
    assert set(portrait["segments"]) >= {"high_value", "retention_risk"}
    for field in ("tenure_months", "products_held", "latest_score", "latest_grade", "lifecycle_stage", "cluster"):
        assert field in portrait

    listed = api.get("/customers", params={"segment": "retention_risk", "branch": branch}, headers=officer).json()
    assert [c["id"] for c in listed["items"]] == [customer["id"]]
    counts = {s["segment"]: s["customers"] for s in api.get("/segments", headers=officer).json()}
    assert counts["high_value"] == 1 and counts["retention_risk"] == 1
    members = api.get("/segments/high_value/members", headers=officer).json()
    assert members["items"] == [customer["id"]]


def test_clusters_are_refreshed_by_the_batch_and_described(suite, api, actors):
    officer = actors.officer("CL01")
    for income in ("3000.00", "4000.00", "90000.00", "95000.00"):
        created = actors.register(officer, branch="CL01", monthly_income=income)
        api.get(f"/customers/{created['id']}/portrait", headers=officer)
    summary = refresh_segments(suite.database("customer"), k=2)
    assert summary["customers"] >= 4 and len(summary["clusters"]) == 2
    clusters = api.get("/clusters", headers=officer).json()
    assert sum(c["size"] for c in clusters) >= 4 and all(c["label"] for c in clusters)
    portrait = api.get(f"/customers/{created['id']}/portrait", headers=officer).json()
    assert portrait["cluster"] in {c["cluster"] for c in clusters} and portrait["cluster_label"]


class HangingPeer:
    """A real socket that completes the TCP handshake and reads the request but never answers: the peer is 'up'
    and hangs, the worst case for a caller. It remembers how many callers were waiting on it at once."""

    def __init__(self) -> None:
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.socket.listen(64)
        self.url = f"http://127.0.0.1:{self.socket.getsockname()[1]}"
        self.most_waiting = 0
        self._open: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    @staticmethod
    def _still_open(conn: socket.socket) -> bool:
        try:
            return conn.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) != b""
        except BlockingIOError:
            return True
        except OSError:
            return False

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.socket.accept()
            except OSError:
                return
            self._open = [c for c in self._open if self._still_open(c)] + [conn]
            self.most_waiting = max(self.most_waiting, len(self._open))

    def close(self) -> None:
        for conn in self._open:
            conn.close()
        self.socket.close()


@pytest.fixture(scope="module")
def hanging_peer() -> Iterator[HangingPeer]:
    peer = HangingPeer()
    yield peer
    peer.close()


@pytest.fixture(scope="module")
def customer_with_hanging_peers(suite, hanging_peer):
    kernel = KernelSettings(**{**suite.kernel.model_dump(), "scoring_url": hanging_peer.url,
                               "monitoring_url": hanging_peer.url})
    app = create_app(kernel, verifier=suite.services["customer"].state.verifier, transports={})
    with TestClient(app, base_url="http://customer") as client:
        yield client


def test_a_peer_that_hangs_degrades_to_unavailable_side_by_side(actors, customer_with_hanging_peers, hanging_peer):
    officer = actors.officer("OV02")
    customer = actors.register(officer, branch="OV02")
    hanging_peer.most_waiting = 0
    response = customer_with_hanging_peers.get(f"/customers/{customer['id']}/overview", headers=officer)
    assert response.status_code == 200, response.text
    view = response.json()
    for section in ("score", "loans", "alerts"):
        assert view[section]["status"] == "unavailable" and "in time" in view[section]["reason"], view[section]
    assert view["customer"]["id"] == customer["id"]
    # The peer calls (one or more per section) wait side by side, each for the overview's short timeout, never
    # one after another: called in turn, no two would ever wait on the peer at once.
    assert hanging_peer.most_waiting >= 3
