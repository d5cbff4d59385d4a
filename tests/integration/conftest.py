"""conftest.py - shared pytest fixtures for Petrel's integration tests.

petrel_instance: a private instance in the test's tmp_path (see petrel_instance.py),
always stopped at teardown. Tests write master.cf (and main.cf extras) then call
instance.start().
"""
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from petrel_instance import PetrelInstance, ensure_mail_users  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def mail_users():
    """Every test may check or start a configuration naming mail_owner, so the
    users exist (as root) before the first test, whatever order tests run in."""
    ensure_mail_users()


@pytest.fixture
def petrel_instance(tmp_path, mail_users):
    inst = PetrelInstance(tmp_path / "petrel")
    try:
        yield inst
    finally:
        inst.teardown()
