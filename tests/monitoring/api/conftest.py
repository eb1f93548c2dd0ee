from tests.monitoring.api.helpers import borrowers, champion  # noqa: F401
