"""The suite's own balance: under ``pytest -n`` (``--dist loadgroup``) the tests of a module with a
module-scoped fixture run on one worker, so the fixture (a trained run: half a minute) is made once.

pytest-xdist marks a group in the test's id; a pytest that no longer reads it there (9.x with
xdist 3.8) silently runs such a module's tests on both workers, each making the fixture.
"""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="module")
def made_once() -> list[str]:
    return []


def test_a_module_with_a_module_fixture_is_one_group(request, made_once) -> None:
    if "PYTEST_XDIST_WORKER" not in os.environ:
        pytest.skip("only pytest -n distributes tests")
    assert request.node.nodeid.endswith("@tests/test_suite_groups.py"), request.node.nodeid
