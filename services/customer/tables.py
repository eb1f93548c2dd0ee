"""Every table the customer service owns, for migrations."""

from services.customer.access_log import models as access_log_models  # noqa: F401
from services.customer.campaigns import models as campaign_models  # noqa: F401
from services.customer.complaints import models as complaint_models  # noqa: F401
from services.customer.consents import models as consent_models  # noqa: F401
from services.customer.customers import models as customer_models  # noqa: F401
from services.customer.db import metadata
from services.customer.interactions import models as interaction_models  # noqa: F401
from services.customer.portrait import models as portrait_models  # noqa: F401
from services.customer.relationship import models as relationship_models  # noqa: F401
from services.customer.surveys import models as survey_models  # noqa: F401

__all__ = ["metadata"]
