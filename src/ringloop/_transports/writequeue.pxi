# The write path the stream, pipe and datagram transports share (the TLS layer uses
# its flow-control call):
#
# * WriteQueue: what the kernel has not taken yet, in a Ring (_queues.pxi) of owned
#   references: bytes objects (a byte stream, head partly written: `offset`) or
#   (bytes, address) tuples (datagrams). `size` is what flow control measures.
# * Flow control with asyncio's rules (transports._FlowControlMixin): the protocol's
#   pause_writing() once size > high water, resume_writing() once size <= low water;
#   a failure of either goes to the loop's exception handler, not to the writer.
# * write_now / write_queued: one write(2)/send(2) of a new buffer, one writev(2)/
#   sendmsg(2) of the queue (byte streams).

import logging as _logging
from asyncio import constants as _aio_constants

cdef extern from "<sys/uio.h>" nogil:
    ssize_t writev(int fd, const iovec *iov, int iovcnt)

cdef object _logger = _logging.getLogger('asyncio')
cdef int _LOG_THRESHOLD_FOR_CONNLOST_WRITES = _aio_constants.LOG_THRESHOLD_FOR_CONNLOST_WRITES


cdef int call_flow_control(CoreLoop loop, protocol, bint pause, transport,
                           reported_protocol) except -1:
    # protocol.pause_writing() or resume_writing(); a failure goes to the exception
    # handler (naming transport and reported_protocol), not to the writer.
    try:
        if pause:
            protocol.pause_writing()
        else:
            protocol.resume_writing()
    except (SystemExit, KeyboardInterrupt):
        raise
    except BaseException as exc:
        loop.call_exception_handler({
            'message': f'protocol.{"pause" if pause else "resume"}_writing() failed',
            'exception': exc,
            'transport': transport,
            'protocol': reported_protocol,
        })
    return 0


cdef enum:
    # WriteQueue.write_now's results, besides -errno of a failed call.
    WRITE_DONE = 0      # everything went out
    WRITE_QUEUED = 1    # the rest is queued and the queue was empty: watch for writable
    WRITE_APPENDED = 2  # joined a queue that was not empty


@cython.freelist(256)
cdef class WriteQueue:
    # Declared in transports.pxd. An object rather than a struct inside each
    # transport: the flow-control API below is one set of functions for every
    # transport class, which reaches the queue through the transport's
    # `_write_queue` attribute.

    def __cinit__(self):
        ring_init(&self.items, 8)
        # transports._FlowControlMixin's defaults (set_write_buffer_limits(None, None)).
        self.high_water = 64 * 1024
        self.low_water = 16 * 1024

    def __dealloc__(self):
        ring_free(&self.items)

    cdef void clear(self) noexcept:
        ring_clear(&self.items)
        self.offset = 0
        self.size = 0

    cdef int push(self, item, Py_ssize_t nbytes) except -1:
        ring_push(&self.items, item)
        self.size += nbytes
        return 0

    cdef inline PyObject *head(self) noexcept:
        # Borrowed; count > 0.
        return ring_at(&self.items, 0)

    cdef int pop(self, Py_ssize_t nbytes) noexcept:
        # Drop the head item, which counted nbytes; count > 0.
        self.size -= nbytes
        Py_DECREF(<object>ring_pop(&self.items))
        return 0

    cdef int queue_bytes(self, data, Py_ssize_t already_written) except -1:
        # Queue a byte-stream write of which already_written bytes went out. A bytes
        # object is kept as it is; anything else is copied, since the caller may change
        # it after write() returns.
        if not PyBytes_CheckExact(data):
            data = bytes(data)
        if self.items.count == 0:
            self.offset = already_written
        return self.push(data, PyBytes_GET_SIZE(data) - already_written)

    cdef int consume(self, Py_ssize_t n) except -1:
        # Drop n written bytes from the head of a byte-stream queue.
        cdef PyObject *item
        cdef Py_ssize_t left
        self.size -= n
        while n > 0:
            item = ring_at(&self.items, 0)
            left = PyBytes_GET_SIZE(<object>item) - self.offset
            if n < left:
                self.offset += n
                return 0
            n -= left
            self.offset = 0
            Py_DECREF(<object>ring_pop(&self.items))
        return 0

    cdef inline int write_now(self, int fd, bint socket, data) except? -1:
        # write() of a byte-stream transport whose checks passed: behind a non-empty
        # queue the data just joins it; otherwise one send(2) (socket: MSG_NOSIGNAL,
        # as Python ignores SIGPIPE anyway) or write(2), asyncio's lowest-latency path,
        # and the rest is queued. Returns WRITE_DONE, WRITE_QUEUED, WRITE_APPENDED, or
        # -errno (nothing queued). The caller runs the flow control when data was
        # queued.
        cdef Py_buffer view
        cdef ssize_t n
        cdef int err
        if self.items.count:
            self.queue_bytes(data, 0)
            return WRITE_APPENDED
        if PyBytes_CheckExact(data):
            if socket:
                n = send(fd, PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data), MSG_NOSIGNAL)
            else:
                n = write(fd, PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data))
            err = errno
            if n == PyBytes_GET_SIZE(data):
                return WRITE_DONE
        else:
            PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
            if socket:
                n = send(fd, view.buf, view.len, MSG_NOSIGNAL)
            else:
                n = write(fd, view.buf, view.len)
            err = errno
            PyBuffer_Release(&view)
            if n == view.len:
                return WRITE_DONE
        if n < 0:
            if not would_block(err):
                return -err
            n = 0
        self.queue_bytes(data, n)
        return WRITE_QUEUED

    cdef ssize_t write_queued(self, int fd, bint socket) except? -1:
        # One sendmsg(2) (socket) or writev(2) of up to MAX_IOV queued buffers, what
        # went out dropped from the queue. Returns the byte count, or -errno
        # (would-block: 0).
        cdef iovec iov[MAX_IOV]
        cdef msghdr msg
        cdef Py_ssize_t i
        cdef int n_iov = self.items.count if self.items.count < MAX_IOV else MAX_IOV
        cdef PyObject *item
        cdef ssize_t n
        for i in range(n_iov):
            item = ring_at(&self.items, i)
            iov[i].iov_base = PyBytes_AS_STRING(<object>item)
            iov[i].iov_len = PyBytes_GET_SIZE(<object>item)
        iov[0].iov_base = <char *>iov[0].iov_base + self.offset
        iov[0].iov_len -= self.offset
        if socket:
            memset(&msg, 0, sizeof(msg))
            msg.msg_iov = iov
            msg.msg_iovlen = n_iov
            n = sendmsg(fd, &msg, MSG_NOSIGNAL)
        else:
            n = writev(fd, iov, n_iov)
        if n < 0:
            return 0 if would_block(errno) else -errno
        self.consume(n)
        return n

    # ---- flow control (transports._FlowControlMixin) ------------------------------

    cdef int set_limits(self, high, low) except -1:
        if high is None:
            high = 64 * 1024 if low is None else 4 * low
        if low is None:
            low = high // 4
        if not high >= low >= 0:
            raise ValueError(f'high ({high!r}) must be >= low ({low!r}) must be >= 0')
        self.high_water = high
        self.low_water = low
        return 0

    cdef inline int pause_if_full(self, CoreLoop loop, transport, protocol) except -1:
        if self.size > self.high_water and not self.protocol_paused:
            self.protocol_paused = True
            call_flow_control(loop, protocol, True, transport, protocol)
        return 0

    cdef inline int resume_if_drained(self, CoreLoop loop, transport, protocol) except -1:
        if self.protocol_paused and self.size <= self.low_water:
            self.protocol_paused = False
            call_flow_control(loop, protocol, False, transport, protocol)
        return 0


# The flow-control API of every transport with a WriteQueue (`_write_queue`), bound
# as methods in each class body; `_loop` and get_protocol() name who is told.

def _set_write_buffer_limits(self, high=None, low=None):
    cdef WriteQueue q = self._write_queue
    q.set_limits(high, low)
    q.pause_if_full(self._loop, self, self.get_protocol())

def _get_write_buffer_limits(self):
    cdef WriteQueue q = self._write_queue
    return (q.low_water, q.high_water)

def _get_write_buffer_size(self):
    return (<WriteQueue>self._write_queue).size

def _get_protocol_paused(self):
    # asyncio's transports have the attribute (its tests read it).
    return (<WriteQueue>self._write_queue).protocol_paused
