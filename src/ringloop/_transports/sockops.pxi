# The loop's sock_* coroutines (loop.sock_recv, sock_sendall, ...), bound as methods
# of ringloop.Loop. Each tries the operation at once; only when the kernel says it
# would block does it watch the socket and retry on readiness (asyncio's
# selector_events semantics, which uvloop does not follow: it always waits first).
# sock_recv/recv_into/sendall call recv(2)/send(2) directly with MSG_DONTWAIT, so a
# socket left blocking by mistake cannot block the loop.

cdef object _ssl_socket_type = None
try:
    import ssl as _ssl_module
    _ssl_socket_type = _ssl_module.SSLSocket
except ImportError:  # CPython without OpenSSL
    pass


cdef int check_sock(CoreLoop loop, sock) except -1:
    if _ssl_socket_type is not None and isinstance(sock, _ssl_socket_type):
        raise TypeError("Socket cannot be of type SSLSocket")
    if loop._debug and sock.gettimeout() != 0:
        raise ValueError("the socket must be non-blocking")
    return 0


cdef int recv_now(int fd, char *buf, Py_ssize_t size) except -2:
    # recv(2) without blocking: the byte count, or -1 when it would block.
    cdef ssize_t n = recv(fd, buf, size, MSG_DONTWAIT)
    if n < 0:
        if would_block(errno):
            return -1
        raise os_error(errno)
    return n


cdef object recv_bytes(CoreLoop loop, sock, Py_ssize_t size):
    # The bytes read, or None when the socket has nothing yet.
    cdef char *buf
    cdef int n
    if size < 0:
        raise ValueError("negative buffersize in recv")
    if size > RECV_SIZE:
        try:
            return sock.recv(size)
        except (BlockingIOError, InterruptedError):
            return None
    buf = loop._receive_buffer()
    n = recv_now(sock.fileno(), buf, size)
    if n < 0:
        return None
    return PyBytes_FromStringAndSize(buf, n)


cdef object recv_into(sock, buf):
    cdef Py_buffer view
    cdef int n
    PyObject_GetBuffer(buf, &view, PyBUF_WRITABLE)
    try:
        n = recv_now(sock.fileno(), <char *>view.buf, view.len)
    finally:
        PyBuffer_Release(&view)
    return None if n < 0 else n


cdef Py_ssize_t send_now(int fd, data, Py_ssize_t offset) except -2:
    # send(2) of data[offset:] without blocking or SIGPIPE: bytes sent (0 if it would block).
    cdef Py_buffer view
    cdef ssize_t n
    PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
    n = send(fd, <char *>view.buf + offset, view.len - offset, MSG_NOSIGNAL | MSG_DONTWAIT)
    PyBuffer_Release(&view)
    if n < 0:
        if would_block(errno):
            return 0
        raise os_error(errno)
    return n


cdef class _SockRetry:
    # The callback of a sock_* operation that waits for readiness: retries the
    # operation and completes the future, unless it would still block.
    cdef object fut
    cdef object attempt

    def __call__(self):
        if self.fut.done():
            return
        try:
            result = self.attempt()
        except (BlockingIOError, InterruptedError):
            return
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self.fut.set_exception(exc)
        else:
            if result is not _WOULD_BLOCK:
                self.fut.set_result(result)


cdef object _WOULD_BLOCK = object()


async def _wait_and_retry(CoreLoop loop, sock, bint writer, attempt):
    cdef _SockRetry retry = _SockRetry.__new__(_SockRetry)
    fd = sock.fileno()
    loop._ensure_fd_no_transport(fd)
    retry.fut = loop.create_future()
    retry.attempt = attempt
    handle = loop._set_watch_handle(fd, writer, retry, ())
    try:
        return await retry.fut
    finally:
        # Cancelled or done: stop watching, unless another operation took the watch.
        loop._drop_watch_handle(fd, writer, handle)


async def loop_sock_recv(CoreLoop self, sock, n):
    check_sock(self, sock)
    data = recv_bytes(self, sock, n)
    if data is not None:
        return data
    return await _wait_and_retry(
        self, sock, False,
        lambda: _or_would_block(recv_bytes(self, sock, n)))


async def loop_sock_recv_into(CoreLoop self, sock, buf):
    check_sock(self, sock)
    n = recv_into(sock, buf)
    if n is not None:
        return n
    return await _wait_and_retry(self, sock, False,
                                 lambda: _or_would_block(recv_into(sock, buf)))


async def _now_or_when_ready(CoreLoop loop, sock, bint writer, attempt):
    # The operation at once; if it would block, again each time the socket is ready.
    try:
        return attempt()
    except (BlockingIOError, InterruptedError):
        pass
    return await _wait_and_retry(loop, sock, writer, attempt)


async def loop_sock_recvfrom(CoreLoop self, sock, bufsize):
    check_sock(self, sock)
    return await _now_or_when_ready(self, sock, False, lambda: sock.recvfrom(bufsize))


async def loop_sock_recvfrom_into(CoreLoop self, sock, buf, nbytes=0):
    check_sock(self, sock)
    if not nbytes:
        nbytes = len(buf)
    return await _now_or_when_ready(self, sock, False, lambda: sock.recvfrom_into(buf, nbytes))


async def loop_sock_sendto(CoreLoop self, sock, data, address):
    check_sock(self, sock)
    return await _now_or_when_ready(self, sock, True, lambda: sock.sendto(data, address))


cdef class _SendAll:
    # sock_sendall's progress: the rest of `data` goes out as the socket takes it.
    cdef object sock
    cdef object data
    cdef Py_ssize_t sent, size

    def __call__(self):
        self.sent += send_now(self.sock.fileno(), self.data, self.sent)
        return None if self.sent == self.size else _WOULD_BLOCK


async def loop_sock_sendall(CoreLoop self, sock, data):
    cdef _SendAll job
    cdef Py_ssize_t size
    check_sock(self, sock)
    size = memoryview(data).nbytes if not PyBytes_CheckExact(data) else PyBytes_GET_SIZE(data)
    sent = send_now(sock.fileno(), data, 0) if size else 0
    if sent == size:
        return
    job = _SendAll.__new__(_SendAll)
    job.sock = sock
    job.data = data
    job.sent = sent
    job.size = size
    return await _wait_and_retry(self, sock, True, job)


cdef object _or_would_block(result):
    return _WOULD_BLOCK if result is None else result


async def loop_sock_accept(CoreLoop self, sock):
    check_sock(self, sock)

    def attempt():
        conn, address = sock.accept()
        conn.setblocking(False)
        return conn, address

    return await _now_or_when_ready(self, sock, False, attempt)


async def loop_sock_connect(CoreLoop self, sock, address):
    check_sock(self, sock)
    if sock.family == _socket.AF_INET or sock.family == _socket.AF_INET6:
        infos = await self.getaddrinfo(address[0], address[1], family=sock.family,
                                       type=sock.type, proto=sock.proto)
        if not infos:
            raise OSError('getaddrinfo() returned empty list')
        address = infos[0][4]
    try:
        sock.connect(address)
        return
    except (BlockingIOError, InterruptedError):
        pass

    def connected():
        # A non-blocking connect(2) completes when the socket turns writable;
        # SO_ERROR then says how it ended.
        err = sock.getsockopt(_socket.SOL_SOCKET, _socket.SO_ERROR)
        if err != 0:
            raise OSError(err, f'Connect call failed {address}')
        return None

    return await _wait_and_retry(self, sock, True, connected)
