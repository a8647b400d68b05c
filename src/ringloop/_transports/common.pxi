# What every transport shares besides its write queue (writequeue.pxi): asyncio's
# transport API where it reads the same in each class, bound as methods in each class
# body (so a transport has readonly `_protocol`, `_protocol_connected`, `_closing`
# and, with a read side, `_paused`, and a cpdef _release), and the C-level helpers
# behind the rest:
# * start_watch / stop_watch: a transport's handle in (or out of) the loop's fd watch
#   for one direction, with the transport's flag saying whether it is there.
# * pause_reading / resume_reading: asyncio's rules for the read side.
# * report_error: asyncio's _fatal_error reporting.

def _get_protocol(self):
    return self._protocol

def _is_closing(self):
    return self._closing

def _is_reading(self):
    return not self._closing and not self._paused

def _abort(self):
    self._force_close(None)

def _end_transport(self, exc):
    # A transport's last callback (_call_connection_lost), scheduled once: the
    # protocol hears of the end, unless none was ever connected, then the transport
    # lets go of the fd, the loop and the protocol (its _release).
    try:
        if self._protocol_connected:
            self._protocol.connection_lost(exc)
    finally:
        self._release()


cdef str transport_repr(transport, bint closed, bint closing, fd, list state):
    # asyncio's transport repr: class, closed/closing, fd, then `state`.
    info = [type(transport).__name__]
    if closed:
        info.append('closed')
    elif closing:
        info.append('closing')
    info.append(f'fd={fd}')
    info.extend(state)
    return '<{}>'.format(' '.join(info))


cdef list socket_state(CoreLoop loop, bint reading, bint writing, WriteQueue queue):
    # A socket transport's watches and queue, while its loop is open.
    if loop is None or loop.is_closed():
        return []
    state = 'polling' if writing else 'idle'
    return ['read=polling' if reading else 'read=idle',
            f'write=<{state}, bufsize={queue.size}>']


cdef int forget_transport(CoreLoop loop, int fd, transport) except -1:
    # Take the transport out of the loop's table of fds in use (loop._transports).
    if loop is not None and loop._transports.get(fd) is transport:
        del loop._transports[fd]
    return 0


# ---- the fd watch, one direction ----------------------------------------------------

cdef inline int start_watch(CoreLoop loop, int fd, bint writer, Handle handle,
                            bint *watching, unsigned char mode=WATCH_LEVEL) except -1:
    if not watching[0]:
        loop._watch_fd(fd, writer, handle, mode)
        watching[0] = True
    return 0


cdef inline int stop_watch(CoreLoop loop, int fd, bint writer, bint *watching,
                           bint close_later=False) except -1:
    # close_later: see CoreLoop._unwatch_fd.
    if watching[0]:
        watching[0] = False
        loop._unwatch_fd(fd, writer, close_later)
    return 0


# ---- pause_reading() / resume_reading() (asyncio.ReadTransport) --------------------

cdef bint pause_reading(CoreLoop loop, transport, int fd, bint closing, bint *paused,
                        bint *reading) except -1:
    # Stops the read watch; True if reading was not paused (nor the transport closing).
    if closing or paused[0]:
        return False
    paused[0] = True
    stop_watch(loop, fd, False, reading)
    if loop._debug:
        _logger.debug("%r pauses reading", transport)
    return True


cdef bint resume_reading(CoreLoop loop, transport, int fd, bint closing, bint *paused,
                         bint *reading, Handle handle,
                         unsigned char mode=WATCH_LEVEL) except -1:
    # Starts the read watch again; True if reading was paused (and the transport open).
    if closing or not paused[0]:
        return False
    paused[0] = False
    start_watch(loop, fd, False, handle, reading, mode)
    if loop._debug:
        _logger.debug("%r resumes reading", transport)
    return True


# ---- errors -------------------------------------------------------------------------

cdef int report_error(CoreLoop loop, transport, protocol, exc, str message,
                      bint quiet) except -1:
    # asyncio's _fatal_error, before the transport closes: quiet (for most transports
    # an OSError: the connection's own failure, not the program's) is logged in debug
    # mode only; anything else goes to the loop's exception handler.
    if quiet:
        if loop._debug:
            _logger.debug("%r: %s", transport, message, exc_info=True)
    else:
        loop.call_exception_handler({
            'message': message,
            'exception': exc,
            'transport': transport,
            'protocol': protocol,
        })
    return 0
