"""Generated clients need every customer endpoint documented: a summary, typed answers, problem bodies."""

import tempfile

from services.customer.main import create_app
from shared.settings import KernelSettings


def test_every_endpoint_has_a_summary_a_typed_answer_and_problem_responses():
    spec = create_app(KernelSettings(var_dir=tempfile.mkdtemp())).openapi()
    business = {path: ops for path, ops in spec["paths"].items()
                if not path.startswith(("/health", "/metrics", "/whoami"))}
    assert len(business) >= 30
    for path, operations in business.items():
        for method, operation in operations.items():
            where = f"{method.upper()} {path}"
            assert operation.get("summary"), where
            success = [code for code in operation["responses"] if code.startswith("2")]
            assert success and "content" in operation["responses"][success[0]], where
            problems = [code for code in operation["responses"] if code[0] in "45"]
            assert problems, where
            assert all("application/problem+json" in operation["responses"][c]["content"] for c in problems), where
    schemas = spec["components"]["schemas"]
    for name in ("CustomerCreate", "CustomerRead", "ConsentCheck", "InteractionCreate", "PortraitRead", "Overview",
                 "ImportReport", "CampaignCreate", "SurveyAnswer", "ComplaintCreate"):
        assert schemas[name].get("examples"), name
    nullable = schemas["ConsentCheck"]["properties"]["granted_at"]
    assert {"type": "null"} in nullable["anyOf"]
    assert schemas["Channel"]["enum"] == ["branch", "phone", "sms", "app", "wechat", "email", "visit"]
