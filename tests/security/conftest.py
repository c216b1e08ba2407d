"""The api fixtures of tests/api (in-process server on this test's database and prefix), reused here."""

from tests.api.conftest import api, keys, make_api  # noqa: F401
