from fastapi import Depends, Request

from gateway.limits.service import Verdict
from shared.auth.dependencies import current_principal
from shared.auth.tokens import Principal
from shared.errors import Problem


def _refuse(verdict: Verdict, what: str) -> Problem:
    return Problem(
        429, "Too many requests", f"{what}; retry in {verdict.retry_after} s.",
        headers={"Retry-After": str(verdict.retry_after), "RateLimit-Limit": str(verdict.limit),
                 "RateLimit-Remaining": "0"},
    )


async def limit_api_calls(request: Request, principal: Principal = Depends(current_principal)) -> None:
    state = request.app.state
    verdict = await state.limiter.hit(f"api:{principal.sub}", state.gateway_settings.rate_limit_per_minute)
    if not verdict.allowed:
        raise _refuse(verdict, "Request limit reached for this user")


async def limit_sign_in(request: Request) -> None:
    form = await request.form()
    username = str(form.get("username", ""))[:64].lower()
    state = request.app.state
    verdict = await state.limiter.hit(f"signin:{username}", state.gateway_settings.sign_in_attempts_per_minute)
    if not verdict.allowed:
        raise _refuse(verdict, "Too many sign-in attempts for this user")
