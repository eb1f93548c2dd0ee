"""Who may see and change which customer. Others get 404, never 403, so ids cannot be probed."""

from __future__ import annotations

from typing import Any

from sqlalchemy import false, or_

from shared.auth.roles import Role
from shared.auth.tokens import Principal

READ_ROLES = tuple(Role)
WRITE_ROLES = (Role.ADMIN, Role.LOAN_OFFICER, Role.PARTNER)
MANAGER_ROLES = (Role.ADMIN, Role.LOAN_OFFICER)
AUDIT_ROLES = (Role.ADMIN, Role.AUDITOR)
_SEE_ALL = (Role.ADMIN, Role.AUDITOR, Role.RISK_ANALYST, Role.COLLECTOR)


def can_see(principal: Principal, branch: str, referred_by: str | None) -> bool:
    if principal.has_role(*_SEE_ALL):
        return True
    if principal.has_role(Role.LOAN_OFFICER) and principal.branch is not None and principal.branch == branch:
        return True
    return principal.has_role(Role.PARTNER) and referred_by == principal.sub


def can_change(principal: Principal, branch: str, referred_by: str | None) -> bool:
    if principal.has_role(Role.ADMIN):
        return True
    if principal.has_role(Role.LOAN_OFFICER) and principal.branch is not None and principal.branch == branch:
        return True
    return principal.has_role(Role.PARTNER) and referred_by == principal.sub


def full_view(principal: Principal, branch: str) -> bool:
    if principal.has_role(Role.ADMIN, Role.AUDITOR):
        return True
    return principal.has_role(Role.LOAN_OFFICER) and principal.branch is not None and principal.branch == branch


def scope_filter(principal: Principal, branch_column: Any, referred_column: Any) -> Any | None:
    """A WHERE clause limiting a query to what the caller may see; None when it may see everything."""
    if principal.has_role(*_SEE_ALL):
        return None
    clauses = []
    if principal.has_role(Role.LOAN_OFFICER) and principal.branch is not None:
        clauses.append(branch_column == principal.branch)
    if principal.has_role(Role.PARTNER):
        clauses.append(referred_column == principal.sub)
    if not clauses:
        return false()
    return or_(*clauses)
