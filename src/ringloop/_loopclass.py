"""ringloop.Loop: the compiled core, the cold-path methods and asyncio's ABC together."""
import asyncio

from ringloop._coldpath import ColdPathMixin
from ringloop._core import CoreLoop


class Loop(CoreLoop, ColdPathMixin, asyncio.AbstractEventLoop):
    """An asyncio event loop over io_uring (or epoll). See ringloop.new_event_loop()."""

    def __init__(self, backend=None):
        CoreLoop.__init__(self, backend)
        self._init_cold()
