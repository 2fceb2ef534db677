"""backends.base.gc_paused: the collector is off inside, back as it was after."""

from __future__ import annotations

import gc

import pytest

from dbconnmgr.backends.base import gc_paused

pytestmark = pytest.mark.engine_neutral


def test_the_collector_is_paused_then_resumed() -> None:
    assert gc.isenabled()
    with gc_paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_a_collector_the_process_disabled_stays_disabled() -> None:
    gc.disable()
    try:
        with gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_an_error_inside_resumes_the_collector() -> None:
    with pytest.raises(RuntimeError), gc_paused():
        raise RuntimeError("read failed")
    assert gc.isenabled()
