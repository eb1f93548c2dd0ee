"""Every table the scoring service owns, for migrations."""

from services.scoring.applications import models as applications_models  # noqa: F401
from services.scoring.db import metadata
from services.scoring.disclosure import models as disclosure_models  # noqa: F401
from services.scoring.registry import models as registry_models  # noqa: F401
from services.scoring.scores import models as scores_models  # noqa: F401
from services.scoring.screening import models as screening_models  # noqa: F401
from services.scoring.study import models as study_models  # noqa: F401

__all__ = ["metadata"]
