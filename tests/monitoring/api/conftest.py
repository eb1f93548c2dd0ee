from tests.monitoring.api.helpers import borrowers, champion, rows_by_grade  # noqa: F401
