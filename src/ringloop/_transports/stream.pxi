# StreamTransport: a connected TCP or Unix stream socket, with asyncio's
# _SelectorSocketTransport semantics (asyncio/selector_events.py is the reference for
# every message, ordering and flow-control rule below).
#
# Readiness drives it on both backends: the loop's fd watch for the socket holds two
# Handles built once per transport (read, write), so an event costs no allocation.
# Reads land in the loop's receive buffer (one bytes object per data_received) or,
# for a BufferedProtocol, straight into the protocol's buffer. Writes are tried at
# once when nothing is queued; what the kernel does not take is queued (bytes objects,
# no copy of a bytes argument) and flushed with one sendmsg() per writable event.

import warnings as _warnings
from asyncio import futures as _aio_futures
from asyncio import protocols as _aio_protocols
from asyncio import trsock as _aio_trsock
from asyncio import constants as _aio_constants

from cpython.set cimport PySet_Add, PySet_Discard, PySet_GET_SIZE

cdef enum:
    # From this size on a read goes straight into a new bytes object (see _read_data).
    BULK_READ = 32 * 1024
    # What such a read asks for: less than RECV_SIZE, because glibc's malloc serves
    # 128 KiB and more with mmap(2), and a bytes object shrunk to what arrived would
    # then cost an mmap, an mremap and a munmap per read.
    BULK_RECV_SIZE = 127 * 1024

cdef object _socket_class = _socket.socket
cdef object _BufferedProtocol = _aio_protocols.BufferedProtocol
cdef object _TransportSocket = _aio_trsock.TransportSocket
cdef object _set_result_unless_cancelled = _aio_futures._set_result_unless_cancelled


# socket.socket's family/type/proto properties build an enum member per access
# (about 0.4 us each); the getters of its C base, _socket.socket, return the plain ints.
import _socket as _socket_c
cdef object _raw_family = _socket_c.socket.family.__get__
cdef object _raw_type = _socket_c.socket.type.__get__
cdef object _raw_proto = _socket_c.socket.proto.__get__


cdef object _closed_socket(int family, int type, int proto):
    # What extra['socket'] wraps when it is first asked for after the transport closed
    # its fd without ever making a socket object: a closed socket of the same kind, as
    # asyncio's transports then hold (cold path).
    try:
        sock = _socket_class(family, type, proto)
    except OSError:
        return None
    sock.close()
    return sock


cdef int set_nodelay(int fd, int family, int type, int proto) except -1:
    # asyncio sets TCP_NODELAY on every TCP transport (base_events._set_nodelay).
    cdef int on = 1
    if ((family == _socket.AF_INET or family == _socket.AF_INET6)
            and (type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC)) == _socket.SOCK_STREAM
            and proto == _socket.IPPROTO_TCP):
        if setsockopt(fd, _socket.IPPROTO_TCP, _socket.TCP_NODELAY, &on, sizeof(on)) < 0:
            raise os_error(errno)
    return 0


cdef class StreamTransport(Transport):
    cdef:
        readonly CoreLoop _loop
        # The socket object, made on first use for an accepted connection (see
        # _socket()): building one from an fd costs a Python-level __init__ and a
        # getsockname(2), and most connections never need it.
        object _sockobj
        readonly int _sock_fd
        bint _fd_open               # the transport owns _sock_fd and has not closed it
        int _family, _type, _proto  # for the socket object made later
        readonly object _protocol
        object _server
        bint _buffered              # the protocol is a BufferedProtocol
        readonly bint _protocol_connected
        # _closing and _paused are readonly attributes: asyncio's socket transports have
        # them (code outside the transport reads them; uvloop's
        # test_transport_get_extra_info does).
        readonly bint _closing      # close() or a fatal error happened
        bint _eof                   # write_eof() was called
        readonly bint _paused       # pause_reading() is in effect
        bint _reading               # the read handle is in the fd watch
        bint _writing               # the write handle is in the fd watch
        bint _bulk                  # the last read got at least BULK_READ bytes
        int _conn_lost
        readonly WriteQueue _write_queue
        Handle _read_handle
        Handle _write_handle
        object _empty_waiter        # loop.sendfile() waits on it for the queue to drain
        object __weakref__

    def __cinit__(self):
        self._write_queue = WriteQueue.__new__(WriteQueue)
        self._sock_fd = -1

    cdef int _setup(self, CoreLoop loop, int fd, int family, int type, int proto,
                    protocol, waiter, dict extra, server) except -1:
        # _SelectorTransport.__init__ + _SelectorSocketTransport.__init__, for the
        # socket fd (self._sockobj is set already if the caller has a socket object).
        # A protocol without connection_made fails here, before anything is registered.
        connection_made = protocol.connection_made
        self._extra = extra
        self._loop = loop
        self._sock_fd = fd
        self._fd_open = True
        self._family = family
        self._type = type
        self._proto = proto
        self.set_protocol(protocol)
        self._server = server
        self._read_handle = loop._new_handle(self._on_readable, (), None)
        if server is not None:
            # Server._attach, without its Python frame.
            PySet_Add(server._clients, self)
        loop._transports[fd] = self
        set_nodelay(fd, family, type, proto)
        loop._soon(connection_made, (self,))
        # Only start reading after connection_made, which may pause reading.
        loop._soon(self._start_reading, ())
        if waiter is not None:
            loop._soon(_set_result_unless_cancelled, (waiter, None))
        return 0

    cdef object _socket(self):
        # The socket object; None once the transport has closed its fd without one.
        if self._sockobj is None and self._fd_open:
            self._sockobj = _socket_class(self._family, self._type, self._proto,
                                          self._sock_fd)
        return self._sockobj

    @property
    def _sock(self):
        # asyncio's transports have it (loop.sendfile() uses it), None once closed.
        return self._socket()

    def get_extra_info(self, name, default=None):
        # asyncio.BaseTransport.get_extra_info, with extra['socket'] made on first use.
        if name == 'socket' and name not in self._extra:
            sock = self._socket()
            if sock is None:
                sock = _closed_socket(self._family, self._type, self._proto)
            self._extra['socket'] = _TransportSocket(sock) if sock is not None else None
        return self._extra.get(name, default)

    def __repr__(self):
        return transport_repr(self, not self._fd_open, self._closing, self._sock_fd,
                              socket_state(self._loop, self._reading, self._writing,
                                           self._write_queue))

    def __del__(self):
        if self._fd_open:
            _warnings.warn(f"unclosed transport {self!r}", ResourceWarning, source=self)
            self._close_fd()

    cdef int _close_fd(self) except -1:
        # Through the socket object if there is one, so that it knows it is closed.
        self._fd_open = False
        if self._sockobj is not None:
            self._sockobj.close()
        else:
            close(self._sock_fd)
        return 0

    # ---- the fd watch -----------------------------------------------------------

    @cython.binding(False)
    def _start_reading(self):
        if not self._closing and not self._paused:
            start_watch(self._loop, self._sock_fd, False, self._read_handle,
                        &self._reading, WATCH_DRAINS)

    cdef int _stop_reading(self, bint closing=False) except -1:
        # closing: the fd is closed by a _call_connection_lost scheduled with _soon,
        # so in a later pass, after the loop's next kernel wait.
        return stop_watch(self._loop, self._sock_fd, False, &self._reading, closing)

    cdef int _start_writing(self) except -1:
        if self._write_handle is None:
            # Most connections never wait to write: their handle is made on demand.
            self._write_handle = self._loop._new_handle(self._on_writable, (), None)
        return start_watch(self._loop, self._sock_fd, True, self._write_handle,
                           &self._writing)

    cdef int _stop_writing(self) except -1:
        return stop_watch(self._loop, self._sock_fd, True, &self._writing)

    # ---- protocol and state -----------------------------------------------------

    def resume_reading(self):
        resume_reading(self._loop, self, self._sock_fd, self._closing, &self._paused,
                       &self._reading, self._read_handle, WATCH_DRAINS)

    def pause_reading(self):
        pause_reading(self._loop, self, self._sock_fd, self._closing, &self._paused,
                      &self._reading)

    def set_protocol(self, protocol):
        self._protocol = protocol
        self._buffered = isinstance(protocol, _BufferedProtocol)
        self._protocol_connected = True

    get_protocol = _get_protocol     # these four: common.pxi
    is_closing = _is_closing
    is_reading = _is_reading
    _call_connection_lost = _end_transport

    # ---- reading ----------------------------------------------------------------

    # binding(False): a plain method descriptor, cheaper to call than a CyFunction
    # (this one runs per read event, write() per message).
    @cython.binding(False)
    def _on_readable(self):
        # The event may have been queued before a pause or close in the same pass.
        if not self._reading:
            return
        if self._buffered:
            self._read_into_protocol()
        else:
            self._read_data()

    cdef int _read_data(self) except -1:
        cdef char *buf
        cdef ssize_t n
        cdef Py_ssize_t asked = BULK_RECV_SIZE if self._bulk else RECV_SIZE
        if self._bulk:
            # Large reads: straight into the bytes object data_received gets, so the
            # only copy is the kernel's (as socket.recv does).
            try:
                data = rl_recv_bytes(self._sock_fd, asked)
            except OSError as exc:
                self._fatal_error(exc, 'Fatal read error on socket transport')
                return 0
            if data is None:
                return 0
            n = PyBytes_GET_SIZE(data)
            if n == 0:
                self._on_eof()
                return 0
        else:
            buf = self._loop._receive_buffer()
            n = recv(self._sock_fd, buf, RECV_SIZE, 0)
            if self._received_nothing(n, errno):
                return 0
            data = rl_bytes_from(buf, n)
        # Small reads are copied from the loop's buffer: a RECV_SIZE bytes object
        # shrunk to a few bytes costs more than the copy.
        self._bulk = n >= BULK_READ
        if n == asked:
            self._read_again()
        try:
            self._protocol.data_received(data)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, 'Fatal error: protocol.data_received() call failed.')
        return 0

    cdef int _read_into_protocol(self) except -1:
        cdef Py_buffer view
        cdef ssize_t n
        cdef int err
        try:
            buf = self._protocol.get_buffer(-1)
            if not len(buf):
                raise RuntimeError('get_buffer() returned an empty buffer')
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, 'Fatal error: protocol.get_buffer() call failed.')
            return 0
        PyObject_GetBuffer(buf, &view, PyBUF_WRITABLE)
        n = recv(self._sock_fd, view.buf, view.len, 0)
        err = errno
        PyBuffer_Release(&view)
        if self._received_nothing(n, err):
            return 0
        if n == view.len:
            self._read_again()
        try:
            self._protocol.buffer_updated(n)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, 'Fatal error: protocol.buffer_updated() call failed.')
        return 0

    cdef int _read_again(self) except -1:
        # recv(2) filled the whole buffer, so more may be queued: the read watch
        # reports new data only (WATCH_DRAINS), so read again on the next pass.
        return self._loop.queue_handle(self._read_handle)

    cdef inline bint _received_nothing(self, ssize_t n, int err) except -1:
        # After recv(2): whether there is no data to hand on. EOF and errors are dealt
        # with here; would-block (a stale or spurious event) is not an error.
        if n > 0:
            return False
        if n == 0:
            self._on_eof()
        elif not would_block(err):
            self._fatal_error(os_error(err), 'Fatal read error on socket transport')
        return True

    cdef int _on_eof(self) except -1:
        if self._loop._debug:
            _logger.debug("%r received EOF", self)
        try:
            keep_open = self._protocol.eof_received()
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, 'Fatal error: protocol.eof_received() call failed.')
            return 0
        if keep_open:
            # The peer will send no more; stop polling for reads (half-close).
            self._stop_reading()
        else:
            self.close()
        return 0

    # ---- writing ----------------------------------------------------------------

    @cython.binding(False)
    def write(self, data):
        cdef int ret
        cdef bint exact = PyBytes_CheckExact(data)
        if not exact and not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f'data argument must be a bytes-like object, '
                            f'not {type(data).__name__!r}')
        if self._eof:
            raise RuntimeError('Cannot call write() after write_eof()')
        if self._empty_waiter is not None:
            raise RuntimeError('unable to write; sendfile is in progress')
        if (PyBytes_GET_SIZE(data) == 0) if exact else not data:
            return
        if self._conn_lost:
            if self._conn_lost >= _LOG_THRESHOLD_FOR_CONNLOST_WRITES:
                _logger.warning('socket.send() raised exception.')
            self._conn_lost += 1
            return
        ret = self._write_queue.write_now(self._sock_fd, True, data)
        if ret == WRITE_DONE:
            return
        if ret < 0:
            self._fatal_error(os_error(-ret), 'Fatal write error on socket transport')
            return
        self._write_queue.pause_if_full(self._loop, self, self._protocol)
        if ret == WRITE_QUEUED:
            self._start_writing()

    def writelines(self, list_of_data):
        # Each item goes through write(): the same checks, and once something is
        # queued the rest joins the queue and leaves in one sendmsg() per event.
        for data in list_of_data:
            self.write(data)

    @cython.binding(False)
    def _on_writable(self):
        if not self._writing:
            return
        self._flush()

    cdef int _flush(self) except -1:
        cdef ssize_t n
        if self._conn_lost:
            return 0
        n = self._write_queue.write_queued(self._sock_fd, True)
        if n < 0:
            err = os_error(-n)
            self._stop_writing()
            self._write_queue.clear()
            self._fatal_error(err, 'Fatal write error on socket transport')
            if self._empty_waiter is not None and not self._empty_waiter.done():
                self._empty_waiter.set_exception(err)
            return 0
        if n == 0:
            return 0        # would block
        self._write_queue.resume_if_drained(self._loop, self, self._protocol)
        if self._write_queue.items.count == 0:
            self._stop_writing()
            if self._empty_waiter is not None:
                self._empty_waiter.set_result(None)
            if self._closing:
                self._call_connection_lost(None)
            elif self._eof:
                shutdown(self._sock_fd, SHUT_WR)
        return 0

    def write_eof(self):
        if self._closing or self._eof:
            return
        self._eof = True
        if not self._write_queue.items.count and shutdown(self._sock_fd, SHUT_WR) < 0:
            raise os_error(errno)

    def can_write_eof(self):
        return True

    # ---- flow control (transports._FlowControlMixin, writequeue.pxi) ------------

    set_write_buffer_limits = _set_write_buffer_limits
    get_write_buffer_limits = _get_write_buffer_limits
    get_write_buffer_size = _get_write_buffer_size
    _protocol_paused = property(_get_protocol_paused)

    # ---- closing ----------------------------------------------------------------

    abort = _abort     # common.pxi

    def close(self):
        if self._closing:
            return
        self._closing = True
        # With nothing queued the fd is closed in a later pass (see _stop_reading);
        # otherwise _flush may close it within this one.
        self._stop_reading(not self._write_queue.items.count)
        if not self._write_queue.items.count:
            self._conn_lost += 1
            self._stop_writing()
            self._loop._soon(self._call_connection_lost, (None,))

    cpdef int _fatal_error(self, exc, str message='Fatal error on transport') except -1:
        report_error(self._loop, self, self._protocol, exc, message, isinstance(exc, OSError))
        self._force_close(exc)
        return 0

    # Python-visible as well: asyncio's SSLProtocol calls transport._force_close().
    cpdef int _force_close(self, exc) except -1:
        if self._conn_lost:
            return 0
        if self._write_queue.items.count:
            self._write_queue.clear()
            self._stop_writing()
        if not self._closing:
            self._closing = True
            self._stop_reading(True)
        self._conn_lost += 1
        self._loop._soon(self._call_connection_lost, (exc,))
        return 0

    cpdef int _release(self) except -1:
        self._stop_reading()
        self._stop_writing()
        forget_transport(self._loop, self._sock_fd, self)
        self._close_fd()
        self._sockobj = None
        self._protocol = None
        self._loop = None
        self._read_handle = None
        self._write_handle = None
        if self._empty_waiter is not None and not self._empty_waiter.done():
            self._empty_waiter.set_exception(
                ConnectionError("Connection is closed by peer"))
        server = self._server
        if server is not None:
            self._server = None
            # Server._detach, whose Python frame only the last client needs.
            clients = server._clients
            PySet_Discard(clients, self)
            if PySet_GET_SIZE(clients) == 0:
                server._detach(self)
        return 0

    # ---- loop.sendfile() support (the loop pauses this transport's writes) ------

    def _make_empty_waiter(self):
        if self._empty_waiter is not None:
            raise RuntimeError("Empty waiter is already set")
        self._empty_waiter = self._loop.create_future()
        if not self._write_queue.items.count:
            self._empty_waiter.set_result(None)
        return self._empty_waiter

    def _reset_empty_waiter(self):
        self._empty_waiter = None

    # loop.start_tls() may run asyncio's SSLProtocol over this transport.
    _start_tls_compatible = True

    @property
    def _sendfile_compatible(self):
        return _aio_constants._SendfileMode.TRY_NATIVE
