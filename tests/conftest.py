import os

import pytest

from tests.support import postgres_reachable, running_suite

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
_pg_problem: list[str | None] = []


def _postgres_problem() -> str | None:
    if not _pg_problem:
        _pg_problem.append(postgres_reachable())
    return _pg_problem[0]


def require_postgres() -> None:
    """In CI a missing PostgreSQL fails the run; on a laptop without one the PostgreSQL half is skipped."""
    problem = _postgres_problem()
    if problem is None:
        return
    if IN_CI:
        pytest.fail(f"PostgreSQL is required in CI but unreachable: {problem}", pytrace=False)
    pytest.skip(f"PostgreSQL unreachable ({problem}); set LOANCRM_TEST_POSTGRES_URL to run this half")


BACKENDS = [pytest.param("sqlite", id="sqlite"), pytest.param("postgres", id="postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "postgres":
        require_postgres()
    return request.param


@pytest.fixture(scope="module", params=BACKENDS)
def suite(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """The whole suite in-process on one backend, shared by a test module (each test makes its own data)."""
    if request.param == "postgres":
        require_postgres()
    with running_suite(request.param, tmp_path_factory.mktemp(request.param)) as running:
        yield running
