"""Cold path of UDP and Unix datagram endpoints: loop.create_datagram_endpoint()'s
argument checking, name resolution and socket set-up, with asyncio's exception types
and messages (base_events.create_datagram_endpoint of the running Python is the
reference). The datagrams themselves go through the compiled transport
(ringloop._core.DatagramSocketTransport).
"""
import logging
import socket
import sys

from ringloop import _core
from ringloop._parts import LoopPart
from ringloop._network import _connected, _remove_stale_unix_socket, _set_reuse_port

logger = logging.getLogger('asyncio')

# Python 3.13 takes any non-stream socket (SOCK_RAW too) where 3.11 wanted SOCK_DGRAM.
_ANY_DATAGRAM_SOCKET = sys.version_info >= (3, 13)


def _check_datagram_socket(sock):
    if _ANY_DATAGRAM_SOCKET:
        if sock.type == socket.SOCK_STREAM:
            raise ValueError(f'A datagram socket was expected, got {sock!r}')
    elif sock.type != socket.SOCK_DGRAM:
        raise ValueError(f'A UDP Socket was expected, got {sock!r}')


class DatagramMixin(LoopPart):
    """The datagram-endpoint methods of ringloop.Loop."""

    def _make_datagram_transport(self, sock, protocol, address=None, waiter=None,
                                 extra=None):
        self._ensure_fd_no_transport(sock)
        return _core.make_datagram_transport(self, sock, protocol, address, waiter, extra)

    async def _datagram_address_pairs(self, local_addr, remote_addr, family, proto, flags):
        """[((family, proto), (local address, remote address)), ...] to try in order:
        the (family, proto) pairs both given addresses resolve to."""
        pairs = {}      # insertion-ordered: getaddrinfo's preference
        for idx, addr in ((0, local_addr), (1, remote_addr)):
            if addr is None:
                continue
            if not (isinstance(addr, tuple) and len(addr) == 2):
                raise TypeError('2-tuple is expected')
            infos = await self.getaddrinfo(addr[0], addr[1], family=family,
                                           type=socket.SOCK_DGRAM, proto=proto, flags=flags)
            if not infos:
                raise OSError('getaddrinfo() returned empty list')
            for fam, _, pro, _, address in infos:
                pairs.setdefault((fam, pro), [None, None])[idx] = address
        usable = [(key, pair) for key, pair in pairs.items()
                  if not ((local_addr and pair[0] is None)
                          or (remote_addr and pair[1] is None))]
        if not usable:
            raise ValueError('can not get address information')
        return usable

    async def _open_datagram_socket(self, pairs, local_addr, remote_addr, reuse_port,
                                    allow_broadcast):
        """The first (socket, remote address) that could be set up; else the first
        error."""
        errors = []
        for (family, proto), (local_address, remote_address) in pairs:
            sock = None
            try:
                sock = socket.socket(family=family, type=socket.SOCK_DGRAM, proto=proto)
                if reuse_port:
                    _set_reuse_port(sock)
                if allow_broadcast:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
                sock.setblocking(False)
                if local_addr:
                    sock.bind(local_address)
                if remote_addr:
                    # A broadcast endpoint stays unconnected: it sends to the remote
                    # address with sendto() (and hears from anyone).
                    if not allow_broadcast:
                        await self.sock_connect(sock, remote_address)
                    return sock, remote_address
                return sock, None
            except OSError as exc:
                if sock is not None:
                    sock.close()
                errors.append(exc)
            except BaseException:
                if sock is not None:
                    sock.close()
                raise
        try:
            raise errors[0]
        finally:
            errors = None

    async def create_datagram_endpoint(self, protocol_factory, local_addr=None,
                                       remote_addr=None, *, family=0, proto=0, flags=0,
                                       reuse_port=None, allow_broadcast=None, sock=None):
        """Create datagram connection."""
        own_sock = sock is None
        r_addr = None
        if sock is not None:
            _check_datagram_socket(sock)
            if (local_addr or remote_addr or family or proto or flags
                    or reuse_port or allow_broadcast):
                opts = dict(local_addr=local_addr, remote_addr=remote_addr, family=family,
                            proto=proto, flags=flags, reuse_port=reuse_port,
                            allow_broadcast=allow_broadcast)
                problems = ', '.join(f'{k}={v}' for k, v in opts.items() if v)
                raise ValueError(f'socket modifier keyword arguments can not be used '
                                 f'when sock is specified. ({problems})')
            sock.setblocking(False)
        else:
            if not (local_addr or remote_addr):
                if family == 0:
                    raise ValueError('unexpected address family')
                pairs = (((family, proto), (None, None)),)
            elif family == socket.AF_UNIX:
                for addr in (local_addr, remote_addr):
                    if addr is not None and not isinstance(addr, str):
                        raise TypeError('string is expected')
                if local_addr:
                    _remove_stale_unix_socket(local_addr)
                pairs = (((family, proto), (local_addr, remote_addr)),)
            else:
                pairs = await self._datagram_address_pairs(local_addr, remote_addr,
                                                           family, proto, flags)
            sock, r_addr = await self._open_datagram_socket(
                pairs, local_addr, remote_addr, reuse_port, allow_broadcast)

        try:
            protocol = protocol_factory()
            waiter = self.create_future()
            transport = self._make_datagram_transport(sock, protocol, r_addr, waiter)
        except BaseException:
            # asyncio leaves a socket it made to the garbage collector here; close it.
            if own_sock:
                sock.close()
            raise
        if self._debug:
            if local_addr:
                logger.info("Datagram endpoint local_addr=%r remote_addr=%r "
                            "created: (%r, %r)", local_addr, remote_addr, transport, protocol)
            else:
                logger.debug("Datagram endpoint remote_addr=%r created: (%r, %r)",
                             remote_addr, transport, protocol)
        await _connected(waiter, transport)
        return transport, protocol
