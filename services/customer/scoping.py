"""Who may see and change which customer. Others get 404, never 403, so ids cannot be probed."""

from __future__ import annotations

from collections.abc import Callable
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
    return full_view_test(principal)(branch)


def full_view_test(principal: Principal) -> Callable[[str], bool]:
    """`full_view` decided once per request: a page asks it per row, and the roles do not change in between."""
    if principal.has_role(Role.ADMIN, Role.AUDITOR):
        return lambda _branch: True
    own = principal.branch if principal.has_role(Role.LOAN_OFFICER) else None
    if own is None:
        return lambda _branch: False
    return lambda branch: branch == own


def scope_filter(principal: Principal, branch_column: Any, referred_column: Any) -> Any | None:
    """A WHERE clause limiting a query to what the caller may see; None when it may see everything."""
    shape, params = scope_shape(principal)
    if shape == "all":
        return None
    clauses = []
    if "scope_branch" in params:
        clauses.append(branch_column == params["scope_branch"])
    if "scope_sub" in params:
        clauses.append(referred_column == params["scope_sub"])
    return or_(*clauses) if clauses else false()


def scope_shape(principal: Principal) -> tuple[str, dict[str, str]]:
    """The caller's scope for statements built once and reused: which clause applies ("all" for none, "none" for
    false, else "officer", "partner" or "officerpartner", ORed) and the values of its bind parameters
    `scope_branch` and `scope_sub`. `scope_filter` is the same rule with the values inlined."""
    if principal.has_role(*_SEE_ALL):
        return "all", {}
    params = {}
    if principal.has_role(Role.LOAN_OFFICER) and principal.branch is not None:
        params["scope_branch"] = principal.branch
    if principal.has_role(Role.PARTNER):
        params["scope_sub"] = principal.sub
    shape = ("officer" if "scope_branch" in params else "") + ("partner" if "scope_sub" in params else "")
    return shape or "none", params
