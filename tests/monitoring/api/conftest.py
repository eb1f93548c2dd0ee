from tests.monitoring.api.helpers import peers  # noqa: F401
