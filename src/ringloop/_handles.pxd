# Handle and TimerHandle (bodies: _handles.pxi): asyncio.Handle / TimerHandle as
# extension types. The loop runs a handle with run(); everything else is asyncio's API.

cdef class Handle:
    cdef:
        readonly object _callback
        readonly tuple _args
        object _context
        readonly object _loop
        readonly bint _cancelled
        object _repr
        readonly object _source_traceback
        object __weakref__
        # TimerHandle's fields live here: Cython gives a subclass its base's freelist
        # only when both have the same size, and timers churn as fast as callbacks.
        readonly double _when
        readonly bint _scheduled
        unsigned char _parked   # PARKED_* bits: out of the collector's lists (park)
        unsigned char _ts_state # TS_*: a call_soon_threadsafe handle's progress
        unsigned char _when_is_int  # when() gives back the int it was given, as asyncio's

    cdef _cancel(self)
    # Runs the callback in its context; an exception goes to the loop's exception
    # handler, except SystemExit and KeyboardInterrupt, which propagate.
    cdef int run(self) except -1
    # run() of a call_soon_threadsafe handle: a cancel() from another thread waits
    # while it runs (asyncio.events._ThreadSafeHandle, Python 3.14).
    cdef int _run_threadsafe(self) except -1
    cdef inline int _invoke(self) except -1
    cdef _report_exception(self, exc, callback, args)
    cdef list _repr_info(self)


cdef class TimerHandle(Handle):
    cdef list _repr_info(self)
