"""Helpers of pytest-zkdev's own tests (the plugin itself is loaded from its installed entry point)."""

import time

import pytest


def wait_until(predicate, timeout=20.0, what="the condition"):
    """Poll `predicate` until it returns something true; fail naming `what` past the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not happen within {timeout} s")
        time.sleep(0.1)
