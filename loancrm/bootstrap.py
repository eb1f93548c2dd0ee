"""First-start work of `loancrm up`: the admin user, the gateway's signing key and COB's batch client."""

from __future__ import annotations

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

import secrets

from gateway.clients import service as clients
from gateway.settings import GatewaySettings
from gateway.tokens.service import ensure_signing_key, resolve_passphrase
from gateway.users.service import ensure_admin
from shared.db import Database
from shared.files import generated_once
from shared.settings import BATCH_SECRET_FILE, BatchSettings, KernelSettings, load_settings


class AdminSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LOANCRM_ADMIN_", extra="ignore")

    user: str = "admin"
    password: SecretStr | None = None


def bootstrap_gateway(kernel: KernelSettings, gateway: GatewaySettings, admin: AdminSettings) -> str | None:
    """Returns the generated admin password when one had to be made (shown once, never stored in clear)."""
    database = Database(kernel.database_url("gateway"))
    try:
        with database.session() as session:
            configured = gateway.key_passphrase.get_secret_value() if gateway.key_passphrase else None
            ensure_signing_key(session, resolve_passphrase(kernel, configured))
            ensure_batch_client(session, kernel)
            session.commit()
            return ensure_admin(session, admin.user, admin.password.get_secret_value() if admin.password else None)
    finally:
        database.dispose()


def ensure_batch_client(session, kernel: KernelSettings) -> tuple[str, bool]:  # noqa: ANN001
    """COB's own client, so close of business re-scores, checks silence and delivers contacts out of the box:
    with the configured secret, else one generated once into var_dir. Returns its id and whether it changed."""
    batch = load_settings(BatchSettings)
    secret = batch.client_secret(kernel) or generated_once(
        kernel.var_dir / BATCH_SECRET_FILE, lambda: secrets.token_urlsafe(32), allowed=kernel.generate_secrets,
        variable="LOANCRM_BATCH_CLIENT_SECRET")
    return batch.batch_client_id, clients.ensure_batch_client(session, batch.batch_client_id, secret)


def operator_token(kernel: KernelSettings, gateway: GatewaySettings, username: str, ttl_seconds: int = 900) -> str:
    """An access token for `username`, signed here: the operator at this machine holds the gateway's database
    and keys already, so this is no new power (it is how `loancrm up` seeds the demo without a password)."""
    from sqlmodel import select

    from gateway.tokens.service import KeyRing, issue_access_token, user_subject
    from gateway.users.models import User
    from shared.auth.roles import scopes_for

    database = Database(kernel.database_url("gateway"))
    try:
        with database.session() as session:
            user = session.exec(select(User).where(User.username == username)).one()
            configured = gateway.key_passphrase.get_secret_value() if gateway.key_passphrase else None
            token = issue_access_token(
                session, user_subject(user, user.session_id), scope=" ".join(sorted(scopes_for(user.roles))),
                issuer=kernel.jwt_issuer, audience=kernel.jwt_audience,
                keyring=KeyRing(resolve_passphrase(kernel, configured)),
                ttl_seconds=min(ttl_seconds, kernel.token_max_lifetime_seconds))
            session.commit()
            return token
    finally:
        database.dispose()
