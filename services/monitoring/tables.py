"""Every table the monitoring service owns, for migrations."""

from services.monitoring import business_day  # noqa: F401
from services.monitoring.alerts import models as alert_models  # noqa: F401
from services.monitoring.approvals import models as approval_models  # noqa: F401
from services.monitoring.checks import models as check_models  # noqa: F401
from services.monitoring.classification import models as classification_models  # noqa: F401
from services.monitoring.cob import models as cob_models  # noqa: F401
from services.monitoring.collateral import models as collateral_models  # noqa: F401
from services.monitoring.collections import models as collection_models  # noqa: F401
from services.monitoring.db import metadata
from services.monitoring.delinquency import models as delinquency_models  # noqa: F401
from services.monitoring.feeds import models as feed_models  # noqa: F401
from services.monitoring.hardship import models as hardship_models  # noqa: F401
from services.monitoring.loans import models as loan_models  # noqa: F401
from services.monitoring.reminders import models as reminder_models  # noqa: F401
from services.monitoring.repayment_files import models as repayment_file_models  # noqa: F401
from services.monitoring.repayments import models as repayment_models  # noqa: F401
from services.monitoring.rules import models as rule_models  # noqa: F401
from services.monitoring.transactions import models as transaction_models  # noqa: F401

__all__ = ["metadata"]
