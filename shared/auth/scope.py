"""The one rule of what a caller may see, for every service: which branches' records, and which partner's.

Staff who work the whole bank (admin, auditor, risk analyst, collector, credit committee) see every branch. A loan
officer sees its own branch only; a loan officer whose token names no branch sees nothing, never everything. A
partner sees only what it owns: the customers it referred, the applications and scores it submitted. A caller with
several roles sees the union. Services answer 404, never 403, for what lies outside, so ids cannot be probed.

The rule comes in the forms services need: `Visibility.allows` for a row in hand, `Visibility.where` for a
query, and `Visibility.shape` for statements built once and reused with bind parameters.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, bindparam, false, or_, true

from shared.auth.roles import Role
from shared.auth.tokens import Principal

# SYSTEM holds `events:read` only: it reads every branch's event feed, for the webhook relay to filter per subscriber.
SEE_EVERY_BRANCH = (Role.ADMIN, Role.AUDITOR, Role.RISK_ANALYST, Role.COLLECTOR, Role.CREDIT_COMMITTEE, Role.SYSTEM,
                    Role.BATCH)


@dataclass(frozen=True)
class Visibility:
    everything: bool = False
    branch: str | None = None  # the loan officer's branch
    owner: str | None = None  # the partner's own records: referred or submitted by this subject

    def allows(self, branch: str | None, owner: str | None = None) -> bool:
        """May the caller see a record of `branch`, referred or submitted by `owner`?"""
        if self.everything:
            return True
        if self.branch is not None and branch == self.branch:
            return True
        return self.owner is not None and owner == self.owner

    def where(self, branch_column: Any, owner_column: Any = None) -> ColumnElement[bool]:
        """A WHERE clause over a query's branch column (and owner column, where records have one); a table
        without an owner column shows partners nothing."""
        if self.everything:
            return true()
        clauses = []
        if self.branch is not None:
            clauses.append(branch_column == self.branch)
        if self.owner is not None and owner_column is not None:
            clauses.append(owner_column == self.owner)
        return or_(*clauses) if clauses else false()

    def shape(self) -> tuple[str, dict[str, str]]:
        """For statements built once and reused: the clause that applies ("all", "none", else "officer",
        "partner" or "officerpartner", ORed) and its bind parameters `scope_branch` and `scope_sub`."""
        if self.everything:
            return "all", {}
        params = {}
        if self.branch is not None:
            params["scope_branch"] = self.branch
        if self.owner is not None:
            params["scope_sub"] = self.owner
        shape = ("officer" if self.branch is not None else "") + ("partner" if self.owner is not None else "")
        return shape or "none", params


def shaped_where(shape: str, branch_column: Any, owner_column: Any = None) -> ColumnElement[bool]:
    """`Visibility.where` for a statement built once per `Visibility.shape()`: the same clause, its values the
    bind parameters `scope_branch` and `scope_sub` that `shape()` returns with it. A table without an owner column
    shows partners nothing."""
    if shape == "all":
        return true()
    clauses = []
    if "officer" in shape:
        clauses.append(branch_column == bindparam("scope_branch"))
    if "partner" in shape and owner_column is not None:
        clauses.append(owner_column == bindparam("scope_sub"))
    return or_(*clauses) if clauses else false()


NOTHING = Visibility()
# For work that already checked the caller's scope on the same record, or that runs for no caller (batches).
EVERYTHING = Visibility(everything=True)


def visibility(principal: Principal, among: Iterable[str] | None = None) -> Visibility:
    """What `principal` may see. `among` limits which of its roles count: a write open to officers and partners
    asks `visibility(p, among=(ADMIN, LOAN_OFFICER, PARTNER))`, so an auditor-officer changes its branch only."""
    roles = set(principal.roles) if among is None else set(principal.roles) & {str(r) for r in among}
    if roles & {str(r) for r in SEE_EVERY_BRANCH}:
        return Visibility(everything=True)
    branch = principal.branch if Role.LOAN_OFFICER in roles and principal.branch else None
    owner = principal.sub if Role.PARTNER in roles else None
    return Visibility(branch=branch, owner=owner)
