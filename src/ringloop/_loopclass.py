"""ringloop.Loop: the compiled core, the cold-path methods and asyncio's ABC together."""
import asyncio

from ringloop import _core
from ringloop._coldpath import ColdPathMixin
from ringloop._datagram import DatagramMixin
from ringloop._network import NetworkMixin
from ringloop._sendfile import SendfileMixin
from ringloop._subprocess import SubprocessMixin
from ringloop._core import CoreLoop


class Loop(CoreLoop, NetworkMixin, DatagramMixin, SendfileMixin, SubprocessMixin, ColdPathMixin,
           asyncio.AbstractEventLoop):
    """An asyncio event loop over io_uring (or epoll). See ringloop.new_event_loop()."""

    def __init__(self, backend=None):
        CoreLoop.__init__(self, backend)
        self._init_cold()
        self._init_network()

    # The sock_* coroutines are compiled (ringloop/_transports/sockops.pxi).
    sock_recv = _core.loop_sock_recv
    sock_recv_into = _core.loop_sock_recv_into
    sock_recvfrom = _core.loop_sock_recvfrom
    sock_recvfrom_into = _core.loop_sock_recvfrom_into
    sock_sendall = _core.loop_sock_sendall
    sock_sendto = _core.loop_sock_sendto
    sock_accept = _core.loop_sock_accept
    sock_connect = _core.loop_sock_connect
