"""The authorization matrix: every route of every service's OpenAPI (and the gateway's) x every role, x objects of
the caller's own scope and of another's, x forged and scope-narrowed tokens, through the gateway and directly.

The expected answer of every cell comes from TABLE below, one line per route: the roles allowed, the token scope
needed (any one of them), and whether the route reads an object that is scoped (a customer or a loan). A route
that is not in TABLE fails `test_every_route_has_a_declared_rule`, so adding one means deciding who may call it.

Role gates are probed with ids that do not exist and an empty JSON body: FastAPI runs the route's dependencies
(token, scope, roles) before it reports body or query validation errors, so a refused caller gets 401/403 and an
allowed one anything else (404, 422, ...).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import date

import pytest
from sqlalchemy import update

from gateway.users.models import User
from shared.auth.roles import ROLE_SCOPES, Role
from tests.customer.factory import person
from tests.support import ADMIN_PASSWORD, PASSWORD

ADM, OFF, ANA, COL, AUD, PAR, CC, SYS = (Role.ADMIN, Role.LOAN_OFFICER, Role.RISK_ANALYST, Role.COLLECTOR,
                                         Role.AUDITOR, Role.PARTNER, Role.CREDIT_COMMITTEE, Role.SYSTEM)
EVERYONE = set(Role)
BAT = Role.BATCH
ALL = EVERYONE - {SYS, BAT}  # every person; the system identity reads event feeds only, the batch what COB needs
STAFF = {ADM, OFF, ANA, COL, AUD}


@dataclass(frozen=True)
class Rule:
    roles: set[Role] | None  # None: public, no token needed
    scopes: str | tuple[str, ...] | None  # any one of these in the token's scope; None: none needed
    obj: str | None = None  # "customer" or "loan": the route reads that scoped object from its path
    query: str = ""  # what an object probe needs besides the path to get past validation

    @property
    def needed(self) -> tuple[str, ...]:
        return () if self.scopes is None else (self.scopes,) if isinstance(self.scopes, str) else self.scopes


PUBLIC = Rule(None, None)

TABLE: dict[tuple[str, str, str], Rule] = {
    # gateway
    ("gateway", "GET", "/health/live"): PUBLIC,
    ("gateway", "GET", "/health/ready"): PUBLIC,
    ("gateway", "GET", "/metrics"): PUBLIC,
    ("gateway", "POST", "/auth/token"): PUBLIC,
    ("gateway", "GET", "/.well-known/jwks.json"): PUBLIC,
    ("gateway", "GET", "/whoami"): Rule(EVERYONE, None),
    # The audit trail of every service (README "Audit trail").
    ("gateway", "GET", "/audit"): Rule({ADM, AUD}, "audit:read"),
    ("customer", "GET", "/audit"): Rule({ADM, AUD}, "audit:read"),
    ("scoring", "GET", "/audit"): Rule({ADM, AUD}, "audit:read"),
    ("monitoring", "GET", "/audit"): Rule({ADM, AUD}, "audit:read"),
    ("gateway", "POST", "/auth/users"): Rule({ADM}, "users:admin"),
    ("gateway", "GET", "/auth/users"): Rule({ADM, AUD}, ("users:admin", "audit:read")),
    ("gateway", "GET", "/auth/users/{username}"): Rule({ADM, AUD}, ("users:admin", "audit:read")),
    ("gateway", "PATCH", "/auth/users/{username}"): Rule({ADM}, "users:admin"),
    ("gateway", "POST", "/auth/users/{username}/disable"): Rule({ADM}, "users:admin"),
    ("gateway", "POST", "/auth/users/{username}/enable"): Rule({ADM}, "users:admin"),
    ("gateway", "POST", "/auth/users/{username}/password-reset"): Rule({ADM}, "users:admin"),
    ("gateway", "POST", "/auth/password"): PUBLIC,  # proves the current password itself
    ("gateway", "GET", "/auth/revocations"): PUBLIC,  # random session ids only, like the JWKS
    # Everyone manages their own webhook subscriptions; the scope rule decides per event what each receives.
    ("gateway", "POST", "/webhooks/subscriptions"): Rule(ALL, "webhooks:write"),
    ("gateway", "GET", "/webhooks/subscriptions"): Rule(ALL, "webhooks:read"),
    ("gateway", "GET", "/webhooks/subscriptions/{subscription_id}"): Rule(ALL, "webhooks:read"),
    ("gateway", "DELETE", "/webhooks/subscriptions/{subscription_id}"): Rule(ALL, "webhooks:write"),
    ("gateway", "GET", "/webhooks/deliveries"): Rule(ALL, "webhooks:read"),
    ("gateway", "GET", "/webhooks/deliveries/{delivery_id}"): Rule(ALL, "webhooks:read"),
    ("gateway", "POST", "/webhooks/deliveries/{delivery_id}/redeliver"): Rule(ALL, "webhooks:write"),
    ("gateway", "POST", "/auth/revoke"): PUBLIC,  # proves itself with the refresh token it revokes
    ("gateway", "GET", "/.well-known/openid-configuration"): PUBLIC,
    ("gateway", "GET", "/.well-known/oauth-authorization-server"): PUBLIC,
    ("gateway", "POST", "/clients"): Rule({ADM}, "users:admin"),
    ("gateway", "GET", "/clients"): Rule({ADM, AUD}, ("users:admin", "audit:read")),
    ("gateway", "GET", "/clients/{client_id}"): Rule({ADM, AUD}, ("users:admin", "audit:read")),
    ("gateway", "POST", "/clients/{client_id}/secret"): Rule({ADM}, "users:admin"),
    ("gateway", "POST", "/clients/{client_id}/disable"): Rule({ADM}, "users:admin"),
    ("gateway", "POST", "/clients/{client_id}/enable"): Rule({ADM}, "users:admin"),
    # customer
    ("customer", "GET", "/health/live"): PUBLIC,
    ("customer", "GET", "/health/ready"): PUBLIC,
    ("customer", "GET", "/metrics"): PUBLIC,
    ("customer", "GET", "/whoami"): Rule(EVERYONE, None),
    ("customer", "POST", "/customers/imports"): Rule({ADM, OFF, PAR}, "customer:write"),
    ("customer", "POST", "/customers"): Rule({ADM, OFF, PAR}, "customer:write"),
    ("customer", "GET", "/customers"): Rule(ALL, "customer:read"),
    ("customer", "POST", "/customers/lookup"): Rule(ALL, "customer:read"),
    ("customer", "GET", "/customers/by-external-id/{external_id}"): Rule(ALL, "customer:read"),
    ("customer", "GET", "/customers/{customer_id}"): Rule(ALL, "customer:read", obj="customer"),
    ("customer", "PATCH", "/customers/{customer_id}"): Rule({ADM, OFF, PAR}, "customer:write"),
    ("customer", "POST", "/customers/{customer_id}/closure"): Rule({ADM, OFF}, "customer:write"),
    ("customer", "POST", "/customers/{customer_id}/erasure"): Rule({ADM}, "customer:write"),
    ("customer", "POST", "/customers/{customer_id}/consents"): Rule({ADM, OFF, PAR}, "customer:write"),
    ("customer", "POST", "/customers/{customer_id}/consents/{purpose}/withdrawal"):
        Rule({ADM, OFF, PAR}, "customer:write"),
    ("customer", "POST", "/customers/{customer_id}/reveal"): Rule({ADM, OFF, COL}, "customer:read"),
    ("customer", "GET", "/customers/{customer_id}/consents"): Rule(ALL, "customer:read", obj="customer"),
    ("customer", "GET", "/customers/{customer_id}/consents/check"):
        Rule(ALL | {BAT}, "customer:read", obj="customer", query="?purpose=marketing"),
    ("customer", "POST", "/customers/{customer_id}/interactions"): Rule({ADM, OFF, COL, PAR, BAT}, "customer:write"),
    ("customer", "GET", "/customers/{customer_id}/interactions"): Rule(ALL, "customer:read", obj="customer"),
    ("customer", "GET", "/interactions"): Rule(ALL, "customer:read"),
    ("customer", "POST", "/interactions/{interaction_id}/delivery"): Rule({ADM, OFF, COL, PAR, BAT}, "customer:write"),
    ("customer", "GET", "/customers/{customer_id}/contact-plan"): Rule(ALL | {BAT}, "customer:read", obj="customer"),
    ("customer", "POST", "/customers/{customer_id}/complaints"): Rule({ADM, OFF, PAR}, "customer:write"),
    ("customer", "GET", "/customers/{customer_id}/complaints"): Rule(ALL, "customer:read", obj="customer"),
    ("customer", "GET", "/complaints/overdue"): Rule({ADM, OFF}, "customer:read"),
    ("customer", "POST", "/complaints/{complaint_id}/response"): Rule({ADM, OFF, PAR}, "customer:write"),
    ("customer", "POST", "/customers/{customer_id}/surveys"): Rule({ADM, OFF, PAR}, "customer:write"),
    ("customer", "POST", "/surveys/{survey_id}/answer"): Rule({ADM, OFF, PAR}, "customer:write"),
    ("customer", "GET", "/customers/{customer_id}/surveys"): Rule(ALL, "customer:read", obj="customer"),
    ("customer", "GET", "/satisfaction/trend"): Rule(ALL, "customer:read"),
    ("customer", "GET", "/tasks"): Rule(ALL, "customer:read"),
    ("customer", "POST", "/tasks/{task_id}/completion"): Rule({ADM, OFF, PAR}, "customer:write"),
    ("customer", "POST", "/customers/{customer_id}/tasks"): Rule({ADM, OFF, PAR}, "customer:write"),
    ("customer", "GET", "/customers/{customer_id}/portrait"): Rule(ALL | {BAT}, "customer:read", obj="customer"),
    ("customer", "GET", "/customers/{customer_id}/shared-identifiers"): Rule({ADM, OFF, ANA, CC}, "customer:read",
                                                                              obj="customer"),
    ("customer", "GET", "/segments"): Rule({ADM, OFF}, "customer:read"),
    ("customer", "GET", "/segments/{segment}/members"): Rule({ADM, OFF}, "customer:read"),
    ("customer", "GET", "/clusters"): Rule(ALL, "customer:read"),
    ("customer", "GET", "/customers/{customer_id}/overview"): Rule(ALL, "customer:read", obj="customer"),
    ("customer", "GET", "/products"): Rule(ALL, "customer:read"),
    ("customer", "GET", "/customers/{customer_id}/offers"): Rule(ALL, "customer:read", obj="customer"),
    ("customer", "POST", "/campaigns"): Rule({ADM, OFF}, "customer:write"),
    ("customer", "POST", "/campaigns/{campaign_id}/audience"): Rule({ADM, OFF}, "customer:write"),
    ("customer", "GET", "/campaigns/{campaign_id}/audience"): Rule({ADM, OFF, AUD}, "customer:read"),
    ("customer", "GET", "/campaigns/{campaign_id}/report"): Rule({ADM, OFF, AUD}, "customer:read"),
    ("customer", "GET", "/access-log"): Rule({ADM, AUD}, "audit:read"),
    ("customer", "GET", "/relationship/features"): Rule({ADM, ANA, AUD}, "customer:read"),
    ("customer", "GET", "/customers/{customer_id}/relationship"):
        Rule({ADM, ANA, AUD}, "customer:read", obj="customer", query="?as_of=2026-06-30"),
    ("customer", "GET", "/customers/{customer_id}/loyalty"): Rule({ADM, OFF, ANA, AUD}, "customer:read",
                                                                  obj="customer"),
    ("customer", "GET", "/relationship/loyalty-segments"): Rule({ADM, OFF, ANA, AUD}, "customer:read"),
    ("customer", "GET", "/products/{product_code}/look-alikes"): Rule({ADM, OFF, ANA, AUD}, "customer:read"),
    ("customer", "GET", "/relationship/figures"): Rule({ADM, ANA, AUD}, "customer:read"),
    ("customer", "GET", "/relationship/figures.png"): Rule({ADM, ANA, AUD}, "customer:read"),
    ("customer", "POST", "/relationship/churn-model"): Rule({ADM, ANA}, "customer:read"),
    ("customer", "POST", "/customers/{customer_id}/documents"): Rule({ADM, OFF, PAR}, "customer:write"),
    ("customer", "POST", "/customers/{customer_id}/disclosures"): Rule({ADM, OFF, PAR}, "customer:write"),
    ("customer", "GET", "/customers/{customer_id}/information-sharing"): Rule(ALL, "customer:read",
                                                                              obj="customer"),
    ("customer", "POST", "/customers/{customer_id}/products"): Rule({ADM, OFF}, "customer:write"),
    ("customer", "POST", "/customers/{customer_id}/products/{holding_id}/closure"):
        Rule({ADM, OFF}, "customer:write"),
    ("customer", "GET", "/customers/{customer_id}/products"): Rule(ALL, "customer:read", obj="customer"),
    # scoring
    ("scoring", "GET", "/events"): Rule({SYS}, "events:read"),
    ("scoring", "GET", "/health/live"): PUBLIC,
    ("scoring", "GET", "/health/ready"): PUBLIC,
    ("scoring", "GET", "/metrics"): PUBLIC,
    ("scoring", "GET", "/whoami"): Rule(EVERYONE, None),
    ("scoring", "POST", "/models"): Rule({ADM, ANA}, "scoring:models"),
    ("scoring", "GET", "/models"): Rule({ADM, OFF, ANA, AUD}, "scoring:read"),
    ("scoring", "GET", "/models/{model_id}"): Rule({ADM, OFF, ANA, AUD}, "scoring:read"),
    ("scoring", "GET", "/models/{model_id}/card"): Rule({ADM, OFF, ANA, AUD}, "scoring:read"),
    ("scoring", "POST", "/models/{model_id}/validation"): Rule({ADM, ANA}, "scoring:models"),
    ("scoring", "POST", "/models/{model_id}/promotion"): Rule({ADM, ANA}, "scoring:models"),
    ("scoring", "POST", "/models/{model_id}/retirement"): Rule({ADM, ANA}, "scoring:models"),
    ("scoring", "POST", "/models/champion/rollback"): Rule({ADM, ANA}, "scoring:models"),
    ("scoring", "GET", "/models/champion/current"): Rule({ADM, OFF, ANA, AUD}, "scoring:read"),
    ("scoring", "POST", "/scores"): Rule({ADM, OFF, ANA, PAR}, "scoring:write"),
    ("scoring", "POST", "/scores:batch"): Rule({ADM, OFF, ANA, PAR, BAT}, "scoring:write"),
    ("scoring", "GET", "/scores/{score_id}"): Rule({ADM, OFF, ANA, AUD, PAR}, "scoring:read"),
    ("scoring", "GET", "/scores"): Rule({ADM, OFF, ANA, AUD, PAR, BAT}, "scoring:read"),
    ("scoring", "GET", "/stability"): Rule({ADM, ANA, AUD}, "scoring:read"),
    ("scoring", "POST", "/studies/relationship"): Rule({ADM, ANA}, "scoring:write"),
    ("scoring", "GET", "/studies/relationship/{study_id}"): Rule({ADM, ANA, AUD}, "scoring:read"),
    ("scoring", "GET", "/studies/relationship/{study_id}/chart.png"): Rule({ADM, ANA, AUD}, "scoring:read"),
    ("scoring", "POST", "/applications"): Rule({ADM, OFF, PAR}, "scoring:write"),
    ("scoring", "GET", "/applications"): Rule({ADM, OFF, ANA, AUD, PAR, CC}, "scoring:read"),
    ("scoring", "GET", "/applications/{application_id}"): Rule({ADM, OFF, ANA, AUD, PAR, CC}, "scoring:read"),
    ("scoring", "POST", "/applications/{application_id}/decision"): Rule({ADM, OFF, ANA, CC}, "scoring:write"),
    ("scoring", "POST", "/applications/{application_id}/disbursement"): Rule({ADM, OFF}, "scoring:write"),
    ("scoring", "POST", "/applications/{application_id}/screening/clearance"): Rule({ADM, ANA, CC}, "scoring:write"),
    ("scoring", "POST", "/applications/{application_id}/screening/confirmation"): Rule({ADM, ANA, CC},
                                                                                       "scoring:write"),
    ("scoring", "PUT", "/applications/{application_id}/disclosure"): Rule({ADM, OFF}, "scoring:write"),
    ("scoring", "GET", "/applications/{application_id}/disclosure"): Rule({ADM, OFF, ANA, AUD, PAR, CC},
                                                                          "scoring:read"),
    ("scoring", "POST", "/applications/{application_id}/disclosure/acknowledgement"): Rule({ADM, OFF},
                                                                                          "scoring:write"),
    # Scoped by the score's branch (test_care.py): the matrix's customers have no score to be seen.
    ("scoring", "GET", "/customers/{customer_id}/evaluation"): Rule({ADM, OFF, ANA, AUD, PAR}, "scoring:read"),
    # monitoring
    ("monitoring", "GET", "/events"): Rule({SYS}, "events:read"),
    ("monitoring", "GET", "/health/live"): PUBLIC,
    ("monitoring", "GET", "/health/ready"): PUBLIC,
    ("monitoring", "GET", "/metrics"): PUBLIC,
    ("monitoring", "GET", "/whoami"): Rule(EVERYONE, None),
    ("monitoring", "POST", "/loans/schedule-preview"): Rule(STAFF, "monitoring:read"),
    ("monitoring", "POST", "/loans"): Rule({ADM, OFF}, "monitoring:write"),
    ("monitoring", "GET", "/loans"): Rule(STAFF | {BAT}, "monitoring:read"),
    ("monitoring", "GET", "/loans/{loan_id}"): Rule(STAFF, "monitoring:read", obj="loan"),
    ("monitoring", "GET", "/loans/outcomes"): Rule({ADM, ANA, AUD}, "monitoring:read"),
    ("monitoring", "POST", "/loans/{loan_id}/repayments"): Rule({ADM, OFF}, "monitoring:write"),
    ("monitoring", "POST", "/postings/{posting_id}/reversal"): Rule({ADM, OFF}, "monitoring:write"),
    ("monitoring", "POST", "/repayment-files"): Rule({ADM, OFF}, "monitoring:write"),
    ("monitoring", "GET", "/repayment-files/{file_id}"): Rule({ADM, OFF}, "monitoring:read"),
    ("monitoring", "GET", "/repayment-files/{file_id}/errors"): Rule({ADM, OFF}, "monitoring:read"),
    ("monitoring", "POST", "/repayment-files/{file_id}/resume"): Rule({ADM, OFF}, "monitoring:write"),
    ("monitoring", "GET", "/loans/{loan_id}/postings"): Rule(STAFF, "monitoring:read", obj="loan"),
    ("monitoring", "GET", "/loans/{loan_id}/balance-check"): Rule(STAFF, "monitoring:read", obj="loan"),
    ("monitoring", "GET", "/loans/{loan_id}/history"): Rule(STAFF, "monitoring:read", obj="loan"),
    ("monitoring", "POST", "/loans/{loan_id}/delinquency-pauses"): Rule({ADM, OFF, ANA}, "monitoring:write"),
    ("monitoring", "POST", "/loans/{loan_id}/waivers"): Rule({ADM, OFF, ANA}, "monitoring:write"),
    ("monitoring", "POST", "/loans/{loan_id}/write-off"): Rule({ADM, OFF, ANA}, "monitoring:write"),
    # The credit committee reads the checkers' queue and approves hardship plans, deferrals and recalls.
    ("monitoring", "GET", "/change-requests"): Rule(STAFF | {CC}, "monitoring:read"),
    ("monitoring", "GET", "/change-requests/{request_id}"): Rule(STAFF | {CC}, "monitoring:read"),
    ("monitoring", "POST", "/change-requests/{request_id}/decision"): Rule({ADM, ANA, CC}, "monitoring:write"),
    # Hardship (README "Hardship, early recall and asset preservation"): loan officers and collectors propose.
    ("monitoring", "POST", "/loans/{loan_id}/repayment-plans"): Rule({ADM, OFF, COL}, "monitoring:write"),
    ("monitoring", "POST", "/loans/{loan_id}/deferrals"): Rule({ADM, OFF, COL}, "monitoring:write"),
    ("monitoring", "POST", "/loans/{loan_id}/early-recall"): Rule({ADM, OFF, COL}, "monitoring:write"),
    ("monitoring", "GET", "/loans/{loan_id}/hardship"): Rule(STAFF | {CC}, "monitoring:read", obj="loan"),
    ("monitoring", "POST", "/collection-actions/{action_id}/preservation-steps"): Rule({ADM, OFF, COL},
                                                                                      "monitoring:write"),
    ("monitoring", "GET", "/collection-actions/{action_id}/preservation-steps"): Rule(STAFF, "monitoring:read"),
    # Collateral and guarantees (README "Collateral and guarantees").
    ("monitoring", "POST", "/loans/{loan_id}/collateral"): Rule({ADM, OFF, ANA}, "monitoring:write"),
    ("monitoring", "GET", "/loans/{loan_id}/collateral"): Rule(STAFF, "monitoring:read", obj="loan"),
    ("monitoring", "GET", "/loans/{loan_id}/expected-loss"): Rule(STAFF, "monitoring:read", obj="loan"),
    ("monitoring", "POST", "/collateral/{collateral_id}/valuations"): Rule({ADM, OFF, ANA}, "monitoring:write"),
    ("monitoring", "GET", "/collateral/{collateral_id}/valuations"): Rule(STAFF, "monitoring:read"),
    ("monitoring", "GET", "/collateral/overdue-revaluations"): Rule(STAFF, "monitoring:read"),
    ("monitoring", "GET", "/loans/{loan_id}/delinquency-pauses"): Rule(STAFF, "monitoring:read", obj="loan"),
    ("monitoring", "POST", "/loans/{loan_id}/class-overrides"): Rule({ADM, OFF, ANA}, "monitoring:write"),
    ("monitoring", "POST", "/class-overrides/{override_id}/decision"): Rule({ADM, ANA}, "monitoring:write"),
    ("monitoring", "GET", "/loans/{loan_id}/class-overrides"): Rule(STAFF, "monitoring:read", obj="loan"),
    ("monitoring", "POST", "/loans/{loan_id}/restructuring"): Rule({ADM, OFF, ANA}, "monitoring:write"),
    ("monitoring", "POST", "/cob/runs"): Rule({ADM}, "monitoring:write"),
    ("monitoring", "GET", "/cob/runs/{business_date}"): Rule(STAFF, "monitoring:read"),
    ("monitoring", "GET", "/business-date"): Rule(STAFF, "monitoring:read"),
    ("monitoring", "GET", "/alerts"): Rule(STAFF, "monitoring:read"),
    ("monitoring", "GET", "/alerts/{alert_id}/events"): Rule(STAFF, "monitoring:read"),
    ("monitoring", "POST", "/alerts/{alert_id}/acknowledge"): Rule({ADM, OFF, COL}, "monitoring:write"),
    ("monitoring", "POST", "/alerts/{alert_id}/start"): Rule({ADM, OFF, COL}, "monitoring:write"),
    ("monitoring", "POST", "/alerts/{alert_id}/resolve"): Rule({ADM, OFF, COL}, "monitoring:write"),
    ("monitoring", "POST", "/alerts/{alert_id}/dismiss"): Rule({ADM, OFF, COL}, "monitoring:write"),
    ("monitoring", "GET", "/rules"): Rule(STAFF, "monitoring:read"),
    ("monitoring", "POST", "/rules"): Rule({ADM, ANA}, "monitoring:write"),
    ("monitoring", "PUT", "/rules/{code}"): Rule({ADM, ANA}, "monitoring:write"),
    ("monitoring", "GET", "/rules/{code}/review"): Rule({ADM, ANA, AUD}, "monitoring:read"),
    ("monitoring", "GET", "/rules/review"): Rule({ADM, ANA, AUD}, "monitoring:read"),
    ("monitoring", "POST", "/feeds/bureau/imports"): Rule({ADM, ANA}, "monitoring:write"),
    ("monitoring", "POST", "/feeds/legal/imports"): Rule({ADM, ANA}, "monitoring:write"),
    ("monitoring", "POST", "/feeds/financials/imports"): Rule({ADM, ANA}, "monitoring:write"),
    ("monitoring", "GET", "/feeds/imports"): Rule({ADM, ANA, AUD}, "monitoring:read"),
    ("monitoring", "GET", "/feeds/imports/{import_id}"): Rule({ADM, ANA, AUD}, "monitoring:read"),
    ("monitoring", "GET", "/feeds/imports/{import_id}/errors"): Rule({ADM, ANA, AUD}, "monitoring:read"),
    ("monitoring", "POST", "/loans/{loan_id}/collection-actions"): Rule({ADM, OFF, COL}, "monitoring:write"),
    ("monitoring", "GET", "/loans/{loan_id}/collection-actions"): Rule(STAFF, "monitoring:read", obj="loan"),
    ("monitoring", "GET", "/collections/queue"): Rule({ADM, OFF, COL}, "monitoring:read"),
    ("monitoring", "GET", "/collections/queue/{item_id}"): Rule({ADM, OFF, COL}, "monitoring:read"),
    ("monitoring", "GET", "/customers/{customer_id}/risk"): Rule(STAFF | {BAT}, "monitoring:read", obj="customer"),
    ("monitoring", "GET", "/customers/{customer_id}/screening-facts"): Rule({ADM, OFF, ANA, CC}, "monitoring:read",
                                                                           obj="customer"),
    ("monitoring", "GET", "/checks"): Rule(STAFF, "monitoring:read"),
    ("monitoring", "GET", "/reminder-schedules"): Rule(STAFF, "monitoring:read"),
    ("monitoring", "PUT", "/reminder-schedules/{product}/{grade}"): Rule({ADM, ANA}, "monitoring:write"),
    ("monitoring", "GET", "/reminders"): Rule(STAFF, "monitoring:read"),
    ("monitoring", "POST", "/checks/{check_id}/complete"): Rule({ADM, OFF}, "monitoring:write"),
    ("monitoring", "GET", "/portfolio/figures"): Rule(STAFF, "monitoring:read"),
    ("monitoring", "GET", "/portfolio/roll-rates"): Rule(STAFF, "monitoring:read"),
    ("monitoring", "GET", "/portfolio/vintages"): Rule(STAFF, "monitoring:read"),
    ("monitoring", "GET", "/portfolio/charts/{chart}.png"): Rule(STAFF, "monitoring:read"),
    ("monitoring", "POST", "/transactions:batch"): Rule({ADM, OFF}, "monitoring:write"),
}

SERVICES = ("gateway", "customer", "scoring", "monitoring")
# What a path parameter is filled with for role-gate probes: nothing that exists.
PROBE_VALUES = {"purpose": "marketing", "segment": "high_value", "chart": "buckets", "business_date": "2026-01-02",
                "code": "no_such_rule"}
FORBIDDEN, UNAUTHORIZED = 403, 401


def _fill(path: str, values: dict[str, str] | None = None) -> str:
    values = values or {}
    return re.sub(r"{(\w+)}", lambda m: values.get(m.group(1), PROBE_VALUES.get(m.group(1), "0" * 32)), path)


class Matrix:
    """The suite's callers (one user per role, tokens narrowed on demand) and the objects of two scopes."""

    def __init__(self, suite) -> None:  # noqa: ANN001
        self.suite = suite
        tag = uuid.uuid4().hex[:6]
        self.branch, self.other_branch = f"MXA{tag}", f"MXB{tag}"
        self.users: dict[str, str] = {}
        for role in Role:
            name = f"mx.{role.value}.{tag}"
            suite.add_user(name, [role.value], self.branch if role is OFF else None)
            self.users[role.value] = name
        self.partner = self.users[PAR.value]
        self.other_officer = f"mx.officer.b.{tag}"
        suite.add_user(self.other_officer, [OFF.value], self.other_branch)
        # A loan officer whose token names no branch (e.g. created before the rule): sees nothing.
        self.branchless = f"mx.officer.none.{tag}"
        suite.add_user(self.branchless, [OFF.value], self.branch)
        with suite.database("gateway").session() as session:
            session.execute(update(User).where(User.username == self.branchless).values(branch=None))
            session.commit()
        self._tokens: dict[tuple[str, str], str] = {}
        admin = suite.headers("admin")
        customer = suite.direct["customer"]
        # Own scope (officer A's branch, referred by the partner) and another's (branch B).
        own = customer.post("/customers", json=person(branch=self.branch), headers={
            **self.headers(self.partner), "Idempotency-Key": uuid.uuid4().hex})
        other = customer.post("/customers", json=person(branch=self.other_branch), headers={
            **admin, "Idempotency-Key": uuid.uuid4().hex})
        assert own.status_code == other.status_code == 201, (own.text, other.text)
        self.customers = {"own": own.json()["id"], "other": other.json()["id"]}
        self.loans = {
            "own": self._loan(self.customers["own"], self.branch, self.users[OFF.value]),
            "other": self._loan(self.customers["other"], self.other_branch, self.other_officer),
        }

    def _loan(self, customer_id: str, branch: str, officer: str) -> str:
        body = {"customer_id": customer_id, "product": "personal_loan", "principal": "12000.00",
                "annual_rate": "0.12", "term_months": 12, "repayment_method": "equal_instalment",
                "disbursement_date": date.today().replace(day=1).isoformat(), "purpose": "working capital",
                "branch": branch}
        response = self.suite.direct["monitoring"].post("/loans", json=body, headers={
            **self.headers(officer), "Idempotency-Key": uuid.uuid4().hex})
        assert response.status_code == 201, response.text
        return response.json()["id"]

    def token(self, username: str) -> str:
        if (username, "") not in self._tokens:
            password = ADMIN_PASSWORD if username == "admin" else PASSWORD
            response = self.suite.client.post("/auth/token", data={"username": username, "password": password})
            assert response.status_code == 200, response.text
            self._tokens[username, ""] = response.json()["access_token"]
        return self._tokens[username, ""]

    def headers(self, username: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(username)}"}

    def narrowed(self, role: Role, scope: str) -> dict[str, str]:
        """A token of `role` asked for with only `scope` (one user per pair: sign-ins per user are throttled)."""
        if (role.value, scope) not in self._tokens:
            name = f"mx.{role.value}.{scope.replace(':', '.')}.{self.branch.lower()}"
            self.suite.add_user(name, [role.value], self.branch if role is OFF else None)
            response = self.suite.client.post("/auth/token", data={"username": name, "password": PASSWORD,
                                                                   "scope": scope})
            assert response.status_code == 200, response.text
            assert response.json()["scope"] == scope
            self._tokens[role.value, scope] = response.json()["access_token"]
        return {"Authorization": f"Bearer {self._tokens[role.value, scope]}"}

    def call(self, service: str, method: str, path: str, headers: dict[str, str], via_gateway: bool,
             json: object = None):  # noqa: ANN201
        if service == "gateway":
            client, url = self.suite.client, path
        elif via_gateway:
            client, url = self.suite.client, f"/api/{service}{path}"
        else:
            client, url = self.suite.direct[service], path
        body = {} if json is None and method in ("POST", "PUT", "PATCH") else json
        return client.request(method, url, headers=headers, json=body)


@pytest.fixture(scope="module")
def matrix(suite) -> Matrix:  # noqa: ANN001
    return Matrix(suite)


def _routes(service: str) -> list[tuple[str, str, Rule]]:
    return [(method, path, rule) for (svc, method, path), rule in TABLE.items() if svc == service]


def _report(failures: list[str]) -> None:
    assert not failures, f"{len(failures)} cells differ from TABLE:\n" + "\n".join(failures[:40])


def test_every_route_has_a_declared_rule(suite) -> None:  # noqa: ANN001
    published = set()
    for service in SERVICES:
        spec = suite.client.get("/openapi.json") if service == "gateway" else suite.direct[service].get("/openapi.json")
        for path, operations in spec.json()["paths"].items():
            published |= {(service, method.upper(), path) for method in operations
                          if method in ("get", "post", "put", "patch", "delete")}
    assert sorted(published - TABLE.keys()) == [], "routes without a rule in TABLE: decide who may call them"
    assert sorted(TABLE.keys() - published) == [], "rules for routes that no longer exist"


def test_no_role_asks_for_a_scope_it_cannot_have() -> None:
    # A rule naming a role that may not hold any of the route's scopes would be a route that role can never use.
    for key, rule in TABLE.items():
        for role in rule.roles or ():
            assert not rule.needed or set(rule.needed) & ROLE_SCOPES[role], (key, role)


@pytest.mark.parametrize("service", SERVICES)
def test_role_gates(matrix: Matrix, service: str) -> None:
    failures = []
    for method, path, rule in _routes(service):
        url = _fill(path)
        for via_gateway in (False, True) if service != "gateway" else (True,):
            if rule.roles is None:
                if via_gateway and service != "gateway":
                    continue  # the gateway forwards only callers with a token; its own public routes are probed
                answer = matrix.call(service, method, url, {}, via_gateway)
                if answer.status_code in (UNAUTHORIZED, FORBIDDEN):
                    failures.append(f"{method} {path} (public) via_gateway={via_gateway}: {answer.status_code}")
                continue
            for role in Role:
                answer = matrix.call(service, method, url, matrix.headers(matrix.users[role.value]), via_gateway)
                allowed = role in rule.roles
                if (answer.status_code == FORBIDDEN) == allowed or answer.status_code == UNAUTHORIZED:
                    failures.append(f"{method} {path} as {role.value} via_gateway={via_gateway}: "
                                    f"{answer.status_code}, expected {'allowed' if allowed else 403}")
    _report(failures)


@pytest.mark.parametrize("service", SERVICES)
def test_forged_and_narrowed_tokens(matrix: Matrix, service: str) -> None:
    admin = matrix.token("admin")
    header, claims, signature = admin.split(".")
    forged = f"{header}.{claims}.{signature[:-4]}{'AAAA' if signature[-4:] != 'AAAA' else 'BBBB'}"
    failures = []
    for method, path, rule in _routes(service):
        if rule.roles is None:
            continue
        url = _fill(path)
        # The narrowest token an allowed role can ask for that lacks every scope the route needs, and the one
        # that holds exactly the first of them.
        role = ADM if ADM in rule.roles else min(rule.roles)
        spare = sorted(ROLE_SCOPES[role] - set(rule.needed))
        cells = [("forged", {"Authorization": f"Bearer {forged}"}, UNAUTHORIZED),
                 ("no token", {}, UNAUTHORIZED)]
        if rule.needed and spare:  # a role holding no other scope (system) cannot narrow away from it
            cells.append((f"scope={spare[0]}", matrix.narrowed(role, spare[0]), FORBIDDEN))
        if rule.needed:
            cells.append((f"scope={rule.needed[0]}", matrix.narrowed(role, rule.needed[0]), None))
        for via_gateway in (False, True) if service != "gateway" else (True,):
            for label, headers, expected in cells:
                status = matrix.call(service, method, url, headers, via_gateway).status_code
                if (expected is None and status in (UNAUTHORIZED, FORBIDDEN)) or \
                        (expected is not None and status != expected):
                    failures.append(f"{method} {path} {label} via_gateway={via_gateway}: {status}, "
                                    f"expected {expected or 'allowed'}")
    _report(failures)


def test_scoped_objects_answer_404_outside_the_callers_scope(matrix: Matrix) -> None:
    """Each GET of a customer or a loan, for the callers whose scope is narrower than the bank: a loan officer
    (its branch), a partner (its referrals) and a loan officer without a branch (nothing); wider roles see both."""
    objects = {"customer": matrix.customers, "loan": matrix.loans}
    callers = {
        "officer": (matrix.users[OFF.value], OFF, {"own": True, "other": False}),
        "partner": (matrix.partner, PAR, {"own": True, "other": False}),
        "branchless officer": (matrix.branchless, OFF, {"own": False, "other": False}),
        **{role.value: (matrix.users[role.value], role, {"own": True, "other": True})
           for role in (ANA, COL, AUD)},
    }
    failures = []
    for (service, method, path), rule in TABLE.items():
        if rule.obj is None:
            continue
        for label, (user, role, sees) in callers.items():
            if role not in rule.roles:
                continue
            for which, visible in sees.items():
                url = _fill(path, {f"{rule.obj}_id": objects[rule.obj][which]}) + rule.query
                for via_gateway in (False, True):
                    status = matrix.call(service, method, url, matrix.headers(user), via_gateway).status_code
                    if (status == 404) == visible or status in (UNAUTHORIZED, FORBIDDEN):
                        failures.append(f"{method} {path} as {label} on the {which} {rule.obj} "
                                        f"via_gateway={via_gateway}: {status}, expected {'seen' if visible else 404}")
    _report(failures)


def test_writes_on_objects_outside_the_callers_scope_answer_404(matrix: Matrix) -> None:
    """A representative write per scoped object, with a body that passes validation."""
    contact = {"channel": "phone", "direction": "outbound", "purpose": "service", "outcome": "reached",
               "occurred_at": "2026-01-05T10:00:00Z"}
    repayment = {"amount": "100.00"}
    writes = [("customer", "/customers/{id}/interactions", matrix.customers, contact),
              ("monitoring", "/loans/{id}/repayments", matrix.loans, repayment)]
    failures = []
    for service, path, objects, body in writes:
        for user, which in ((matrix.users[OFF.value], "other"), (matrix.branchless, "own"),
                            (matrix.branchless, "other")) + (((matrix.partner, "other"),)
                                                              if service == "customer" else ()):
            for via_gateway in (False, True):
                answer = matrix.call(service, "POST", path.replace("{id}", objects[which]), {
                    **matrix.headers(user), "Idempotency-Key": uuid.uuid4().hex}, via_gateway, json=body)
                if answer.status_code != 404:
                    failures.append(f"POST {path} by {user} on the {which} object via_gateway={via_gateway}: "
                                    f"{answer.status_code} {answer.text[:120]}")
        own = matrix.call(service, "POST", path.replace("{id}", objects["own"]), {
            **matrix.headers(matrix.users[OFF.value]), "Idempotency-Key": uuid.uuid4().hex}, False, json=body)
        if own.status_code != 201:
            failures.append(f"POST {path} by the officer on its own object: {own.status_code} {own.text[:200]}")
    _report(failures)


def test_lists_hold_only_what_the_caller_may_see(matrix: Matrix) -> None:
    """The lists over scoped records: the officer's own object is listed, the other branch's never, and an officer
    without a branch lists nothing."""
    lists = [  # (service, path, params, the id of the listed record of each customer's, how to read the ids)
        ("customer", "/customers", {"limit": 500}, matrix.customers, lambda body: {i["id"] for i in body["items"]}),
        ("monitoring", "/loans", {"limit": 500}, matrix.loans, lambda body: {i["id"] for i in body["items"]}),
        ("monitoring", "/checks", {"limit": 500}, matrix.loans, lambda body: {i["loan_id"] for i in body["items"]}),
        ("monitoring", "/portfolio/figures", {"group_by": "branch"}, {"own": matrix.branch, "other":
                                                                      matrix.other_branch},
         lambda body: {g["group"] for g in body["groups"]}),
    ]
    failures = []
    for service, path, params, objects, ids in lists:
        for user, expected in ((matrix.users[OFF.value], {"own"}), (matrix.branchless, set())):
            for via_gateway in (False, True):
                url = f"{path}?" + "&".join(f"{k}={v}" for k, v in params.items())
                answer = matrix.call(service, "GET", url, matrix.headers(user), via_gateway)
                assert answer.status_code == 200, (path, answer.text)
                listed = {which for which in ("own", "other") if objects[which] in ids(answer.json())}
                if listed != expected:
                    failures.append(f"GET {path} by {user} via_gateway={via_gateway}: lists {listed or 'nothing'}, "
                                    f"expected {expected or 'nothing'}")
    _report(failures)
