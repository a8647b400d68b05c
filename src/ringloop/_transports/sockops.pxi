# The loop's sock_* coroutines (loop.sock_recv, sock_sendall, ...), bound as methods
# of ringloop.Loop. Each tries the operation at once; only when the kernel says it
# would block does it watch the socket and retry on readiness (asyncio's
# selector_events semantics, which uvloop does not follow: it always waits first).
# sock_recv/recv_into/sendall call recv(2)/send(2) directly with MSG_DONTWAIT, so a
# socket left blocking by mistake cannot block the loop.
#
# A socket whose last sock_recv found nothing (request/response traffic: the reply is
# awaited right after the request went out) waits for readiness first next time,
# saving a recv(2) that would only say EAGAIN; a recv that fills the whole request
# (bulk traffic: more is likely queued) switches it back to trying first.
#
# On io_uring (Backend.has_ops) the wait is an operation instead of readiness:
# sock_recv / sock_recv_into submit an IORING_OP_RECV into the buffer they return, and
# sock_sendall an IORING_OP_SEND of what did not go at once. A recv cancelled while in
# flight may still complete with data: that data (or error) is kept in
# loop._sock_recv.ops and is what the next sock_recv on that socket returns, and a recv that
# finds the cancelled one still in flight waits for it first, so the byte stream stays
# whole and in order.

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
    cdef CoreLoop loop
    cdef object fut
    cdef object attempt
    cdef int fd
    cdef bint writer
    cdef Handle handle

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
            if result is _WOULD_BLOCK:
                return
            self.fut.set_result(result)
        # Stop watching now, in the pass that consumed the event: the awaiting task
        # resumes only after the next kernel wait, which would otherwise re-arm the
        # watch (io_uring: a POLL_ADD, then a cancel) for nothing.
        self.loop._drop_watch_handle(self.fd, self.writer, self.handle)


cdef object _WOULD_BLOCK = object()


cdef _SockRetry _start_retry(CoreLoop loop, int fd, bint writer, attempt):
    # Watch the socket's fd; each time it is ready, try attempt again (see _SockRetry).
    cdef _SockRetry retry = _SockRetry.__new__(_SockRetry)
    loop._ensure_fd_no_transport(fd)
    retry.loop = loop
    retry.fd = fd
    retry.writer = writer
    retry.fut = loop.create_future()
    retry.attempt = attempt
    retry.handle = loop._set_watch_handle(fd, writer, retry, (), True)
    return retry


cdef int _end_retry(_SockRetry retry) except -1:
    # Done, cancelled or failed before the retry ran: stop watching, unless another
    # operation took the watch.
    retry.loop._drop_watch_handle(retry.fd, retry.writer, retry.handle)
    return 0


async def _wait_and_retry(CoreLoop loop, sock, bint writer, attempt):
    cdef _SockRetry retry = _start_retry(loop, sock.fileno(), writer, attempt)
    try:
        return await retry.fut
    finally:
        _end_retry(retry)


cdef class SockRecvState:
    # Declared in transports.pxd; one per loop (CoreLoop._sock_recv).
    def __cinit__(self):
        self.waited = bytearray()
        self.ops = {}


cdef bint recv_waited(CoreLoop loop, int fd):
    cdef bytearray bits = loop._sock_recv.waited
    return 0 <= fd < len(bits) and bits[fd]


cdef int note_recv(CoreLoop loop, int fd, bint waited) except -1:
    cdef bytearray bits = loop._sock_recv.waited
    if fd < 0:
        return 0
    if fd >= len(bits):
        if not waited:
            return 0
        bits.extend(bytes(fd + 1 - len(bits)))
    bits[fd] = waited
    return 0


cdef class _RecvAttempt:
    # sock_recv / sock_recv_into once: the result, or _WOULD_BLOCK. Notes whether the
    # result filled the request (see the top of this file).
    cdef CoreLoop loop
    cdef object sock
    cdef object buf           # sock_recv_into's buffer, or None for sock_recv
    cdef Py_ssize_t size      # sock_recv's size

    cdef Py_ssize_t size_or_len(self):
        return self.size if self.buf is None else memoryview(self.buf).nbytes

    def __call__(self):
        cdef Py_ssize_t got
        if self.buf is None:
            result = rl_recv_bytes(self.sock.fileno(), self.size)
            if result is None:
                return _WOULD_BLOCK
            got = len(result)
            if got == self.size:
                note_recv(self.loop, self.sock.fileno(), False)
            return result
        result = recv_into(self.sock, self.buf)
        if result is None:
            return _WOULD_BLOCK
        if result and result == len(self.buf):
            note_recv(self.loop, self.sock.fileno(), False)
        return result


cdef _RecvAttempt _recv_attempt(CoreLoop loop, sock, buf, Py_ssize_t size):
    cdef _RecvAttempt attempt = _RecvAttempt.__new__(_RecvAttempt)
    cdef Py_buffer view
    if buf is None and size < 0:
        raise ValueError("negative buffersize in recv")
    if buf is not None:
        # Refuse a read-only buffer now, not after a wait for data.
        PyObject_GetBuffer(buf, &view, PyBUF_WRITABLE)
        PyBuffer_Release(&view)
    attempt.loop = loop
    attempt.sock = sock
    attempt.buf = buf
    attempt.size = size
    return attempt


from cpython.ref cimport Py_XDECREF

# sock_recv's buffers for IORING_OP_RECV, by request size. A recv in flight holds a
# buffer of the whole requested size, and most results are far smaller (a 64 KiB
# request answered with 128 bytes). Allocating and shrinking a 64 KiB bytes object per
# wait made glibc trim and regrow its heap (brk(2), then fresh page faults) on every
# message; so a small result is copied out and its buffer kept for the next recv.
cdef dict _recv_buffers = {}

cdef enum:
    RECV_POOL_MIN = 2048        # smaller requests are cheap to allocate anyway
    RECV_POOL_SIZES = 8
    RECV_POOL_DEPTH = 64


cdef object _recv_buffer(Py_ssize_t size):
    cdef list pool = _recv_buffers.get(size) if size >= RECV_POOL_MIN else None
    if pool:
        return pool.pop()
    return PyBytes_FromStringAndSize(NULL, size)


cdef int _keep_recv_buffer(object data, Py_ssize_t size) except -1:
    # data: a bytes object nothing else references (refcount 1 once the caller drops it).
    cdef list pool = _recv_buffers.get(size)
    if pool is None:
        if len(_recv_buffers) >= RECV_POOL_SIZES:
            return 0
        pool = _recv_buffers[size] = []
    if len(pool) < RECV_POOL_DEPTH:
        pool.append(data)
    return 0


cdef class _RecvOp(Op):
    # A sock_recv / sock_recv_into as one IORING_OP_RECV. The backend keeps it until its
    # final CQE, and with it the socket and the memory the kernel writes: a new bytes
    # object (sock_recv, owned here until handed out) or the caller's buffer, exported
    # (PyObject_GetBuffer) until then.
    cdef CoreLoop loop
    cdef _RecvAttempt attempt
    cdef int fd
    cdef PyObject *data         # sock_recv: the bytes object being filled
    cdef Py_buffer view         # sock_recv_into: the caller's buffer
    cdef bint has_view
    cdef object fut             # the waiting sock_recv's future
    cdef object leftover        # bytes (or an OSError) that came after the caller left
    cdef list waiters           # recvs on the same socket waiting for this one to end

    def __dealloc__(self):
        Py_XDECREF(self.data)
        if self.has_view:
            PyBuffer_Release(&self.view)

    cdef int submit(self) except -1:
        cdef void *buf
        cdef Py_ssize_t size
        if self.attempt.buf is None:
            size = self.attempt.size
            data = _recv_buffer(size)
            Py_INCREF(data)
            self.data = <PyObject *>data
            buf = PyBytes_AS_STRING(data)
        else:
            PyObject_GetBuffer(self.attempt.buf, &self.view, PyBUF_WRITABLE)
            self.has_view = True
            buf = self.view.buf
            size = self.view.len
        self.loop._backend.submit_recv(self, self.fd, buf, size)
        self.loop._sock_recv.ops[self.fd] = self
        return 0

    cdef object _result(self, int n):
        # What the kernel received, as sock_recv / sock_recv_into returns it.
        cdef object data, buf
        cdef Py_ssize_t size
        if self.has_view:
            self.has_view = False
            PyBuffer_Release(&self.view)
            return n
        size = PyBytes_GET_SIZE(<object>self.data)
        if size >= RECV_POOL_MIN and n <= size // 4:
            buf = <object>self.data
            Py_DECREF(buf)              # buf now holds the reference self.data had
            self.data = NULL
            data = rl_bytes_from(PyBytes_AS_STRING(buf), n)
            _keep_recv_buffer(buf, size)
            return data
        rl_bytes_trim(&self.data, n)
        data = <object>self.data
        Py_DECREF(data)
        self.data = NULL
        return data

    cdef int complete(self, int res, bint more) except -1:
        cdef _RecvOp again
        cdef bint wanted = (not self.cancelled and self.fut is not None
                            and not self.fut.done())
        if res == -ECANCELED and not self.cancelled:
            # The ring was re-created under it (fork): receive again, same waiter.
            again = _new_recv_op(self.loop, self.fd, self.attempt)
            again.fut = self.fut
            again.waiters = self.waiters
            self.fut = None
            self.waiters = None
            self._result(0)
            again.submit()
            return 0
        if res >= 0:
            result = self._result(res)
            if wanted and res == self.attempt.size_or_len():
                note_recv(self.loop, self.fd, False)    # filled: bulk traffic, try first
        else:
            self._result(0)
            result = None if res == -ECANCELED else os_error(-res)
        if self.loop._sock_recv.ops.get(self.fd) is self:
            del self.loop._sock_recv.ops[self.fd]
        if wanted:
            if res >= 0:
                self.fut.set_result(result)
            else:
                self.fut.set_exception(result)
        elif (res > 0 or res != -ECANCELED and res < 0) and not self.loop._closed:
            # Completed after its caller was cancelled: the next recv gets it.
            self.keep(result)
        self.fut = None
        if self.waiters:
            if not self.loop._closed:   # (ring teardown: nothing will run them)
                for w in self.waiters:
                    if not w.done():
                        w.set_result(None)
            self.waiters = None
        return 0

    cdef int keep(self, result) except -1:
        # result (what _result() gave, or an OSError) is for the next recv.
        if isinstance(result, int):
            result = bytes(memoryview(self.attempt.buf).cast('B')[:result])
        self.leftover = result
        self.loop._sock_recv.ops[self.fd] = self
        return 0

    cdef object take(self, _RecvAttempt attempt):
        # Hand (part of) the leftover to the next recv on the socket.
        cdef Py_ssize_t n, want
        got = self.leftover
        if isinstance(got, BaseException):
            del self.loop._sock_recv.ops[self.fd]
            raise got
        want = attempt.size_or_len()
        n = min(want, len(got))
        if n == len(got):
            del self.loop._sock_recv.ops[self.fd]
        else:
            self.leftover = got[n:]
        if attempt.buf is None:
            return got if n == len(got) else got[:n]
        memoryview(attempt.buf).cast('B')[:n] = got[:n]
        return n


cdef _RecvOp _new_recv_op(CoreLoop loop, int fd, _RecvAttempt attempt):
    cdef _RecvOp op = _RecvOp.__new__(_RecvOp)
    op.loop = loop
    op.fd = fd
    op.attempt = attempt
    return op


cdef _RecvOp _start_recv_op(CoreLoop loop, int fd, _RecvAttempt attempt):
    cdef _RecvOp op
    loop._ensure_fd_no_transport(fd)
    op = _new_recv_op(loop, fd, attempt)
    op.fut = loop.create_future()
    op.submit()
    return op


cdef int _recv_op_abandoned(CoreLoop loop, _RecvOp op, fut) except -1:
    # The task awaiting fut left early (cancelled).
    if op.in_flight:
        # Stop the recv; what it may still deliver becomes the leftover (complete()).
        op.fut = None
        loop._backend.cancel_op(loop, op)
    elif fut.done() and not fut.cancelled() and fut.exception() is None:
        # The data came, but the task was cancelled before it resumed.
        op.keep(fut.result())
    return 0


async def _after_cancelled_recv(CoreLoop loop, int fd, _RecvAttempt attempt):
    # A cancelled recv on this socket is still in flight or left data: wait for it to
    # end, then serve this recv from what it got. _WOULD_BLOCK: nothing left over.
    cdef _RecvOp op
    while True:
        op = loop._sock_recv.ops.get(fd)
        if op is None:
            return _WOULD_BLOCK
        if not op.in_flight:
            return op.take(attempt)
        waiter = loop.create_future()
        if op.waiters is None:
            op.waiters = []
        op.waiters.append(waiter)
        await waiter


async def _receive(CoreLoop loop, _RecvAttempt attempt):
    cdef _RecvOp op = None
    cdef _SockRetry retry = None
    cdef int fd = attempt.sock.fileno()
    if loop._sock_recv.ops and fd in loop._sock_recv.ops:
        result = await _after_cancelled_recv(loop, fd, attempt)
        if result is not _WOULD_BLOCK:
            return result
    if fd < 0 or not recv_waited(loop, fd):
        result = attempt()
        if result is not _WOULD_BLOCK:
            return result
        note_recv(loop, fd, True)
    # The wait is awaited here, not in a coroutine of its own: one coroutine fewer to
    # make and to pass through per call. io_uring: an IORING_OP_RECV; epoll: readiness.
    if loop._backend.has_ops():
        op = _start_recv_op(loop, fd, attempt)
        fut = op.fut
    else:
        retry = _start_retry(loop, fd, False, attempt)
        fut = retry.fut
    try:
        return await fut
    except BaseException:
        if op is not None:
            _recv_op_abandoned(loop, op, fut)
        raise
    finally:
        if retry is not None:
            _end_retry(retry)


async def loop_sock_recv(CoreLoop self, sock, n):
    check_sock(self, sock)
    return await _receive(self, _recv_attempt(self, sock, None, n))


async def loop_sock_recv_into(CoreLoop self, sock, buf):
    check_sock(self, sock)
    return await _receive(self, _recv_attempt(self, sock, buf, 0))


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


cdef class _SendOp(Op):
    # The rest of a sock_sendall as IORING_OP_SEND (MSG_WAITALL), submitted again after
    # a short count. The backend keeps it, and so the socket and the exported data,
    # until its final CQE.
    cdef CoreLoop loop
    cdef object sock
    cdef int fd
    cdef Py_buffer view
    cdef bint has_view
    cdef Py_ssize_t sent
    cdef object fut

    def __dealloc__(self):
        if self.has_view:
            PyBuffer_Release(&self.view)

    cdef int submit(self) except -1:
        self.loop._backend.submit_send(self, self.fd, <char *>self.view.buf + self.sent,
                                       self.view.len - self.sent)
        return 0

    cdef int complete(self, int res, bint more) except -1:
        cdef bint wanted = (not self.cancelled and self.fut is not None
                            and not self.fut.done())
        if wanted and res == -ECANCELED:
            return self._resubmit()     # the ring was re-created under it (fork)
        if wanted and res >= 0:
            self.sent += res
            if self.sent < self.view.len:
                return self.submit()
        self.has_view = False
        PyBuffer_Release(&self.view)
        if wanted:
            if res < 0:
                self.fut.set_exception(os_error(-res))
            else:
                self.fut.set_result(None)
        return 0

    cdef int _resubmit(self) except -1:
        cdef _SendOp again = _SendOp.__new__(_SendOp)
        again.loop = self.loop
        again.sock = self.sock
        again.fd = self.fd
        again.view = self.view
        again.has_view = True
        self.has_view = False
        again.sent = self.sent
        again.fut = self.fut
        self.fut = None
        return again.submit()


async def _send_by_op(CoreLoop loop, sock, data, Py_ssize_t sent):
    cdef _SendOp op = _SendOp.__new__(_SendOp)
    loop._ensure_fd_no_transport(sock)
    op.loop = loop
    op.sock = sock
    op.fd = sock.fileno()
    PyObject_GetBuffer(data, &op.view, PyBUF_SIMPLE)
    op.has_view = True
    op.sent = sent
    fut = op.fut = loop.create_future()
    op.submit()
    try:
        return await fut
    finally:
        if op.in_flight:
            # Cancelled: how much went out is unknown to the caller, as with asyncio.
            op.fut = None
            loop._backend.cancel_op(loop, op)


async def loop_sock_sendall(CoreLoop self, sock, data):
    cdef _SendAll job
    cdef Py_ssize_t size
    check_sock(self, sock)
    size = memoryview(data).nbytes if not PyBytes_CheckExact(data) else PyBytes_GET_SIZE(data)
    sent = send_now(sock.fileno(), data, 0) if size else 0
    if sent == size:
        return
    if self._backend.has_ops():
        return await _send_by_op(self, sock, data, sent)
    job = _SendAll.__new__(_SendAll)
    job.sock = sock
    job.data = data
    job.sent = sent
    job.size = size
    return await _wait_and_retry(self, sock, True, job)


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
