"""ringloop's Server: what loop.create_server() and create_unix_server() return.

asyncio.AbstractServer's API with the semantics of asyncio.base_events.Server:
listening sockets, serving, the set of connected transports (for close_clients(),
abort_clients() and wait_closed()), and serve_forever() cancellation.
"""
import asyncio
import sys
from asyncio import trsock

# Python <= 3.11 returns from wait_closed() at once once the server is closed, even
# with connections still open (documented as a bug and fixed in 3.12.1). Each Python
# gets the behaviour its own asyncio has, so programs and test suites see no change.
_WAIT_FOR_CLIENTS = sys.version_info >= (3, 12, 1)


class Server(asyncio.AbstractServer):

    def __init__(self, loop, sockets, protocol_factory, ssl_context, backlog,
                 ssl_handshake_timeout, ssl_shutdown_timeout=None, *, shared=False):
        self._loop = loop
        self._sockets = sockets
        # The sockets came from the caller (sock=) and other processes may accept on
        # them too: accept by readiness (listener.pxi, before start_listener).
        self._shared = shared
        # Strong references, unlike asyncio's WeakSet (twice as fast to update): the
        # loop's _transports table holds every open transport anyway, and each one
        # detaches itself when its connection is lost.
        self._clients = set()
        self._waiters = []
        self._protocol_factory = protocol_factory
        self._backlog = backlog
        self._ssl_context = ssl_context
        self._ssl_handshake_timeout = ssl_handshake_timeout
        self._ssl_shutdown_timeout = ssl_shutdown_timeout
        self._serving = False
        self._serving_forever_fut = None

    def __repr__(self):
        return f'<{type(self).__name__} sockets={self.sockets!r}>'

    # Called by the transports of accepted connections.
    def _attach(self, transport):
        self._clients.add(transport)

    def _detach(self, transport):
        self._clients.discard(transport)
        if not self._clients and self._sockets is None:
            self._wakeup()

    def _wakeup(self):
        waiters, self._waiters = self._waiters, None
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_result(None)

    def _start_serving(self):
        if self._serving:
            return
        self._serving = True
        for sock in self._sockets:
            sock.listen(self._backlog)
            self._loop._start_serving(
                self._protocol_factory, sock, self._ssl_context, self, self._backlog,
                self._ssl_handshake_timeout, self._ssl_shutdown_timeout, self._shared)

    def get_loop(self):
        return self._loop

    def is_serving(self):
        return self._serving

    @property
    def sockets(self):
        if self._sockets is None:
            return ()
        return tuple(trsock.TransportSocket(s) for s in self._sockets)

    def close(self):
        sockets = self._sockets
        if sockets is None:
            return
        self._sockets = None
        for sock in sockets:
            self._loop._stop_serving(sock)
        self._serving = False
        if self._serving_forever_fut is not None and not self._serving_forever_fut.done():
            self._serving_forever_fut.cancel()
            self._serving_forever_fut = None
        if not self._clients:
            self._wakeup()

    def close_clients(self):
        for transport in self._clients.copy():
            transport.close()

    def abort_clients(self):
        for transport in self._clients.copy():
            transport.abort()

    async def start_serving(self):
        self._start_serving()
        # One loop iteration, so the listening sockets' watches are in place.
        await asyncio.sleep(0)

    async def serve_forever(self):
        if self._serving_forever_fut is not None:
            raise RuntimeError(
                f'server {self!r} is already being awaited on serve_forever()')
        if self._sockets is None:
            raise RuntimeError(f'server {self!r} is closed')
        self._start_serving()
        self._serving_forever_fut = self._loop.create_future()
        try:
            await self._serving_forever_fut
        except asyncio.CancelledError:
            try:
                self.close()
                # Cancelling serve_forever() (Ctrl+C) ends the connections too, or
                # wait_closed() would wait for clients that may never leave (asyncio
                # does the same from 3.13 on).
                self.close_clients()
                await self.wait_closed()
            finally:
                raise
        finally:
            self._serving_forever_fut = None

    async def wait_closed(self):
        if self._waiters is None:
            return
        if not _WAIT_FOR_CLIENTS and self._sockets is None:
            return
        waiter = self._loop.create_future()
        self._waiters.append(waiter)
        await waiter
