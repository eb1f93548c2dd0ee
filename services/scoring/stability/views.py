from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict

from services.scoring import api
from services.scoring.stability.flows import report_for
from services.scoring.settings import MAX_PSI_WINDOW
from shared.auth.dependencies import require_roles
from shared.auth.roles import Role
from shared.auth.tokens import Principal
from shared.errors import problem_responses

router = APIRouter(tags=["stability"])
Watcher = Annotated[Principal, Depends(require_roles(Role.ADMIN, Role.RISK_ANALYST, Role.AUDITOR))]


class PsiBin(BaseModel):
    label: str
    expected: int
    actual: int


class FeatureStability(BaseModel):
    feature: str
    psi: float | None
    band: str | None = None
    note: str | None = None
    bins: list[PsiBin] | None = None


class ScoreStability(BaseModel):
    psi: float
    band: str
    reference_n: int


class StabilityReport(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "model_id": "5f0c6f1e2b7d4c4e9a3f1d2e3c4b5a69", "model_version": "german-credit-v1", "window": 5000,
        "n_recent": 1200, "bands": {"stable": "PSI < 0.1", "watch": "0.1 <= PSI <= 0.25", "shift": "PSI > 0.25"},
        "score": {"psi": 0.04, "band": "stable", "reference_n": 1000},
        "features": [{"feature": "duration_in_month", "psi": 0.12, "band": "watch", "bins": []}]}]})

    model_id: str
    model_version: str
    window: int
    n_recent: int
    bands: dict[str, str]
    score: ScoreStability | None
    features: list[FeatureStability]


@router.get("/stability", response_model=StabilityReport,
            summary="PSI of each scorecard feature and of the score: training sample vs recent scores",
            description="Bands: < 0.1 stable, 0.1-0.25 watch, > 0.25 shift. Defaults to the champion.",
            responses=problem_responses(404, 503))
def stability(
    request: Request,
    _: Watcher,
    model_id: str | None = None,
    window: Annotated[int | None, Query(ge=10, le=MAX_PSI_WINDOW,
                                        description=f"How many recent scores (at most {MAX_PSI_WINDOW:,})")] = None,
) -> dict[str, Any]:
    state = api.state(request)
    return report_for(state.database, state.store, state.context, model_id, window)
