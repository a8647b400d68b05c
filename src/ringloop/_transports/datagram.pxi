# DatagramSocketTransport: a UDP or Unix datagram socket, with asyncio's
# _SelectorDatagramTransport semantics (asyncio/selector_events.py is the reference for
# the messages, the error routing and the flow-control rules below).
#
# Readiness drives it on both backends, with two Handles built once per transport.
# Reads: recvmmsg(2) fills up to DGRAM_SLOTS datagrams per syscall into the loop's
# receive buffer; each becomes one bytes object and one datagram_received() call, up
# to MAX_DATAGRAMS_PER_EVENT per readable event (asyncio reads one per event). A
# recvmmsg that returns fewer datagrams than it had room for has emptied the queue, so
# request/response traffic costs one receive syscall per event, not two. The read
# watch is WATCH_DRAINS (io_uring: one multishot poll for the transport's life, not a
# poll re-armed per datagram), so a read that stops before the queue is known to be
# empty (the per-event cap, an error, an exception from the protocol) reads again on
# the next pass: the watch reports new datagrams only.
# Writes: sendto() at once when nothing is queued; a datagram the kernel would not
# take is queued (as a bytes copy) and sent when the socket turns writable.
# Addresses: for AF_INET/AF_INET6/AF_UNIX the transport builds the sender's address
# itself and remembers the last one, so a peer that keeps sending gets the same tuple
# object back, and a reply to that object (an echo) reuses its sockaddr without any
# parsing. Other families go through the socket module.

cdef extern from *:
    """
    #include <arpa/inet.h>
    #include <netinet/in.h>
    #include <stddef.h>
    #include <string.h>
    #include <sys/un.h>

    /* The address socket.recvfrom() returns for a sender's sockaddr, for AF_INET,
     * AF_INET6 and AF_UNIX (the socket module's makesockaddr): None for an unbound
     * Unix sender, bytes for a Linux abstract name, str for a path. */
    static PyObject *rl_sender_address(const struct sockaddr_storage *ss, socklen_t len) {
        if (len == 0)
            Py_RETURN_NONE;
        if (ss->ss_family == AF_UNIX) {
            const struct sockaddr_un *a = (const struct sockaddr_un *)ss;
            size_t n = len > offsetof(struct sockaddr_un, sun_path)
                       ? len - offsetof(struct sockaddr_un, sun_path) : 0;
            if (n > sizeof(a->sun_path))
                n = sizeof(a->sun_path);
            if (n > 0 && a->sun_path[0] == 0)
                return PyBytes_FromStringAndSize(a->sun_path, (Py_ssize_t)n);
            return PyUnicode_DecodeFSDefaultAndSize(a->sun_path,
                                                    (Py_ssize_t)strnlen(a->sun_path, n));
        }
        return rl_inet_address(ss);
    }

    /* The sockaddr for sendto() to `addr` on an AF_INET or AF_INET6 socket, when addr
     * is an exact tuple (host, port) / (host, port[, flowinfo[, scope_id]]) with a
     * numeric host and every value in range; its length, or 0 for anything else (the
     * caller then lets socket.sendto() parse it, resolve it or raise). Leaves no
     * Python error set. */
    static socklen_t rl_sockaddr_of(int family, PyObject *addr, struct sockaddr_storage *ss) {
        Py_ssize_t n, len;
        const char *host;
        long port;
        unsigned long flowinfo = 0, scope_id = 0;
        if (!PyTuple_CheckExact(addr))
            return 0;
        n = PyTuple_GET_SIZE(addr);
        if (n < 2 || n > (family == AF_INET6 ? 4 : 2))
            return 0;
        for (Py_ssize_t i = 1; i < n; i++)
            if (!PyLong_CheckExact(PyTuple_GET_ITEM(addr, i)))
                return 0;
        if (!PyUnicode_CheckExact(PyTuple_GET_ITEM(addr, 0)))
            return 0;
        host = PyUnicode_AsUTF8AndSize(PyTuple_GET_ITEM(addr, 0), &len);
        if (host == NULL || (Py_ssize_t)strlen(host) != len)
            goto fail;
        port = PyLong_AsLong(PyTuple_GET_ITEM(addr, 1));
        if (port < 0 || port > 65535)
            goto fail;
        if (n > 2) {
            flowinfo = PyLong_AsUnsignedLong(PyTuple_GET_ITEM(addr, 2));
            if (PyErr_Occurred() || flowinfo > 0xfffff)
                goto fail;
        }
        if (n > 3) {
            scope_id = PyLong_AsUnsignedLong(PyTuple_GET_ITEM(addr, 3));
            if (PyErr_Occurred() || scope_id > 0xffffffffUL)
                goto fail;
        }
        memset(ss, 0, sizeof(*ss));
        if (family == AF_INET) {
            struct sockaddr_in *a = (struct sockaddr_in *)ss;
            if (inet_pton(AF_INET, host, &a->sin_addr) != 1)
                return 0;
            a->sin_family = AF_INET;
            a->sin_port = htons((uint16_t)port);
            return sizeof(*a);
        }
        if (family == AF_INET6) {
            struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
            if (inet_pton(AF_INET6, host, &a->sin6_addr) != 1)
                return 0;
            a->sin6_family = AF_INET6;
            a->sin6_port = htons((uint16_t)port);
            a->sin6_flowinfo = htonl((uint32_t)flowinfo);
            a->sin6_scope_id = (uint32_t)scope_id;
            return sizeof(*a);
        }
        return 0;
    fail:
        PyErr_Clear();
        return 0;
    }
    """
    object rl_sender_address(const sockaddr_storage *ss, socklen_t len)
    socklen_t rl_sockaddr_of(int family, object addr, sockaddr_storage *ss)

cdef extern from "<sys/socket.h>":
    enum:
        AF_INET
        AF_INET6
        AF_UNIX

cdef enum:
    # A UDP datagram (IPv4 or IPv6, without jumbograms) fits in 64 KiB: the loop's
    # receive buffer holds 4 slots. A Unix datagram can be larger: one slot of all of
    # it (asyncio's max_size, 256 KiB).
    DGRAM_SLOT = 64 * 1024
    DGRAM_SLOTS = RECV_SIZE // DGRAM_SLOT
    # Datagrams handed to the protocol per readable event, at most (libuv's count).
    MAX_DATAGRAMS_PER_EVENT = 32

# asyncio 3.13 sends zero-length datagrams (3.11 and 3.12 drop them) and counts 8
# bytes of header per queued datagram in get_write_buffer_size() (gh-113812).
cdef bint _SEND_EMPTY = sys.version_info >= (3, 13)
cdef Py_ssize_t _DGRAM_HEADER = 8 if sys.version_info >= (3, 13) else 0


cdef class DatagramSocketTransport(DatagramTransport):
    cdef:
        readonly CoreLoop _loop
        readonly object _sock
        readonly int _sock_fd
        readonly object _protocol
        readonly object _address    # the remote_addr: sendto()'s default and only target
        int _family
        bint _connected             # the socket has a peer: send(2), not sendto(2)
        bint _unnamed_peer          # a peer whose name is '' (socketpair(AF_UNIX, ...))
        bint _c_addresses           # AF_INET/AF_INET6/AF_UNIX: addresses handled here
        readonly bint _protocol_connected
        readonly bint _closing
        readonly bint _paused
        bint _reading
        bint _writing
        int _conn_lost
        readonly WriteQueue _write_queue
        Handle _read_handle
        Handle _write_handle
        list _held                  # received, not yet delivered: (data, addr) tuples
        object _rx_addr             # the last sender's address object ...
        sockaddr_storage _rx_name   # ... and its sockaddr
        socklen_t _rx_namelen
        object _tx_addr             # the last sendto() target parsed (or seen) ...
        sockaddr_storage _tx_name   # ... and its sockaddr (valid when _tx_namelen > 0)
        socklen_t _tx_namelen
        object __weakref__

    def __cinit__(self):
        self._write_queue = WriteQueue.__new__(WriteQueue)
        self._sock_fd = -1

    cdef int _setup(self, CoreLoop loop, sock, protocol, address, waiter, extra) except -1:
        # _SelectorTransport.__init__ + _SelectorDatagramTransport.__init__.
        connection_made = protocol.connection_made
        self._extra = {} if extra is None else extra
        self._loop = loop
        self._extra['socket'] = _TransportSocket(sock)
        try:
            self._extra['sockname'] = sock.getsockname()
        except OSError:
            self._extra['sockname'] = None
        if 'peername' not in self._extra:
            try:
                self._extra['peername'] = sock.getpeername()
            except OSError:
                self._extra['peername'] = None
        self._sock = sock
        self._sock_fd = sock.fileno()
        self._family = _raw_family(sock)
        self._c_addresses = self._family in (AF_INET, AF_INET6, AF_UNIX)
        self._connected = bool(self._extra['peername'])
        self._unnamed_peer = self._extra['peername'] is not None and not self._connected
        self._address = address
        self.set_protocol(protocol)
        self._read_handle = loop._new_handle(self._on_readable, (), None)
        self._write_handle = loop._new_handle(self._on_writable, (), None)
        loop._transports[self._sock_fd] = self
        loop.call_soon(connection_made, self)
        # Only start reading after connection_made.
        loop.call_soon(self._start_reading)
        if waiter is not None:
            loop.call_soon(_set_result_unless_cancelled, waiter, None)
        return 0

    def __repr__(self):
        return transport_repr(self, self._sock is None, self._closing, self._sock_fd,
                              socket_state(self._loop, self._reading, self._writing,
                                           self._write_queue))

    def __del__(self):
        if self._sock is not None:
            _warnings.warn(f"unclosed transport {self!r}", ResourceWarning, source=self)
            self._sock.close()

    # ---- the fd watch -----------------------------------------------------------

    def _start_reading(self):
        if not self._closing and not self._paused:
            start_watch(self._loop, self._sock_fd, False, self._read_handle, &self._reading,
                        WATCH_DRAINS)

    cdef int _stop_reading(self) except -1:
        return stop_watch(self._loop, self._sock_fd, False, &self._reading)

    cdef int _start_writing(self) except -1:
        return start_watch(self._loop, self._sock_fd, True, self._write_handle, &self._writing)

    cdef int _stop_writing(self) except -1:
        return stop_watch(self._loop, self._sock_fd, True, &self._writing)

    # ---- protocol and state -----------------------------------------------------

    def resume_reading(self):
        if (resume_reading(self._loop, self, self._sock_fd, self._closing, &self._paused,
                           &self._reading, self._read_handle, WATCH_DRAINS)
                and self._held):
            self._loop.call_soon(self._deliver_held)

    def pause_reading(self):
        pause_reading(self._loop, self, self._sock_fd, self._closing, &self._paused,
                      &self._reading)

    def set_protocol(self, protocol):
        self._protocol = protocol
        self._protocol_connected = True

    get_protocol = _get_protocol     # these four: common.pxi
    is_closing = _is_closing
    is_reading = _is_reading
    _call_connection_lost = _end_transport

    # ---- reading ----------------------------------------------------------------

    def _on_readable(self):
        # The event may have been queued before a pause or close in the same pass;
        # datagrams held back by a pause go first.
        if not self._reading or (self._held and not self._deliver_held()):
            return
        # Families whose addresses only the socket module knows: _receive_py.
        self._receive() if self._c_addresses else self._receive_py()

    cdef int _receive(self) except -1:
        cdef mmsghdr msgs[DGRAM_SLOTS]
        cdef iovec iov[DGRAM_SLOTS]
        cdef sockaddr_storage names[DGRAM_SLOTS]
        cdef char *buf = self._loop._receive_buffer()
        cdef int slots = 1 if self._family == AF_UNIX else DGRAM_SLOTS
        cdef size_t slot_size = RECV_SIZE // slots
        cdef int i, n, err, total = 0
        memset(msgs, 0, sizeof(msgs))
        for i in range(slots):
            iov[i].iov_base = buf + i * slot_size
            iov[i].iov_len = slot_size
            msgs[i].msg_hdr.msg_iov = &iov[i]
            msgs[i].msg_hdr.msg_iovlen = 1
            msgs[i].msg_hdr.msg_name = &names[i]
        while total < MAX_DATAGRAMS_PER_EVENT:
            for i in range(slots):
                msgs[i].msg_hdr.msg_namelen = sizeof(sockaddr_storage)
            n = recvmmsg(self._sock_fd, msgs, slots, MSG_DONTWAIT, NULL)
            if n < 0:
                # An ICMP error (ECONNREFUSED after a send to a closed port on a
                # connected socket) is the protocol's business, not fatal (asyncio).
                # recvmmsg(2) reports it instead of the datagrams behind it.
                if not would_block(errno):
                    err = errno
                    self._read_again()
                    self._protocol.error_received(os_error(err))
                return 0
            for i in range(n):
                if not self._reading:
                    # An earlier datagram_received() closed the transport (the rest
                    # is dropped, as the kernel would drop it) or paused reading (the
                    # rest waits for resume_reading()).
                    if not self._closing:
                        self._hold(msgs, names, i, n)
                    return 0
                data = rl_bytes_from(<char *>iov[i].iov_base, msgs[i].msg_len)
                addr = self._sender(&names[i], msgs[i].msg_hdr.msg_namelen)
                try:
                    self._protocol.datagram_received(data, addr)
                except BaseException:
                    # Reported by the handle running us, as asyncio's would; the rest
                    # of the batch, then of the queue, on the next pass.
                    if i + 1 < n and not self._closing:
                        self._hold(msgs, names, i + 1, n)
                    if self._reading:
                        self._read_again()
                    raise
            total += n
            if n < slots:
                return 0
        self._read_again()
        return 0

    cdef int _read_again(self) except -1:
        # The queue may hold more than this pass read: the read watch reports new
        # datagrams only (WATCH_DRAINS), so run _on_readable again on the next pass.
        return self._loop.queue_handle(self._read_handle)

    cdef object _sender(self, sockaddr_storage *name, socklen_t namelen):
        # The sender's address object: the previous one again if the sockaddr is the
        # same. A new one is also remembered as the sendto() target of its sockaddr,
        # so a reply to it skips the parsing.
        if namelen == self._rx_namelen and memcmp(name, &self._rx_name, namelen) == 0:
            return self._rx_addr
        addr = rl_sender_address(name, namelen)
        self._rx_addr = addr
        self._rx_namelen = namelen
        memcpy(&self._rx_name, name, namelen)
        # Only a named sender: None or '' (an unbound Unix socket) is no target.
        if addr:
            self._tx_addr = addr
            self._tx_namelen = namelen
            memcpy(&self._tx_name, name, namelen)
        return addr

    cdef int _hold(self, mmsghdr *msgs, sockaddr_storage *names, int start, int n) except -1:
        # Keep received datagrams start..n-1 (copied out of the loop's buffer).
        cdef int i
        if self._held is None:
            self._held = []
        for i in range(start, n):
            data = rl_bytes_from(<char *>msgs[i].msg_hdr.msg_iov.iov_base, msgs[i].msg_len)
            self._held.append((data, self._sender(&names[i], msgs[i].msg_hdr.msg_namelen)))
        return 0

    def _deliver_held(self):
        # Hand held datagrams on, while the transport reads; True if none is left.
        cdef list held = self._held
        while held and self._reading:
            data, addr = held.pop(0)
            try:
                self._protocol.datagram_received(data, addr)
            except BaseException:
                # The rest, then the kernel's queue, on the next pass (as in _receive).
                if self._reading:
                    self._read_again()
                raise
        if self._closing:
            self._held = None
        return not held

    cdef int _receive_py(self) except -1:
        # Families whose addresses only the socket module knows: one recvfrom() per
        # event, exactly as asyncio does.
        try:
            data, addr = self._sock.recvfrom(RECV_SIZE)
        except (BlockingIOError, InterruptedError):
            return 0
        except OSError as exc:
            self._protocol.error_received(exc)
            return 0
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, 'Fatal read error on datagram transport')
            return 0
        self._protocol.datagram_received(data, addr)
        return 0

    # ---- flow control (transports._FlowControlMixin, writequeue.pxi) ------------

    set_write_buffer_limits = _set_write_buffer_limits
    get_write_buffer_limits = _get_write_buffer_limits
    get_write_buffer_size = _get_write_buffer_size
    _protocol_paused = property(_get_protocol_paused)

    # ---- writing ----------------------------------------------------------------

    def sendto(self, data, addr=None):
        if not PyBytes_CheckExact(data) and not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f'data argument must be a bytes-like object, '
                            f'not {type(data).__name__!r}')
        if not _SEND_EMPTY and not data:
            return
        if self._address:
            if addr not in (None, self._address):
                raise ValueError(f'Invalid address: must be None or {self._address}')
            addr = self._address
        # asyncio counts writes to a lost connected transport; an unconnected one whose
        # socket is already closed is counted too (asyncio would fail on its None socket).
        if (self._conn_lost and self._address) or self._sock is None:
            if self._conn_lost >= _LOG_THRESHOLD_FOR_CONNLOST_WRITES:
                _logger.warning('socket.send() raised exception.')
            self._conn_lost += 1
            return
        if not self._write_queue.items.count:
            if self._send(data, addr) != 0:
                return
            self._start_writing()
        # Queue an immutable copy: the caller may change a bytearray after sendto().
        if not PyBytes_CheckExact(data):
            data = bytes(data)
        self._write_queue.push((data, addr), PyBytes_GET_SIZE(data) + _DGRAM_HEADER)
        self._write_queue.pause_if_full(self._loop, self, self._protocol)

    cdef int _send(self, data, addr) except -2:
        # One datagram: 1 sent, 0 the kernel would block, -1 failed (and reported: an
        # OSError to error_received(), anything else as a fatal error).
        cdef Py_buffer view
        cdef ssize_t n
        cdef int err
        cdef socklen_t namelen = 0
        cdef sockaddr_storage name
        cdef sockaddr_storage *target = NULL
        # A socket connected before it was passed as sock= whose peer has no name
        # (socketpair(AF_UNIX, SOCK_DGRAM): getpeername() gives '', so asyncio does not
        # count it as connected): sendto(data) with no address sends to that peer, as
        # uvloop does, where asyncio calls sock.sendto(data, None), a TypeError that
        # closes the transport (uvloop's test_udp test_socketpair). A socket with no
        # peer at all keeps asyncio's fatal TypeError; with an address, sendto(2).
        if not self._connected and not (addr is None and self._unnamed_peer):
            if self._tx_namelen and addr is self._tx_addr:
                target = &self._tx_name
                namelen = self._tx_namelen
            elif self._c_addresses and addr is not None:
                namelen = rl_sockaddr_of(self._family, addr, &name)
                if namelen:
                    self._tx_addr = addr
                    self._tx_namelen = namelen
                    memcpy(&self._tx_name, &name, namelen)
                    target = &self._tx_name
            if target == NULL:
                return self._send_py(data, addr)
        try:
            PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, 'Fatal write error on datagram transport')
            return -1
        if target == NULL:
            n = send(self._sock_fd, view.buf, view.len, MSG_NOSIGNAL | MSG_DONTWAIT)
        else:
            n = sendto(self._sock_fd, view.buf, view.len, MSG_NOSIGNAL | MSG_DONTWAIT,
                       <sockaddr *>target, namelen)
        err = errno
        PyBuffer_Release(&view)
        if n >= 0:
            return 1
        if would_block(err):
            return 0
        self._protocol.error_received(os_error(err))
        return -1

    cdef int _send_py(self, data, addr) except -2:
        # sendto() through the socket module: names to resolve, other families, and
        # every malformed address (socket.sendto raises what asyncio's would).
        try:
            if self._connected:
                self._sock.send(data)
            else:
                self._sock.sendto(data, addr)
        except (BlockingIOError, InterruptedError):
            return 0
        except OSError as exc:
            self._protocol.error_received(exc)
            return -1
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, 'Fatal write error on datagram transport')
            return -1
        return 1

    def _on_writable(self):
        if not self._writing:
            return
        self._flush()

    cdef int _flush(self) except -1:
        cdef PyObject *head
        cdef int r
        while self._write_queue.items.count:
            head = self._write_queue.head()
            item = <tuple>head
            r = self._send(item[0], item[1])
            if r == 0:
                break           # still full: wait for the next writable event
            # Sent or dropped (a failed datagram is not retried, as in asyncio),
            # unless a fatal error has already emptied the queue.
            if self._write_queue.items.count and self._write_queue.head() == head:
                self._write_queue.pop(PyBytes_GET_SIZE(item[0]) + _DGRAM_HEADER)
            if r < 0:
                return 0
        self._write_queue.resume_if_drained(self._loop, self, self._protocol)
        if not self._write_queue.items.count:
            self._stop_writing()
            if self._closing:
                self._call_connection_lost(None)
        return 0

    # ---- closing ----------------------------------------------------------------

    abort = _abort     # common.pxi

    def close(self):
        if self._closing:
            return
        self._closing = True
        self._held = None
        self._stop_reading()
        if not self._write_queue.items.count:
            self._conn_lost += 1
            self._stop_writing()
            self._loop.call_soon(self._call_connection_lost, None)

    cpdef int _fatal_error(self, exc, str message='Fatal error on transport') except -1:
        report_error(self._loop, self, self._protocol, exc, message, isinstance(exc, OSError))
        self._force_close(exc)
        return 0

    cpdef int _force_close(self, exc) except -1:
        # (No loop: connection_lost already ran, after close() flushed the queue.)
        if self._conn_lost or self._loop is None:
            return 0
        if self._write_queue.items.count:
            self._write_queue.clear()
            self._stop_writing()
        if not self._closing:
            self._closing = True
            self._held = None
            self._stop_reading()
        self._conn_lost += 1
        self._loop.call_soon(self._call_connection_lost, exc)
        return 0

    cpdef int _release(self) except -1:
        self._stop_reading()
        self._stop_writing()
        forget_transport(self._loop, self._sock_fd, self)
        self._sock.close()
        self._sock = None
        self._protocol = None
        self._loop = None
        self._read_handle = None
        self._write_handle = None
        self._rx_addr = None
        self._tx_addr = None
        self._tx_namelen = 0
        return 0

def make_datagram_transport(CoreLoop loop, sock, protocol, address, waiter, extra):
    cdef DatagramSocketTransport transport = DatagramSocketTransport.__new__(
        DatagramSocketTransport)
    transport._setup(loop, sock, protocol, address, waiter, extra)
    return transport
