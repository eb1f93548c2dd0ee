"""Portfolio views over the point-in-time measures: churn, repeat borrowing, loyalty segments, look-alikes, and the
churn-risk model that feeds the portrait's retention flag. Definitions: README, "Relationship measures"."""

from __future__ import annotations

import io
import math
from collections import defaultdict
from collections.abc import Iterator
from datetime import date
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlmodel import Session

from services.customer.portrait import rules
from services.customer.portrait.models import CustomerPortrait, Segment, SegmentMember
from services.customer.relationship.models import ChurnModelReport, ChurnScore, FigureRow, LookAlike, LoyaltySegment, \
    RelationshipFeatures
from services.customer.relationship.service import LOYALTY_BANDS, add_months, features_of, holders, month_end, \
    people_page
from shared.errors import field_problem

PAGE = 500
MAX_MONTHS = 36
DEFAULT_WINDOW = 12
SNAPSHOTS = 4  # past dates the churn model learns from, a quarter apart
CHURN_INPUTS = ("contacts_relationship", "csat_mean", "nps_last", "information_sharing", "tenure_months",
                "products_held", "complaints", "loyalty_index")
LOOK_ALIKE_INPUTS = ("tenure_months", "contacts_relationship", "csat_mean", "information_sharing", "products_held",
                     "annual_income", "loyalty_index")
# Neutral fills for the unknown: a middling CSAT and a passive NPS.
_FILL = {"csat_mean": 3.0, "nps_last": 7.0, "annual_income": 0.0}


def every_customer(session: Session, scope: Any | None, as_of: date, window_months: int
                   ) -> Iterator[RelationshipFeatures]:
    after = None
    while True:
        people = people_page(session, scope, as_of, after, PAGE)
        yield from features_of(session, people[:PAGE], as_of, window_months)
        if len(people) <= PAGE:
            return
        after = people[PAGE - 1].id


def churned(f: RelationshipFeatures, months: int) -> bool:
    """Churned on `f.as_of`: the record closed, or (a relationship at least `months` old and) no product held and
    no relationship contact in the last `months` months. `f` must be measured over a `months` window."""
    if f.closed_on is not None and f.closed_on <= f.as_of:
        return True
    return (f.since <= add_months(f.as_of, -months) and f.products_held == 0 and f.contacts_relationship == 0)


def _value(f: RelationshipFeatures, name: str) -> float:
    value = getattr(f, name)
    if value is None:
        return _FILL[name]
    return math.log1p(float(value)) if name == "annual_income" else float(value)


def _matrix(rows: list[RelationshipFeatures], names: tuple[str, ...]) -> np.ndarray:
    return np.array([[_value(f, n) for n in names] for f in rows], dtype=float).reshape(len(rows), len(names))


def month_ends(start: date, end: date) -> list[date]:
    if end < start:
        raise field_problem("query.to", "must not be before `from`")
    ends, day = [], month_end(start)
    while day <= month_end(end):
        ends.append(day)
        day = month_end(add_months(day.replace(day=1), 1))
    if len(ends) > MAX_MONTHS:
        raise field_problem("query.to", f"spans more than {MAX_MONTHS} months")
    return ends


def loyalty_trend(session: Session, person: Any, start: date, end: date,
                  window_months: int) -> list[RelationshipFeatures]:
    return [features_of(session, [person], day, window_months)[0] for day in month_ends(start, end)]


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def figures(session: Session, scope: Any | None, start: date, end: date, months: int) -> list[FigureRow]:
    """Per month: churn among customers not churned at its start, repeat borrowing by its end; overall, by segment
    and by loyalty band (both as at the month's start)."""
    ends = month_ends(start, end)
    previous = {f.customer_id: f for f in every_customer(session, scope, month_end(add_months(ends[0], -1)), months)}
    rows = []
    for day in ends:
        current = {f.customer_id: f for f in every_customer(session, scope, day, months)}
        tally: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
        for cid, now in current.items():
            before = previous.get(cid)
            groups = [("all", "all"), ("segment", (before or now).segment),
                      ("loyalty_band", (before or now).loyalty_band)]
            for group in groups:
                counts = tally[group]
                if before is not None and not churned(before, months):
                    counts[0] += 1
                    counts[1] += churned(now, months)
                counts[2] += now.products_ever >= 2
                counts[3] += now.products_ever >= 1
        for (group, value), (at_risk, gone, repeat, borrowers) in sorted(tally.items()):
            rows.append(FigureRow(period=f"{day:%Y-%m}", group=group, value=value, customers=at_risk,
                                  churned=gone, churn_rate=_rate(gone, at_risk), repeat_customers=repeat,
                                  repeat_rate=_rate(repeat, borrowers)))
        previous = current
    return rows


def chart(rows: list[FigureRow]) -> bytes:
    """Churn rate over time, overall and by loyalty band, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(figsize=(8, 4.5))
    lines: dict[str, list[tuple[str, float]]] = defaultdict(list)
    for row in rows:
        if row.group in ("all", "loyalty_band") and row.churn_rate is not None:
            lines[row.value].append((row.period, row.churn_rate))
    for name in ["all"] + [band for _, band in LOYALTY_BANDS]:
        if lines.get(name):
            periods, rates = zip(*lines[name], strict=True)
            axes.plot(periods, rates, marker="o", label=name if name == "all" else f"loyalty {name}")
    axes.set_title("Monthly churn rate by loyalty band")
    axes.set_xlabel("month")
    axes.set_ylabel("churn rate")
    axes.tick_params(axis="x", labelrotation=45)
    if lines:
        axes.legend()
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90)
    pyplot.close(figure)
    return buffer.getvalue()


def _risk_of(portrait: CustomerPortrait | None) -> str:
    if portrait is None or portrait.current_max_dpd is None:
        return "unknown"
    if portrait.latest_grade in rules.HIGH_RISK_GRADES or (portrait.max_dpd_12m or 0) > rules.SERIOUS_DPD \
            or portrait.worst_class not in rules.CLEAN_CLASSES:
        return "high_risk"
    if rules.credit_hold(portrait.current_max_dpd, portrait.max_dpd_12m, portrait.worst_class):
        return "watch"
    return "clean"


def loyalty_segments(session: Session, scope: Any | None, as_of: date) -> list[LoyaltySegment]:
    """Customers by loyalty band on `as_of` and by credit risk from the stored portrait (monitoring's figures)."""
    counts: dict[tuple[str, str], int] = defaultdict(int)
    page: list[RelationshipFeatures] = []

    def tally() -> None:
        portraits = {p.customer_id: p for p in session.execute(select(CustomerPortrait).where(
            CustomerPortrait.customer_id.in_([f.customer_id for f in page]))).scalars()}
        for f in page:
            counts[(f.loyalty_band, _risk_of(portraits.get(f.customer_id)))] += 1
        page.clear()

    for f in every_customer(session, scope, as_of, DEFAULT_WINDOW):
        page.append(f)
        if len(page) == PAGE:
            tally()
    tally()
    risks = ("clean", "watch", "high_risk", "unknown")
    return [LoyaltySegment(loyalty_band=band, risk=risk, customers=counts[(band, risk)])
            for _, band in LOYALTY_BANDS for risk in risks]


def look_alikes(session: Session, scope: Any | None, product_code: str, as_of: date, limit: int) -> list[LookAlike]:
    """Customers not holding the product, nearest (standardised relationship features) to one who does."""
    from sklearn.neighbors import NearestNeighbors
    from sklearn.preprocessing import StandardScaler

    held = holders(session, product_code, as_of)
    everyone = list(every_customer(session, scope, as_of, DEFAULT_WINDOW))
    owners = [f for f in everyone if f.customer_id in held]
    others = [f for f in everyone if f.customer_id not in held and f.closed_on is None]
    if not owners or not others:
        return []
    scaler = StandardScaler().fit(_matrix(everyone, LOOK_ALIKE_INPUTS))
    index = NearestNeighbors(n_neighbors=1).fit(scaler.transform(_matrix(owners, LOOK_ALIKE_INPUTS)))
    distances, nearest = index.kneighbors(scaler.transform(_matrix(others, LOOK_ALIKE_INPUTS)))
    ranked = sorted(zip(others, distances[:, 0], nearest[:, 0], strict=True),
                    key=lambda item: (item[1], item[0].customer_id))
    return [LookAlike(customer_id=f.customer_id, branch=f.branch, distance=round(float(d), 4),
                      nearest_holder=owners[int(n)].customer_id, loyalty_index=f.loyalty_index)
            for f, d, n in ranked[:limit]]


def churn_history(session: Session, as_of: date, months: int) -> tuple[list[date], list[RelationshipFeatures],
                                                                         list[int]]:
    """(snapshot dates, features at each, churned within `months` after it) for customers not churned then."""
    snapshots = [month_end(add_months(as_of, -months - 3 * k)) for k in range(SNAPSHOTS)]
    rows, outcomes = [], []
    for day in sorted(snapshots):
        then = {f.customer_id: f for f in every_customer(session, None, day, months)}
        later = {f.customer_id: f for f in every_customer(session, None, add_months(day, months), months)}
        for f in every_customer(session, None, day, DEFAULT_WINDOW):
            if not churned(then[f.customer_id], months):
                rows.append(f)
                outcomes.append(int(churned(later[f.customer_id], months)))
    return sorted(snapshots), rows, outcomes


def train_churn_model(session: Session, as_of: date, months: int, seed: int = 0) -> ChurnModelReport:
    """Logistic regression of churn within `months` on the measures of past dates; the AUC on a held-out quarter.
    Scores every customer not churned on `as_of` and stores the probability, which the portrait's retention flag
    reads; those at or over the threshold are flagged at once (campaigns target `retention_risk`)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    snapshots, rows, outcomes = churn_history(session, as_of, months)
    report = {"as_of": as_of, "churn_months": months, "snapshots": snapshots, "rows": len(rows),
              "churned": sum(outcomes), "auc": None, "coefficients": {}, "flagged": 0,
              "threshold": rules.CHURN_FLAG_AT}
    if len(set(outcomes)) < 2:
        return ChurnModelReport.model_validate(report)
    x, y = _matrix(rows, CHURN_INPUTS), np.array(outcomes)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    if min(int(y.sum()), int(len(y) - y.sum())) >= 4:
        x_fit, x_test, y_fit, y_test = train_test_split(x, y, test_size=0.25, stratify=y, random_state=seed)
        model.fit(x_fit, y_fit)
        report["auc"] = round(float(roc_auc_score(y_test, model.predict_proba(x_test)[:, 1])), 4)
    model.fit(x, y)
    report["coefficients"] = {name: round(float(c), 4)
                              for name, c in zip(CHURN_INPUTS, model[-1].coef_[0], strict=True)}
    now = {f.customer_id: f for f in every_customer(session, None, as_of, months)}
    current = [f for f in every_customer(session, None, as_of, DEFAULT_WINDOW) if not churned(now[f.customer_id],
                                                                                             months)]
    if current:
        probabilities = model.predict_proba(_matrix(current, CHURN_INPUTS))[:, 1]
        flagged = [f.customer_id for f, p in zip(current, probabilities, strict=True) if p >= rules.CHURN_FLAG_AT]
        for f, p in zip(current, probabilities, strict=True):
            session.merge(ChurnScore(customer_id=f.customer_id, probability=round(float(p), 4), model_as_of=as_of))
        _flag(session, flagged)
        report["flagged"] = len(flagged)
    session.flush()
    return ChurnModelReport.model_validate(report)


def _flag(session: Session, customer_ids: list[str]) -> None:
    for start in range(0, len(customer_ids), PAGE):
        chunk = customer_ids[start:start + PAGE]
        portraits = session.execute(select(CustomerPortrait).where(CustomerPortrait.customer_id.in_(chunk))
                                    ).scalars().all()
        members = set(session.execute(select(SegmentMember.customer_id).where(
            SegmentMember.segment == Segment.RETENTION_RISK.value, SegmentMember.customer_id.in_(chunk))).scalars())
        for portrait in portraits:
            portrait.retention_risk = True
            session.add(portrait)
            if portrait.customer_id not in members:
                session.add(SegmentMember(segment=Segment.RETENTION_RISK.value, customer_id=portrait.customer_id))
