import pytest

from tests.customer.factory import Actors


@pytest.fixture
def actors(suite) -> Actors:
    return Actors(suite)


@pytest.fixture
def api(suite):
    return suite.direct["customer"]
