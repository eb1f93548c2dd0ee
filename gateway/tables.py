"""Every table the gateway owns, for migrations."""

from gateway.clients import models as _clients  # noqa: F401
from gateway.db import metadata
from gateway.sessions import models as _sessions  # noqa: F401
from gateway.tokens import models as _tokens  # noqa: F401
from gateway.users import models as _users  # noqa: F401
from gateway.webhooks import models as _webhooks  # noqa: F401

__all__ = ["metadata"]
