# Rule kinds kept in modules of their own register with the engine on import: each family adds itself here.
from services.monitoring.rules import signals  # noqa: F401
