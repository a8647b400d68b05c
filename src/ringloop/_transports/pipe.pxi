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

cdef extern from "<sys/stat.h>" nogil:
    bint S_ISFIFO(unsigned int m)
    bint S_ISSOCK(unsigned int m)
    bint S_ISCHR(unsigned int m)

cdef extern from "<errno.h>":
    enum:
        EIO

cdef object _set_blocking = os.set_blocking


cdef unsigned int _open_pipe(pipe, dict extra, str refusal) except? 0:
    # The checks and set-up both pipe transports start with; returns the fd's mode.
    cdef stat st
    extra['pipe'] = pipe
    if fstat(pipe.fileno(), &st) < 0:
        raise os_error(errno)
    if not (S_ISFIFO(st.st_mode) or S_ISSOCK(st.st_mode) or S_ISCHR(st.st_mode)):
        raise ValueError(refusal)
    _set_blocking(pipe.fileno(), False)
    return st.st_mode


cdef str _pipe_repr(transport, pipe, bint closing, fileno, CoreLoop loop, list state):
    # state: what an open pipe's transport adds while its loop is open.
    if pipe is None or loop is None or loop._closed:
        state = ['open' if pipe is not None else 'closed']
    return transport_repr(transport, pipe is None, closing, fileno, state)


cdef class ReadPipeTransport(ReadTransport):
    cdef:
        CoreLoop _loop
        public object _pipe         # public: asyncio's own tests reset it
        readonly object _fileno
        int _fd
        readonly object _protocol
        readonly bint _protocol_connected   # always: a pipe's protocol is never unset
        readonly bint _closing
        readonly bint _paused
        bint _reading               # the read handle is in the fd watch
        Handle _read_handle
        object __weakref__
        dict __dict__               # asyncio's transports take attributes (tests mock methods)

    def __cinit__(self):
        self._fd = -1

    cdef int _setup(self, CoreLoop loop, pipe, protocol, waiter, extra) except -1:
        cdef int fd = pipe.fileno()
        self._extra = {} if extra is None else extra
        _open_pipe(pipe, self._extra, "Pipe transport is for pipes/sockets only.")
        self._loop = loop
        self._pipe = pipe
        self._fd = fd
        self._fileno = fd
        self._protocol = protocol
        self._read_handle = loop._new_handle(self._on_readable, (), None)
        self._protocol_connected = True
        loop.call_soon(protocol.connection_made, self)
        # Only start reading once connection_made() has run (it may pause reading).
        loop.call_soon(self._start_reading)
        if waiter is not None:
            loop.call_soon(_set_result_unless_cancelled, waiter, None)
        return 0

    def __repr__(self):
        return _pipe_repr(self, self._pipe, self._closing, self._fileno, self._loop,
                          ['polling' if self._reading else 'idle'])

    def __del__(self):
        if self._pipe is not None:
            _warnings.warn(f"unclosed transport {self!r}", ResourceWarning, source=self)
            self._pipe.close()

    def _start_reading(self):
        if not self._closing and not self._paused:
            start_watch(self._loop, self._fd, False, self._read_handle, &self._reading)

    cdef int _stop_reading(self) except -1:
        return stop_watch(self._loop, self._fd, False, &self._reading)

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

    is_reading = _is_reading         # common.pxi

    def pause_reading(self):
        pause_reading(self._loop, self, self._fd, self._closing, &self._paused, &self._reading)

    def resume_reading(self):
        resume_reading(self._loop, self, self._fd, self._closing, &self._paused,
                       &self._reading, self._read_handle)

    def set_protocol(self, protocol):
        self._protocol = protocol

    def close(self):
        if not self._closing:
            self._close(None)

    get_protocol = _get_protocol     # these three: common.pxi
    is_closing = _is_closing
    _call_connection_lost = _end_transport

    cpdef int _fatal_error(self, exc, str message='Fatal error on pipe transport') except -1:
        # EIO is how a pty master reads once the slave side is closed: not worth a
        # report (asyncio logs it in debug mode only).
        report_error(self._loop, self, self._protocol, exc, message,
                     isinstance(exc, OSError) and exc.errno == EIO)
        self._close(exc)
        return 0

    cdef int _close(self, exc) except -1:
        self._closing = True
        self._stop_reading()
        self._loop.call_soon(self._call_connection_lost, exc)
        return 0

    cpdef int _release(self) except -1:
        self._stop_reading()
        self._pipe.close()
        self._pipe = None
        self._protocol = None
        self._loop = None
        self._read_handle = None
        return 0


cdef class WritePipeTransport(Transport):
    cdef:
        readonly CoreLoop _loop
        public object _pipe         # public: asyncio's own tests reset it
        readonly object _fileno
        int _fd
        readonly object _protocol
        readonly bint _protocol_connected   # always: a pipe's protocol is never unset
        readonly bint _closing               # close(), write_eof(), abort() or an error happened
        bint _lost                  # connection_lost is scheduled or running
        bint _watch_peer            # FIFO or socket: watch for reading to see the peer go
        bint _peer_watched          # the read handle is in the fd watch
        bint _writing               # the write handle is in the fd watch
        int _conn_lost
        readonly WriteQueue _write_queue
        Handle _read_handle
        Handle _write_handle
        object __weakref__
        dict __dict__               # asyncio's transports take attributes (tests mock methods)

    def __cinit__(self):
        self._write_queue = WriteQueue.__new__(WriteQueue)
        self._fd = -1

    cdef int _setup(self, CoreLoop loop, pipe, protocol, waiter, extra) except -1:
        cdef int fd = pipe.fileno()
        cdef unsigned int mode
        self._extra = {} if extra is None else extra
        mode = _open_pipe(pipe, self._extra,
                          "Pipe transport is only for pipes, sockets and character devices")
        self._loop = loop
        self._pipe = pipe
        self._fd = fd
        self._fileno = fd
        self._protocol = protocol
        self._write_handle = loop._new_handle(self._on_writable, (), None)
        self._protocol_connected = True
        self._watch_peer = S_ISFIFO(mode) or S_ISSOCK(mode)
        loop.call_soon(protocol.connection_made, self)
        if self._watch_peer:
            self._read_handle = loop._new_handle(self._on_peer_closed, (), None)
            loop.call_soon(self._start_peer_watch)
        if waiter is not None:
            loop.call_soon(_set_result_unless_cancelled, waiter, None)
        return 0

    def __repr__(self):
        return _pipe_repr(self, self._pipe, self._closing, self._fileno, self._loop,
                          ['polling' if self._writing else 'idle', f'bufsize={self._write_queue.size}'])

    def __del__(self):
        if self._pipe is not None:
            _warnings.warn(f"unclosed transport {self!r}", ResourceWarning, source=self)
            self._pipe.close()

    # ---- the fd watch -----------------------------------------------------------

    def _start_peer_watch(self):
        # Also after close() with data queued: a reader that goes away then must end
        # the transport, or it would wait for a drain that never comes.
        if not self._lost:
            start_watch(self._loop, self._fd, False, self._read_handle, &self._peer_watched)

    cdef int _stop_peer_watch(self) except -1:
        return stop_watch(self._loop, self._fd, False, &self._peer_watched)

    cdef int _start_writing(self) except -1:
        return start_watch(self._loop, self._fd, True, self._write_handle, &self._writing)

    cdef int _stop_writing(self) except -1:
        return stop_watch(self._loop, self._fd, True, &self._writing)

    def _on_peer_closed(self):
        # The reader went away (see the header): data still queued can never arrive.
        if not self._peer_watched:
            return
        if self._loop._debug:
            _logger.info("%r was closed by peer", self)
        self._close(BrokenPipeError() if self._write_queue.items.count else None)

    # ---- writing ----------------------------------------------------------------

    def write(self, data):
        cdef int ret
        if not PyBytes_CheckExact(data) and not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f'data argument must be a bytes-like object, '
                            f'not {type(data).__name__!r}')
        if not data:
            return
        if self._conn_lost or self._closing:
            if self._conn_lost >= _LOG_THRESHOLD_FOR_CONNLOST_WRITES:
                _logger.warning('pipe closed by peer or os.write(pipe, data) raised exception.')
            self._conn_lost += 1
            return
        ret = self._write_queue.write_now(self._fd, False, data)
        if ret == WRITE_DONE:
            return
        if ret < 0:
            self._conn_lost += 1
            self._fatal_error(os_error(-ret), 'Fatal write error on pipe transport')
            return
        self._write_queue.pause_if_full(self._loop, self, self._protocol)
        if ret == WRITE_QUEUED:
            self._start_writing()

    def _on_writable(self):
        cdef ssize_t n
        if not self._writing:
            return
        n = self._write_queue.write_queued(self._fd, False)
        if n < 0:
            err = os_error(-n)
            self._write_queue.clear()
            self._conn_lost += 1
            self._stop_writing()
            self._fatal_error(err, 'Fatal write error on pipe transport')
            return
        if n == 0:
            return      # would block
        if self._write_queue.items.count:
            self._write_queue.resume_if_drained(self._loop, self, self._protocol)
            return
        self._stop_writing()
        self._write_queue.resume_if_drained(self._loop, self, self._protocol)  # may write more
        if self._closing and not self._write_queue.items.count and not self._lost:
            # close() or write_eof() was waiting for the queue to drain.
            self._lost = True
            self._stop_peer_watch()
            self._call_connection_lost(None)

    def get_write_buffer_size(self):
        return self._write_queue.size

    def can_write_eof(self):
        return True

    def write_eof(self):
        # A pipe has no half-close: EOF for the reader is our end closing, once the
        # queue has drained.
        if self._closing:
            return
        self._closing = True
        if not self._write_queue.items.count:
            self._stop_peer_watch()
            self._lost = True
            self._loop.call_soon(self._call_connection_lost, None)

    # ---- flow control (transports._FlowControlMixin, writequeue.pxi) ------------

    set_write_buffer_limits = _set_write_buffer_limits
    get_write_buffer_limits = _get_write_buffer_limits
    get_write_buffer_size = _get_write_buffer_size
    _protocol_paused = property(_get_protocol_paused)

    # ---- protocol and closing ---------------------------------------------------

    def set_protocol(self, protocol):
        self._protocol = protocol

    def close(self):
        if self._pipe is not None and not self._closing:
            self.write_eof()

    get_protocol = _get_protocol     # these three: common.pxi
    is_closing = _is_closing
    _call_connection_lost = _end_transport

    def abort(self):
        self._close(None)

    cpdef int _fatal_error(self, exc, str message='Fatal error on pipe transport') except -1:
        report_error(self._loop, self, self._protocol, exc, message, isinstance(exc, OSError))
        self._close(exc)
        return 0

    cdef int _close(self, exc) except -1:
        # Drop what is queued and end the transport (abort, errors, the peer gone).
        self._closing = True
        if self._write_queue.items.count:
            self._stop_writing()
            self._write_queue.clear()
        self._stop_peer_watch()
        if not self._lost and self._loop is not None:
            self._lost = True
            self._loop.call_soon(self._call_connection_lost, exc)
        return 0

    cpdef int _release(self) except -1:
        self._stop_writing()
        self._stop_peer_watch()
        self._write_queue.clear()
        self._pipe.close()
        self._pipe = None
        self._protocol = None
        self._loop = None
        self._read_handle = None
        self._write_handle = None
        return 0


def make_read_pipe_transport(CoreLoop loop, pipe, protocol, waiter, extra):
    cdef ReadPipeTransport transport = ReadPipeTransport.__new__(ReadPipeTransport)
    transport._setup(loop, pipe, protocol, waiter, extra)
    return transport


def make_write_pipe_transport(CoreLoop loop, pipe, protocol, waiter, extra):
    cdef WritePipeTransport transport = WritePipeTransport.__new__(WritePipeTransport)
    transport._setup(loop, pipe, protocol, waiter, extra)
    return transport
