# Listener: the accept side of a Server's listening socket. On each readable event it
# accepts up to `backlog` connections with accept4(SOCK_NONBLOCK | SOCK_CLOEXEC) and
# builds protocol + transport at once (asyncio wraps each accept in a Task; the
# observable order is the same: connection_made runs in a later callback).

cdef double _ACCEPT_RETRY_DELAY = _aio_constants.ACCEPT_RETRY_DELAY


cdef class Listener:
    cdef:
        CoreLoop loop
        object sock
        int fd
        int family, type, proto
        object protocol_factory
        object sslcontext
        object server
        int backlog
        object ssl_handshake_timeout
        object ssl_shutdown_timeout
        object local_name       # what getsockname() gives every accepted socket, or None
        Handle handle
        bint watching
        bint active
        object retry

    def _on_readable(self):
        cdef int conn_fd, err, i
        cdef sockaddr_storage peer
        cdef socklen_t peer_len
        if not self.watching:
            return
        for i in range(self.backlog):
            peer_len = sizeof(peer)
            conn_fd = accept4(self.fd, <sockaddr *>&peer, &peer_len, SOCK_NONBLOCK | SOCK_CLOEXEC)
            if conn_fd < 0:
                err = errno
                if err == EAGAIN:
                    return
                # ECONNABORTED: the peer gave up before we accepted (accept(2));
                # others may still wait behind it.
                if err == EINTR or err == ECONNABORTED:
                    continue
                exc = os_error(err)
                if err == EMFILE or err == ENFILE or err == ENOBUFS or err == ENOMEM:
                    # Out of fds or memory: the pending connections stay in the
                    # backlog; stop polling for a while instead of spinning on them
                    # (asyncio: selector_events._accept_connection).
                    self.loop.call_exception_handler({
                        'message': 'socket.accept() out of system resource',
                        'exception': exc,
                        'socket': _TransportSocket(self.sock),
                    })
                    self._stop_watching()
                    self.retry = self.loop.call_later(_ACCEPT_RETRY_DELAY, self._retry)
                    return
                raise exc
            try:
                # Explicit family/type/proto: the socket object makes no syscall, and
                # SOCK_NONBLOCK in type gives it timeout 0 without fcntl().
                conn = _socket.socket(self.family, self.type | SOCK_NONBLOCK, self.proto,
                                      conn_fd)
            except BaseException:
                close(conn_fd)
                raise
            self._serve(conn, self._addresses(&peer))
        # A backlog's worth accepted and maybe more waiting: the watch reports new
        # connections only (WATCH_DRAINS), so come back on the next pass.
        if self.watching:
            ready_push(&self.loop.ready, self.handle)

    cdef dict _addresses(self, const sockaddr_storage *peer):
        # The transport's sockname/peername extra info, without asking the socket.
        cdef dict extra = {}
        peername = rl_inet_address(peer)
        if peername is not None:
            extra['peername'] = peername
        if self.local_name is not None:
            extra['sockname'] = self.local_name
        return extra

    cdef int _serve(self, conn, dict extra) except -1:
        protocol = None
        transport = None
        try:
            protocol = self.protocol_factory()
            if self.sslcontext:
                waiter = self.loop.create_future()
                transport = self.loop._make_ssl_transport(
                    conn, protocol, self.sslcontext, waiter, server_side=True,
                    server=self.server, ssl_handshake_timeout=self.ssl_handshake_timeout,
                    ssl_shutdown_timeout=self.ssl_shutdown_timeout)
                waiter.add_done_callback(_close_on_failed_handshake(transport))
            else:
                transport = make_stream_transport(self.loop, conn, protocol, None, extra,
                                                  self.server)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            if transport is None:
                conn.close()
            else:
                transport.close()
            # asyncio reports these only in debug mode (_accept_connection2).
            if self.loop._debug:
                context = {'message': 'Error on transport creation for incoming connection',
                           'exception': exc}
                if protocol is not None:
                    context['protocol'] = protocol
                if transport is not None:
                    context['transport'] = transport
                self.loop.call_exception_handler(context)
        return 0

    cdef int _start_watching(self) except -1:
        if self.active and not self.watching:
            self.loop._watch_fd(self.fd, False, self.handle, WATCH_DRAINS)
            self.watching = True
        return 0

    cdef int _stop_watching(self) except -1:
        if self.watching:
            self.watching = False
            self.loop._unwatch_fd(self.fd, False)
        return 0

    def _retry(self):
        self.retry = None
        self._start_watching()

    cdef int stop(self) except -1:
        self.active = False
        self._stop_watching()
        if self.retry is not None:
            self.retry.cancel()
            self.retry = None
        self.handle = None
        return 0


cdef class _close_on_failed_handshake:
    # Done-callback of a TLS server connection's handshake waiter.
    cdef object transport

    def __init__(self, transport):
        self.transport = transport

    def __call__(self, waiter):
        if waiter.cancelled() or waiter.exception() is not None:
            self.transport.close()
        self.transport = None


cdef object _accepted_sockname(sock):
    # A TCP socket accepted from a listener bound to one address has the listener's
    # address; one bound to the wildcard address has the address the client chose.
    if sock.family not in (_socket.AF_INET, _socket.AF_INET6):
        return None
    try:
        name = sock.getsockname()
    except OSError:
        return None
    return None if name[0] in ('0.0.0.0', '::') else name


def start_listener(CoreLoop loop, sock, protocol_factory, sslcontext, server, int backlog,
                   ssl_handshake_timeout, ssl_shutdown_timeout):
    cdef Listener listener = Listener.__new__(Listener)
    listener.loop = loop
    listener.sock = sock
    listener.fd = sock.fileno()
    listener.family = sock.family
    listener.type = sock.type
    listener.proto = sock.proto
    listener.local_name = _accepted_sockname(sock)
    listener.protocol_factory = protocol_factory
    listener.sslcontext = sslcontext
    listener.server = server
    listener.backlog = backlog if backlog > 0 else 1
    listener.ssl_handshake_timeout = ssl_handshake_timeout
    listener.ssl_shutdown_timeout = ssl_shutdown_timeout
    listener.handle = loop._new_handle(listener._on_readable, (), None)
    listener.active = True
    old = loop._listeners.pop(listener.fd, None)
    if old is not None:
        (<Listener>old).stop()
    loop._listeners[listener.fd] = listener
    listener._start_watching()


def stop_listener(CoreLoop loop, sock):
    listener = loop._listeners.pop(sock.fileno(), None)
    if listener is not None:
        (<Listener>listener).stop()


def make_stream_transport(CoreLoop loop, sock, protocol, waiter, extra, server):
    cdef StreamTransport transport = StreamTransport.__new__(StreamTransport)
    transport._setup(loop, sock, protocol, waiter, extra, server)
    return transport
