# Handle and TimerHandle: asyncio.Handle's API (cancel, cancelled, get_context, when,
# repr) as extension types allocated from a freelist. Arguments stay in the handle's
# tuple; the callback runs inside its context with PyContext_Enter/Exit, as
# Context.run() would, without the bound-method call.

@cython.freelist(4096)
cdef class Handle:
    # Declared in _handles.pxd.

    def __init__(self, callback, args, loop, context=None):
        self._callback = callback
        self._args = tuple(args) if args is not None else ()
        self._loop = loop
        self._context = PyContext_CopyCurrent() if context is None else context
        if loop.get_debug():
            self._source_traceback = _format_helpers.extract_stack(sys._getframe(1))

    def get_context(self):
        return self._context

    def cancel(self):
        if self._ts_state == TS_RUNNING:
            _wait_threadsafe_run(self)
        if not self._cancelled:
            self._cancel()

    cdef _cancel(self):
        self._cancelled = True
        if self._loop is not None and self._loop.get_debug():
            # Keep a repr that still names the callback (asyncio does the same).
            self._repr = repr(self)
        self._callback = None
        self._args = None

    def cancelled(self):
        if self._ts_state == TS_RUNNING:
            _wait_threadsafe_run(self)
        return self._cancelled

    cdef int run(self) except -1:
        if self._ts_state != TS_NONE:
            return self._run_threadsafe()
        return self._invoke()

    cdef int _run_threadsafe(self) except -1:
        # The loop saw the handle not cancelled and has held the GIL since, so no
        # cancel() slipped in between (ringloop keeps the GIL: backend_info()).
        self._ts_state = TS_RUNNING
        try:
            return self._invoke()
        finally:
            self._ts_state = TS_DONE
            if _ts_waiters:
                with _ts_done:
                    _ts_done.notify_all()

    cdef inline int _invoke(self) except -1:
        # Exceptions go to the loop's exception handler, except SystemExit and
        # KeyboardInterrupt, which propagate out of run_forever (asyncio.Handle._run).
        cdef object callback = self._callback
        cdef tuple args = self._args
        cdef object context = self._context
        PyContext_Enter(context)
        try:
            if args:
                callback(*args)
            else:
                callback()
        except BaseException as exc:
            PyContext_Exit(context)
            if isinstance(exc, (SystemExit, KeyboardInterrupt)):
                raise
            self._report_exception(exc, callback, args)
            return 0
        PyContext_Exit(context)
        return 0

    def _run(self):
        self.run()

    cdef _report_exception(self, exc, callback, args):
        report = {
            'message': f'Exception in callback {_format_helpers._format_callback_source(callback, args)}',
            'exception': exc,
            'handle': self,
        }
        if self._source_traceback:
            report['source_traceback'] = self._source_traceback
        self._loop.call_exception_handler(report)

    cdef list _repr_info(self):
        info = [type(self).__name__]
        if self._cancelled:
            info.append('cancelled')
        if self._callback is not None:
            info.append(_format_helpers._format_callback_source(self._callback, self._args))
        if self._source_traceback:
            frame = self._source_traceback[-1]
            info.append(f'created at {frame[0]}:{frame[1]}')
        return info

    def __repr__(self):
        if self._repr is not None:
            return self._repr
        return '<{}>'.format(' '.join(self._repr_info()))


# A handle made by call_soon_threadsafe follows asyncio's _ThreadSafeHandle (Python
# 3.14, asyncio/events.py): cancel() or cancelled() from another thread while its
# callback runs wait until the callback has returned; from the callback's own thread
# they do not wait. One condition for all such handles: waiting is rare (a cancel that
# races a running callback), and the loop only notifies when someone waits. A waiter
# counts itself and re-checks the state while it holds the GIL, so the loop either
# sees the count or the waiter sees TS_DONE.
cdef enum:
    TS_NONE = 0         # not from call_soon_threadsafe
    TS_PENDING = 1
    TS_RUNNING = 2
    TS_DONE = 3

_ts_done = threading.Condition()
cdef Py_ssize_t _ts_waiters = 0


cdef _wait_threadsafe_run(Handle h):
    global _ts_waiters
    if threading.get_ident() == getattr(h._loop, "_thread_id", None):
        return          # the callback itself, or code it calls
    with _ts_done:
        _ts_waiters += 1
        try:
            while h._ts_state == TS_RUNNING:
                _ts_done.wait()
        finally:
            _ts_waiters -= 1


cdef enum:
    PARKED_HANDLE = 1
    PARKED_CONTEXT = 2
    PARK_QUEUE_MIN = 4096   # Handle's freelist size


# A handle the loop just made and queued (ready queue or timer heap) is reachable
# from the loop until it leaves the queue, so it cannot be garbage; the queues are C
# arrays the collector does not see into, so it already counts as referenced from
# outside. park() takes it, and the context copied for it, out of the collector's
# lists meanwhile, so collections do not walk it again and again: timers wait long
# enough to be promoted to the old generations; a burst of callbacks (16k queued by
# call_soon_threadsafe) spent about 40% of its time in collections. A ready queue
# shorter than the freelist is not worth it: its handles come from the freelist, a
# steady one allocates nothing the collector counts, and parking costs 4 calls per
# handle (call_soon_x1000: 7% slower). unpark() must run before anything but the
# loop can reach the handle again: a context is freed with _PyObject_GC_UNTRACK,
# which assumes it is tracked (CPython's context.c), and a handle may enter a cycle
# once it has run.

cdef inline void park(Handle h, bint own_context) noexcept:
    PyObject_GC_UnTrack(<PyObject *>h)
    h._parked = PARKED_HANDLE
    if own_context:
        PyObject_GC_UnTrack(<PyObject *>h._context)
        h._parked |= PARKED_CONTEXT


cdef inline void unpark(Handle h) noexcept:
    if h._parked:
        PyObject_GC_Track(<PyObject *>h)
        if h._parked & PARKED_CONTEXT:
            PyObject_GC_Track(<PyObject *>h._context)
        h._parked = 0


cdef inline bint exact_int(when):
    # asyncio keeps call_at's `when` as given; the heap keeps a double, so an int
    # that a double holds exactly is marked to be returned as an int again.
    return type(when) is int and <double>when == when


cdef class TimerHandle(Handle):
    # Adds no fields (see Handle), so it shares Handle's freelist.

    def __init__(self, when, callback, args, loop, context=None):
        Handle.__init__(self, callback, args, loop, context)
        self._when = when
        self._when_is_int = exact_int(when)

    def when(self):
        return int(self._when) if self._when_is_int else self._when

    def cancel(self):
        if not self._cancelled:
            if self._scheduled and isinstance(self._loop, CoreLoop):
                (<CoreLoop>self._loop)._timer_cancelled += 1
                (<CoreLoop>self._loop).st_timers_cancelled += 1
            self._cancel()

    cdef list _repr_info(self):
        info = Handle._repr_info(self)
        info.insert(1 + self._cancelled, f'when={self.when()}')
        return info

    def __hash__(self):
        return hash(self._when)

    def __lt__(self, other):
        if isinstance(other, TimerHandle):
            return self._when < (<TimerHandle>other)._when
        return NotImplemented

    def __le__(self, other):
        if isinstance(other, TimerHandle):
            return self._when < (<TimerHandle>other)._when or self == other
        return NotImplemented

    def __gt__(self, other):
        if isinstance(other, TimerHandle):
            return self._when > (<TimerHandle>other)._when
        return NotImplemented

    def __ge__(self, other):
        if isinstance(other, TimerHandle):
            return self._when > (<TimerHandle>other)._when or self == other
        return NotImplemented

    def __eq__(self, other):
        if isinstance(other, TimerHandle):
            o = <TimerHandle>other
            return (self._when == o._when and self._callback == o._callback
                    and self._args == o._args and self._cancelled == o._cancelled)
        return NotImplemented
