"""The close-of-business step that flags collateral whose revaluation is overdue."""

from __future__ import annotations

import asyncio
from typing import Any

from services.monitoring.cob.flows import CobContext
from services.monitoring.collateral.service import flag_overdue_revaluations


def _flag(ctx: CobContext) -> dict[str, Any]:
    with ctx.database.session() as session:
        flagged = flag_overdue_revaluations(session, ctx.day)
        session.commit()
    return {"status": "done", "flagged": flagged}


async def revaluations(ctx: CobContext) -> dict[str, Any]:
    return await asyncio.to_thread(_flag, ctx)
