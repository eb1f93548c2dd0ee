"""Every table the monitoring service owns, for migrations."""

from services.monitoring.db import metadata

__all__ = ["metadata"]
