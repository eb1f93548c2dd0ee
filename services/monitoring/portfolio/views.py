from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from services.monitoring import api
from services.monitoring.business_day import business_date
from services.monitoring.loans.schedule import add_months
from services.monitoring.portfolio import charts, service
from services.monitoring.portfolio.models import Chart, GroupBy, PortfolioFigures, RollRates, Vintage
from shared.bounds import BusinessDate
from shared.errors import field_problem, problem_responses

router = APIRouter(tags=["portfolio"])


def _figures(request: Request, principal, group_by: GroupBy | None) -> PortfolioFigures:  # noqa: ANN001
    with api.database(request).session() as session:
        return service.figures(session, business_date(session, api.settings(request)), group_by=group_by,
                               scope=api.scope(principal), lgd=api.settings(request).lgd,
                               policy=api.settings(request).collateral_policy())


def _rolls(request: Request, principal, start: date | None, end: date | None) -> RollRates:  # noqa: ANN001
    with api.database(request).session() as session:
        end = end or business_date(session, api.settings(request))
        start = start or add_months(end, -1)
        if start > end:
            raise field_problem("query.start", "must not be after end")
        return service.roll_rates(session, start, end, scope=api.scope(principal))


def _vintages(request: Request, principal, months: int) -> list[Vintage]:  # noqa: ANN001
    with api.database(request).session() as session:
        return service.vintages(session, business_date(session, api.settings(request)), months=months,
                                scope=api.scope(principal))


@router.get("/portfolio/figures", response_model=PortfolioFigures,
            summary="NPL ratio, PAR30/PAR90, buckets and expected loss, for the portfolio or by branch, product, "
                    "officer, segment or value tier",
            responses=problem_responses(422))
def portfolio_figures(request: Request, principal: api.Reader, group_by: GroupBy | None = None) -> PortfolioFigures:
    return _figures(request, principal, group_by)


@router.get("/portfolio/roll-rates", response_model=RollRates, responses=problem_responses(422),
            summary="Roll rates between buckets from one date to another (default: the last month)")
def portfolio_roll_rates(request: Request, principal: api.Reader, start: BusinessDate | None = None,
                         end: BusinessDate | None = None) -> RollRates:
    return _rolls(request, principal, start, end)


@router.get("/portfolio/vintages", response_model=list[Vintage],
            summary="Vintage curves by disbursement month: share ever more than 30 days past due",
            responses=problem_responses(422))
def portfolio_vintages(request: Request, principal: api.Reader,
                       months: Annotated[int, Query(ge=1, le=120)] = 12) -> list[Vintage]:
    return _vintages(request, principal, months)


@router.get("/portfolio/charts/{chart}.png", response_class=Response, summary="A portfolio chart as PNG",
            responses={200: {"content": {"image/png": {}}, "description": "PNG image"}, **problem_responses(422)})
def portfolio_chart(request: Request, chart: Chart, principal: api.Reader) -> Response:
    if chart is Chart.BUCKETS:
        png = charts.buckets_chart(_figures(request, principal, None))
    elif chart is Chart.VINTAGES:
        png = charts.vintages_chart(_vintages(request, principal, 12))
    else:
        png = charts.roll_rates_chart(_rolls(request, principal, None, None))
    return Response(png, media_type="image/png")
