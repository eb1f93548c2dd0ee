"""Early-warning kinds from outside and from behaviour, registered with the engine like any other kind:
overdue records at other lenders and lawsuits (outside feeds), a business borrower's statements weakening,
account inflows falling against the borrower's own history, and satisfaction falling (customer surveys)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import timedelta
from decimal import Decimal
from statistics import median
from typing import Any

from services.monitoring.errors import DomainError
from services.monitoring.rules.engine import Facts, Hit, _require_decimal, _require_int, register
from services.monitoring.rules.models import RuleKind


def _records(facts: Facts, feed: str) -> list[Mapping[str, Any]]:
    return list((facts.outside or {}).get(feed, ()))


def _bureau_overdue(params: Mapping[str, Any], facts: Facts) -> list[Hit]:
    """Each overdue record at another lender at least `min_days_overdue` late and `min_amount` large."""
    least = Decimal(params["min_amount"])
    return [Hit(f"bureau:{r['id']}", {"lender": r["lender"], "amount_overdue": str(r["amount_overdue"]),
                                      "days_overdue": r["days_overdue"], "reported_on": r["reported_on"].isoformat()})
            for r in _records(facts, "bureau")
            if r["days_overdue"] >= params["min_days_overdue"] and r["amount_overdue"] >= least]


def _legal_case(params: Mapping[str, Any], facts: Facts) -> list[Hit]:
    """Each lawsuit or enforcement record of at least `min_amount` that was not dismissed."""
    least = Decimal(params["min_amount"])
    return [Hit(f"legal:{r['id']}", {"case_type": r["case_type"], "amount": str(r["amount"]), "status": r["status"],
                                     "filed_on": r["filed_on"].isoformat()},
                severity="high" if r["case_type"] == "enforcement" else None)
            for r in _records(facts, "legal") if r["status"] != "dismissed" and r["amount"] >= least]


def _financials_weakening(params: Mapping[str, Any], facts: Facts) -> list[Hit]:
    """Each statement whose liabilities rose by `liabilities_rise` or more over the period before, or whose current
    ratio fell below / debt-to-equity rose above its threshold (crossing it: a ratio already weak stays one alert)."""
    rise, below, above = (Decimal(params[n]) for n in ("liabilities_rise", "current_ratio_below",
                                                       "debt_to_equity_above"))
    statements = sorted(_records(facts, "financials"), key=lambda r: r["period_end"])
    hits = []
    for previous, current in zip([None, *statements], statements):
        reasons: dict[str, Any] = {}
        if previous is not None and previous["total_liabilities"] > 0:
            grew = (current["total_liabilities"] - previous["total_liabilities"]) / previous["total_liabilities"]
            if grew >= rise:
                reasons["liabilities_rise"] = str(grew.quantize(Decimal("0.0001")))
        if current["current_ratio"] < below and (previous is None or previous["current_ratio"] >= below):
            reasons["current_ratio"] = str(current["current_ratio"])
        if current["debt_to_equity"] > above and (previous is None or previous["debt_to_equity"] <= above):
            reasons["debt_to_equity"] = str(current["debt_to_equity"])
        if reasons:
            hits.append(Hit(f"financials:{current['period_end'].isoformat()}", {
                "period_end": current["period_end"].isoformat(),
                "previous_period_end": previous["period_end"].isoformat() if previous else None,
                "total_liabilities": str(current["total_liabilities"]), "weakened": reasons}))
    return hits


def _activity_drop(params: Mapping[str, Any], facts: Facts) -> Hit | None:
    """Inflows of the last `window_days` under `share` of the median of the `history_windows` windows before it.

    Inflows are credits other than loan repayments. Judged up to how far the feed is known, and only when the feed
    reaches back over the whole history (a new account has no history to fall from). One alert a month at most."""
    feed = facts.feed
    if feed is None or not feed.transactions:
        return None
    window, count = timedelta(days=params["window_days"]), params["history_windows"]
    end = min(feed.known_until or facts.day, facts.day)
    if (end - min(t["booked_on"] for t in feed.transactions)).days < window.days * count:
        return None  # the feed does not reach into the oldest window
    sums = [Decimal(0)] * (count + 1)  # [0] is the latest window
    for t in feed.transactions:
        back = (end - t["booked_on"]).days // window.days
        if t["direction"] == "credit" and t["kind"] != "repayment" and 0 <= back <= count and t["booked_on"] <= end:
            sums[back] += t["amount"]
    usual = median(sums[1:])
    if usual <= 0 or sums[0] >= usual * Decimal(params["share"]):
        return None
    return Hit(f"activity:{end.strftime('%Y-%m')}", {
        "inflows_last_window": str(sums[0]), "median_of_history": str(usual), "window_days": window.days,
        "history_windows": [str(s) for s in reversed(sums[1:])], "judged_to": end.isoformat()})


def _satisfaction_falling(params: Mapping[str, Any], facts: Facts) -> Hit | None:
    """The latest survey's CSAT at least `csat_drop` points under the earlier ones', or an NPS of `nps_at_most` or
    less. One alert a month at most."""
    contact = facts.contact
    if contact is None:
        return None
    trend, nps = contact.get("csat_trend"), contact.get("nps_latest")
    fell = trend is not None and Decimal(str(trend)) <= -Decimal(params["csat_drop"])
    unhappy = nps is not None and nps <= params["nps_at_most"]
    if not (fell or unhappy):
        return None
    return Hit(f"satisfaction:{facts.day.strftime('%Y-%m')}", {"csat_trend": trend, "nps_latest": nps})


def _nps_bound(params: Mapping[str, Any]) -> None:
    value = params.get("nps_at_most")
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 10:
        raise DomainError("params.nps_at_most", "must be an NPS score from 0 to 10")


def _amount_at_least_zero(name: str) -> Callable[[Mapping[str, Any]], None]:
    def check(params: Mapping[str, Any]) -> None:
        try:
            value = Decimal(str(params.get(name)))
        except ArithmeticError:
            value = Decimal(-1)
        if isinstance(params.get(name), bool) or not value.is_finite() or value < 0:
            raise DomainError(f"params.{name}", "must be an amount of 0 or more, as a string, e.g. \"5000\"")
    return check


register(RuleKind.BUREAU_OVERDUE, _bureau_overdue,
         [_require_int("min_days_overdue", 1), _amount_at_least_zero("min_amount")],
         [{"code": "bureau_overdue", "name": "Overdue 30 days or more at another lender (credit bureau)",
           "kind": RuleKind.BUREAU_OVERDUE, "params": {"min_days_overdue": 30, "min_amount": "1000"},
           "severity": "medium"}])
register(RuleKind.LEGAL_CASE, _legal_case, [_amount_at_least_zero("min_amount")],
         [{"code": "legal_case", "name": "Sued or under enforcement (legal records)", "kind": RuleKind.LEGAL_CASE,
           "params": {"min_amount": "0"}, "severity": "medium"}])
register(RuleKind.FINANCIALS_WEAKENING, _financials_weakening,
         [_require_decimal("liabilities_rise"), _require_decimal("current_ratio_below"),
          _require_decimal("debt_to_equity_above")],
         [{"code": "financials_weakening", "name": "Liabilities up 30% or ratios weakening (financial statements)",
           "kind": RuleKind.FINANCIALS_WEAKENING,
           "params": {"liabilities_rise": "0.3", "current_ratio_below": "1.0", "debt_to_equity_above": "2.0"},
           "severity": "medium"}])
register(RuleKind.ACTIVITY_DROP, _activity_drop,
         [_require_int("window_days", 1), _require_int("history_windows", 1),
          _require_decimal("share", at_most=Decimal(1))],
         [{"code": "activity_drop", "name": "Inflows of the last 30 days under half the 6-month median",
           "kind": RuleKind.ACTIVITY_DROP, "params": {"window_days": 30, "history_windows": 6, "share": "0.5"},
           "severity": "medium"}])
register(RuleKind.SATISFACTION_FALLING, _satisfaction_falling, [_require_decimal("csat_drop"), _nps_bound],
         [{"code": "satisfaction_falling", "name": "Satisfaction fell a point, or NPS 3 or less (surveys)",
           "kind": RuleKind.SATISFACTION_FALLING, "params": {"csat_drop": "1.0", "nps_at_most": 3},
           "severity": "low"}])
