"""ringloop.Loop: the compiled core, the Python parts and asyncio's ABC together
(the parts and their contract with the core: ringloop/_parts.py)."""
import asyncio

from ringloop import _core
from ringloop._coldpath import ColdPathMixin
from ringloop._datagram import DatagramMixin
from ringloop._network import NetworkMixin
from ringloop._parts import CORE_HOOKS
from ringloop._sendfile import SendfileMixin
from ringloop._subprocess import SubprocessMixin
from ringloop._core import CoreLoop

# The Python parts, in the order they are set up and closed: the cold path (signals,
# the executor) is closed last, after the parts that may still use it.
LOOP_PARTS = (NetworkMixin, DatagramMixin, SendfileMixin, SubprocessMixin, ColdPathMixin)


class Loop(CoreLoop, *LOOP_PARTS, asyncio.AbstractEventLoop):
    """An asyncio event loop over io_uring (or epoll). See ringloop.new_event_loop()."""

    def __init__(self, backend=None):
        CoreLoop.__init__(self, backend)
        for part in LOOP_PARTS:
            part._init_part(self)

    def _close_parts(self):
        for part in LOOP_PARTS:
            part._close_part(self)

    # The sock_* coroutines are compiled (ringloop/_transports/sockops.pxi).
    sock_recv = _core.loop_sock_recv
    sock_recv_into = _core.loop_sock_recv_into
    sock_recvfrom = _core.loop_sock_recvfrom
    sock_recvfrom_into = _core.loop_sock_recvfrom_into
    sock_sendall = _core.loop_sock_sendall
    sock_sendto = _core.loop_sock_sendto
    sock_accept = _core.loop_sock_accept
    sock_connect = _core.loop_sock_connect


_missing = [hook for hook in CORE_HOOKS if not hasattr(Loop, hook)]
if _missing:
    raise ImportError(f"ringloop.Loop lacks what CoreLoop calls: {', '.join(_missing)}")
