"""Cold paths of TCP and Unix networking: argument checking, name resolution, socket
set-up and happy eyeballs for create_connection / create_server / their Unix twins /
connect_accepted_socket, with the messages and exception types of asyncio
(base_events.py and unix_events.py are the reference). The per-connection work
happens in the compiled transports (ringloop._core.StreamTransport, Listener).
"""
import collections.abc
import errno
import functools
import itertools
import logging
import os
import socket
import stat
import sys
from asyncio import staggered, streams, tasks

from ringloop import _core
from ringloop._parts import LoopPart
from ringloop._server import Server

try:
    import ssl as _ssl
except ImportError:  # pragma: no cover - CPython without OpenSSL
    _ssl = None

logger = logging.getLogger('asyncio')

_HAS_IPV6 = hasattr(socket, 'AF_INET6')
# asyncio >= 3.13 removes a Unix server's socket file when the server closes.
_UNIX_CLEANUP = sys.version_info >= (3, 13)


def _check_not_ssl_socket(sock):
    if _ssl is not None and isinstance(sock, _ssl.SSLSocket):
        raise TypeError("Socket cannot be of type SSLSocket")


def _check_stream_socket(sock):
    if sock.type != socket.SOCK_STREAM:
        raise ValueError(f'A Stream Socket was expected, got {sock!r}')


def _check_unix_stream_socket(sock):
    if sock.family != socket.AF_UNIX or sock.type != socket.SOCK_STREAM:
        raise ValueError(f'A UNIX Domain Stream Socket was expected, got {sock!r}')


def _check_ssl_only_args(ssl, **args):
    # "X is only meaningful with ssl", for every X given without ssl.
    if ssl:
        return
    for name, value in args.items():
        if value is not None:
            raise ValueError(f'{name} is only meaningful with ssl')


def _set_reuse_port(sock):
    if not hasattr(socket, 'SO_REUSEPORT'):
        raise ValueError('reuse_port not supported by socket module')
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    except OSError:
        raise ValueError('reuse_port not supported by socket module, '
                         'SO_REUSEPORT defined but not implemented.')


def _interleave_by_family(infos, first_family_count):
    """Happy eyeballs' address order (RFC 8305): the first `first_family_count`
    addresses of the first family, then the families alternate."""
    by_family = {}
    for info in infos:
        by_family.setdefault(info[0], []).append(info)
    groups = list(by_family.values())
    ordered = []
    if first_family_count > 1:
        ordered.extend(groups[0][:first_family_count - 1])
        del groups[0][:first_family_count - 1]
    for row in itertools.zip_longest(*groups):
        ordered.extend(info for info in row if info is not None)
    return ordered


def _connect_error(errors, all_errors):
    """The exception create_connection raises when every address failed."""
    if all_errors:
        return ExceptionGroup("create_connection failed", errors)
    if len(errors) == 1 or all(str(exc) == str(errors[0]) for exc in errors):
        return errors[0]
    return OSError('Multiple exceptions: {}'.format(', '.join(str(exc) for exc in errors)))


async def _connected(waiter, transport):
    # Wait for a new transport's waiter (connection_made has run); close the
    # transport if that fails or the caller is cancelled.
    try:
        await waiter
    except BaseException:
        transport.close()
        raise


def _remove_stale_unix_socket(path):
    # A socket file left by an earlier endpoint would make bind() fail; only socket
    # files are removed, and an abstract-namespace name has no file.
    if path[0] in (0, '\x00'):
        return
    try:
        if stat.S_ISSOCK(os.stat(path).st_mode):
            os.remove(path)
    except FileNotFoundError:
        pass
    except OSError as err:
        # The directory may allow creating the socket but not checking it.
        logger.error('Unable to check or remove stale UNIX socket %r: %r', path, err)


class NetworkMixin(LoopPart):
    """The stream-networking methods of ringloop.Loop."""

    def _init_part(self):
        self._unix_server_sockets = {}
        self._listeners = {}    # listening fd -> its Listener (_core, listener.pxi)

    # ---- transports ---------------------------------------------------------------

    def _make_socket_transport(self, sock, protocol, waiter=None, *, extra=None, server=None):
        return _core.make_stream_transport(self, sock, protocol, waiter, extra, server)

    def _make_ssl_transport(self, rawsock, protocol, sslcontext, waiter=None, *,
                            server_side=False, server_hostname=None, extra=None,
                            server=None, ssl_handshake_timeout=None,
                            ssl_shutdown_timeout=None):
        # TLS runs in ringloop's compiled SSLProtocol (a BufferedProtocol of the
        # stream transport); the application sees its SSLTransport.
        ssl_protocol = _core.SSLProtocol(
            self, protocol, sslcontext, waiter, server_side, server_hostname,
            ssl_handshake_timeout=ssl_handshake_timeout,
            ssl_shutdown_timeout=ssl_shutdown_timeout)
        self._make_socket_transport(rawsock, ssl_protocol, extra=extra, server=server)
        return ssl_protocol._app_transport

    async def start_tls(self, transport, protocol, sslcontext, *, server_side=False,
                        server_hostname=None, ssl_handshake_timeout=None,
                        ssl_shutdown_timeout=None):
        if _ssl is None:
            raise RuntimeError('Python ssl module is not available')
        if not isinstance(sslcontext, _ssl.SSLContext):
            raise TypeError(f'sslcontext is expected to be an instance of ssl.SSLContext, '
                            f'got {sslcontext!r}')
        if not getattr(transport, '_start_tls_compatible', False):
            raise TypeError(f'transport {transport!r} is not supported by start_tls()')
        waiter = self.create_future()
        ssl_protocol = _core.SSLProtocol(
            self, protocol, sslcontext, waiter, server_side, server_hostname,
            ssl_handshake_timeout=ssl_handshake_timeout,
            ssl_shutdown_timeout=ssl_shutdown_timeout, call_connection_made=False)
        # Paused until SSLProtocol.connection_made has run, so it sees no data first.
        transport.pause_reading()
        if server_side:
            _move_stream_buffer_to_tls(protocol, ssl_protocol)
        transport.set_protocol(ssl_protocol)
        connection_made = self.call_soon(ssl_protocol.connection_made, transport)
        resume = self.call_soon(transport.resume_reading)
        try:
            await waiter
        except BaseException:
            transport.close()
            connection_made.cancel()
            resume.cancel()
            # The exception's traceback holds this frame, and the waiter holds the
            # exception: a cycle that would keep the transport alive until the next
            # garbage collection.
            waiter = None
            raise
        return ssl_protocol._app_transport

    async def _create_connection_transport(self, sock, protocol_factory, ssl,
                                           server_hostname, server_side=False,
                                           ssl_handshake_timeout=None,
                                           ssl_shutdown_timeout=None):
        sock.setblocking(False)
        protocol = protocol_factory()
        waiter = self.create_future()
        if ssl:
            sslcontext = None if isinstance(ssl, bool) else ssl
            if sslcontext is None:
                sslcontext = _ssl.create_default_context()
            transport = self._make_ssl_transport(
                sock, protocol, sslcontext, waiter, server_side=server_side,
                server_hostname=server_hostname,
                ssl_handshake_timeout=ssl_handshake_timeout,
                ssl_shutdown_timeout=ssl_shutdown_timeout)
        else:
            transport = self._make_socket_transport(sock, protocol, waiter)
        try:
            await waiter
        except BaseException:
            transport.close()
            # The waiter holds the exception, and this frame (in its traceback) the
            # waiter: drop it, so the exception is not kept alive by a cycle.
            waiter = None
            raise
        return transport, protocol

    # ---- clients ------------------------------------------------------------------

    async def _resolve(self, address, family, type, proto, flags):
        infos = await self.getaddrinfo(address[0], address[1], family=family, type=type,
                                       proto=proto, flags=flags)
        if not infos:
            raise OSError('getaddrinfo() returned empty list')
        return infos

    async def _connect_one(self, errors, addrinfo, local_infos):
        """Connect a new socket to one resolved address; its errors go to a list
        of their own in `errors` (happy eyeballs runs several of these at once)."""
        mine = []
        errors.append(mine)
        family, type_, proto, _, address = addrinfo
        sock = None
        try:
            sock = socket.socket(family=family, type=type_, proto=proto)
            sock.setblocking(False)
            if local_infos is not None:
                for lfamily, _, _, _, laddr in local_infos:
                    if lfamily != family:
                        continue
                    try:
                        sock.bind(laddr)
                        break
                    except OSError as exc:
                        mine.append(OSError(
                            exc.errno, f'error while attempting to bind on address '
                                       f'{laddr!r}: {exc.strerror.lower()}'))
                else:
                    if mine:
                        raise mine.pop()
                    raise OSError(f"no matching local address with family={family} found")
            await self.sock_connect(sock, address)
            return sock
        except OSError as exc:
            mine.append(exc)
            if sock is not None:
                sock.close()
            raise
        except BaseException:
            if sock is not None:
                sock.close()
            raise
        finally:
            # The raised exception's traceback keeps this frame: let it not keep the
            # lists that hold the exception (asyncio's base_events._connect_sock).
            errors = mine = None

    async def create_connection(self, protocol_factory, host=None, port=None, *,
                                ssl=None, family=0, proto=0, flags=0, sock=None,
                                local_addr=None, server_hostname=None,
                                ssl_handshake_timeout=None, ssl_shutdown_timeout=None,
                                happy_eyeballs_delay=None, interleave=None,
                                all_errors=False):
        if server_hostname is not None and not ssl:
            raise ValueError('server_hostname is only meaningful with ssl')
        if server_hostname is None and ssl:
            if not host:
                raise ValueError('You must set server_hostname when using ssl without a host')
            server_hostname = host
        _check_ssl_only_args(ssl, ssl_handshake_timeout=ssl_handshake_timeout,
                             ssl_shutdown_timeout=ssl_shutdown_timeout)
        if sock is not None:
            _check_not_ssl_socket(sock)
        if happy_eyeballs_delay is not None and interleave is None:
            interleave = 1  # RFC 8305 recommends interleaving when racing
        if host is not None or port is not None:
            if sock is not None:
                raise ValueError('host/port and sock can not be specified at the same time')
            infos = await self._resolve((host, port), family, socket.SOCK_STREAM, proto, flags)
            local_infos = None
            if local_addr is not None:
                local_infos = await self._resolve(local_addr, family, socket.SOCK_STREAM,
                                                  proto, flags)
            if interleave:
                infos = _interleave_by_family(infos, interleave)
            errors = []
            if happy_eyeballs_delay is None:
                for addrinfo in infos:
                    try:
                        sock = await self._connect_one(errors, addrinfo, local_infos)
                        break
                    except OSError:
                        continue
            else:
                sock, _, _ = await staggered.staggered_race(
                    (functools.partial(self._connect_one, errors, addrinfo, local_infos)
                     for addrinfo in infos),
                    happy_eyeballs_delay, loop=self)
            if sock is None:
                flat = [exc for sub in errors for exc in sub]
                try:
                    raise _connect_error(flat, all_errors)
                finally:
                    flat = errors = None
        else:
            if sock is None:
                raise ValueError('host and port was not specified and no sock specified')
            _check_stream_socket(sock)
        transport, protocol = await self._create_connection_transport(
            sock, protocol_factory, ssl, server_hostname,
            ssl_handshake_timeout=ssl_handshake_timeout,
            ssl_shutdown_timeout=ssl_shutdown_timeout)
        if self._debug:
            logger.debug("%r connected to %s:%r: (%r, %r)",
                         transport.get_extra_info('socket'), host, port, transport, protocol)
        return transport, protocol

    async def create_unix_connection(self, protocol_factory, path=None, *, ssl=None,
                                     sock=None, server_hostname=None,
                                     ssl_handshake_timeout=None, ssl_shutdown_timeout=None):
        if ssl:
            if server_hostname is None:
                raise ValueError('you have to pass server_hostname when using ssl')
        else:
            _check_ssl_only_args(ssl, server_hostname=server_hostname,
                                 ssl_handshake_timeout=ssl_handshake_timeout,
                                 ssl_shutdown_timeout=ssl_shutdown_timeout)
        if path is not None:
            if sock is not None:
                raise ValueError('path and sock can not be specified at the same time')
            path = os.fspath(path)
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM, 0)
            try:
                sock.setblocking(False)
                await self.sock_connect(sock, path)
            except BaseException:
                sock.close()
                raise
        else:
            if sock is None:
                raise ValueError('no path and sock were specified')
            _check_unix_stream_socket(sock)
            sock.setblocking(False)
        return await self._create_connection_transport(
            sock, protocol_factory, ssl, server_hostname,
            ssl_handshake_timeout=ssl_handshake_timeout,
            ssl_shutdown_timeout=ssl_shutdown_timeout)

    async def connect_accepted_socket(self, protocol_factory, sock, *, ssl=None,
                                      ssl_handshake_timeout=None, ssl_shutdown_timeout=None):
        _check_stream_socket(sock)
        _check_ssl_only_args(ssl, ssl_handshake_timeout=ssl_handshake_timeout,
                             ssl_shutdown_timeout=ssl_shutdown_timeout)
        _check_not_ssl_socket(sock)
        transport, protocol = await self._create_connection_transport(
            sock, protocol_factory, ssl, '', server_side=True,
            ssl_handshake_timeout=ssl_handshake_timeout,
            ssl_shutdown_timeout=ssl_shutdown_timeout)
        if self._debug:
            logger.debug("%r handled: (%r, %r)",
                         transport.get_extra_info('socket'), transport, protocol)
        return transport, protocol

    # ---- servers ------------------------------------------------------------------

    def _bind_server_sockets(self, infos, reuse_address, reuse_port, keep_alive):
        sockets = []
        try:
            for family, type_, proto, _, address in infos:
                try:
                    sock = socket.socket(family, type_, proto)
                except OSError:
                    # An address family this host cannot open.
                    if self._debug:
                        logger.warning('create_server() failed to create socket.socket'
                                       '(%r, %r, %r)', family, type_, proto, exc_info=True)
                    continue
                sockets.append(sock)
                if reuse_address:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, True)
                if reuse_port:
                    _set_reuse_port(sock)
                if keep_alive:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, True)
                if _HAS_IPV6 and family == socket.AF_INET6:
                    # One socket per family: no Linux dual-stack IPv6 socket.
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, True)
                try:
                    sock.bind(address)
                except OSError as err:
                    msg = f'error while attempting to bind on address {address!r}: ' \
                          f'{str(err).lower()}'
                    if err.errno == errno.EADDRNOTAVAIL:
                        # The family is not enabled here (bpo-30945): skip it.
                        sockets.pop().close()
                        if self._debug:
                            logger.warning(msg)
                        continue
                    raise OSError(err.errno, msg) from None
            if not sockets:
                raise OSError('could not bind on any address out of %r'
                              % ([info[4] for info in infos],))
        except BaseException:
            for sock in sockets:
                sock.close()
            raise
        return sockets

    async def create_server(self, protocol_factory, host=None, port=None, *,
                            family=socket.AF_UNSPEC, flags=socket.AI_PASSIVE, sock=None,
                            backlog=100, ssl=None, reuse_address=None, reuse_port=None,
                            keep_alive=None, ssl_handshake_timeout=None,
                            ssl_shutdown_timeout=None, start_serving=True):
        if isinstance(ssl, bool):
            raise TypeError('ssl argument must be an SSLContext or None')
        if ssl is None:
            _check_ssl_only_args(ssl, ssl_handshake_timeout=ssl_handshake_timeout,
                                 ssl_shutdown_timeout=ssl_shutdown_timeout)
        if sock is not None:
            _check_not_ssl_socket(sock)
        if host is not None or port is not None:
            if sock is not None:
                raise ValueError('host/port and sock can not be specified at the same time')
            if reuse_address is None:
                reuse_address = True
            if host == '':
                hosts = [None]
            elif isinstance(host, str) or not isinstance(host, collections.abc.Iterable):
                hosts = [host]
            else:
                hosts = host
            resolved = await tasks.gather(*[
                self._resolve((h, port), family, socket.SOCK_STREAM, 0, flags)
                for h in hosts])
            # A host listed twice (or two names of one address) is bound once.
            infos = set(itertools.chain.from_iterable(resolved))
            sockets = self._bind_server_sockets(infos, reuse_address, reuse_port, keep_alive)
        else:
            if sock is None:
                raise ValueError('Neither host/port nor sock were specified')
            _check_stream_socket(sock)
            sockets = [sock]
        for s in sockets:
            s.setblocking(False)
        server = Server(self, sockets, protocol_factory, ssl, backlog,
                        ssl_handshake_timeout, ssl_shutdown_timeout, shared=sock is not None)
        if start_serving:
            server._start_serving()
            await tasks.sleep(0)
        if self._debug:
            logger.info("%r is serving", server)
        return server

    async def create_unix_server(self, protocol_factory, path=None, *, sock=None,
                                 backlog=100, ssl=None, ssl_handshake_timeout=None,
                                 ssl_shutdown_timeout=None, start_serving=True,
                                 cleanup_socket=True):
        if isinstance(ssl, bool):
            raise TypeError('ssl argument must be an SSLContext or None')
        _check_ssl_only_args(ssl, ssl_handshake_timeout=ssl_handshake_timeout,
                             ssl_shutdown_timeout=ssl_shutdown_timeout)
        if path is not None:
            if sock is not None:
                raise ValueError('path and sock can not be specified at the same time')
            path = os.fspath(path)
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            _remove_stale_unix_socket(path)     # of an earlier server
            try:
                sock.bind(path)
            except OSError as exc:
                sock.close()
                if exc.errno == errno.EADDRINUSE:
                    raise OSError(errno.EADDRINUSE,
                                  f'Address {path!r} is already in use') from None
                raise
            except BaseException:
                sock.close()
                raise
        else:
            if sock is None:
                raise ValueError('path was not specified, and no sock specified')
            _check_unix_stream_socket(sock)
        if _UNIX_CLEANUP and cleanup_socket:
            bound = sock.getsockname()
            if bound and bound[0] not in (0, '\x00'):
                try:
                    self._unix_server_sockets[sock] = os.stat(bound).st_ino
                except FileNotFoundError:
                    pass
        sock.setblocking(False)
        server = Server(self, [sock], protocol_factory, ssl, backlog,
                        ssl_handshake_timeout, ssl_shutdown_timeout, shared=path is None)
        if start_serving:
            server._start_serving()
            await tasks.sleep(0)
        return server

    def _start_serving(self, protocol_factory, sock, sslcontext=None, server=None,
                       backlog=100, ssl_handshake_timeout=None, ssl_shutdown_timeout=None,
                       shared=False):
        old = self._listeners.pop(sock.fileno(), None)
        if old is not None:
            old.stop()
        self._listeners[sock.fileno()] = _core.start_listener(
            self, sock, protocol_factory, sslcontext, server, backlog,
            ssl_handshake_timeout, ssl_shutdown_timeout, shared)

    def _stop_serving(self, sock):
        path = sock.getsockname() if sock in self._unix_server_sockets else None
        listener = self._listeners.pop(sock.fileno(), None)
        if listener is not None:
            listener.stop()
        sock.close()
        if path is not None:
            inode = self._unix_server_sockets.pop(sock)
            try:
                # Only our own file: another server may have bound the path since.
                if os.stat(path).st_ino == inode:
                    os.unlink(path)
            except FileNotFoundError:
                pass
            except OSError as err:
                logger.error('Unable to clean up listening UNIX socket %r: %r', path, err)


def _move_stream_buffer_to_tls(protocol, ssl_protocol):
    """A server's StreamWriter.start_tls(): what the client sent after its last plain
    text and already sits in the StreamReader (its TLS ClientHello, read along with the
    plain text) belongs to the TLS layer, or the handshake waits for bytes that never
    come (asyncio's start_tls does the same, gh-142352)."""
    if not isinstance(protocol, streams.StreamReaderProtocol):
        return
    reader = getattr(protocol, '_stream_reader', None)
    if reader is not None and reader._buffer:
        ssl_protocol._incoming.write(reader._buffer)
        reader._buffer.clear()
