# TLS over a stream transport: SSLProtocol (the stream transport's BufferedProtocol)
# runs an ssl.SSLObject over two ssl.MemoryBIOs and hands the plaintext to the
# application through SSLTransport (an asyncio.Transport).
#
# asyncio/sslproto.py (3.11-3.13) is the reference for the state machine
# (UNWRAPPED -> DO_HANDSHAKE -> WRAPPED -> FLUSHING -> SHUTDOWN -> UNWRAPPED), the
# flow-control rules, every exception and every log message. What differs is only
# how much work a message costs:
# - received bytes go from recv(2) into a 256 KiB buffer shared by the loop's TLS
#   connections (get_buffer) and from there into the incoming BIO: one copy;
# - plaintext is decrypted with SSLObject.read(n, buffer) straight into the bytes
#   object given to data_received, sized by what the BIOs hold (the bytes variant
#   of read allocates n bytes, 256 KiB, per call: an mmap with glibc);
# - a read stops as soon as neither BIO nor OpenSSL holds anything more, instead of
#   ending on an SSLWantReadError raised by one more read;
# - what the application writes from inside data_received is encrypted at once and
#   leaves in one stream-transport write after data_received returns (up to
#   TLS_BATCH_LIMIT; more is flushed at once, as asyncio does).

cdef extern from "Python.h":
    object PyMemoryView_FromMemory(char *mem, Py_ssize_t size, int flags)
    char *PyByteArray_AS_STRING(object o)
    int PyBUF_READ, PyBUF_WRITE
    PyObject *_new_bytes "PyBytes_FromStringAndSize"(const char *v, Py_ssize_t n) except NULL

from cpython.ref cimport Py_XDECREF

import sys as _sys
from asyncio import sslproto as _aio_sslproto
from asyncio import exceptions as _aio_exceptions
from collections import deque as _deque

try:
    import ssl as _ssl
except ImportError:  # CPython without OpenSSL: SSLProtocol() raises, as asyncio's does
    _ssl = None

cdef object _SSLAgainErrors = ()
cdef object _SSLError = ()
cdef object _CertificateError = ()
cdef object _SSLObjectType = None
if _ssl is not None:
    _SSLAgainErrors = (_ssl.SSLWantReadError, _ssl.SSLSyscallError)
    _SSLError = _ssl.SSLError
    _CertificateError = _ssl.CertificateError
    _SSLObjectType = _ssl.SSLObject

cdef object _SSLProtocolState = _aio_sslproto.SSLProtocolState
cdef object _add_flowcontrol_defaults = _aio_sslproto.add_flowcontrol_defaults
cdef object _create_transport_context = _aio_sslproto._create_transport_context
cdef object _CancelledError = _aio_exceptions.CancelledError
cdef object _SendfileFallback = _aio_constants._SendfileMode.FALLBACK
cdef object _SSL_HANDSHAKE_TIMEOUT = _aio_constants.SSL_HANDSHAKE_TIMEOUT
cdef object _SSL_SHUTDOWN_TIMEOUT = _aio_constants.SSL_SHUTDOWN_TIMEOUT
cdef int _HIGH_WATER_SSL_READ = _aio_constants.FLOW_CONTROL_HIGH_WATER_SSL_READ
cdef int _HIGH_WATER_SSL_WRITE = _aio_constants.FLOW_CONTROL_HIGH_WATER_SSL_WRITE
# 3.13's SSLProtocol._abort(exc) force-closes the socket transport with exc;
# 3.11 and 3.12 call transport.abort() (connection_lost(None)).
cdef bint _ABORT_WITH_EXC = _sys.version_info >= (3, 13)

# SSLProtocol.max_size: the most plaintext one read asks for.
DEF TLS_BUFFER_SIZE = 256 * 1024
# How much encrypted output writes from inside data_received may leave in the
# outgoing BIO until data_received returns. Past it a write flushes at once, as
# asyncio's does, so the socket transport's flow control sees it as asyncio's
# would (and pauses the application when the socket is full).
DEF TLS_BATCH_LIMIT = 64 * 1024

cdef enum TLSState:
    TLS_UNWRAPPED
    TLS_DO_HANDSHAKE
    TLS_WRAPPED
    TLS_FLUSHING
    TLS_SHUTDOWN

# The application protocol's state: INIT -connection_made-> CON_MADE
# [-eof_received-> EOF] -connection_lost-> CON_LOST (asyncio's AppProtocolState).
cdef enum AppState:
    APP_INIT
    APP_CON_MADE
    APP_EOF
    APP_CON_LOST

cdef tuple _STATE_NAMES = ('UNWRAPPED', 'DO_HANDSHAKE', 'WRAPPED', 'FLUSHING', 'SHUTDOWN')


cdef class SSLTransport(Transport)


cdef bytearray _loop_tls_buffer(loop):
    # One buffer per loop: it holds bytes only between a recv(2) and the copy into
    # a BIO, or between an SSLObject.read and the copy into a bytes object, and
    # the loop runs one callback at a time. Per loop, not per process: SSL_read
    # runs without the GIL, so two loops in two threads must not share it.
    buf = getattr(loop, '_ringloop_tls_buffer', None)
    if buf is None:
        buf = bytearray(TLS_BUFFER_SIZE)
        try:
            loop._ringloop_tls_buffer = buf
        except AttributeError:
            pass
    return buf


cdef class _SSLProtocolCore:
    cdef:
        CoreLoop _loop
        object _app_protocol
        bint _app_is_buffer
        readonly SSLTransport _app_transport
        bint _app_transport_created
        readonly object _transport      # the socket transport below
        object _sslcontext
        readonly object _sslobj         # the ssl.SSLObject (extra info 'ssl_object')
        object _ssl_read                # bound read/write/pending of the C-level
        object _ssl_write               # _ssl object under it (SSLObject's Python
        object _ssl_pending             # wrappers add a frame per call)
        readonly object _incoming, _outgoing
        dict _extra
        object _write_backlog
        Py_ssize_t _write_buffer_size
        object _waiter
        bint _server_side
        object _server_hostname
        object _ssl_handshake_timeout, _ssl_shutdown_timeout
        object _handshake_start_time, _handshake_timeout_handle, _shutdown_timeout_handle
        TLSState _st
        AppState _app_state
        int _conn_lost
        bint _ssl_writing_paused        # the socket transport paused us
        readonly bint _app_reading_paused   # the application paused reading (asyncio has it too)
        bint _ssl_reading_paused        # we paused the socket transport
        bint _eof_received
        bint _app_writing_paused        # we paused the application
        bint _in_read                   # data_received is running: writes wait for its end
        Py_ssize_t _incoming_high_water, _incoming_low_water
        Py_ssize_t _outgoing_high_water, _outgoing_low_water
        bytearray _buf
        object _buf_view

    def __init__(self, CoreLoop loop, app_protocol, sslcontext, waiter, server_side=False,
                 server_hostname=None, call_connection_made=True,
                 ssl_handshake_timeout=None, ssl_shutdown_timeout=None):
        if _ssl is None:
            raise RuntimeError("stdlib ssl module not available")
        if ssl_handshake_timeout is None:
            ssl_handshake_timeout = _SSL_HANDSHAKE_TIMEOUT
        elif ssl_handshake_timeout <= 0:
            raise ValueError(f"ssl_handshake_timeout should be a positive number, "
                             f"got {ssl_handshake_timeout}")
        if ssl_shutdown_timeout is None:
            ssl_shutdown_timeout = _SSL_SHUTDOWN_TIMEOUT
        elif ssl_shutdown_timeout <= 0:
            raise ValueError(f"ssl_shutdown_timeout should be a positive number, "
                             f"got {ssl_shutdown_timeout}")
        if not sslcontext:
            sslcontext = _create_transport_context(server_side, server_hostname)
        self._buf = _loop_tls_buffer(loop)
        self._buf_view = memoryview(self._buf)
        self._server_side = server_side
        self._server_hostname = server_hostname if server_hostname and not server_side else None
        self._sslcontext = sslcontext
        # More is added when the handshake completes.
        self._extra = {'sslcontext': sslcontext}
        self._write_backlog = _deque()
        self._waiter = waiter
        self._loop = loop
        self._set_app_protocol(app_protocol)
        self._ssl_handshake_timeout = ssl_handshake_timeout
        self._ssl_shutdown_timeout = ssl_shutdown_timeout
        self._incoming = _ssl.MemoryBIO()
        self._outgoing = _ssl.MemoryBIO()
        self._st = TLS_UNWRAPPED
        self._app_state = APP_INIT if call_connection_made else APP_CON_MADE
        sslobj = sslcontext.wrap_bio(self._incoming, self._outgoing, server_side=server_side,
                                     server_hostname=self._server_hostname)
        self._sslobj = sslobj
        # A context's sslobject_class may be a subclass that overrides these.
        raw = sslobj._sslobj if type(sslobj) is _SSLObjectType else sslobj
        self._ssl_read = raw.read
        self._ssl_write = raw.write
        self._ssl_pending = raw.pending
        self._set_read_buffer_limits(None, None)
        self._set_write_buffer_limits(None, None)
        self._get_app_transport()

    def __repr__(self):
        return f'<{type(self).__name__} state={_STATE_NAMES[self._st]}>'

    @property
    def _state(self):
        return _SSLProtocolState[_STATE_NAMES[self._st]]

    @property
    def _app_protocol_is_buffer(self):
        return self._app_is_buffer

    cdef int _set_app_protocol(self, app_protocol) except -1:
        self._app_protocol = app_protocol
        # hasattr first: the cheap test (asyncio's order).
        self._app_is_buffer = (hasattr(app_protocol, 'get_buffer')
                               and isinstance(app_protocol, _BufferedProtocol))
        return 0

    cdef int _wakeup_waiter(self, exc=None) except -1:
        if self._waiter is None:
            return 0
        if not self._waiter.cancelled():
            if exc is not None:
                self._waiter.set_exception(exc)
            else:
                self._waiter.set_result(None)
        self._waiter = None
        return 0

    cdef SSLTransport _get_app_transport(self):
        if self._app_transport is None:
            if self._app_transport_created:
                raise RuntimeError('Creating _SSLProtocolTransport twice')
            self._app_transport = SSLTransport.__new__(SSLTransport)
            self._app_transport._loop = self._loop
            self._app_transport._ssl_protocol = self
            self._app_transport_created = True
        return self._app_transport

    # ---- the socket transport's protocol ------------------------------------------

    def connection_made(self, transport):
        self._transport = transport
        self._start_handshake()

    def connection_lost(self, exc):
        self._write_backlog.clear()
        self._outgoing.read()
        self._conn_lost += 1
        # Only mark the application transport closed: no ResourceWarning for it.
        if self._app_transport is not None:
            self._app_transport._closed = True
        if self._st != TLS_DO_HANDSHAKE:
            if self._app_state == APP_CON_MADE or self._app_state == APP_EOF:
                self._app_state = APP_CON_LOST
                self._loop._soon(self._app_protocol.connection_lost, (exc,))
        self._set_state(TLS_UNWRAPPED)
        self._transport = None
        self._app_transport = None
        self._app_protocol = None
        self._wakeup_waiter(exc)
        if self._shutdown_timeout_handle:
            self._shutdown_timeout_handle.cancel()
            self._shutdown_timeout_handle = None
        if self._handshake_timeout_handle:
            self._handshake_timeout_handle.cancel()
            self._handshake_timeout_handle = None

    def get_buffer(self, n):
        # Always the whole shared buffer (asyncio: max_size unless n is smaller and
        # positive; the stream transport asks with -1).
        return self._buf_view

    def buffer_updated(self, Py_ssize_t nbytes):
        self._incoming.write(PyMemoryView_FromMemory(PyByteArray_AS_STRING(self._buf),
                                                     nbytes, PyBUF_READ))
        if self._st == TLS_WRAPPED:
            self._do_read()
        elif self._st == TLS_DO_HANDSHAKE:
            self._do_handshake()
        elif self._st == TLS_FLUSHING:
            self._do_flush()
        elif self._st == TLS_SHUTDOWN:
            self._do_shutdown()

    def eof_received(self):
        self._eof_received = True
        try:
            if self._loop._debug:
                _logger.debug("%r received EOF", self)
            if self._st == TLS_DO_HANDSHAKE:
                self._on_handshake_complete(ConnectionResetError)
            elif self._st == TLS_WRAPPED:
                self._set_state(TLS_FLUSHING)
                if self._app_reading_paused:
                    return True
                self._do_flush()
            elif self._st == TLS_FLUSHING:
                self._do_write()
                self._set_state(TLS_SHUTDOWN)
                self._do_shutdown()
            elif self._st == TLS_SHUTDOWN:
                self._do_shutdown()
        except Exception:
            self._transport.close()
            raise

    # Write flow control from the socket transport below.
    def pause_writing(self):
        assert not self._ssl_writing_paused
        self._ssl_writing_paused = True

    def resume_writing(self):
        assert self._ssl_writing_paused
        self._ssl_writing_paused = False
        self._process_outgoing()

    # ---- state ------------------------------------------------------------------

    cdef object _get_extra_info(self, name, default):
        if name in self._extra:
            return self._extra[name]
        if self._transport is not None:
            return self._transport.get_extra_info(name, default)
        return default

    cdef int _set_state(self, TLSState new_state) except -1:
        cdef TLSState old = self._st
        if (new_state == TLS_UNWRAPPED
                or (old == TLS_UNWRAPPED and new_state == TLS_DO_HANDSHAKE)
                or (old == TLS_DO_HANDSHAKE and new_state == TLS_WRAPPED)
                or (old == TLS_WRAPPED and new_state == TLS_FLUSHING)
                or (old == TLS_FLUSHING and new_state == TLS_SHUTDOWN)):
            self._st = new_state
            return 0
        raise RuntimeError('cannot switch state from {} to {}'.format(
            _SSLProtocolState[_STATE_NAMES[old]], _SSLProtocolState[_STATE_NAMES[new_state]]))

    # ---- handshake ----------------------------------------------------------------

    cdef int _start_handshake(self) except -1:
        if self._loop._debug:
            _logger.debug("%r starts SSL handshake", self)
            self._handshake_start_time = self._loop.time()
        else:
            self._handshake_start_time = None
        self._set_state(TLS_DO_HANDSHAKE)
        self._handshake_timeout_handle = self._loop.call_later(
            self._ssl_handshake_timeout, self._check_handshake_timeout)
        self._do_handshake()
        return 0

    def _check_handshake_timeout(self):
        if self._st == TLS_DO_HANDSHAKE:
            msg = (f"SSL handshake is taking longer than {self._ssl_handshake_timeout} "
                   f"seconds: aborting the connection")
            self._fatal_error(ConnectionAbortedError(msg))

    cdef int _do_handshake(self) except -1:
        try:
            self._sslobj.do_handshake()
        except _SSLAgainErrors:
            self._process_outgoing()
        except _SSLError as exc:
            self._on_handshake_complete(exc)
        else:
            self._on_handshake_complete(None)
        return 0

    cdef int _on_handshake_complete(self, handshake_exc) except -1:
        if self._handshake_timeout_handle is not None:
            self._handshake_timeout_handle.cancel()
            self._handshake_timeout_handle = None
        sslobj = self._sslobj
        try:
            if handshake_exc is not None:
                raise handshake_exc
            self._set_state(TLS_WRAPPED)
            peercert = sslobj.getpeercert()
        except Exception as exc:
            handshake_exc = None
            self._set_state(TLS_UNWRAPPED)
            if isinstance(exc, _CertificateError):
                msg = 'SSL handshake failed on verifying the certificate'
            else:
                msg = 'SSL handshake failed'
            self._fatal_error(exc, msg)
            self._wakeup_waiter(exc)
            return 0
        if self._loop._debug:
            dt = self._loop.time() - self._handshake_start_time
            _logger.debug("%r: SSL handshake took %.1f ms", self, dt * 1e3)
        self._extra.update(peercert=peercert, cipher=sslobj.cipher(),
                           compression=sslobj.compression(), ssl_object=sslobj)
        if self._app_state == APP_INIT:
            self._app_state = APP_CON_MADE
            self._app_protocol.connection_made(self._get_app_transport())
        self._wakeup_waiter()
        self._do_read()
        return 0

    # ---- shutdown -----------------------------------------------------------------

    cdef int _start_shutdown(self) except -1:
        if self._st == TLS_FLUSHING or self._st == TLS_SHUTDOWN or self._st == TLS_UNWRAPPED:
            return 0
        if self._app_transport is not None:
            self._app_transport._closed = True
        if self._st == TLS_DO_HANDSHAKE:
            self._abort(None)
        else:
            self._set_state(TLS_FLUSHING)
            self._shutdown_timeout_handle = self._loop.call_later(
                self._ssl_shutdown_timeout, self._check_shutdown_timeout)
            self._do_flush()
        return 0

    def _check_shutdown_timeout(self):
        if self._st == TLS_FLUSHING or self._st == TLS_SHUTDOWN:
            self._transport._force_close(_aio_exceptions.TimeoutError('SSL shutdown timed out'))

    cdef int _do_flush(self) except -1:
        self._do_read()
        self._set_state(TLS_SHUTDOWN)
        self._do_shutdown()
        return 0

    cdef int _do_shutdown(self) except -1:
        try:
            if not self._eof_received:
                self._sslobj.unwrap()
        except _SSLAgainErrors:
            self._process_outgoing()
        except _SSLError as exc:
            self._on_shutdown_complete(exc)
        else:
            self._process_outgoing()
            self._call_eof_received()
            self._on_shutdown_complete(None)
        return 0

    cdef int _on_shutdown_complete(self, shutdown_exc) except -1:
        if shutdown_exc:
            if self._shutdown_timeout_handle is not None:
                self._shutdown_timeout_handle.cancel()
                self._shutdown_timeout_handle = None
            self._fatal_error(shutdown_exc)
        else:
            # transport.close() first flushes the write buffer, which a peer that does
            # not read can hold up forever: ssl_shutdown_timeout keeps running (or
            # starts, when the peer began the shutdown) until connection_lost(), as
            # in asyncio 3.14's sslproto.py.
            if self._shutdown_timeout_handle is None:
                self._shutdown_timeout_handle = self._loop.call_later(
                    self._ssl_shutdown_timeout, self._check_shutdown_timeout)
            self._loop._soon(self._transport.close, ())
        return 0

    cdef int _abort(self, exc) except -1:
        self._set_state(TLS_UNWRAPPED)
        if self._transport is not None:
            if _ABORT_WITH_EXC:
                self._transport._force_close(exc)
            else:
                self._transport.abort()
        return 0

    # ---- outgoing -----------------------------------------------------------------

    cdef int _write_appdata(self, list_of_data) except -1:
        if self._st == TLS_FLUSHING or self._st == TLS_SHUTDOWN or self._st == TLS_UNWRAPPED:
            if self._conn_lost >= _LOG_THRESHOLD_FOR_CONNLOST_WRITES:
                _logger.warning('SSL connection is closed')
            self._conn_lost += 1
            return 0
        for data in list_of_data:
            self._write_backlog.append(data)
            self._write_buffer_size += len(data)
        try:
            if self._st == TLS_WRAPPED:
                self._do_write()
        except Exception as ex:
            self._fatal_error(ex, 'Fatal error on SSL protocol')
        return 0

    cdef int _write_one(self, data, Py_ssize_t size) except -1:
        # _write_appdata((data,)) without the backlog when nothing waits in it.
        cdef Py_ssize_t count
        if self._st != TLS_WRAPPED or self._write_backlog:
            return self._write_appdata((data,))
        try:
            try:
                count = self._ssl_write(data)
            except _SSLAgainErrors:
                count = 0
            if count < size:
                self._write_backlog.append(data[count:] if count else data)
                self._write_buffer_size += size - count
                self._do_write()
            elif (not self._in_read or self._ssl_writing_paused
                    or self._outgoing.pending >= TLS_BATCH_LIMIT):
                self._process_outgoing()
        except Exception as ex:
            self._fatal_error(ex, 'Fatal error on SSL protocol')
        return 0

    cdef int _do_write(self) except -1:
        cdef Py_ssize_t count, size
        backlog = self._write_backlog
        try:
            while backlog:
                data = backlog[0]
                count = self._ssl_write(data)
                size = len(data)
                if count < size:
                    backlog[0] = data[count:]
                    self._write_buffer_size -= count
                else:
                    backlog.popleft()
                    self._write_buffer_size -= size
        except _SSLAgainErrors:
            pass
        self._process_outgoing()
        return 0

    cdef int _process_outgoing(self) except -1:
        if self._ssl_writing_paused:
            self._control_app_writing(self._get_write_buffer_size())
            return 0
        data = self._outgoing.read()
        if PyBytes_GET_SIZE(data):
            self._transport.write(data)
        # The outgoing BIO is empty now: only the backlog counts.
        self._control_app_writing(self._write_buffer_size)
        return 0

    # ---- incoming -----------------------------------------------------------------

    def _do_read_cb(self):
        self._do_read()

    cdef int _do_read(self) except -1:
        cdef bint was_in_read
        if self._st != TLS_WRAPPED and self._st != TLS_FLUSHING:
            return 0
        try:
            if not self._app_reading_paused:
                was_in_read = self._in_read
                self._in_read = True
                try:
                    if self._app_is_buffer:
                        self._read_buffered()
                    else:
                        self._read_copied()
                finally:
                    self._in_read = was_in_read
                if self._write_backlog:
                    self._do_write()
                else:
                    self._process_outgoing()
            self._control_ssl_reading()
        except Exception as ex:
            # What the application wrote before it failed leaves first, as it
            # would have without the batching of _write_one.
            if (self._transport is not None and not self._ssl_writing_paused
                    and self._outgoing.pending):
                self._transport.write(self._outgoing.read())
            self._fatal_error(ex, 'Fatal error on SSL protocol')
        return 0

    cdef inline bint _drained(self) except -1:
        # Nothing left for SSLObject.read: another read would raise SSLWantReadError.
        return not self._incoming.pending and not self._ssl_pending()

    cdef int _read_buffered(self) except -1:
        cdef Py_ssize_t offset = 0, count = 1, wants
        buf = self._app_protocol.get_buffer(self._incoming.pending)
        wants = len(buf)
        try:
            count = self._ssl_read(wants, buf)
            if count > 0:
                offset = count
                view = None
                while offset < wants:
                    if self._drained():
                        break
                    if view is None:
                        view = memoryview(buf)
                    count = self._ssl_read(wants - offset, view[offset:])
                    if count > 0:
                        offset += count
                    else:
                        break
                else:
                    self._loop._soon(self._do_read_cb, ())
        except _SSLAgainErrors:
            pass
        if offset > 0:
            self._app_protocol.buffer_updated(offset)
        if not count:
            # close_notify
            self._call_eof_received()
            self._start_shutdown()
        return 0

    cdef int _read_copied(self) except -1:
        # Plaintext is decrypted straight into the bytes objects given to
        # data_received, sized by what the BIOs hold (a TLS record's plaintext is
        # shorter than its ciphertext) and shrunk to what came. A record that
        # OpenSSL took in part from an earlier read can hold more: it goes on in a
        # second chunk.
        cdef Py_ssize_t size, offset = 0, count = 1
        cdef PyObject *chunk = NULL
        cdef list chunks = None
        cdef bint done = False
        data = None
        while not done and count > 0:
            size = self._incoming.pending + self._ssl_pending()
            if not size:
                break
            chunk = _new_bytes(NULL, size)
            offset = 0
            try:
                view = PyMemoryView_FromMemory(PyBytes_AS_STRING(<object>chunk), size, PyBUF_WRITE)
                while offset < size:
                    count = self._ssl_read(size - offset, view[offset:] if offset else view)
                    if count <= 0:
                        break
                    offset += count
                    if offset < size and self._drained():
                        done = True
                        break
            except _SSLAgainErrors:
                done = True
            except BaseException:
                Py_XDECREF(chunk)
                raise
            finally:
                view = None
            if offset:
                rl_bytes_trim(&chunk, offset)
                if data is None:
                    data = <object>chunk
                else:
                    if chunks is None:
                        chunks = [data]
                    chunks.append(<object>chunk)
            Py_XDECREF(chunk)
            chunk = NULL
        if chunks is not None:
            data = b''.join(chunks)
        if data is not None:
            self._app_protocol.data_received(data)
        if count == 0:
            # close_notify
            self._call_eof_received()
            self._start_shutdown()
        return 0

    cdef int _call_eof_received(self) except -1:
        try:
            if self._app_state == APP_CON_MADE:
                self._app_state = APP_EOF
                keep_open = self._app_protocol.eof_received()
                if keep_open:
                    _logger.warning('returning true from eof_received() '
                                    'has no effect when using ssl')
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as ex:
            self._fatal_error(ex, 'Error calling eof_received()')
        return 0

    # ---- flow control -------------------------------------------------------------

    cdef int _control_app_writing(self, Py_ssize_t size) except -1:
        # size: _get_write_buffer_size(), which the caller may know already.
        if size >= self._outgoing_high_water and not self._app_writing_paused:
            self._app_writing_paused = True
            call_flow_control(self._loop, self._app_protocol, True, self._app_transport, self)
        elif size <= self._outgoing_low_water and self._app_writing_paused:
            self._app_writing_paused = False
            call_flow_control(self._loop, self._app_protocol, False, self._app_transport, self)
        return 0

    cdef Py_ssize_t _get_write_buffer_size(self) except -1:
        return self._outgoing.pending + self._write_buffer_size

    cdef int _set_write_buffer_limits(self, high, low) except -1:
        high, low = _add_flowcontrol_defaults(high, low, _HIGH_WATER_SSL_WRITE)
        self._outgoing_high_water = high
        self._outgoing_low_water = low
        return 0

    cdef int _resume_reading(self) except -1:
        if self._app_reading_paused:
            self._app_reading_paused = False
            self._loop._soon(self._resume_reading_cb, ())
        return 0

    def _resume_reading_cb(self):
        if self._st == TLS_WRAPPED:
            self._do_read()
        elif self._st == TLS_FLUSHING:
            self._do_flush()
        elif self._st == TLS_SHUTDOWN:
            self._do_shutdown()

    cdef int _control_ssl_reading(self) except -1:
        cdef Py_ssize_t size = self._incoming.pending
        if size >= self._incoming_high_water and not self._ssl_reading_paused:
            self._ssl_reading_paused = True
            self._transport.pause_reading()
        elif size <= self._incoming_low_water and self._ssl_reading_paused:
            self._ssl_reading_paused = False
            self._transport.resume_reading()
        return 0

    cdef int _set_read_buffer_limits(self, high, low) except -1:
        high, low = _add_flowcontrol_defaults(high, low, _HIGH_WATER_SSL_READ)
        self._incoming_high_water = high
        self._incoming_low_water = low
        return 0

    def _fatal_error(self, exc, message='Fatal error on transport'):
        if self._transport:
            self._transport._force_close(exc)
        if isinstance(exc, OSError):
            if self._loop._debug:
                _logger.debug("%r: %s", self, message, exc_info=True)
        elif not isinstance(exc, _CancelledError):
            self._loop.call_exception_handler({
                'message': message,
                'exception': exc,
                'transport': self._transport,
                'protocol': self,
            })


class SSLProtocol(_SSLProtocolCore, _BufferedProtocol):
    """TLS over a socket transport (asyncio.sslproto.SSLProtocol's behaviour): a
    BufferedProtocol of that transport, so it reads straight into the TLS buffer."""
    __slots__ = ()


cdef class SSLTransport(Transport):
    """The application's side of a TLS connection (asyncio's _SSLProtocolTransport)."""
    cdef:
        readonly CoreLoop _loop
        readonly _SSLProtocolCore _ssl_protocol
        public bint _closed
        object __weakref__

    _start_tls_compatible = True
    _sendfile_compatible = _SendfileFallback

    def __del__(self):
        if not self._closed:
            self._closed = True
            _warnings.warn("unclosed transport <asyncio._SSLProtocolTransport object>",
                           ResourceWarning)

    def get_extra_info(self, name, default=None):
        return self._ssl_protocol._get_extra_info(name, default)

    def set_protocol(self, protocol):
        self._ssl_protocol._set_app_protocol(protocol)

    def get_protocol(self):
        return self._ssl_protocol._app_protocol

    def is_closing(self):
        return self._closed

    def close(self):
        if not self._closed:
            self._closed = True
            self._ssl_protocol._start_shutdown()
        else:
            # asyncio drops the protocol on a second close().
            self._ssl_protocol = None

    def is_reading(self):
        return not self._ssl_protocol._app_reading_paused

    def pause_reading(self):
        self._ssl_protocol._app_reading_paused = True

    def resume_reading(self):
        self._ssl_protocol._resume_reading()

    def set_write_buffer_limits(self, high=None, low=None):
        self._ssl_protocol._set_write_buffer_limits(high, low)
        self._ssl_protocol._control_app_writing(self._ssl_protocol._get_write_buffer_size())

    def get_write_buffer_limits(self):
        return (self._ssl_protocol._outgoing_low_water, self._ssl_protocol._outgoing_high_water)

    def get_write_buffer_size(self):
        return self._ssl_protocol._get_write_buffer_size()

    def set_read_buffer_limits(self, high=None, low=None):
        self._ssl_protocol._set_read_buffer_limits(high, low)
        self._ssl_protocol._control_ssl_reading()

    def get_read_buffer_limits(self):
        return (self._ssl_protocol._incoming_low_water, self._ssl_protocol._incoming_high_water)

    def get_read_buffer_size(self):
        return self._ssl_protocol._incoming.pending

    @property
    def _protocol_paused(self):
        # The sendfile fallback reads it.
        return self._ssl_protocol._app_writing_paused

    def write(self, data):
        cdef Py_ssize_t size
        if PyBytes_CheckExact(data):
            size = PyBytes_GET_SIZE(data)
        elif isinstance(data, (bytes, bytearray, memoryview)):
            size = len(data)
        else:
            raise TypeError(f"data: expecting a bytes-like instance, "
                            f"got {type(data).__name__}")
        if size:
            self._ssl_protocol._write_one(data, size)

    def writelines(self, list_of_data):
        self._ssl_protocol._write_appdata(list_of_data)

    def write_eof(self):
        raise NotImplementedError

    def can_write_eof(self):
        return False

    def abort(self):
        self._force_close(None)

    def _force_close(self, exc):
        self._closed = True
        if self._ssl_protocol is not None:
            self._ssl_protocol._abort(exc)

    def _test__append_write_backlog(self, data):
        # For CPython's test_ssl, as asyncio's transport has it.
        self._ssl_protocol._write_backlog.append(data)
        self._ssl_protocol._write_buffer_size += len(data)
