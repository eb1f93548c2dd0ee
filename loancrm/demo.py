"""A demo portfolio for a first run, made through the gateway with the services' own write paths.

Every write carries an Idempotency-Key derived from the seed and the step, so a seeding that was interrupted
runs again to the same end: what was done answers as before, the rest is done now.
"""

from __future__ import annotations

import csv
import json
import os
import random
import secrets
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

GERMAN = Path(__file__).resolve().parent.parent / "services" / "scoring" / "data" / "german_credit.csv"
BRANCHES = ("BJ001", "SH002", "SZ004")
# username -> (roles, branch): one sign-in for every role.
DEMO_USERS: dict[str, tuple[list[str], str | None]] = {
    "demo.officer": (["loan_officer"], "BJ001"),
    "demo.checker": (["loan_officer"], "BJ001"),
    "demo.officer.sh": (["loan_officer"], "SH002"),
    "demo.officer.sz": (["loan_officer"], "SZ004"),
    "demo.analyst": (["risk_analyst"], None),
    "demo.committee": (["credit_committee"], None),
    "demo.collector": (["collector"], None),
    "demo.auditor": (["auditor"], None),
    "demo.partner": (["partner"], "BJ001"),
}
# Days past due each disbursed loan is brought to, in turn: current loans, then every delinquency stage.
DPD_TARGETS = (0, 0, 0, 0, 20, 50, 80, 120, 200, 400)
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
_NUMERIC = {"duration_in_month", "credit_amount", "installment_rate_in_percentage_of_disposable_income",
            "present_residence_since", "age_in_years", "number_of_existing_credits_at_this_bank",
            "number_of_people_being_liable_to_provide_maintenance_for"}
_SURNAMES = ("Wang", "Li", "Zhang", "Liu", "Chen", "Yang", "Zhao", "Huang", "Zhou", "Wu", "Xu", "Sun")
_GIVEN = ("Wei", "Fang", "Na", "Min", "Jing", "Lei", "Yang", "Jun", "Hui", "Tao", "Ping", "Xin")


class DemoError(RuntimeError):
    """A step of the seeding was refused; the message names the step and the answer."""


@dataclass
class DemoReport:
    counts: Counter = field(default_factory=Counter)

    def add(self, what: str, n: int = 1) -> None:
        self.counts[what] += n


def demo_passwords() -> dict[str, str]:
    return {name: secrets.token_urlsafe(12) for name in DEMO_USERS}


def national_id(born: date, serial: int, region: str = "110105") -> str:
    """A valid 18-character resident ID (by default Beijing Chaoyang) with its ISO 7064 check character."""
    body = f"{region}{born:%Y%m%d}{serial % 1000:03d}"
    return body + _ID_CHECK[sum(int(d) * w for d, w in zip(body, _ID_WEIGHTS, strict=True)) % 11]


def german_applicants() -> list[dict[str, Any]]:
    with GERMAN.open() as handle:
        return [{k: int(v) if k in _NUMERIC else v for k, v in row.items() if k != "creditability"}
                for row in csv.DictReader(handle)]


def _months_before(day: date, months: int) -> date:
    month = day.month - 1 - months
    year, month = day.year + month // 12, month % 12 + 1
    return date(year, month, min(day.day, 28))


class Seeder:
    def __init__(self, client: httpx.Client, admin_token: str, passwords: dict[str, str], *, seed: int = 7,
                 customers: int = 36, today: date | None = None,
                 progress: Callable[[str], None] = lambda _step: None) -> None:
        self.client = client
        self.admin = {"Authorization": f"Bearer {admin_token}"}
        self.passwords = passwords
        self.seed = seed
        self.customers = customers
        self.today = today or datetime.now(UTC).date()
        self.progress = progress
        self.report = DemoReport()
        self.tokens: dict[str, dict[str, str]] = {}

    # -- plumbing --------------------------------------------------------------------------------------------
    def _call(self, method: str, path: str, who: dict[str, str], key: str | None = None,
              ok: tuple[int, ...] = (200, 201, 202), **kwargs: Any) -> httpx.Response:
        headers = dict(who)
        if key is not None:
            headers["Idempotency-Key"] = f"demo-{self.seed}-{key}"
        response = self.client.request(method, path, headers=headers, **kwargs)
        if response.status_code not in ok:
            raise DemoError(f"{method} {path} answered {response.status_code}: {response.text[:500]}")
        return response

    def _rng(self, *what: object) -> random.Random:
        """The randomness of one item alone, so a re-run builds each body exactly as the first run did."""
        return random.Random("-".join(map(str, (self.seed, *what))))

    def _as(self, username: str) -> dict[str, str]:
        return self.tokens[username]

    # -- steps -----------------------------------------------------------------------------------------------
    def run(self) -> DemoReport:
        self.progress("users")
        self.create_users()
        self.progress("customers and their relationship")
        people = list(self.create_customers())
        self.progress("applications, decisions and disbursements")
        loans = self.lend(people)
        self.progress("repayments")
        self.repay(loans)
        self.progress("close of business (ageing, classes, alerts)")
        self.close_business_day()
        self.progress("collections")
        self.collect(loans)
        return self.report

    def create_users(self) -> None:
        for username, (roles, branch) in DEMO_USERS.items():
            body = {"username": username, "password": self.passwords[username], "roles": roles, "branch": branch}
            created = self._call("POST", "/auth/users", self.admin, f"user-{username}", ok=(201, 409), json=body)
            self.report.add("users", created.status_code == 201)
            token = self.client.post("/auth/token", data={"username": username,
                                                          "password": self.passwords[username]})
            if token.status_code != 200:
                raise DemoError(f"demo user {username} cannot sign in: {token.text[:300]}")
            self.tokens[username] = {"Authorization": f"Bearer {token.json()['access_token']}"}

    def _officer(self, branch: str) -> str:
        return {"BJ001": "demo.officer", "SH002": "demo.officer.sh", "SZ004": "demo.officer.sz"}[branch]

    def create_customers(self) -> Iterator[tuple[str, str]]:
        """(customer id, branch) of each customer, with consents, contacts, surveys and complaints."""
        for n in range(self.customers):
            branch = BRANCHES[n % len(BRANCHES)]
            officer = self._as(self._officer(branch))
            rng = self._rng("customer", n)
            born = date(1965 + rng.randrange(35), 1 + rng.randrange(12), 1 + rng.randrange(28))
            body: dict[str, Any] = {
                "kind": "individual", "name": f"{rng.choice(_SURNAMES)} {rng.choice(_GIVEN)}",
                "date_of_birth": born.isoformat(), "national_id": national_id(born, 100 + n),
                "phone": f"13{rng.randrange(5, 10)}{self.seed % 100:02d}{n:06d}", "branch": branch,
                "monthly_income": f"{rng.randrange(6, 60) * 1000}.00",
                "occupation": rng.choice(("engineer", "teacher", "shop owner", "driver", "nurse")),
                "region": {"BJ001": "Beijing", "SH002": "Shanghai", "SZ004": "Shenzhen"}[branch],
                "acquisition_channel": rng.choice(("branch", "app", "referral")),
                "external_id": f"demo-{self.seed}-{n:05d}",
            }
            customer = self._call("POST", "/api/customer/customers", officer, f"customer-{n}", ok=(201, 409),
                                  json=body).json()
            customer_id = customer.get("id") or customer.get("existing_id")
            if not customer_id:
                raise DemoError(f"customer {n}: {customer}")
            self.report.add("customers")
            self._relationship(n, customer_id, officer, rng)
            yield customer_id, branch

    def _relationship(self, n: int, customer_id: str, officer: dict[str, str], rng: random.Random) -> None:
        base = f"/api/customer/customers/{customer_id}"
        purposes = ["credit_bureau_query"] + (["marketing"] if n % 2 == 0 else []) + (
            ["partner_data_sharing"] if n % 5 == 0 else [])
        for purpose in purposes:
            self._call("POST", f"{base}/consents", officer, f"consent-{n}-{purpose}",
                       json={"purpose": purpose, "source": rng.choice(("branch_form", "app"))})
            self.report.add("consents")
        for k in range(rng.randrange(1, 5)):
            when = datetime.combine(self.today - timedelta(days=rng.randrange(3, 300)), datetime.min.time(),
                                    tzinfo=UTC) + timedelta(hours=10)
            # Marketing only to those who consented to it: the service refuses the rest, as it should.
            purpose = rng.choice(("service", "service", "marketing" if "marketing" in purposes else "service",
                                       "post_loan_follow_up"))
            self._call("POST", f"{base}/interactions", officer, f"contact-{n}-{k}", json={
                "channel": rng.choice(("phone", "app", "branch", "wechat")),
                "direction": rng.choice(("inbound", "outbound")), "purpose": purpose,
                "outcome": "reached", "occurred_at": when.isoformat()})
            self.report.add("contacts")
        if n % 3 == 0:
            survey = self._call("POST", f"{base}/surveys", officer, f"survey-{n}",
                                json={"channel": "sms", "officer": self._officer_name(officer)}).json()
            low = n % 6 == 0  # half the surveyed are unhappy, so follow-up tasks and the trend have something
            scores = {d: rng.randrange(1, 3) if low else rng.randrange(4, 6) for d in (
                "service_efficiency", "service_quality", "product_range", "staff_attitude", "resolution_speed")}
            # 409: answered by an earlier, interrupted seeding (the route takes no Idempotency-Key).
            self._call("POST", f"/api/customer/surveys/{survey['id']}/answer", officer, f"survey-answer-{n}",
                       ok=(200, 409), json={**scores, "nps": rng.randrange(0, 5) if low else
                                            rng.randrange(8, 11)})
            self.report.add("surveys")
        if n % 4 == 1:
            complaint = self._call("POST", f"{base}/complaints", officer, f"complaint-{n}", json={
                "kind": "complaint", "channel": "phone", "category": rng.choice(("fees", "service", "app")),
                "description": "Demo complaint"}).json()
            self.report.add("complaints")
            if n % 8 == 1:
                self._call("POST", f"/api/customer/complaints/{complaint['id']}/response", officer,
                           f"complaint-response-{n}", ok=(200, 409),
                           json={"status": "resolved", "response": "Explained and refunded."})
                self.report.add("complaints resolved")

    def _officer_name(self, officer: dict[str, str]) -> str:
        return next(name for name, headers in self.tokens.items() if headers is officer)

    def lend(self, people: list[tuple[str, str]]) -> list[tuple[str, int]]:
        """Applications in every state; returns the disbursed loans with the days past due each is brought to."""
        applicants = german_applicants()
        self._rng("applicants").shuffle(applicants)
        pool = iter(applicants)
        loans: list[tuple[str, int]] = []
        # A few customers stay prospects (no application): a CRM holds more people than borrowers.
        borrowers = people[: max(1, len(people) * 5 // 6)]
        for n, (customer_id, branch) in enumerate(borrowers):
            officer = self._officer(branch)
            rng = self._rng("application", n)
            features = next(pool)
            body = {"customer_id": customer_id, "product": "personal_loan",
                    "amount": f"{rng.randrange(5, 40) * 1000}.00", "term_months": 24,
                    "purpose": features.get("purpose", "other"), "branch": branch, "features": features,
                    # Weak grades lend against security: most applicants offer some.
                    "collateral": "car, registration on file" if n % 5 else None}
            application = self._call("POST", "/api/scoring/applications", self._as(officer), f"application-{n}",
                                     json=body).json()
            self.report.add(f"applications {application['status']}")
            if application["status"] == "in_review" and n % 2 == 0:
                # The second pair of eyes: a checker of the branch (or the committee for a large amount).
                checker = "demo.checker" if branch == "BJ001" else "demo.committee"
                decided = self._call("POST", f"/api/scoring/applications/{application['id']}/decision",
                                     self._as(checker), f"decision-{n}", ok=(200, 403, 409), json={
                                         "decision": "approve", "reason": "Income and employer verified"})
                if decided.status_code == 200:
                    application = decided.json()
                    self.report.add("applications approved on review")
                elif decided.status_code == 409:  # decided by an earlier, interrupted seeding
                    application = self._call("GET", f"/api/scoring/applications/{application['id']}",
                                             self._as(checker)).json()
            # "disbursed": by an earlier, interrupted seeding; asking again answers the same loan.
            if application["status"] in ("approved", "disbursed") and n % 7 != 6:  # some await payout
                target = DPD_TARGETS[len(loans) % len(DPD_TARGETS)]
                months = 3 + (target // 30) + rng.randrange(4)
                self.disclose(application, officer)
                paid_out = self._call("POST", f"/api/scoring/applications/{application['id']}/disbursement",
                                      self._as(officer), f"disbursement-{n}", json={
                                          "disbursement_date": _months_before(self.today, months).isoformat()}).json()
                loans.append((paid_out["loan_id"], target))
                self.report.add("loans")
        return loans

    def disclose(self, application: dict[str, Any], officer: str) -> None:
        """The terms shown to the customer and their acknowledgement, which the payout requires (a disbursed one,
        from an earlier interrupted seeding, was acknowledged then)."""
        path = f"/api/scoring/applications/{application['id']}/disclosure"
        if application["status"] == "approved":
            self._call("PUT", path, self._as(officer), ok=(200, 409), json={})
            self._call("POST", f"{path}/acknowledgement", self._as(officer), json={"channel": "branch"})
            self.report.add("disclosures acknowledged")

    def repay(self, loans: list[tuple[str, int]]) -> None:
        """Each loan pays every instalment due more than its target days ago, on its due date."""
        for loan_id, target in loans:
            loan = self._call("GET", f"/api/monitoring/loans/{loan_id}", self._as("demo.analyst")).json()
            writer = self._as(self._officer(loan["branch"]))
            cutoff = self.today - timedelta(days=target)
            for instalment in loan["schedule"]:
                due = date.fromisoformat(instalment["due_date"])
                if due >= cutoff or due > self.today:
                    break
                self._call("POST", f"/api/monitoring/loans/{loan_id}/repayments", writer,
                           f"repayment-{loan_id}-{instalment['number']}", json={
                               "amount": str(Decimal(instalment["total"])), "value_date": due.isoformat(),
                               "external_id": f"demo-{loan_id[:8]}-{instalment['number']}"})
                self.report.add("repayments")

    def close_business_day(self) -> None:
        run = self._call("POST", "/api/monitoring/cob/runs", self.admin, f"cob-{self.today}", ok=(200, 202, 409),
                         json={"business_date": self.today.isoformat()})
        if run.status_code == 409:  # the day is already closed (a re-run of the seeding)
            return
        deadline = time.monotonic() + 300
        while run.json().get("status") not in ("completed", "failed"):
            if time.monotonic() > deadline:
                raise DemoError(f"close of business for {self.today} did not finish: {run.text[:300]}")
            time.sleep(0.5)
            run = self._call("GET", f"/api/monitoring/cob/runs/{self.today.isoformat()}", self.admin)
        if run.json()["status"] != "completed":
            raise DemoError(f"close of business for {self.today} failed: {run.text[:500]}")
        self.report.add("business days closed")

    def collect(self, loans: list[tuple[str, int]]) -> None:
        collector = self._as("demo.collector")
        for loan_id, target in loans:
            if target < 30:
                continue
            kind = "promise_to_pay" if target < 100 else "visit" if target < 300 else "legal"
            body: dict[str, Any] = {"kind": kind, "channel": "visit" if kind == "visit" else "phone",
                                    "outcome": {"promise_to_pay": "borrower promised to pay",
                                                "visit": "met the borrower at home",
                                                "legal": "case handed to the legal team"}[kind]}
            if kind == "promise_to_pay":
                body |= {"promised_amount": "1000.00", "promised_date": (self.today + timedelta(days=7)).isoformat()}
            self._call("POST", f"/api/monitoring/loans/{loan_id}/collection-actions", collector,
                       f"collection-{loan_id}", json=body)
            self.report.add("collection actions")


SIGN_INS_FILE = "demo-sign-ins.json"


def seed_once(gateway_url: str, var_dir: Path, admin_token: Callable[[], str],
              out: Callable[[str], None] = print) -> dict[str, str]:
    """Seed the demo portfolio unless done before, then print a sign-in for every role.

    The demo users' passwords are kept in `var_dir` (0600, like the rest of it) so that each start can show them
    again and an interrupted seeding resumes with the same users."""
    state_path = var_dir / SIGN_INS_FILE
    state = json.loads(state_path.read_text()) if state_path.exists() else {"passwords": demo_passwords(),
                                                                             "seeded": False}
    if not state["seeded"]:
        _write_private(state_path, state)
        out("Seeding the demo portfolio (once; `loancrm up --no-demo` skips it)...")
        with httpx.Client(base_url=gateway_url, timeout=60) as client:
            report = Seeder(client, admin_token(), state["passwords"],
                            progress=lambda step: out(f"  demo: {step}")).run()
        state["seeded"] = True
        _write_private(state_path, state)
        out("Demo portfolio: " + ", ".join(f"{n} {what}" for what, n in sorted(report.counts.items())))
    out("Demo sign-ins (POST /auth/token):")
    for username, (roles, branch) in DEMO_USERS.items():
        where = f"  ({branch})" if branch else ""
        out(f"  {', '.join(roles):17} {username:17} {state['passwords'][username]}{where}")
    return state["passwords"]


def _write_private(path: Path, state: dict[str, Any]) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(state, handle)
