"""Every table the scoring service owns, for migrations."""

from services.scoring.db import metadata

__all__ = ["metadata"]
