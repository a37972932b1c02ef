"""Shared test fixtures, one section per concern. Keep each section small.

Tests never write into the working directory: use pytest's tmp_path.
"""

from __future__ import annotations

import dataclasses

import pytest

from redress.policy import DEFAULT_POLICY, Policy, load_policy

# --------------------------------------------------------------------------- policies


@pytest.fixture(scope="session")
def policy():
    """policy(**changes): the shipped default policy with some fields replaced.

    Session-scoped so hypothesis tests may use it; the factory never changes the loaded
    policy, it returns a new frozen copy (pass new dicts for categories/tiers).
    """
    base = load_policy(DEFAULT_POLICY)

    def make(**changes) -> Policy:
        return dataclasses.replace(base, **changes)

    return make


# (Prefect fixtures go in their own section below.)
