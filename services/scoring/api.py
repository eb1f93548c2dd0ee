"""What the scoring routes share: role gates, the per-app context, and running sync work off the event loop."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from services.scoring.registry.serving import ServingModels
from services.scoring.registry.store import ArtifactStore
from services.scoring.scores.service import ScoringContext
from services.scoring.scores.shadow import ShadowQueue
from services.scoring.scores.store import ScoreWriter
from shared.auth.dependencies import require_roles
from shared.auth.roles import Role
from shared.auth.tokens import Principal
from shared.clients.customer import CustomerClient
from shared.clients.monitoring import MonitoringClient
from shared.db import Database

Scorer = Annotated[Principal, Depends(require_roles(Role.ADMIN, Role.LOAN_OFFICER, Role.RISK_ANALYST, Role.PARTNER))]
ScoreReader = Annotated[Principal, Depends(require_roles(
    Role.ADMIN, Role.LOAN_OFFICER, Role.RISK_ANALYST, Role.AUDITOR, Role.PARTNER))]
# A borrower's latest scores, which the customer service reads for a portrait (COB's batch identity among its callers).
ScoreLister = Annotated[Principal, Depends(require_roles(
    Role.ADMIN, Role.LOAN_OFFICER, Role.RISK_ANALYST, Role.AUDITOR, Role.PARTNER, Role.BATCH))]
# COB's re-scoring of borrowers by id.
BatchScorer = Annotated[Principal, Depends(require_roles(
    Role.ADMIN, Role.LOAN_OFFICER, Role.RISK_ANALYST, Role.PARTNER, Role.BATCH))]
ModelReader = Annotated[Principal, Depends(require_roles(
    Role.ADMIN, Role.RISK_ANALYST, Role.AUDITOR, Role.LOAN_OFFICER))]
ModelManager = Annotated[Principal, Depends(require_roles(Role.ADMIN, Role.RISK_ANALYST))]


@dataclass
class ScoringState:
    database: Database
    store: ArtifactStore
    serving: ServingModels
    context: ScoringContext
    shadow: ShadowQueue
    writer: ScoreWriter
    customer: CustomerClient
    monitoring: MonitoringClient


def state(request: Request) -> ScoringState:
    return request.app.state.scoring

