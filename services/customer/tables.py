"""Every table the customer service owns, for migrations."""

from services.customer.db import metadata

__all__ = ["metadata"]
