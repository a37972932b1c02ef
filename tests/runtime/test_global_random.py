"""Hypothesis warns when the global `random` moves while it draws an example. The
websockets modules whose keepalive pings and reconnection delays moved it, from the
thread of Prefect's events client, draw from a generator of their own in the tests
(tests/conftest.py)."""

from __future__ import annotations

import inspect
import random

import websockets.asyncio.connection
import websockets.client


def test_websockets_draws_its_pings_and_delays_from_a_generator_of_its_own():
    for module, call in ((websockets.asyncio.connection, "random.getrandbits("), (websockets.client, "random.random(")):
        assert call in inspect.getsource(module), f"{module.__name__} no longer calls {call}: see tests/conftest.py"
        assert isinstance(module.random, random.Random) and module.random is not random
    state = random.getstate()
    websockets.asyncio.connection.random.getrandbits(32)
    websockets.client.random.random()
    assert random.getstate() == state
