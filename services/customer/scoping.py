"""Who may see and change which customer: the kernel's scope rule (shared/auth/scope.py) over the customer's
branch and referring partner. Others get 404, never 403, so ids cannot be probed."""

from __future__ import annotations

from typing import Any

from shared.auth.roles import Role
from shared.auth.scope import visibility
from shared.auth.tokens import Principal

# Every person; the batch identity reads portraits only (services/customer/portrait/views.py).
READ_ROLES = tuple(r for r in Role if r is not Role.BATCH)
WRITE_ROLES = (Role.ADMIN, Role.LOAN_OFFICER, Role.PARTNER)
MANAGER_ROLES = (Role.ADMIN, Role.LOAN_OFFICER)
AUDIT_ROLES = (Role.ADMIN, Role.AUDITOR)


def can_see(principal: Principal, branch: str | None, referred_by: str | None) -> bool:
    return visibility(principal).allows(branch, referred_by)


def can_change(principal: Principal, branch: str | None, referred_by: str | None) -> bool:
    return visibility(principal, among=WRITE_ROLES).allows(branch, referred_by)


def scope_filter(principal: Principal, branch_column: Any, referred_column: Any) -> Any | None:
    """A WHERE clause limiting a query to what the caller may see; None when it may see everything."""
    seen = visibility(principal)
    return None if seen.everything else seen.where(branch_column, referred_column)


def scope_shape(principal: Principal) -> tuple[str, dict[str, str]]:
    """The caller's scope for statements built once and reused (see `Visibility.shape`)."""
    return visibility(principal).shape()
