"""First-start work of `loancrm up`: the admin user and the gateway's signing key."""

from __future__ import annotations

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from gateway.settings import GatewaySettings
from gateway.tokens.service import ensure_signing_key, resolve_passphrase
from gateway.users.service import ensure_admin
from shared.db import Database
from shared.settings import KernelSettings


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
            return ensure_admin(session, admin.user, admin.password.get_secret_value() if admin.password else None)
    finally:
        database.dispose()
