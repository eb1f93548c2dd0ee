"""Taking in the account-transactions feed and applying the feed rules to the borrowers it concerns."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date, timedelta
from typing import Any

from sqlalchemy import func, insert, select as sa_select, update
from sqlmodel import Session

from services.monitoring.alerts.models import Alert
from services.monitoring.alerts.service import alerts_by_loan, raise_alerts, reconcile
from services.monitoring.errors import DomainError
from services.monitoring.loans.models import Loan, LoanStatus, new_id, now
from services.monitoring.rules.engine import Facts, Feed, cash_out_trigger, evaluate_all
from services.monitoring.rules.models import FEED_KINDS, RuleKind
from services.monitoring.rules.service import alert_drafts, enabled_rules
from services.monitoring.transactions.models import (ACCOUNT, PAYER, SEALED, AccountTransaction, BatchReceipt, FeedRow,
                                                     PayerFacts, ScreeningFacts, TransactionRow)
from shared.auth.scope import Visibility
from shared.pii import PiiKeySettings, PiiVault, load_vault as load_pii_vault, mask_account
from shared.settings import KernelSettings

TXNS = AccountTransaction.__table__
# How far back the rules look: a year of salaries, and the weeks around a disbursement.
LOOKBACK_DAYS = 400
KEY_FILE = "monitoring-pii-keys.json"  # the embedded default's keys (LOANCRM_MONITORING_PII_KEYS unset)


def load_vault(settings: PiiKeySettings, kernel: KernelSettings) -> PiiVault:
    """The keys that seal payers' accounts (`MonitoringSettings`' `pii_*`)."""
    return load_pii_vault(settings, kernel, KEY_FILE)


def normalised_account(value: str) -> str:
    """What two spellings of one account share (spaces, hyphens and case aside): the form its keyed hash is of,
    so a feed's "6222-0777" and a repayment file's "62220777" are one payer."""
    return "".join(value.split()).replace("-", "").upper()


def account_digest(vault: PiiVault, account: str) -> str:
    return vault.digest(normalised_account(account))


def account_reference(vault: PiiVault, account: str, field: str = PAYER) -> dict[str, str]:
    """What leaves the service of an account (events, webhooks, screening, alerts' evidence): masked, and its keyed
    hash to match on. Nobody outside needs the clear account; the roles that may see it read it here."""
    return {field: mask_account(account), f"{field}_hash": account_digest(vault, account)}


def _sealed(vault: PiiVault, row_id: str, clear: Mapping[str, str | None]) -> dict[str, str | None]:
    """A feed row's stored personal columns: each of `SEALED` sealed under the active key, hashed and masked."""
    columns: dict[str, str | None] = {"pii_kid": vault.active_kid}
    for field in SEALED:
        value = clear.get(field)
        columns.update({f"{field}_enc": None if value is None else vault.seal(value, row_id=row_id, field=field),
                        f"{field}_hash": None if value is None else account_digest(vault, value),
                        f"{field}_masked": None if value is None else mask_account(value)})
    return columns


def feed_row(vault: PiiVault, row: Mapping[str, Any]) -> dict[str, Any]:
    """A feed row (with its id) as stored: the clear accounts of others replaced by their sealed columns."""
    stored = {name: value for name, value in row.items() if name not in SEALED}
    return {**stored, **_sealed(vault, row["id"], row)}


def seal_accounts_held_in_clear(session: Session, vault: PiiVault, batch: int = 500,
                                stop: Callable[[], bool] = lambda: False) -> int:
    """Accounts an older version stored in clear, sealed (run at start, so none stays readable in the database),
    and the alerts it raised on them restated; returns how many rows. Commits every batch, so it resumes where it
    stopped; safe to run in two replicas at once (either's ciphertext opens)."""
    # Rows of an older version: every row has an account, sealed since this version.
    sealed = _reseal(session, vault, TXNS.c.account_enc.is_(None), batch, stop)
    if not stop():
        _restate_alerts(session, vault)
    return sealed


def reseal_with_active_key(session: Session, vault: PiiVault, batch: int = 500,
                           progress: Callable[[int, int], None] | None = None) -> int:
    """Key rotation: re-encrypt the feed rows sealed with an older key; returns how many. Commits every batch:
    safe to re-run, and a re-run resumes. `progress(done, total)` after each batch."""
    return _reseal(session, vault, TXNS.c.pii_kid != vault.active_kid, batch, progress=progress)


def _reseal(session: Session, vault: PiiVault, which: Any, batch: int, stop: Callable[[], bool] = lambda: False,
            progress: Callable[[int, int], None] | None = None) -> int:
    """The rows `which` picks sealed under the active key, every field at once (so the row's one key id covers
    all): each opened from its clear column (an older version's) or its ciphertext (under the row's key id)."""
    total = session.execute(sa_select(func.count()).select_from(TXNS).where(which)).scalar() if progress else 0
    done = 0
    while not stop():
        rows = session.execute(sa_select(TXNS).where(which).limit(batch)).mappings().all()
        if not rows:
            break
        for row in rows:
            clear = {field: row[f"{field}_clear"] if row[f"{field}_enc"] is None else
                     vault.open(row[f"{field}_enc"], kid=row["pii_kid"] or "", row_id=row["id"], field=field)
                     for field in SEALED}
            session.execute(update(TXNS).where(TXNS.c.id == row["id"]).values(
                **{f"{field}_clear": None for field in SEALED}, **_sealed(vault, row["id"], clear)))
        session.commit()
        done += len(rows)
        if progress:
            progress(done, max(total, done))
    return done


def _restate_alerts(session: Session, vault: PiiVault) -> None:
    """Alerts raised before the accounts were sealed named them in clear. A shared-payer alert now names its payer
    by hash in evidence and trigger (so the rule finds it again, and raises no second alert) and shows it
    masked, and a card cash-out the borrower's account alike; a funds-moved-on alert shows where the funds went
    masked, as the rule now writes it."""
    for alert in session.execute(sa_select(Alert).where(
            Alert.trigger_key.like("payer:%") | Alert.trigger_key.like("funds:%")
            | Alert.trigger_key.like("cashout:%"))).scalars():
        if alert.trigger_key.startswith("funds:"):
            if any(not to.startswith("*") and to not in ("transfer", "cash") for to in alert.evidence.get("to", [])):
                alert.evidence = {**alert.evidence, "to": sorted(
                    to if to.startswith("*") or to in ("transfer", "cash") else mask_account(to)
                    for to in alert.evidence["to"])}
            continue
        # A shared payer names the payer's account, a card cash-out the borrower's own.
        field = PAYER if alert.trigger_key.startswith("payer:") else ACCOUNT
        clear = alert.evidence.get(field)
        if clear is None or f"{field}_hash" in alert.evidence:
            continue
        reference = account_reference(vault, clear, field)
        alert.evidence = {**alert.evidence, **reference}
        alert.trigger_key = (alert.trigger_key.replace(f"payer:{clear}:", f"payer:{reference[f'{PAYER}_hash']}:", 1)
                             if field == PAYER else cash_out_trigger(reference[f"{ACCOUNT}_hash"],
                                                                     alert.evidence["merchant"],
                                                                     alert.trigger_key.rsplit(":", 1)[1]))
    session.commit()


def record_transactions(session: Session, vault: PiiVault, rows: Sequence[TransactionRow], *, by: str,
                        scope: Visibility, as_of: date) -> BatchReceipt:
    """Store a batch of the feed (all or nothing) and warn on the borrowers it concerns. A row may concern only
    loans the caller may see: another branch's loan is refused like an unknown one, so no alert is raised there."""
    loan_ids = {row.loan_id for row in rows if row.loan_id}
    owners = dict(session.execute(sa_select(Loan.id, Loan.customer_id).where(
        Loan.id.in_(loan_ids), scope.where(Loan.branch))).all())
    unnamed = {row.customer_id for row in rows if not row.loan_id}
    borrowers = unnamed if scope.everything else set(session.execute(sa_select(Loan.customer_id).distinct().where(
        Loan.customer_id.in_(unnamed), scope.where(Loan.branch))).scalars())
    for i, row in enumerate(rows):
        if row.loan_id and owners.get(row.loan_id) != row.customer_id:
            raise DomainError(f"rows.{i}.loan_id", "no such loan of this customer")
        if not row.loan_id and row.customer_id not in borrowers:
            raise DomainError(f"rows.{i}.customer_id", "no loan of this customer that you may see")
        if row.booked_on > as_of:
            raise DomainError(f"rows.{i}.booked_on", f"must not be after the business date {as_of.isoformat()}")
    recorded_at = now()
    stored = [feed_row(vault, {**row.model_dump(mode="python"), "id": new_id(), "recorded_by": by,
                               "recorded_at": recorded_at}) for row in rows]
    session.execute(insert(TXNS), stored)
    payers = {row["payer_account_hash"] for row in stored if row["payer_account_hash"]}
    # A new borrower repaid by a known payer concerns every borrower that payer repays.
    also = session.execute(sa_select(TXNS.c.customer_id).distinct().where(
        TXNS.c.payer_account_hash.in_(payers))).scalars()
    customers = {row.customer_id for row in rows} | set(also)
    return BatchReceipt(accepted=len(rows), customers_checked=len(customers),
                        alerts_raised=warn_on_feed(session, customers, as_of))


def warn_on_feed(session: Session, customer_ids: Iterable[str], day: date, known_until: date | None = None) -> int:
    """Apply the enabled feed rules to each active loan of these borrowers, on what the feed holds up to `day`.

    Rules judge the rows' own dates over the whole known history, so the alerts do not depend on the order the
    batches came in. `known_until` is how far the feed is complete (COB passes the day it closes); by default
    the latest day any row covers. Salary alerts follow the facts: a gap that later rows fill is closed as
    resolved by correction, naming the salary row that fills it."""
    customer_ids = set(customer_ids)
    rules = enabled_rules(session, kinds=FEED_KINDS)
    if not rules or not customer_ids:
        return 0
    loans = session.execute(sa_select(Loan.id, Loan.customer_id, Loan.disbursement_date, Loan.principal).where(
        Loan.customer_id.in_(customer_ids), Loan.status == LoanStatus.ACTIVE)).all()
    if not loans:
        return 0
    if known_until is None:
        known_until = session.execute(sa_select(func.max(TXNS.c.booked_on)).where(TXNS.c.booked_on <= day)).scalar()
    rows = session.execute(sa_select(TXNS).where(
        TXNS.c.customer_id.in_({loan.customer_id for loan in loans}),
        TXNS.c.booked_on > day - timedelta(days=LOOKBACK_DAYS), TXNS.c.booked_on <= day)
        .order_by(TXNS.c.booked_on, TXNS.c.id)).mappings().all()
    by_customer: dict[str, list] = {}
    for row in rows:
        by_customer.setdefault(row["customer_id"], []).append(row)
    repaid = _repaid_by_payer(session, {row["payer_account_hash"] for row in rows if row["payer_account_hash"]})
    salary_rules = [rule for rule in rules if rule.kind == RuleKind.SALARY_STOPPED]
    known = alerts_by_loan(session, [loan.id for loan in loans], [rule.code for rule in salary_rules])
    drafts, raised = [], 0
    for loan in loans:
        mine = tuple(by_customer.get(loan.customer_id, ()))
        payers = {p: repaid[p] for p in {t["payer_account_hash"] for t in mine if t["payer_account_hash"]}}
        feed = Feed(transactions=mine, payers=payers, disbursed_on=loan.disbursement_date, principal=loan.principal,
                    known_until=known_until)
        facts = Facts(loan.id, loan.customer_id, day, feed=feed)
        for rule in rules:
            if rule.kind == RuleKind.SALARY_STOPPED:
                raised += reconcile(session, rule, facts, evaluate_all(rule.kind, rule.params, facts),
                                    disproof=_salary_disproof(mine, rule.params["gap_days"]), as_of=day,
                                    existing=known.get((loan.id, rule.code), []))
            else:
                drafts += alert_drafts([rule], facts)
    return raised + raise_alerts(session, drafts)


def _salary_disproof(rows: Sequence[Mapping[str, Any]], gap_days: int) -> Callable[[Alert], tuple[str, str] | None]:
    """The salary credit that fills an alert's gap, if the feed now holds one."""
    def disproof(alert: Alert) -> tuple[str, str] | None:
        last = date.fromisoformat(alert.evidence["last_salary_on"])
        for row in rows:
            if (row["kind"] == "salary" and row["direction"] == "credit"
                    and 0 < (row["booked_on"] - last).days <= gap_days):
                return row["id"], (f"feed row {row['id']}: salary credited on {row['booked_on'].isoformat()}, "
                                   f"{(row['booked_on'] - last).days} days after {last.isoformat()}")
        return None
    return disproof


def _repaid_by_payer(session: Session, payers: set[str]) -> dict[str, dict[str, str | None]]:
    """Payer (the keyed hash of its account) -> each borrower it repaid -> the housing estate their repayments
    named (any, if several)."""
    repaid: dict[str, dict[str, str | None]] = {}
    if not payers:
        return repaid
    for payer, customer, estate in session.execute(
            sa_select(TXNS.c.payer_account_hash, TXNS.c.customer_id, TXNS.c.housing_estate).distinct().where(
                TXNS.c.payer_account_hash.in_(payers), TXNS.c.kind == "repayment")):
        borrowers = repaid.setdefault(payer, {})
        borrowers[customer] = borrowers.get(customer) or estate
    return repaid


def customers_with_feed(session: Session, day: date) -> list[str]:
    """Borrowers with an active loan and feed rows in the look-back: whom COB re-checks (salary stops need time)."""
    return list(session.execute(sa_select(TXNS.c.customer_id).distinct().join(
        Loan.__table__, Loan.__table__.c.customer_id == TXNS.c.customer_id).where(
        Loan.__table__.c.status == LoanStatus.ACTIVE.value,
        TXNS.c.booked_on > day - timedelta(days=LOOKBACK_DAYS)).order_by(TXNS.c.customer_id)).scalars())


MAX_SCREENING_ROWS = 5000  # a customer's feed rows answered to screening, newest first


def screening_facts(session: Session, customer_id: str, since: date) -> ScreeningFacts:
    """The payer accounts that repaid this customer's loans, with the other borrowers each repaid (ever), and the
    customer's own feed rows booked on or after `since`, for application screening's checks. Payers are named
    masked with their keyed hash: screening stores what it finds, and matches on the hash."""
    own_payers = dict(session.execute(sa_select(TXNS.c.payer_account_hash, TXNS.c.payer_account_masked).distinct()
                                      .where(TXNS.c.customer_id == customer_id, TXNS.c.kind == "repayment",
                                             TXNS.c.payer_account_hash.is_not(None))).all())
    payers = []
    for payer, borrowers in sorted(_repaid_by_payer(session, set(own_payers)).items()):
        others = sorted(c for c in borrowers if c != customer_id)
        payers.append(PayerFacts(payer_account=own_payers[payer], payer_account_hash=payer,
                                 other_borrowers=len(others), other_borrower_ids=others,
                                 estates=sorted({e for e in borrowers.values() if e})))
    rows = session.execute(sa_select(TXNS).where(TXNS.c.customer_id == customer_id, TXNS.c.booked_on >= since)
                           .order_by(TXNS.c.booked_on.desc(), TXNS.c.id).limit(MAX_SCREENING_ROWS + 1)).mappings().all()
    return ScreeningFacts(customer_id=customer_id, since=since, payers=payers,
                          transactions=[FeedRow.model_validate({**r, **{f: r[f"{f}_masked"] for f in SEALED}})
                                        for r in rows[:MAX_SCREENING_ROWS]],
                          truncated=len(rows) > MAX_SCREENING_ROWS)
