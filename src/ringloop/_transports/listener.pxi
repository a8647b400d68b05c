# Listener: the accept side of a Server's listening socket. On each readable event it
# accepts up to `backlog` connections with accept4(SOCK_NONBLOCK | SOCK_CLOEXEC) and
# builds protocol + transport at once (asyncio wraps each accept in a Task; the
# observable order is the same: connection_made runs in a later callback).

cdef extern from "<sys/socket.h>" nogil:
    int getsockname(int fd, sockaddr *addr, unsigned int *addrlen)

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
            self._serve(conn_fd, self._addresses(&peer))
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

    cdef int _serve(self, int conn_fd, dict extra) except -1:
        # conn_fd: a connection accept4() returned (SOCK_NONBLOCK | SOCK_CLOEXEC), owned
        # from here on. A plain transport makes its socket object only when asked for
        # it; the TLS layer gets one at once.
        cdef StreamTransport plain = None
        conn = None
        protocol = None
        transport = None
        try:
            protocol = self.protocol_factory()
            if 'sockname' not in extra and not self._add_sockname(conn_fd, extra):
                conn = self._socket_object(conn_fd)     # not TCP: ask the socket object
                extra_from_socket(conn, extra)
            if self.sslcontext:
                if conn is None:
                    conn = self._socket_object(conn_fd)
                waiter = self.loop.create_future()
                transport = self.loop._make_ssl_transport(
                    conn, protocol, self.sslcontext, waiter, server_side=True,
                    server=self.server, ssl_handshake_timeout=self.ssl_handshake_timeout,
                    ssl_shutdown_timeout=self.ssl_shutdown_timeout)
                waiter.add_done_callback(_close_on_failed_handshake(transport))
            else:
                plain = StreamTransport.__new__(StreamTransport)
                plain._sockobj = conn
                plain._setup(self.loop, conn_fd, self.family, self.type | SOCK_NONBLOCK,
                             self.proto, protocol, None, extra, self.server)
                transport = plain
        except (SystemExit, KeyboardInterrupt):
            if conn is None and (plain is None or not plain._fd_open):
                close(conn_fd)
            raise
        except BaseException as exc:
            if transport is not None:
                transport.close()
            elif conn is not None:
                conn.close()
            elif plain is not None and plain._fd_open:
                plain._close_fd()       # _setup failed once the fd was the transport's
            else:
                close(conn_fd)
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

    cdef bint _add_sockname(self, int conn_fd, dict extra) except -1:
        # A TCP listener bound to the wildcard address: the connection's own address
        # (the one the client chose), from getsockname(2) without a socket object.
        cdef sockaddr_storage local
        cdef socklen_t local_len = sizeof(local)
        if self.family != _socket.AF_INET and self.family != _socket.AF_INET6:
            return False
        if getsockname(conn_fd, <sockaddr *>&local, &local_len) < 0:
            extra['sockname'] = None
        else:
            extra['sockname'] = rl_inet_address(&local)
        return True

    cdef object _socket_object(self, int conn_fd):
        # Explicit family/type/proto: the socket object makes no syscall to learn them,
        # and SOCK_NONBLOCK in type gives it timeout 0 without fcntl().
        return _socket.socket(self.family, self.type | SOCK_NONBLOCK, self.proto, conn_fd)

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


cdef int extra_from_socket(sock, dict extra) except -1:
    # The addresses of the transport's extra info that the caller did not know.
    if 'sockname' not in extra:
        try:
            extra['sockname'] = sock.getsockname()
        except OSError:
            extra['sockname'] = None
    if 'peername' not in extra:
        try:
            extra['peername'] = sock.getpeername()
        except OSError:
            extra['peername'] = None
    return 0


def make_stream_transport(CoreLoop loop, sock, protocol, waiter, extra, server):
    # A transport over an existing socket object (create_connection & co.).
    cdef StreamTransport transport = StreamTransport.__new__(StreamTransport)
    if extra is None:
        extra = {}
    extra_from_socket(sock, extra)
    transport._sockobj = sock
    transport._setup(loop, sock.fileno(), _raw_family(sock), _raw_type(sock),
                     _raw_proto(sock), protocol, waiter, extra, server)
    return transport
