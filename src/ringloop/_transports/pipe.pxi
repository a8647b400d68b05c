# Pipe transports: loop.connect_read_pipe() / connect_write_pipe(), and the stdio pipes
# of subprocesses (ringloop/_subprocess.py). asyncio's _UnixReadPipeTransport and
# _UnixWritePipeTransport (asyncio/unix_events.py) are the reference for every rule,
# message and ordering below.
#
# Like StreamTransport: readiness on either backend, one Handle per direction built
# once, reads into the loop's receive buffer, writes tried at once when nothing is
# queued and the rest queued as bytes objects and flushed with writev(2).
#
# What pipes force:
# * Only FIFOs, sockets and character devices (ttys, ptys) are accepted: poll(2) on a
#   regular file always reports ready and epoll refuses it with EPERM (epoll_ctl(2)).
# * A write pipe learns that its reader went away by watching its own fd for reading:
#   the write end of a pipe polls POLLERR once no reader is left (pipe(7), fs/pipe.c
#   pipe_poll), which wakes the read handle; a socket polls readable on the peer's
#   close. Character devices get no such watch (asyncio does the same).
# * A write to a pipe without readers fails with EPIPE (Python ignores SIGPIPE); it
#   ends the transport through connection_lost(BrokenPipeError), never from write().

# Cython wants a distinct C struct name per extern class: aliases of the one layout.
# The write pipe's base is Transport (bases.pxi), not WriteTransport: asyncio's
# _UnixWritePipeTransport is an asyncio.Transport too (through _FlowControlMixin), so
# is_reading()/pause_reading()/resume_reading() on it raise NotImplementedError
# (asyncio.ReadTransport's), not AttributeError; uvloop's write pipes do the same, and
# uvloop's test_process_streams_basic_1 checks it on a subprocess's stdin.
cdef extern from *:
    """
    #include "transport_bases.h"
    typedef RLTransportBase RLReadTransportBase;
    """
    ctypedef class ringloop._transport_bases.ReadTransport [object RLReadTransportBase, check_size ignore]:
        cdef object _extra

cdef extern from "<sys/uio.h>" nogil:
    ssize_t writev(int fd, const iovec *iov, int iovcnt)

cdef extern from "<sys/stat.h>" nogil:
    bint S_ISFIFO(unsigned int m)
    bint S_ISSOCK(unsigned int m)
    bint S_ISCHR(unsigned int m)

cdef extern from "<errno.h>":
    enum:
        EIO

cdef object _set_blocking = os.set_blocking


cdef unsigned int _pipe_mode(int fd) except? 0:
    cdef stat st
    if fstat(fd, &st) < 0:
        raise os_error(errno)
    return st.st_mode


cdef int _call_protocol_flow(CoreLoop loop, transport, protocol, str method) except -1:
    # pause_writing()/resume_writing(), reporting a failure as asyncio's
    # transports._FlowControlMixin does.
    try:
        getattr(protocol, method)()
    except (SystemExit, KeyboardInterrupt):
        raise
    except BaseException as exc:
        loop.call_exception_handler({
            'message': f'protocol.{method}() failed',
            'exception': exc,
            'transport': transport,
            'protocol': protocol,
        })
    return 0


cdef class ReadPipeTransport(ReadTransport):
    cdef:
        CoreLoop _loop
        public object _pipe         # public: asyncio's own tests reset it
        readonly object _fileno
        int _fd
        object _protocol
        bint _closing
        bint _paused
        bint _reading               # the read handle is in the fd watch
        Handle _read_handle
        object __weakref__
        dict __dict__               # asyncio's transports take attributes (tests mock methods)

    def __cinit__(self):
        self._fd = -1

    cdef int _setup(self, CoreLoop loop, pipe, protocol, waiter, extra) except -1:
        cdef int fd = pipe.fileno()
        cdef unsigned int mode = _pipe_mode(fd)
        self._extra = {} if extra is None else extra
        self._extra['pipe'] = pipe
        if not (S_ISFIFO(mode) or S_ISSOCK(mode) or S_ISCHR(mode)):
            raise ValueError("Pipe transport is for pipes/sockets only.")
        _set_blocking(fd, False)
        self._loop = loop
        self._pipe = pipe
        self._fd = fd
        self._fileno = fd
        self._protocol = protocol
        self._read_handle = loop._new_handle(self._on_readable, (), None)
        loop.call_soon(protocol.connection_made, self)
        # Only start reading once connection_made() has run (it may pause reading).
        loop.call_soon(self._start_reading)
        if waiter is not None:
            loop.call_soon(_set_result_unless_cancelled, waiter, None)
        return 0

    def __repr__(self):
        info = [type(self).__name__]
        if self._pipe is None:
            info.append('closed')
        elif self._closing:
            info.append('closing')
        info.append(f'fd={self._fileno}')
        if self._pipe is not None and self._loop is not None and not self._loop._closed:
            info.append('polling' if self._reading else 'idle')
        elif self._pipe is not None:
            info.append('open')
        else:
            info.append('closed')
        return '<{}>'.format(' '.join(info))

    def __del__(self):
        if self._pipe is not None:
            _warnings.warn(f"unclosed transport {self!r}", ResourceWarning, source=self)
            self._pipe.close()

    def _start_reading(self):
        if not self._closing and not self._paused and not self._reading:
            self._loop._watch_fd(self._fd, False, self._read_handle)
            self._reading = True

    cdef int _stop_reading(self) except -1:
        if self._reading:
            self._reading = False
            self._loop._unwatch_fd(self._fd, False)
        return 0

    def _on_readable(self):
        cdef char *buf
        cdef ssize_t n
        if not self._reading:
            return      # paused or closed after the event was queued
        buf = self._loop._receive_buffer()
        n = read(self._fd, buf, RECV_SIZE)
        if n > 0:
            # An exception here goes to the loop's handler; the pipe stays open.
            self._protocol.data_received(rl_bytes_from(buf, n))
        elif n == 0:
            if self._loop._debug:
                _logger.info("%r was closed by peer", self)
            self._closing = True
            self._stop_reading()
            self._loop.call_soon(self._protocol.eof_received)
            self._loop.call_soon(self._call_connection_lost, None)
        elif not would_block(errno):
            self._fatal_error(os_error(errno), 'Fatal read error on pipe transport')

    def is_reading(self):
        return not self._paused and not self._closing

    def pause_reading(self):
        if self._closing or self._paused:
            return
        self._paused = True
        self._stop_reading()
        if self._loop._debug:
            _logger.debug("%r pauses reading", self)

    def resume_reading(self):
        if self._closing or not self._paused:
            return
        self._paused = False
        self._start_reading()
        if self._loop._debug:
            _logger.debug("%r resumes reading", self)

    def set_protocol(self, protocol):
        self._protocol = protocol

    def get_protocol(self):
        return self._protocol

    def is_closing(self):
        return self._closing

    def close(self):
        if not self._closing:
            self._close(None)

    cpdef int _fatal_error(self, exc, str message='Fatal error on pipe transport') except -1:
        # EIO is how a pty master reads once the slave side is closed: not worth a
        # report (asyncio logs it in debug mode only).
        if isinstance(exc, OSError) and exc.errno == EIO:
            if self._loop._debug:
                _logger.debug("%r: %s", self, message, exc_info=True)
        else:
            self._loop.call_exception_handler({
                'message': message,
                'exception': exc,
                'transport': self,
                'protocol': self._protocol,
            })
        self._close(exc)
        return 0

    cdef int _close(self, exc) except -1:
        self._closing = True
        self._stop_reading()
        self._loop.call_soon(self._call_connection_lost, exc)
        return 0

    def _call_connection_lost(self, exc):
        try:
            self._protocol.connection_lost(exc)
        finally:
            self._stop_reading()
            self._pipe.close()
            self._pipe = None
            self._protocol = None
            self._loop = None
            self._read_handle = None


cdef class WritePipeTransport(Transport):
    cdef:
        CoreLoop _loop
        public object _pipe         # public: asyncio's own tests reset it
        readonly object _fileno
        int _fd
        object _protocol
        bint _closing               # close(), write_eof(), abort() or an error happened
        bint _lost                  # connection_lost is scheduled or running
        bint _watch_peer            # FIFO or socket: watch for reading to see the peer go
        bint _peer_watched          # the read handle is in the fd watch
        bint _writing               # the write handle is in the fd watch
        readonly bint _protocol_paused
        int _conn_lost
        ReadyQueue _wq              # queued bytes objects (owned references)
        Py_ssize_t _wq_offset       # bytes of the head item already written
        Py_ssize_t _wq_size         # bytes queued and not written
        Py_ssize_t _high_water, _low_water
        Handle _read_handle
        Handle _write_handle
        object __weakref__
        dict __dict__               # asyncio's transports take attributes (tests mock methods)

    def __cinit__(self):
        ready_init(&self._wq, 8)
        self._fd = -1

    def __dealloc__(self):
        ready_free(&self._wq)

    cdef int _setup(self, CoreLoop loop, pipe, protocol, waiter, extra) except -1:
        cdef int fd = pipe.fileno()
        cdef unsigned int mode = _pipe_mode(fd)
        self._extra = {} if extra is None else extra
        self._extra['pipe'] = pipe
        if not (S_ISFIFO(mode) or S_ISSOCK(mode) or S_ISCHR(mode)):
            raise ValueError("Pipe transport is only for "
                             "pipes, sockets and character devices")
        _set_blocking(fd, False)
        self._loop = loop
        self._pipe = pipe
        self._fd = fd
        self._fileno = fd
        self._protocol = protocol
        self._set_write_buffer_limits(None, None)
        self._write_handle = loop._new_handle(self._on_writable, (), None)
        self._watch_peer = S_ISFIFO(mode) or S_ISSOCK(mode)
        loop.call_soon(protocol.connection_made, self)
        if self._watch_peer:
            self._read_handle = loop._new_handle(self._on_peer_closed, (), None)
            loop.call_soon(self._start_peer_watch)
        if waiter is not None:
            loop.call_soon(_set_result_unless_cancelled, waiter, None)
        return 0

    def __repr__(self):
        info = [type(self).__name__]
        if self._pipe is None:
            info.append('closed')
        elif self._closing:
            info.append('closing')
        info.append(f'fd={self._fileno}')
        if self._pipe is not None and self._loop is not None and not self._loop._closed:
            info.append('polling' if self._writing else 'idle')
            info.append(f'bufsize={self._wq_size}')
        elif self._pipe is not None:
            info.append('open')
        else:
            info.append('closed')
        return '<{}>'.format(' '.join(info))

    def __del__(self):
        if self._pipe is not None:
            _warnings.warn(f"unclosed transport {self!r}", ResourceWarning, source=self)
            self._pipe.close()

    # ---- the fd watch -----------------------------------------------------------

    def _start_peer_watch(self):
        # Also after close() with data queued: a reader that goes away then must end
        # the transport, or it would wait for a drain that never comes.
        if not self._lost and not self._peer_watched:
            self._loop._watch_fd(self._fd, False, self._read_handle)
            self._peer_watched = True

    cdef int _stop_peer_watch(self) except -1:
        if self._peer_watched:
            self._peer_watched = False
            self._loop._unwatch_fd(self._fd, False)
        return 0

    cdef int _start_writing(self) except -1:
        if not self._writing:
            self._loop._watch_fd(self._fd, True, self._write_handle)
            self._writing = True
        return 0

    cdef int _stop_writing(self) except -1:
        if self._writing:
            self._writing = False
            self._loop._unwatch_fd(self._fd, True)
        return 0

    def _on_peer_closed(self):
        # The reader went away (see the header): data still queued can never arrive.
        if not self._peer_watched:
            return
        if self._loop._debug:
            _logger.info("%r was closed by peer", self)
        self._close(BrokenPipeError() if self._wq.count else None)

    # ---- writing ----------------------------------------------------------------

    def write(self, data):
        cdef Py_buffer view
        cdef ssize_t n
        cdef Py_ssize_t size
        if not PyBytes_CheckExact(data) and not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f'data argument must be a bytes-like object, '
                            f'not {type(data).__name__!r}')
        PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
        size = view.len
        if size == 0:
            PyBuffer_Release(&view)
            return
        if self._conn_lost or self._closing:
            PyBuffer_Release(&view)
            if self._conn_lost >= _LOG_THRESHOLD_FOR_CONNLOST_WRITES:
                _logger.warning('pipe closed by peer or os.write(pipe, data) raised exception.')
            self._conn_lost += 1
            return
        if self._wq.count:
            PyBuffer_Release(&view)
            self._queue(data, 0)
            return
        # Nothing queued: try to write at once.
        n = write(self._fd, view.buf, size)
        PyBuffer_Release(&view)
        if n < 0:
            if not would_block(errno):
                self._conn_lost += 1
                self._fatal_error(os_error(errno), 'Fatal write error on pipe transport')
                return
            n = 0
        if n == size:
            return
        self._queue(data, n)
        self._start_writing()

    cdef int _queue(self, data, Py_ssize_t already_written) except -1:
        # Keep a bytes object as it is; copy anything else (the caller may change it).
        if not PyBytes_CheckExact(data):
            data = bytes(data)
        if self._wq.count == 0:
            self._wq_offset = already_written
        self._wq_size += PyBytes_GET_SIZE(data) - already_written
        ready_push(&self._wq, data)
        self._maybe_pause_protocol()
        return 0

    def _on_writable(self):
        cdef iovec iov[MAX_IOV]
        cdef Py_ssize_t i, n_iov
        cdef PyObject *item
        cdef ssize_t n
        if not self._writing:
            return
        n_iov = self._wq.count if self._wq.count < MAX_IOV else MAX_IOV
        for i in range(n_iov):
            item = self._wq.items[(self._wq.head + i) & (self._wq.cap - 1)]
            iov[i].iov_base = PyBytes_AS_STRING(<object>item)
            iov[i].iov_len = PyBytes_GET_SIZE(<object>item)
        iov[0].iov_base = <char *>iov[0].iov_base + self._wq_offset
        iov[0].iov_len -= self._wq_offset
        n = writev(self._fd, iov, <int>n_iov)
        if n < 0:
            if would_block(errno):
                return
            err = os_error(errno)
            self._clear_queue()
            self._conn_lost += 1
            self._stop_writing()
            self._fatal_error(err, 'Fatal write error on pipe transport')
            return
        self._consume(n)
        if self._wq.count:
            self._maybe_resume_protocol()
            return
        self._stop_writing()
        self._maybe_resume_protocol()      # may write (and queue) more
        if self._closing and not self._wq.count and not self._lost:
            # close() or write_eof() was waiting for the queue to drain.
            self._lost = True
            self._stop_peer_watch()
            self._call_connection_lost(None)

    cdef int _consume(self, Py_ssize_t n) except -1:
        # Drop n written bytes from the head of the queue.
        cdef PyObject *item
        cdef Py_ssize_t left
        self._wq_size -= n
        while n > 0:
            item = self._wq.items[self._wq.head]
            left = PyBytes_GET_SIZE(<object>item) - self._wq_offset
            if n < left:
                self._wq_offset += n
                return 0
            n -= left
            self._wq_offset = 0
            Py_DECREF(<object>ready_pop(&self._wq))
        return 0

    cdef int _clear_queue(self) except -1:
        ready_clear(&self._wq)
        self._wq_offset = 0
        self._wq_size = 0
        return 0

    def get_write_buffer_size(self):
        return self._wq_size

    def can_write_eof(self):
        return True

    def write_eof(self):
        # A pipe has no half-close: EOF for the reader is our end closing, once the
        # queue has drained.
        if self._closing:
            return
        self._closing = True
        if not self._wq.count:
            self._stop_peer_watch()
            self._lost = True
            self._loop.call_soon(self._call_connection_lost, None)

    # ---- flow control (transports._FlowControlMixin) ----------------------------

    cdef int _set_write_buffer_limits(self, high, low) except -1:
        if high is None:
            high = 64 * 1024 if low is None else 4 * low
        if low is None:
            low = high // 4
        if not high >= low >= 0:
            raise ValueError(f'high ({high!r}) must be >= low ({low!r}) must be >= 0')
        self._high_water = high
        self._low_water = low
        return 0

    def set_write_buffer_limits(self, high=None, low=None):
        self._set_write_buffer_limits(high, low)
        self._maybe_pause_protocol()

    def get_write_buffer_limits(self):
        return (self._low_water, self._high_water)

    cdef int _maybe_pause_protocol(self) except -1:
        if self._wq_size > self._high_water and not self._protocol_paused:
            self._protocol_paused = True
            _call_protocol_flow(self._loop, self, self._protocol, 'pause_writing')
        return 0

    cdef int _maybe_resume_protocol(self) except -1:
        if self._protocol_paused and self._wq_size <= self._low_water:
            self._protocol_paused = False
            _call_protocol_flow(self._loop, self, self._protocol, 'resume_writing')
        return 0

    # ---- protocol and closing ---------------------------------------------------

    def set_protocol(self, protocol):
        self._protocol = protocol

    def get_protocol(self):
        return self._protocol

    def is_closing(self):
        return self._closing

    def close(self):
        if self._pipe is not None and not self._closing:
            self.write_eof()

    def abort(self):
        self._close(None)

    cpdef int _fatal_error(self, exc, str message='Fatal error on pipe transport') except -1:
        if isinstance(exc, OSError):
            if self._loop._debug:
                _logger.debug("%r: %s", self, message, exc_info=True)
        else:
            self._loop.call_exception_handler({
                'message': message,
                'exception': exc,
                'transport': self,
                'protocol': self._protocol,
            })
        self._close(exc)
        return 0

    cdef int _close(self, exc) except -1:
        # Drop what is queued and end the transport (abort, errors, the peer gone).
        self._closing = True
        if self._wq.count:
            self._stop_writing()
            self._clear_queue()
        self._stop_peer_watch()
        if not self._lost and self._loop is not None:
            self._lost = True
            self._loop.call_soon(self._call_connection_lost, exc)
        return 0

    def _call_connection_lost(self, exc):
        try:
            self._protocol.connection_lost(exc)
        finally:
            self._stop_writing()
            self._stop_peer_watch()
            self._clear_queue()
            self._pipe.close()
            self._pipe = None
            self._protocol = None
            self._loop = None
            self._read_handle = None
            self._write_handle = None


def make_read_pipe_transport(CoreLoop loop, pipe, protocol, waiter, extra):
    cdef ReadPipeTransport transport = ReadPipeTransport.__new__(ReadPipeTransport)
    transport._setup(loop, pipe, protocol, waiter, extra)
    return transport


def make_write_pipe_transport(CoreLoop loop, pipe, protocol, waiter, extra):
    cdef WritePipeTransport transport = WritePipeTransport.__new__(WritePipeTransport)
    transport._setup(loop, pipe, protocol, waiter, extra)
    return transport
