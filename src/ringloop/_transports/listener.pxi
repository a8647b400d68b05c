# Listener: the accept side of a Server's listening socket. With readiness (epoll) on
# each readable event it accepts up to `backlog` connections with
# accept4(SOCK_NONBLOCK | SOCK_CLOEXEC); on io_uring one multishot IORING_OP_ACCEPT
# stays in flight and its completions are served in one callback per loop pass. Either
# way it builds protocol + transport at once (asyncio wraps each accept in a Task; the
# observable order is the same: connection_made runs in a later callback).

cdef extern from "<sys/socket.h>" nogil:
    int getsockname(int fd, sockaddr *addr, unsigned int *addrlen)
    int getpeername(int fd, sockaddr *addr, unsigned int *addrlen)

cdef double _ACCEPT_RETRY_DELAY = _aio_constants.ACCEPT_RETRY_DELAY

cdef extern from "<sys/resource.h>" nogil:
    struct rlimit:
        unsigned long rlim_cur
    int getrlimit(int resource, rlimit *rlim)
    enum:
        RLIMIT_NOFILE


cdef enum:
    _FD_LIMIT_FLOOR = 64    # no RLIMIT_NOFILE is lower than this in practice


cdef unsigned long _fd_limit() noexcept:
    cdef rlimit lim
    lim.rlim_cur = 0
    getrlimit(RLIMIT_NOFILE, &lim)
    return lim.rlim_cur


cdef inline bint _out_of_resources(int err) noexcept:
    # accept(2) errors after which the listener pauses for ACCEPT_RETRY_DELAY.
    return err == EMFILE or err == ENFILE or err == ENOBUFS or err == ENOMEM


cdef class _AcceptOp(Op):
    # A listener's multishot IORING_OP_ACCEPT (Op: kept by the backend until its
    # final completion, so the listening socket stays referenced that long).
    cdef Listener listener
    cdef object sock

    cdef int complete(self, int res, bint more) except -1:
        return self.listener._accepted(self, res, more)


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
        bint by_completion      # io_uring, socket not shared across fork: accept by Op
        _AcceptOp accept_op     # the multishot accept in flight, or None
        list accepted           # io_uring: fds accepted (or a final -errno) not yet served
        bint queued             # io_uring: self.handle is in the ready queue
        unsigned long fd_limit  # io_uring: RLIMIT_NOFILE when accept_op was submitted
        bint fork_paused        # io_uring: accept cancelled for a fork, not yet re-armed
        object __weakref__      # _op_listeners

    def _on_readable(self):
        cdef int conn_fd, err, i
        cdef sockaddr_storage peer
        cdef socklen_t peer_len
        if self.accepted:
            self._on_accepted()     # the last completions of the accept a fork cancelled
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
                self._accept_failed(err)
                return
            self._serve(conn_fd, self._addresses(&peer))
        # A backlog's worth accepted and maybe more waiting: the watch reports new
        # connections only (WATCH_DRAINS), so come back on the next pass.
        if self.watching:
            self.loop.queue_handle(self.handle)

    cdef int _accept_failed(self, int err) except -1:
        exc = os_error(err)
        if _out_of_resources(err):
            # Out of fds or memory: the pending connections stay in the backlog;
            # stop accepting for a while instead of spinning on them (asyncio:
            # selector_events._accept_connection).
            self.loop.call_exception_handler({
                'message': 'socket.accept() out of system resource',
                'exception': exc,
                'socket': _TransportSocket(self.sock),
            })
            self._stop_watching()
            self.retry = self.loop.call_later(_ACCEPT_RETRY_DELAY, self._retry)
            return 0
        raise exc

    cdef int _accepted(self, _AcceptOp op, int res, bint more) except -1:
        # A completion of a multishot accept, inside the backend's reap: queue it for
        # _on_accepted. Any CQE without IORING_CQE_F_MORE ends the multishot accept
        # (an error, or the kernel's choice): arm a new one, except after an error
        # _on_accepted must report first. Not worth a report: -ECANCELED on an accept
        # we did not cancel (the ring was re-created after fork), ECONNABORTED (the
        # peer gave up first, accept(2)).
        cdef bint current = op is self.accept_op and not op.cancelled
        cdef bint transient = res == -ECANCELED or res == -EINTR or res == -ECONNABORTED
        if not self.active:
            # Accepted after the server stopped: nobody will serve it.
            if res >= 0:
                close(res)
            return 0
        if current and not more:
            self.accept_op = None
        if res >= 0 or (current and not transient):
            self.accepted.append(res)
            if not self.queued:
                self.queued = True
                self.loop.queue_handle(self.handle)
        if current and not more and (res >= 0 or transient):
            self._arm_accept()
        return 0

    def _on_accepted(self):
        # Serve what the multishot accept delivered since the last pass. An error is
        # always its final completion, so it comes last.
        cdef list accepted = self.accepted
        cdef _AcceptOp op
        cdef Py_ssize_t i = 0
        cdef int res
        cdef sockaddr_storage peer
        # Multishot accept gives no per-connection address (one sockaddr buffer would
        # serve every completion): peername comes from getpeername(2).
        peer.ss_family = 0      # AF_UNSPEC
        self.queued = False
        self.accepted = []
        if (self.accept_op is not None and accepted
                and accepted[len(accepted) - 1] >= _FD_LIMIT_FLOOR
                and _fd_limit() != self.fd_limit):
            # The kernel checks the accepted fd against the RLIMIT_NOFILE of when the
            # accept was submitted (io_accept_prep): after setrlimit(), submit it anew
            # so EMFILE comes at the new limit. The old one's last accepts are served.
            # (Below the floor no real limit is exceeded: skip the getrlimit(2).)
            op = self.accept_op
            self.accept_op = None
            self.loop._backend.cancel_op(self.loop, op)
            self._arm_accept()
        try:
            while i < len(accepted) and self.active:
                res = accepted[i]
                i += 1
                if res < 0:
                    if (self.by_completion and self.watching and self.accept_op is None
                            and not _out_of_resources(-res)):
                        self._arm_accept()      # as the readiness path keeps polling
                    self._accept_failed(-res)
                    continue
                extra = self._addresses(&peer)
                self._add_peername(res, extra)
                self._serve(res, extra)
        finally:
            # Stopped meanwhile (or an exception): close what nobody will serve.
            while i < len(accepted):
                res = accepted[i]
                i += 1
                if res >= 0:
                    close(res)

    cdef int _arm_accept(self) except -1:
        cdef _AcceptOp op = _AcceptOp.__new__(_AcceptOp)
        op.listener = self
        op.sock = self.sock
        self.loop._check_closed()
        self.loop._check_fork()
        self.fd_limit = _fd_limit()
        self.loop._backend.submit_accept(op, self.fd, True, NULL, NULL)
        self.accept_op = op
        return 0

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
        return self._add_inet_address(conn_fd, extra, False)

    cdef bint _add_peername(self, int conn_fd, dict extra) except -1:
        # A connection from a multishot accept: its peer, from getpeername(2). Other
        # families are left to the socket object (see _serve).
        return self._add_inet_address(conn_fd, extra, True)

    cdef bint _add_inet_address(self, int conn_fd, dict extra, bint peer) except -1:
        cdef sockaddr_storage addr
        cdef socklen_t addr_len = sizeof(addr)
        cdef int ret
        if self.family != _socket.AF_INET and self.family != _socket.AF_INET6:
            return False
        if peer:
            ret = getpeername(conn_fd, <sockaddr *>&addr, &addr_len)
        else:
            ret = getsockname(conn_fd, <sockaddr *>&addr, &addr_len)
        extra['peername' if peer else 'sockname'] = (
            None if ret < 0 else rl_inet_address(&addr))
        return True

    cdef object _socket_object(self, int conn_fd):
        # Explicit family/type/proto: the socket object makes no syscall to learn them,
        # and SOCK_NONBLOCK in type gives it timeout 0 without fcntl().
        return _socket.socket(self.family, self.type | SOCK_NONBLOCK, self.proto, conn_fd)

    cdef int _start_watching(self) except -1:
        if self.active and not self.watching:
            if self.by_completion:
                self._arm_accept()
            else:
                self.loop._watch_fd(self.fd, False, self.handle, WATCH_DRAINS)
            self.watching = True
        return 0

    cdef int _stop_watching(self) except -1:
        cdef _AcceptOp op = self.accept_op
        if self.watching:
            self.watching = False
            if op is not None:
                self.accept_op = None
                self.loop._backend.cancel_op(self.loop, op)
            elif not self.by_completion:
                self.loop._unwatch_fd(self.fd, False)
        return 0

    def _retry(self):
        self.retry = None
        self._start_watching()

    cdef int _share_for_fork(self) except -1:
        # See _pause_accepts_for_fork: from now on wait for connections by readiness.
        cdef bint paused = self.watching
        self._stop_watching()
        self.by_completion = False
        self.handle = self.loop._new_handle(self._on_readable, (), None)
        _op_listeners.discard(self)
        self.fork_paused = paused
        return 0

    def _resume_after_fork(self, bint child):
        # In the parent: its at-fork hook. In the child: the first pass of its loop,
        # which runs after the loop's fork check has made its kernel objects anew
        # (_forget_paused_accepts queues it). The child's copies of fds the parent
        # accepted but has not served yet are the parent's connections: close them.
        if child:
            self._close_unserved()
        if self.fork_paused:
            self.fork_paused = False
            self._start_watching()

    cpdef int stop(self) except -1:
        self.active = False
        self._stop_watching()
        if self.retry is not None:
            self.retry.cancel()
            self.retry = None
        self.handle = None
        self.fork_paused = False
        _op_listeners.discard(self)
        self._close_unserved()
        return 0

    cdef int _close_unserved(self) except -1:
        # Close the connections the multishot accept delivered that nobody served.
        cdef int res
        if self.accepted:
            for res in self.accepted:
                if res >= 0:
                    close(res)
            self.accepted = []
        return 0


# The kernel wakes one IORING_OP_ACCEPT per connection (it polls with EPOLLEXCLUSIVE),
# the first armed, and that wake-up is spent even when its process never accepts: a
# parent that waits for its children takes every connection, and a child that exited
# leaves its accept in the socket's wait queue until its ring's exit work runs (seen:
# the parent's next connection stayed in the backlog, its own accept armed behind).
# So once a fork shares the listening socket, both processes wait for it by readiness
# (a poll without EPOLLEXCLUSIVE wakes every waiter; accept4() decides who serves):
# a fork from the loop's thread cancels the accepts first, and each process watches
# again (the child on its loop's first use after the fork, on its new ring).
import weakref as _weakref
cdef object _op_listeners = _weakref.WeakSet()  # listeners with a multishot accept (io_uring)
cdef list _fork_paused = []


def _pause_accepts_for_fork():
    cdef Listener listener
    for listener in list(_op_listeners):
        if listener.loop._backend.owned_by_current_thread():
            try:
                listener._share_for_fork()
            except BaseException:
                continue
            if listener.fork_paused:
                _fork_paused.append(listener)


def _resume_accepts_after_fork():
    cdef Listener listener
    paused = _fork_paused[:]
    del _fork_paused[:]
    for listener in paused:
        try:
            listener._resume_after_fork(False)
        except BaseException:
            pass


def _forget_paused_accepts():
    # The child: each listener that accepted by completion, or was paused for the
    # fork, resumes on its loop's first pass (_resume_after_fork).
    cdef Listener listener
    listeners = set(_op_listeners)
    listeners.update(_fork_paused)
    del _fork_paused[:]
    for listener in listeners:
        if listener.active and not listener.loop._closed:
            listener.loop._soon(listener._resume_after_fork, (True,))


os.register_at_fork(before=_pause_accepts_for_fork, after_in_parent=_resume_accepts_after_fork,
                    after_in_child=_forget_paused_accepts)


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
                   ssl_handshake_timeout, ssl_shutdown_timeout, bint shared=False):
    # shared: a socket the caller gave (sock=), which processes forked before may
    # accept on too, each with its own server (pre-fork workers): accept by readiness
    # there, for the reason given above _pause_accepts_for_fork.
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
    if loop._backend.has_ops() and not shared:
        listener.by_completion = True
        listener.accepted = []
        _op_listeners.add(listener)
        listener.handle = loop._new_handle(listener._on_accepted, (), None)
    else:
        listener.handle = loop._new_handle(listener._on_readable, (), None)
    listener.active = True
    listener._start_watching()
    return listener


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
