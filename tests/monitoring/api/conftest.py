from tests.monitoring.api.helpers import borrowers  # noqa: F401
