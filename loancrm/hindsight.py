"""The alerts the bank's enabled early-warning rules would have raised on a generated loan's way to the as-of date.

A generated back-book arrives whole, so no close of business ever ran over it; without this its first COB would
raise every alert on one day and a rule review's lead times would mean nothing. Here the product's own rule engine
(`alert_drafts`, the enabled rules as stored) is applied to the facts as they stood on each day, the way each job
applies them in production:

- risk-state changes (DPD, class), on the day of each change, as the daily close and a posting do;
- outside records (the credit bureau's overdue records), on the day the bureau reported them, as an import does;
- the account-transactions feed, on every day a borrower's feed has a row and at least once a week (the daily close
  re-checks the feed every day: a rule that fires on the passing of time, such as a salary gap, is found here up
  to six days after the close would have found it), on the rows booked by then.

Pure: no database here. Alerts of the past a collector has worked are closed as the queue would show them today.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Any

from services.monitoring.alerts.models import AlertStatus
from services.monitoring.classification.rules import RiskState
from services.monitoring.rules.engine import Facts, Feed
from services.monitoring.rules.models import FEED_KINDS, OUTSIDE_KINDS, ROWS_ONLY_FEED_KINDS, RuleKind
from services.monitoring.rules.service import alert_drafts, due_date
from services.monitoring.transactions.service import LOOKBACK_DAYS

STATE_KINDS = (RuleKind.DPD_REACHED, RuleKind.CLASS_WORSENED, RuleKind.PARTIAL_PAYMENT)
CHECK_EVERY_DAYS = 7
RECENT_DAYS = 30  # alerts this young, or on a loan still overdue, are still in the collectors' queue


@dataclass
class LoanLife:
    """What the rules need to know of one loan besides the facts: when it was open and how it stands today."""

    row: Mapping[str, Any]
    closed_on: date | None  # the day its last instalment was paid, when repaid in full by the as-of date


@dataclass
class Hindsight:
    rules: Sequence[Any]  # enabled rules (code, kind, params, severity, version), as the database holds them
    as_of: date
    officers: Mapping[str, str]  # branch -> who worked that branch's alerts
    _drafts: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Each job applies the rules of its kinds; grouped once, as every loan's every change asks.
        self._state, self._outside, self._feed = ([rule for rule in self.rules if rule.kind in kinds]
                                                  for kinds in (STATE_KINDS, OUTSIDE_KINDS, FEED_KINDS))

    def _keep(self, drafts: list[dict[str, Any]]) -> None:
        # The same event found again later is the same alert (the table's unique loan, rule, trigger).
        for draft in drafts:
            self._drafts.setdefault((draft["loan_id"], draft["rule"], draft["trigger_key"]), draft)

    def on_change(self, row: Mapping[str, Any], day: date, before: RiskState | None, after: RiskState,
                  payment: Mapping[str, Any] | None = None) -> None:
        self._keep(alert_drafts(self._state, Facts(row["id"], row["customer_id"], day, before, after,
                                                             payment=payment)))

    def on_outside(self, life: LoanLife, records: Sequence[Mapping[str, Any]], feed: str) -> None:
        """Each record on the day it was reported, with every record of the borrower reported by then."""
        for record in records:
            day = record["reported_on"]
            if _open_on(life, day):
                known = [r for r in records if r["reported_on"] <= day]
                self._keep(alert_drafts(self._outside, Facts(life.row["id"], life.row["customer_id"], day,
                                                             outside={feed: known})))

    def on_feed(self, lives: Sequence[LoanLife], transactions: Sequence[Mapping[str, Any]], start: date) -> None:
        """The feed rules over each loan's borrower's rows, on each day from `start` a row was booked and weekly."""
        if not self._feed:
            return
        rows = sorted(transactions, key=lambda t: (t["booked_on"], t["id"]))
        by_customer: dict[str, list[Mapping[str, Any]]] = {}
        # Payer (its account's keyed hash) -> its repayments, oldest first.
        repaid: dict[str, list[Mapping[str, Any]]] = {}
        for t in rows:
            by_customer.setdefault(t["customer_id"], []).append(t)
            if t["kind"] == "repayment" and t["payer_account_hash"]:
                repaid.setdefault(t["payer_account_hash"], []).append(t)
        weekly = {start + timedelta(days=n) for n in range(0, (self.as_of - start).days + 1, CHECK_EVERY_DAYS)}
        dated = [rule for rule in self._feed if rule.kind not in ROWS_ONLY_FEED_KINDS]
        for life in lives:
            mine = by_customer.get(life.row["customer_id"], [])
            booked = [t["booked_on"] for t in mine]
            judged = None  # the rows and payers the rules last saw
            for day in sorted(set(booked) | weekly | {self.as_of}):
                if not _open_on(life, day):
                    continue
                window = (bisect_right(booked, day - timedelta(days=LOOKBACK_DAYS)), bisect_right(booked, day))
                if window[0] == window[1]:
                    continue
                known = tuple(mine[window[0]:window[1]])
                payers = _payers(repaid, known, day)
                feed = Feed(transactions=known, payers=payers, disbursed_on=life.row["disbursement_date"],
                            principal=life.row["principal"], known_until=day)
                # Rules that read only the rows found all they could on the day they last saw these rows (the
                # first finding of an event is the one kept): only the dated ones look again.
                rules = dated if judged == (window, payers) else self._feed
                judged = (window, payers)
                self._keep(alert_drafts(rules, Facts(life.row["id"], life.row["customer_id"], day, feed=feed)))

    def alerts(self, lives: Mapping[str, LoanLife],
               new_id: Callable[[], str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The alert rows and their events: an alert of the past on a loan back in order (or repaid) was worked
        forward as people work one (acknowledged the day it was raised, resolved by its due date) by the branch's
        officer; the young ones and those on a loan still overdue are open."""
        alerts, events = [], []
        for (loan_id, *_), draft in sorted(self._drafts.items()):
            life = lives[loan_id]
            due = due_date(draft["severity"], draft["created_on"])
            settled = life.closed_on is not None or life.row["dpd"] == 0
            worked = settled and draft["created_on"] < self.as_of - timedelta(days=RECENT_DAYS)
            alert_id = new_id()
            alerts.append({**draft, "id": alert_id, "branch": life.row["branch"], "owner": None,
                           "status": (AlertStatus.RESOLVED if worked else AlertStatus.OPEN).value, "due_at": due,
                           "created_at": at(draft["created_on"], 21), "closed_on": due if worked else None,
                           "corrected_by": None})
            if worked:
                steps = ((AlertStatus.OPEN, AlertStatus.ACKNOWLEDGED, at(draft["created_on"], 22)),
                         (AlertStatus.ACKNOWLEDGED, AlertStatus.RESOLVED, at(due, 16)))
                events += [{"id": new_id(), "alert_id": alert_id, "from_status": before.value,
                            "to_status": after.value, "actor": self.officers[life.row["branch"]],
                            "note": "worked by its due date (generated history)", "at": at}
                           for before, after, at in steps]
        return alerts, events


def _open_on(life: LoanLife, day: date) -> bool:
    """Whether the loan was active that day (the jobs look at active loans only)."""
    return life.row["disbursement_date"] <= day and (life.closed_on is None or day <= life.closed_on)


def _payers(repaid: Mapping[str, Sequence[Mapping[str, Any]]], known: Sequence[Mapping[str, Any]],
            day: date) -> dict[str, dict[str, str | None]]:
    """Payer (its account's keyed hash) -> each borrower it had repaid by `day` -> the housing estate named (as the
    feed tells)."""
    found: dict[str, dict[str, str | None]] = {}
    for payer in {t["payer_account_hash"] for t in known if t["payer_account_hash"]}:
        borrowers = found.setdefault(payer, {})
        for t in repaid.get(payer, ()):
            if t["booked_on"] > day:
                break
            borrowers[t["customer_id"]] = borrowers.get(t["customer_id"]) or t["housing_estate"]
    return found


@lru_cache(maxsize=8192)
def at(day: date, hour: int = 10) -> datetime:
    """That day at that hour, UTC: when a generated act happened."""
    return datetime.combine(day, time(hour), tzinfo=UTC)
