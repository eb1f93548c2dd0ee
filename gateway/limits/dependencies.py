from typing import Any

from fastapi import Request

from shared.limits import Verdict
from shared.auth.tokens import Principal
from shared.errors import Problem

HOUR = 3600


def _refuse(verdict: Verdict, what: str) -> Problem:
    return Problem(
        429, "Too many requests", f"{what}; retry in {verdict.retry_after} s.",
        headers={"Retry-After": str(verdict.retry_after), "RateLimit-Limit": str(verdict.limit),
                 "RateLimit-Remaining": "0"},
    )


async def limit_api_calls(state: Any, principal: Principal) -> None:
    """Count one API call against the caller's limit (`state` is the app's), refused with a 429 past it."""
    # An OAuth client's own limit is signed into its tokens (gateway/tokens/flows.py); users share the default.
    own = principal.claims.get("rate_limit")
    limit = own if isinstance(own, int) and own > 0 else state.gateway_settings.rate_limit_per_minute
    verdict = await state.limiter.hit(f"api:{principal.sub}", limit)
    if not verdict.allowed:
        raise _refuse(verdict, "Request limit reached for this " + ("client" if "client_id" in principal.claims
                                                                    else "user"))


def _sign_in_tiers(request: Request, username: str) -> list[tuple[str, int, int, str]]:
    """(key, limit, window, what) for each limit a failed sign-in counts against."""
    settings = request.app.state.gateway_settings
    address = request.client.host if request.client else "unknown"
    pair = f"signin:{username[:64].lower()}@{address}"
    return [
        (pair, settings.sign_in_attempts_per_minute, 60, "Too many failed sign-ins for this user from this address"),
        (pair, settings.sign_in_attempts_per_hour, HOUR, "Too many failed sign-ins for this user from this address"),
        (f"signin-address:{address}", settings.sign_in_address_attempts_per_minute, 60,
         "Too many failed sign-ins from this address"),
        (f"signin-address:{address}", settings.sign_in_address_attempts_per_hour, HOUR,
         "Too many failed sign-ins from this address"),
    ]


async def check_sign_in(request: Request, username: str) -> None:
    """Refuse before the password is even checked while this address is over a limit. Only this address: the
    same user elsewhere signs in as usual, so guessing from one place cannot lock the user out."""
    limiter = request.app.state.limiter
    for key, limit, window, what in _sign_in_tiers(request, username):
        verdict = await limiter.check(f"{key}:{window}", limit, window)
        if not verdict.allowed:
            # A refused attempt counts too, so a client that ignores Retry-After stays refused.
            await record_failed_sign_in(request, username)
            raise _refuse(verdict, what)


async def record_failed_sign_in(request: Request, username: str) -> None:
    limiter = request.app.state.limiter
    for key, limit, window, _ in _sign_in_tiers(request, username):
        await limiter.hit(f"{key}:{window}", limit, window)
