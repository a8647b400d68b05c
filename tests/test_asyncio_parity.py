"""Behaviours where real libraries rely on the stdlib loop's exact semantics.

Each test asserts what asyncio does (it passes with RINGLOOP_TEST_REFERENCE=asyncio):
watches of a file closed behind the loop's back, exceptions of failed operations
not kept alive by the frames that collected them, TimerHandle.when() of an int, and
timers that follow a patched loop.time().
"""
import asyncio
import gc
import socket
import ssl
import sys
from unittest import mock

import pytest


def spin(loop, passes=3):
    """Run a few loop iterations."""
    for _ in range(passes):
        loop.run_until_complete(asyncio.sleep(0))


def closed_port():
    """A loopback TCP port nothing listens on (bound, never listened, closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------- TimerHandle.when()

def test_call_at_int_when_stays_int(loop):
    h = loop.call_at(8018, lambda: None)
    try:
        assert h.when() == 8018
        assert type(h.when()) is int
        assert "when=8018 " in repr(h)
    finally:
        h.cancel()


def test_call_at_float_and_call_later_when_are_floats(loop):
    handles = [loop.call_at(8018.5, lambda: None), loop.call_later(10, lambda: None)]
    try:
        assert handles[0].when() == 8018.5
        assert all(type(h.when()) is float for h in handles)
    finally:
        for h in handles:
            h.cancel()


def test_timer_handle_when_hash_and_order_with_int(loop):
    a = loop.call_at(100, lambda: None)
    b = loop.call_at(100.0, lambda: None)
    try:
        assert a.when() == b.when() and hash(a) == hash(b)
        assert not a < b and not b < a
    finally:
        a.cancel()
        b.cancel()


