"""One chunk of a generated portfolio: customers, holdings, applications with their scores, loans with their
history, the account-transactions feed, and the ground truth of what was planted. Pure: no database here.

Everything about customer `g` is drawn from one random stream per chunk seeded by (seed, chunk), so a chunk built
twice is the same chunk (resuming rebuilds the interrupted one) and a chunk needs nothing from any other (memory
stays flat however many there are). The service rules that decide stored values are the services' own:
the customer service seals personal data (`customer_row`), the champion scores (`champion_rows`), the policy
grades and decides, monitoring's schedule, allocation and risk rules give the instalments, splits and states.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from loancrm.demo import BRANCHES, DEMO_USERS, national_id
from loancrm.hindsight import Hindsight, LoanLife, at
from services.customer.customers.models import CustomerCreate
from services.customer.customers.service import customer_row, sealed_field
from services.monitoring.classification.rules import ChangeCause, diff_states
from services.monitoring.delinquency.service import assess, class_name, history_rows, state_thresholds
from services.monitoring.loans.allocation import DueItem, allocate
from services.monitoring.loans.money import to_cents
from services.monitoring.loans.products import policy
from services.monitoring.loans.schedule import Rounding, generate_schedule
from services.monitoring.outcomes.models import DEFAULT_DPD
from services.monitoring.rules.models import OUTSIDE_KINDS
from services.monitoring.settings import MonitoringSettings
from services.monitoring.transactions.service import account_digest, feed_row
from services.scoring.applications.service import first_decision
from services.scoring.registry.serving import Served
from services.scoring.screening.service import identifier_hashes
from services.scoring.scores.contract import CheckedRow
from services.scoring.scores.service import Applicant, ScoringContext, champion_rows
from shared.auth.tokens import Principal
from shared.pii import PiiVault

FEED = "core-banking"  # who the account-transactions feed is recorded by
BUREAU = "credit-bureau"  # who uploaded the bureau's records
PD_PLACES = Decimal("0.000001")
_CITY = {"BJ001": "Beijing", "SH002": "Shanghai", "SZ004": "Shenzhen"}
# 30 birth regions x 1,000 serials per birth date: `_identity` maps a customer's number to a unique ID.
_REGIONS = tuple(f"{p}{n:02d}" for p in ("1101", "3101", "4403") for n in range(1, 11))
_SERIALS = 1000
_PER_DAY = len(_REGIONS) * _SERIALS
_DAYS = 14_600  # birth dates over 40 years
_SURNAMES = ("Wang", "Li", "Zhang", "Liu", "Chen", "Yang", "Zhao", "Huang", "Zhou", "Wu", "Xu", "Sun", "Ma", "Zhu",
             "Hu", "Guo", "He", "Lin", "Gao", "Luo")
_GIVEN = ("Wei", "Fang", "Na", "Min", "Jing", "Lei", "Yang", "Jun", "Hui", "Tao", "Ping", "Xin", "Qiang", "Yan",
          "Hao", "Ling", "Bo", "Yu", "Chen", "Rui")
_ESTATE_WORDS = ("Sunshine", "Peony", "Riverside", "Jade", "Harmony", "Lotus", "Golden", "Maple", "Pearl", "Cedar")
_ESTATE_KINDS = ("Garden", "Court", "Park", "Residence", "Village")
_OCCUPATIONS = ("engineer", "teacher", "shop owner", "driver", "nurse", "accountant", "civil servant", "sales",
                "doctor", "farmer", "factory worker", "designer")
_MERCHANTS = ("Lianhua Supermarket", "Suning", "JD Store", "Metro Cash", "Sinopec", "Haidilao", "Wanda Cinema")
_CASH_OUT_MERCHANTS = ("Jinxin Trading Co", "Huifeng Electronics", "Ruida Goods Ltd")  # POS terminals that pay back
_HOLDINGS = ("DEP-PLUS", "WEALTH-1", "CARD-STD", "PAYROLL", "INSURE-LIFE")
# (product, share of applications, amounts, terms in months)
_PRODUCTS = (("personal_loan", 0.70, (5_000, 90_000), (12, 24, 36)),
             ("credit_card", 0.12, (2_000, 40_000), (12,)),
             ("business_loan", 0.08, (30_000, 90_000), (24, 36)),
             ("mortgage", 0.10, (150_000, 1_200_000), (60,)))
_LATE = {"A": 0.02, "B": 0.04, "C": 0.08, "D": 0.14, "E": 0.2}  # chance an instalment is paid late, by grade


def officers() -> dict[str, str]:
    """The demo's loan officer of each branch: whose name generated writes of that branch carry."""
    found: dict[str, str] = {}
    for name, (roles, branch) in DEMO_USERS.items():
        if roles == ["loan_officer"] and branch and branch not in found:
            found[branch] = name
    return found


@dataclass(frozen=True)
class Plan:
    """What every chunk of one generation shares."""

    seed: int
    customers: int
    chunk_size: int
    as_of: date
    feed_months: int = 6
    history_months: int = 24

    @property
    def chunks(self) -> int:
        return -(-self.customers // self.chunk_size)

    def span(self, chunk: int) -> range:
        return range(chunk * self.chunk_size, min(self.customers, (chunk + 1) * self.chunk_size))


@dataclass
class Rows:
    """Everything one chunk writes, by service and table, and its ground truth."""

    customer: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: {"customers": [], "product_holdings": []})
    scoring: dict[str, list[dict[str, Any]]] = field(
        default_factory=lambda: {"scores": [], "applications": [], "application_events": []})
    monitoring: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: {
        "loans": [], "instalments": [], "postings": [], "risk_changes": [], "account_transactions": [],
        "feed_imports": [], "feed_bureau_records": [], "alerts": [], "alert_events": []})
    truth: list[dict[str, Any]] = field(default_factory=list)
    bureau: list[dict[str, Any]] = field(default_factory=list)  # the outside feed of overdue records elsewhere


@dataclass
class _Person:
    number: int
    id: str
    branch: str
    account: str
    since: date
    holdings: int
    address: str
    estate: str
    income: Decimal
    applies: bool


@dataclass
class _Loan:
    person: _Person
    row: dict[str, Any]
    dues: list[Any]
    paid_on: list[date | None]
    first_missed: int | None


class ChunkBuilder:
    def __init__(self, plan: Plan, vault: PiiVault, served: Served, context: ScoringContext,
                 german: Sequence[dict[str, Any]], monitoring: MonitoringSettings, rules: Sequence[Any],
                 payer_vault: PiiVault) -> None:
        """`vault` seals the customers' personal data, `payer_vault` the feed's payer accounts (monitoring's keys)."""
        self.plan, self.vault, self.served, self.context = plan, vault, served, context
        self.payer_vault = payer_vault
        self.german, self.monitoring, self.rules = german, monitoring, rules
        self.officers = officers()
        self.thresholds = state_thresholds()

    # -- plumbing --------------------------------------------------------------------------------------------
    def build(self, chunk: int) -> Rows:
        rng = random.Random(f"{self.plan.seed}:{chunk}")
        self.rng, self.rows, self.chunk = rng, Rows(), chunk
        self._ids = random.Random(f"{self.plan.seed}:{chunk}:ids")  # ids apart, so behaviour draws never shift
        self.hindsight = Hindsight(self.rules, self.plan.as_of, self.officers)
        self.lives: dict[str, LoanLife] = {}
        people = [self._person(g) for g in self.plan.span(chunk)]
        loans = self._lend([p for p in people if p.applies])
        self._plant(people, loans)
        for loan in loans:
            self._book(loan)
        self._warn()
        return self.rows

    def new_id(self) -> str:
        # uuid4's layout (version 4, RFC 4122 variant) from the seeded stream.
        bits = self._ids.getrandbits(128) & ~(0xF << 76) & ~(0x3 << 62)
        return f"{bits | 0x4 << 76 | 0x2 << 62:032x}"

    def _truth(self, kind: str, **what: Any) -> None:
        self.rows.truth.append({"chunk": self.chunk, "kind": kind, **what})

    def _day(self, start: date, end: date) -> date:
        return start + timedelta(days=self.rng.randrange(max(1, (end - start).days)))

    _at = staticmethod(at)

    # -- customers -------------------------------------------------------------------------------------------
    def _identity(self, g: int) -> tuple[date, str]:
        """A birth date and resident ID unique to customer `g` (bijective: (g mod 30,000) picks region and serial,
        the quotient a birth date no other customer of that region and serial has)."""
        slot, day = g % _PER_DAY, g // _PER_DAY
        if day >= _DAYS:
            raise ValueError(f"at most {_PER_DAY * _DAYS:,} customers")
        born = date(1961, 1, 1) + timedelta(days=(day * 7919 + slot * 104_729 + self.plan.seed) % _DAYS)
        return born, national_id(born, slot % _SERIALS, _REGIONS[slot // _SERIALS])

    def _phone(self, g: int) -> str:
        # 3^18 is prime to 10^9: a bijection of the customer's number, shifted by the seed.
        return f"15{(g * 387_420_489 + self.plan.seed * 7_919) % 10**9:09d}"

    def _estate(self, branch: str, k: int) -> str:
        return (f"{_ESTATE_WORDS[k % len(_ESTATE_WORDS)]} {_ESTATE_KINDS[(k // 10) % len(_ESTATE_KINDS)]} "
                f"{k // 50 + 1}, {_CITY[branch]}")

    def _person(self, g: int) -> _Person:
        rng, plan = self.rng, self.plan
        branch = BRANCHES[g % len(BRANCHES)]
        officer = self.officers[branch]
        born, resident_id = self._identity(g)
        estate = self._estate(branch, rng.randrange(400))
        address = f"{rng.randrange(1, 40)}-{rng.randrange(1, 30)}0{rng.randrange(1, 6)} {estate}"
        since = plan.as_of - timedelta(days=rng.randrange(60, 15 * 365))
        income = Decimal(rng.choice((4, 6, 8, 10, 12, 15, 18, 22, 30, 45, 60)) * 1000 + rng.randrange(10) * 100)
        name = f"{rng.choice(_SURNAMES)} {rng.choice(_GIVEN)}"
        body = {
            "kind": "individual", "name": name, "date_of_birth": born, "national_id": resident_id,
            "phone": self._phone(g), "branch": branch, "address": address,
            "email": f"{name.replace(' ', '.').lower()}.{g}@example.com" if rng.random() < 0.6 else None,
            "monthly_income": f"{income}.00", "occupation": rng.choice(_OCCUPATIONS),
            "education": rng.choice(("secondary", "vocational", "bachelor", "bachelor", "master")),
            "marital_status": rng.choice(("single", "married", "married", "divorced")),
            "household_size": rng.randrange(1, 6), "region": _CITY[branch],
            "acquisition_channel": rng.choice(("branch", "app", "web", "referral", "campaign")),
            "external_id": f"gen-{plan.seed}-{g}",
        }
        principal = Principal(sub=officer, roles=("loan_officer",), branch=branch, scopes=frozenset(), jti="gen",
                              expires_at=0)
        person = _Person(g, self.new_id(), branch, f"6222{g:012d}", since, 0, address, estate, income,
                         applies=g % self.plan.chunk_size == 0 or rng.random() < 0.8)
        self._customer(person, body, principal)
        return person

    def _customer(self, person: _Person, body: dict[str, Any], principal: Principal) -> None:
        command = CustomerCreate.model_validate(body)  # the registration's own checks, as the API applies them
        row = customer_row(self.vault, command, principal, person.branch, row_id=person.id,
                           at=self._at(person.since))
        self.rows.customer["customers"].append(row)
        holdings = self.rows.customer["product_holdings"]
        for code in self.rng.sample(_HOLDINGS, self.rng.randrange(0, 4)):
            opened = self._day(person.since, self.plan.as_of)
            holdings.append({"id": self.new_id(), "customer_id": person.id, "product_code": code,
                             "opened_on": opened, "closed_on": None, "recorded_by": principal.sub,
                             "created_at": self._at(opened, 11)})
            person.holdings += 1

    def _relationship(self, person: _Person) -> float:
        """How much the relationship lowers risk: more products held and a longer tenure, less default."""
        years = (self.plan.as_of - person.since).days / 365
        return max(0.35, 1.3 - 0.15 * person.holdings - 0.03 * years)

    # -- applications and scores -----------------------------------------------------------------------------
    def _lend(self, applicants: list[_Person]) -> list[_Loan]:
        rng, plan = self.rng, self.plan
        asks = []
        for person in applicants:
            pick = rng.random()
            for product, share, amounts, terms in _PRODUCTS:
                pick -= share
                if pick < 0:
                    break
            amount = Decimal(rng.randrange(amounts[0] // 1000, amounts[1] // 1000 + 1) * 1000)
            applied = self._day(max(person.since, plan.as_of - timedelta(days=30 * plan.history_months)),
                                plan.as_of - timedelta(days=35))
            asks.append((person, product, amount, rng.choice(terms), applied,
                         dict(self.german[rng.randrange(len(self.german))])))
        if not asks:
            return []
        application_ids = [self.new_id() for _ in asks]
        scored = champion_rows(self.context, self.served, [
            Applicant(CheckedRow(features), person.id, amount, application_id, person.branch)
            for (person, _, amount, _, _, features), application_id in zip(asks, application_ids, strict=True)],
            actor="")
        loans = []
        for ask, application_id, score in zip(asks, application_ids, scored, strict=True):
            loan = self._application(ask, application_id, score)
            if loan is not None:
                loans.append(loan)
        return loans

    def _event(self, application_id: str, before: str | None, to: str, actor: str, reason: str,
               details: dict[str, Any] | None, at: datetime) -> None:
        self.rows.scoring["application_events"].append({
            "id": self.new_id(), "application_id": application_id, "from_status": before, "to_status": to,
            "actor": actor, "reason": reason, "details": details, "at": at})

    def _application(self, ask: tuple[Any, ...], application_id: str, score: dict[str, Any]) -> _Loan | None:
        person, product, amount, term, applied, features = ask
        rng, settings = self.rng, self.context.settings
        officer = self.officers[person.branch]
        submitted = self._at(applied)
        score.update(id=self.new_id(), created_at=submitted, created_by=officer)
        self.rows.scoring["scores"].append(score)
        # The first status, as submit_application decides it (the generated applications offer no security).
        status, approved, reason = first_decision(settings, score, amount, collateral=None, guarantor=None)
        status = status.value
        self._event(application_id, None, status, officer, reason,
                    {"score_id": score["id"], "grade": score["grade"], "score": score["score"]}, submitted)
        decided_by, decision_reason, updated = None, None, submitted
        if status == "in_review" and rng.random() < 0.75 and score["suggested_limit"] > 0:
            updated = submitted + timedelta(days=rng.randrange(1, 4))
            decided_by = "demo.committee"
            if rng.random() < 0.8:
                approved, decision_reason = min(amount, score["suggested_limit"]), "Income and employer verified"
                self._event(application_id, status, "approved", decided_by, decision_reason,
                            {"approved_amount": str(approved)}, updated)
                status = "approved"
            else:
                decision_reason = "Debt service ratio too high"
                self._event(application_id, status, "declined", decided_by, decision_reason, None, updated)
                status = "declined"
        loan_id = None
        disbursed = applied + timedelta(days=rng.randrange(1, 10))
        if status == "approved" and rng.random() < 0.95 and disbursed < self.plan.as_of:
            loan_id = self.new_id()
            updated = self._at(disbursed, 9)
            self._event(application_id, "approved", "disbursed", officer, "loan registered with monitoring",
                        {"loan_id": loan_id}, updated)
            status = "disbursed"
        self.rows.scoring["applications"].append({
            "id": application_id, "customer_id": person.id, "product": product, "amount": amount,
            "term_months": term, "purpose": features.get("purpose", "other"),
            "repayment_method": "equal_instalment", "branch": person.branch, "status": status,
            "score_id": score["id"], "policy_decision": score["decision"], "approved_amount": approved,
            "rate_adjustment_bps": score["rate_adjustment_bps"], "submitted_by": officer, "decided_by": decided_by,
            "decision_reason": decision_reason, "loan_id": loan_id, "created_at": submitted, "updated_at": updated,
            # The app's device and the account to pay out to, kept (as keyed hashes) for screening.
            **identifier_hashes(self.context.hash_key, f"device-{person.id}", person.account)})
        if loan_id is None:
            return None
        return self._loan(person, loan_id, application_id, product, approved, term, disbursed, score, officer)

    # -- loans and their behaviour ---------------------------------------------------------------------------
    def _loan(self, person: _Person, loan_id: str, application_id: str, product: str, principal: Decimal,
              term: int, disbursed: date, score: dict[str, Any], officer: str) -> _Loan:
        settings = self.context.settings
        rate = settings.base_annual_rate + Decimal(score["rate_adjustment_bps"]) / 10_000
        rounding, day_count = self.monitoring.rounding_for(product), self.monitoring.day_count_for(product)
        dues = generate_schedule(principal, rate, term, "equal_instalment", disbursed, None,
                                 rounding=rounding.mode, day_count=day_count)
        pd = Decimal(str(score["pd"])).quantize(PD_PLACES)
        row = {
            "id": loan_id, "external_id": application_id, "external_source": officer, "customer_id": person.id,
            "product": product, "principal": principal, "annual_rate": rate, "term_months": term,
            "repayment_method": "equal_instalment", "disbursement_date": disbursed, "first_due_date": None,
            "purpose": self.rows.scoring["applications"][-1]["purpose"], "collateral": None, "guarantor": None,
            "officer": officer, "branch": person.branch, "status": "active", "credit_balance": Decimal("0.00"),
            "override_class": None, "restructured_on": None, "restructure_reason": None,
            "last_score": round(score["score"]), "last_grade": score["grade"], "scored_on": disbursed,
            "last_pd": pd, "origination_grade": score["grade"], "origination_pd": pd, "value_tier": None,
            "contacts_checked_on": None, "penalty_daily_rate": self.monitoring.penalty_rate(product),
            "written_off_on": None, "written_off_amount": None, "rounding": rounding.value,
            "day_count": day_count.value, "created_by": officer, "created_at": self._at(disbursed, 9)}
        # Behaviour: a monthly chance of stopping for good from the grade's PD, lowered by the relationship;
        # otherwise each instalment is paid on its due date or, more often for weaker grades, some days late.
        hazard = 1 - (1 - min(0.95, score["pd"] * 0.6 * self._relationship(person))) ** (1 / 12)
        late = _LATE.get(score["grade"], 0.1) * self._relationship(person)
        paid_on: list[date | None] = []
        first_missed = None
        for due in dues:
            if due.due_date > self.plan.as_of or first_missed is not None:
                paid_on.append(None)
            elif self.rng.random() < hazard:
                first_missed = due.number
                paid_on.append(None)
            elif self.rng.random() < late:
                day = due.due_date + timedelta(days=self.rng.randrange(1, 26))
                paid_on.append(day if day <= self.plan.as_of else None)
            else:
                paid_on.append(due.due_date)
        return _Loan(person, row, dues, paid_on, first_missed)

    def _book(self, loan: _Loan) -> None:
        """The loan as monitoring holds it after every posting and each day's close up to the business date."""
        row, as_of, rows = loan.row, self.plan.as_of, self.rows.monitoring
        rules = policy(row["product"])
        state = _LoanState(row["product"])
        state.current = assess(state, 0, row["disbursement_date"])
        history = history_rows(row["id"], diff_states(None, state.current, ChangeCause.COB_AGEING,
                                                      row["disbursement_date"]), row["disbursement_date"], None, 0)
        paid_principal = Decimal("0.00")
        stopped = False  # an instalment is left unpaid: its due date counts the DPD from then on
        for due, paid in zip(loan.dues, loan.paid_on, strict=True):
            instalment = {"loan_id": row["id"], "number": due.number, "due_date": due.due_date,
                          "principal": due.principal, "interest": due.interest, "principal_paid": Decimal("0.00"),
                          "interest_paid": Decimal("0.00"), "penalty_paid": Decimal("0.00"),
                          "interest_waived": Decimal("0.00"), "penalty_waived": Decimal("0.00")}
            rows["instalments"].append(instalment)
            end = paid if paid is not None else (as_of + timedelta(days=1) if due.due_date <= as_of else None)
            if end is None or stopped:
                continue
            # Each close of business while the instalment is overdue, on the days the state can change.
            for days in self.thresholds:
                day = due.due_date + timedelta(days=days)
                if day >= end:
                    break
                history += self._changes(row, state, days, day, ChangeCause.COB_AGEING, None)
            if paid is None:
                stopped = True
                continue
            penalty = to_cents(due.total * row["penalty_daily_rate"] * (paid - due.due_date).days,
                               Rounding(row["rounding"]).mode)
            amount = due.total + penalty
            split = allocate(amount, [DueItem(due.number, due.due_date, penalty, due.interest, due.principal)],
                             rules.order, rules.strategy, as_of=paid)
            posting_id = self.new_id()
            (line,) = split.lines
            rows["postings"].append({
                "id": posting_id, "loan_id": row["id"], "external_id": f"DD-{row['id'][:12]}-{due.number}",
                "amount": amount, "value_date": paid, "booked_on": paid, "principal": line.principal,
                "interest": line.interest, "penalty": line.penalty, "overpayment": split.overpayment,
                "lines": [{"number": due.number, "principal": str(line.principal), "interest": str(line.interest),
                           "penalty": str(line.penalty)}],
                "status": "posted", "left_overdue": False, "reversal_reason": None, "reversed_by": None,
                "reversed_on": None, "created_by": row["officer"], "created_at": self._at(paid, 15)})
            instalment.update(principal_paid=line.principal, interest_paid=line.interest, penalty_paid=line.penalty)
            paid_principal += line.principal
            if paid > due.due_date:
                history += self._changes(row, state, 0, paid, ChangeCause.REPAYMENT, posting_id,
                                         payment={"posting_id": posting_id, "amount": amount, "overdue_after": 0})
        unpaid = next((d.due_date for d, p in zip(loan.dues, loan.paid_on, strict=True) if p is None), None)
        dpd = 0 if unpaid is None else max(0, (as_of - unpaid).days)
        final = assess(state, dpd, as_of)
        row.update(outstanding_principal=row["principal"] - paid_principal, oldest_unpaid_due=unpaid, dpd=dpd,
                   bucket=final.bucket, classification=class_name(final.loan_class), ifrs9_stage=int(final.stage),
                   status="active" if unpaid is not None else "closed")
        rows["loans"].append(row)
        self.lives[row["id"]] = LoanLife(row, max(p for p in loan.paid_on if p) if unpaid is None else None)
        created = row["created_at"]
        # Booking's rows when the loan was booked; each later one in that day's close (or posting).
        rows["risk_changes"] += [{
            "id": self.new_id(), **change, "superseded_at": None, "superseded_by": None,
            "recorded_at": created if change["recorded_on"] == row["disbursement_date"] else
            self._at(change["recorded_on"], 20)} for change in history]
        if loan.first_missed is not None:
            first_due = loan.dues[loan.first_missed - 1].due_date
            # Defaulted as the product counts it: the first day more than DEFAULT_DPD days past due.
            defaulted = first_due + timedelta(days=DEFAULT_DPD + 1)
            self._truth("loan_outcome", loan_id=row["id"], customer_id=row["customer_id"],
                        first_missed_due=first_due.isoformat(), dpd=dpd,
                        defaulted_on=defaulted.isoformat() if defaulted <= as_of else None,
                        grade=row["origination_grade"], pd=str(row["origination_pd"]),
                        relationship_factor=round(self._relationship(loan.person), 3))
        self._feed(loan)

    def _changes(self, row: dict[str, Any], state: _LoanState, dpd: int, day: date, cause: ChangeCause,
                 reference: str | None, payment: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        after = assess(state, dpd, day)
        records = diff_states(state.current, after, cause, day)
        if records:
            self.hindsight.on_change(row, day, state.current, after, payment)
        state.current = after
        state.classification = class_name(after.loan_class)
        return history_rows(row["id"], records, day, reference, dpd)

    # -- the account-transactions feed -----------------------------------------------------------------------
    def _txn(self, person: _Person, day: date, amount: Decimal, direction: str, kind: str, **extra: Any) -> None:
        if day > self.plan.as_of or day <= self._feed_start():
            return
        self.rows.monitoring["account_transactions"].append(feed_row(self.payer_vault, {
            "id": self.new_id(), "account": extra.pop("account", person.account), "customer_id": person.id,
            "loan_id": extra.pop("loan_id", None), "booked_on": day, "amount": amount, "direction": direction,
            "kind": kind, "counterparty": extra.pop("counterparty", None), "merchant": extra.pop("merchant", None),
            "payer_account": extra.pop("payer_account", None), "housing_estate": extra.pop("housing_estate", None),
            "recorded_by": FEED, "recorded_at": self._at(day, 23)}))

    def _feed(self, loan: _Loan) -> None:
        """Salary, card spending and repayments over the feed's months. Before a default the activity drops: the
        salary halves then stops, spending thins out (the early signs the ground truth dates)."""
        person, rng, row = loan.person, self.rng, loan.row
        start = self._feed_start()
        trouble = None if loan.first_missed is None else loan.dues[loan.first_missed - 1].due_date
        payer = getattr(person, "payer", None)
        for due, paid in zip(loan.dues, loan.paid_on, strict=True):
            if paid is not None:
                self._txn(person, paid, due.total, "credit", "repayment", loan_id=row["id"],
                          payer_account=payer or person.account,
                          housing_estate=person.estate if row["product"] == "mortgage" or payer else None)
        day = start
        while day <= self.plan.as_of:
            salary = person.income
            before = None if trouble is None else (trouble - day).days
            if before is not None and before < 0:
                salary = Decimal(0)
            elif before is not None and before < 90:
                salary = (person.income / 2).quantize(Decimal("0.01"))
            if salary > 0:
                self._txn(person, day + timedelta(days=9), salary, "credit", "salary",
                          counterparty="payroll")
            purchases = rng.randrange(2, 6) if before is None or before > 90 else rng.randrange(0, 2)
            for _ in range(purchases):
                self._txn(person, self._day(day, day + timedelta(days=30)),
                          Decimal(rng.randrange(50, 3000)) + Decimal("0.50"), "debit", "card_purchase",
                          merchant=rng.choice(_MERCHANTS))
            day += timedelta(days=30)
        if trouble is not None:
            signs = [{"sign": "activity_dropping", "from": (trouble - timedelta(days=90)).isoformat()}]
            reported = trouble - timedelta(days=rng.randrange(30, 120))
            lender = rng.choice(("Ant Credit", "WeBank", "Zhongyuan Consumer Finance"))
            overdue, days = Decimal(rng.randrange(2, 40) * 500), rng.choice((30, 60, 90))
            self.rows.bureau.append({"customer_id": person.id, "reported_on": reported.isoformat(), "lender": lender,
                                     "kind": "overdue", "amount_overdue": str(overdue), "days_overdue": days})
            # On file as the bureau's feed delivered it, and judged by the rules on the day it was reported.
            record = {"id": self.new_id(), "customer_id": person.id, "lender": lender, "amount_overdue": overdue,
                      "days_overdue": days, "reported_on": reported, "import_id": self._bureau_import()["id"]}
            self.rows.monitoring["feed_bureau_records"].append(record)
            self.hindsight.on_outside(self.lives[row["id"]], [record], "bureau")
            signs.append({"sign": "overdue_elsewhere", "from": reported.isoformat()})
            self._truth("early_signs", loan_id=row["id"], customer_id=person.id, signs=signs)

    def _bureau_import(self) -> dict[str, Any]:
        """The chunk's one import of bureau records (its counts filled in by `_warn`)."""
        imports = self.rows.monitoring["feed_imports"]
        if not imports:
            imports.append({"id": self.new_id(), "feed": "bureau", "uploaded_by": BUREAU,
                            "uploaded_at": self._at(self.plan.as_of, 6), "rows": 0, "accepted": 0,
                            "already_on_file": 0, "rejected": 0, "alerts_raised": 0})
        return imports[0]

    # -- what the rules raised on the way --------------------------------------------------------------------
    def _warn(self) -> None:
        """The feed rules over the feed's months, then every alert raised on the way, as the queue holds them."""
        monitoring = self.rows.monitoring
        self.hindsight.on_feed(list(self.lives.values()), monitoring["account_transactions"],
                               self._feed_start())
        alerts, events = self.hindsight.alerts(self.lives, self.new_id)
        monitoring["alerts"], monitoring["alert_events"] = alerts, events
        if monitoring["feed_imports"]:
            outside = {rule.code for rule in self.rules if rule.kind in OUTSIDE_KINDS}
            records = len(monitoring["feed_bureau_records"])
            monitoring["feed_imports"][0].update(rows=records, accepted=records, alerts_raised=sum(
                1 for alert in alerts if alert["rule"] in outside))

    # -- planted patterns ------------------------------------------------------------------------------------
    def _plant(self, people: list[_Person], loans: list[_Loan]) -> None:
        rng = self.rng
        borrowers = [loan for loan in loans if any(loan.paid_on)]
        rng.shuffle(borrowers)
        per = max(1, len(people) // 1000)
        taken: set[str] = set()

        def pick(n: int, pool: Sequence[Any], key: Callable[[Any], str]) -> list[Any]:
            chosen = [x for x in pool if key(x) not in taken][:n]
            taken.update(key(x) for x in chosen)
            return chosen

        for k in range(per):
            group = pick(rng.randrange(3, 6), borrowers, lambda loan: loan.person.id)
            if len(group) < 3:
                break
            payer = f"6228{self.plan.seed % 10_000:04d}{self.chunk:06d}{k:02d}"
            estate = group[0].person.estate
            customers = {row["id"]: row for row in self.rows.customer["customers"]}
            for loan in group:
                loan.person.payer = payer  # type: ignore[attr-defined]
                # Neighbours: each borrower's home moves into the one estate (their own flat in it).
                loan.person.address = loan.person.address.replace(loan.person.estate, estate)
                customers[loan.person.id].update(sealed_field(self.vault, loan.person.id, "address",
                                                              loan.person.address))
                loan.person.estate = estate
            self._truth("shared_payer", pattern="shared_payer", payer_account=payer,
                        payer_account_hash=account_digest(self.payer_vault, payer),
                        housing_estate=estate,
                        customers=[loan.person.id for loan in group], loans=[loan.row["id"] for loan in group])
        self._shared_identifiers(pick, people)
        for k in range(per):
            cashable = [loan for loan in borrowers if len(_cashable(loan, self._feed_start())) >= 2]
            for loan in pick(1, cashable, lambda loan: loan.person.id):
                self._cash_out(loan, k)
            for loan in pick(1, borrowers, lambda loan: loan.person.id):
                self._fundraising(loan.person, k)

    def _shared_identifiers(self, pick: Callable[..., list[Any]], people: list[_Person]) -> None:
        """Unrelated applicants sharing a home address, an application's device, or a payout account (an ID or
        phone cannot be shared: the customer service refuses a second registration of either)."""
        rows = {row["id"]: row for row in self.rows.customer["customers"]}
        applications = {row["customer_id"]: row for row in self.rows.scoring["applications"]}
        applicants = [p for p in people if p.applies]
        for what in ("address", "device", "account"):
            group = pick(self.rng.randrange(2, 4), self.rng.sample(applicants, len(applicants)), lambda p: p.id)
            if len(group) < 2:
                return
            if what == "address":
                value = group[0].address
                for person in group[1:]:
                    person.address = group[0].address
                    rows[person.id].update(sealed_field(self.vault, person.id, "address", person.address))
            else:
                column = "device_hash" if what == "device" else "payout_account_hash"
                shared = f"device-{self.plan.seed}-{self.chunk}" if what == "device" else group[0].account
                value = identifier_hashes(self.context.hash_key, shared, shared)[column]  # as scoring keeps it
                for person in group:
                    applications[person.id][column] = value
                    if what == "account":
                        person.account = group[0].account  # the feed's rows name it too
            self._truth("shared_identifier", identifier=what, customers=[p.id for p in group], value=value)

    def _cash_out(self, loan: _Loan, k: int) -> None:
        """Card cash-out to repay: in the days before some of the loan's repayments, round sums swiped at one
        merchant's terminal, each paid straight back by the merchant less a fee, the cash then repaying the
        instalment at once (the domain's "round sums spent at one merchant and repaid at once")."""
        rng, person = self.rng, loan.person
        merchant = _CASH_OUT_MERCHANTS[(self.chunk + k) % len(_CASH_OUT_MERCHANTS)]
        days = []
        for due, paid in _cashable(loan, self._feed_start())[-rng.randrange(2, 5):]:
            # Round thousands, as much as the instalment takes: the cash (less the fee) repays it at once.
            cover = int(due.total * Decimal("0.9") / 1000)
            swipes = min(rng.randrange(2, 4), cover)
            amount = Decimal(cover // swipes * 1000)
            for n in range(swipes):
                day = paid - timedelta(days=swipes - n)
                self._txn(person, day, amount, "debit", "card_purchase", merchant=merchant)
                self._txn(person, day + timedelta(days=1), amount * Decimal("0.97"), "credit", "transfer",
                          counterparty=f"POS-{merchant[:6].upper()}")
                days.append(day.isoformat())
        self._truth("card_cash_out", pattern="card_cash_out", loan_id=loan.row["id"], customer_id=person.id,
                    merchant=merchant, purchase_days=sorted(days))

    def _feed_start(self) -> date:
        return self.plan.as_of - timedelta(days=30 * self.plan.feed_months)

    def _fundraising(self, person: _Person, k: int) -> None:
        """Illegal fundraising: many small inflows from unrelated payers, then large transfers out."""
        rng = self.rng
        start = self.plan.as_of - timedelta(days=rng.randrange(40, 30 * self.plan.feed_months - 10))
        total = Decimal(0)
        payers = rng.randrange(25, 60)
        for n in range(payers):
            amount = Decimal(rng.choice((2_000, 3_000, 5_000, 8_000, 10_000)))
            total += amount
            self._txn(person, start + timedelta(days=rng.randrange(20)), amount, "credit", "transfer",
                      counterparty=f"6217{self.chunk:06d}{k:02d}{n:04d}")
        out = start + timedelta(days=21)
        for n in range(3):
            self._txn(person, out + timedelta(days=n), (total / 3).quantize(Decimal("0.01")), "debit", "transfer",
                      counterparty=f"6230-OFFSHORE-{k}{n}")
        self._truth("illegal_fundraising", customer_id=person.id, inflows=payers, from_day=start.isoformat(),
                    funnelled_out_on=out.isoformat(), total=str(total))


@dataclass
class _LoanState:
    """What `assess` reads of a loan (a plain one: no restructuring, hardship or override), and its last recorded
    state."""

    product: str
    classification: str = "normal"
    restructured_on: date | None = None
    hardship_on: date | None = None
    hardship_until: date | None = None
    override_class: str | None = None
    current: Any = None


def _cashable(loan: _Loan, feed_start: date) -> list[tuple[Any, date]]:
    """The loan's repayments in the feed's months large enough for two round swipes of 1,000 to repay."""
    return [(due, paid) for due, paid in zip(loan.dues, loan.paid_on, strict=True)
            if paid is not None and paid - timedelta(days=3) > feed_start and due.total * Decimal("0.9") >= 2000]
