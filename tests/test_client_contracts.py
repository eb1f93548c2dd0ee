"""The typed peer clients spell out the values a peer may answer; every value the peer's own enums can take must
parse there, or a new state (an alert resolved by correction, a written-off loan) turns a peer's good answer into
a failure in the service that asked."""

import pytest
from pydantic import TypeAdapter

from services.monitoring.alerts.models import AlertStatus
from services.monitoring.loans.models import ClassName, LoanStatus
from services.monitoring.rules.models import Severity
from services.scoring.scores.models import Decision
from shared.clients import monitoring, scoring

CONTRACTS = [
    (monitoring.AlertSummary, "status", AlertStatus),
    (monitoring.AlertSummary, "severity", Severity),
    (monitoring.LoanSummary, "status", LoanStatus),
    (monitoring.LoanSummary, "classification", ClassName),
    (monitoring.ActiveLoan, "classification", ClassName),
    (monitoring.CustomerRisk, "worst_class", ClassName),
    (scoring.Score, "decision", Decision),
]


@pytest.mark.parametrize(("model", "field", "enum"), CONTRACTS, ids=lambda v: getattr(v, "__name__", str(v)))
def test_every_value_a_peer_can_answer_parses_in_its_client(model, field, enum):
    adapter = TypeAdapter(model.model_fields[field].annotation)
    for value in enum:
        assert adapter.validate_python(value.value) == value.value, (model.__name__, field, value)
