from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"
    LOAN_OFFICER = "loan_officer"
    RISK_ANALYST = "risk_analyst"
    COLLECTOR = "collector"
    AUDITOR = "auditor"
    PARTNER = "partner"
    CREDIT_COMMITTEE = "credit_committee"  # the higher authority: approvals above the policy's committee threshold
    # Not a person: the gateway's webhook relay reading the services' event feeds (`events:read`, nothing else).
    SYSTEM = "system"
    # Not a person: close of business's own OAuth client (provisioned by `loancrm up`), re-scoring borrowers,
    # reading their portraits and delivering queued contact-log entries; allowed on those routes only.
    BATCH = "batch"


# What each role may ask for in a token's `scope` (by default it gets the union over its roles). A scope only
# narrows: a route needs one of its scopes AND one of its roles. `<service>:read` reads, `<service>:write` changes;
# `scoring:models` changes the model registry, `users:admin` the gateway's users, `audit:read` reads the logs
# of who saw what, `webhooks:read/write` the caller's own webhook subscriptions and deliveries, `events:read` the
# services' event feeds. Partners are not issued monitoring scopes: monitoring has no partner-owned records.
_WEBHOOKS = frozenset({"webhooks:read", "webhooks:write"})
ROLE_SCOPES: dict[Role, frozenset[str]] = {
    Role.ADMIN: frozenset(
        {"customer:read", "customer:write", "scoring:read", "scoring:write", "monitoring:read",
         "monitoring:write", "scoring:models", "users:admin", "audit:read"} | _WEBHOOKS
    ),
    Role.LOAN_OFFICER: frozenset(
        {"customer:read", "customer:write", "scoring:read", "scoring:write", "monitoring:read", "monitoring:write"}
        | _WEBHOOKS
    ),
    Role.RISK_ANALYST: frozenset(
        {"customer:read", "scoring:read", "scoring:write", "scoring:models", "monitoring:read", "monitoring:write"}
        | _WEBHOOKS
    ),
    # customer:write: a collector logs its contacts with the borrower.
    Role.COLLECTOR: frozenset({"customer:read", "customer:write", "monitoring:read", "monitoring:write"}) | _WEBHOOKS,
    Role.AUDITOR: frozenset({"customer:read", "scoring:read", "monitoring:read", "audit:read"}) | _WEBHOOKS,
    Role.PARTNER: frozenset({"customer:read", "customer:write", "scoring:read", "scoring:write"}) | _WEBHOOKS,
    # monitoring:write: the committee approves hardship plans, deferrals and early recalls.
    Role.CREDIT_COMMITTEE: frozenset({"customer:read", "scoring:read", "scoring:write", "monitoring:read",
                                      "monitoring:write"}) | _WEBHOOKS,
    Role.SYSTEM: frozenset({"events:read"}),
    Role.BATCH: frozenset({"customer:read", "customer:write", "scoring:read", "scoring:write", "monitoring:read"}),
}


def scopes_for(roles: list[str] | tuple[str, ...]) -> frozenset[str]:
    granted: set[str] = set()
    for role in roles:
        granted |= ROLE_SCOPES.get(Role(role), frozenset())
    return frozenset(granted)


# What each scope allows, as the OpenAPI documents' security scheme lists them.
SCOPE_DESCRIPTIONS: dict[str, str] = {
    "customer:read": "Read customers and their records",
    "customer:write": "Create and change customers and their records",
    "scoring:read": "Read scores, applications and models",
    "scoring:write": "Score applicants; submit and decide applications",
    "scoring:models": "Register, validate, promote and retire scoring models",
    "monitoring:read": "Read loans, postings, alerts and the portfolio",
    "monitoring:write": "Register loans, post repayments, act on alerts and collections",
    "users:admin": "Manage the gateway's users",
    "audit:read": "Read the logs of who saw what",
    "webhooks:read": "Read the caller's own webhook subscriptions and deliveries",
    "webhooks:write": "Subscribe to webhooks, delete subscriptions, ask for redeliveries",
    "events:read": "Read the services' event feeds (the gateway's webhook relay only)",
}
