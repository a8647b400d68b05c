# CoreLoop: the compiled half of ringloop.Loop (declared in _loop.pxd). It owns the
# ready queue, the timer heap, the fd watches and the backend, and runs iterations.
# The Python parts (exception handling, executor, asyncgens, signals, DNS, networking
# set-up, subprocesses) and what CoreLoop calls on them: ringloop/_parts.py.

from asyncio import base_events as _aio_base_events
from asyncio import futures as _aio_futures
from asyncio import tasks as _aio_tasks
import time as _time

cdef double _CLOCK_RESOLUTION = _time.get_clock_info('monotonic').resolution

cdef enum:
    # asyncio compacts its timer heap when cancelled timers are more than half of it
    # and there are at least this many (base_events._MIN_SCHEDULED_TIMER_HANDLES).
    MIN_TIMERS_FOR_COMPACTION = 100

# fork() is noticed through a generation counter bumped in the child, so a loop
# inherited across fork() re-creates its kernel objects before touching them.
cdef uint64_t _fork_generation = 0

def _bump_fork_generation():
    global _fork_generation
    _fork_generation += 1

os.register_at_fork(after_in_child=_bump_fork_generation)


# asyncio passes create_task()'s name to the task factory from Python 3.14 on.
cdef bint _TASK_FACTORY_TAKES_NAME = sys.version_info >= (3, 14)


cdef int _fileno_of(fileobj) except? -1:
    # The fd number a file object names, before selectors' check that it is not negative.
    if isinstance(fileobj, int):
        return fileobj
    try:
        return int(fileobj.fileno())
    except (AttributeError, TypeError, ValueError):
        raise ValueError(f"Invalid file object: {fileobj!r}") from None


cdef class CoreLoop:
    # Declared in _loop.pxd.

    def __cinit__(self, *args, **kwargs):
        ring_init(&self.ready, 1024)
        self._wake_fd = -1
        self._watches = []
        self._transports = {}
        self._sock_recv = SockRecvState.__new__(SockRecvState)
        self.slow_callback_duration = 0.1
        self._fork_gen = _fork_generation

    def __init__(self, backend=None):
        from ringloop._backend_choice import make_backend
        from ringloop.monitor import threshold_from_environment   # blocking detector
        warn_blocking = threshold_from_environment()
        rl_tune_malloc()  # once per process (_malloc.pxi)
        # Until the kernel objects exist the loop counts as closed, so a failed
        # construction leaves nothing for close() or __del__ to touch.
        self._closed = True
        self._backend = make_backend(backend)
        self._open_wakeup()
        self._closed = False
        self._debug = _aio_coroutines._is_debug_mode()
        self._clock_changed()
        self.set_warn_blocking(warn_blocking)

    def __dealloc__(self):
        if self._mon != NULL:       # blocking detector
            monitor_free(self._mon)
        ready_free(&self.ready)
        heap_clear(&self.timers)
        PyMem_Free(self._recv_buf)
        if self._wake_fd >= 0:
            close(self._wake_fd)

    # ---- fd watches -------------------------------------------------------------

    cdef FdWatch watch_at(self, int fd):
        if 0 <= fd < len(self._watches):
            return <FdWatch>self._watches[fd]
        return None

    cdef list iter_watches(self):
        return [w for w in self._watches if w is not None]

    cdef FdWatch _watch_for(self, int fd):
        cdef FdWatch w = self.watch_at(fd)
        if w is None:
            if fd >= len(self._watches):
                self._watches.extend([None] * (fd + 1 - len(self._watches)))
            w = self._backend.new_watch(fd)
            self._watches[fd] = w
        return w

    cdef int _apply_interest(self, FdWatch w) except -1:
        # Recompute what w wants from its handles and tell the backend.
        cdef uint32_t old = w.want
        cdef uint32_t want = 0
        if w.reader is not None:
            want |= POLLIN
        if w.writer is not None:
            want |= POLLOUT
        w.want = want
        if w.fileobj is not None and not w.user():
            # The user's file object leaves the watch. Closed without remove_reader(),
            # its kernel entry went with it (epoll(7)) and the fd number may now be
            # another file's (a transport's): have the backend register it afresh.
            w.fileobj = None
            if want:
                self._backend.reregister(w)
        try:
            self._backend.update(self, w)
        except BaseException:
            w.want = old
            raise
        if old == 0 and want != 0:
            self._n_user_watches += 1
        elif old != 0 and want == 0:
            self._n_user_watches -= 1
        if want == 0 and not self._backend.holds(w) and self.watch_at(w.fd) is w:
            self._watches[w.fd] = None
        return 0

    cdef int fd_ready(self, FdWatch w, uint32_t revents) except -1:
        # Backend callback: w's fd is ready. Queues its reader and/or writer; error
        # and hang-up wake both, as selectors.EpollSelector maps them.
        cdef uint64_t counter
        self.st_io_events += 1
        if w.internal:
            read(w.fd, &counter, sizeof(counter))
            return 0
        if revents & (POLLIN | POLLERR | POLLHUP) and w.reader is not None:
            if (<Handle>w.reader)._cancelled:
                w.reader = None
                self._apply_interest(w)
            else:
                ready_push(&self.ready, <Handle>w.reader)
        if revents & (POLLOUT | POLLERR | POLLHUP) and w.writer is not None:
            if (<Handle>w.writer)._cancelled:
                w.writer = None
                self._apply_interest(w)
            else:
                ready_push(&self.ready, <Handle>w.writer)
        return 0

    cdef _open_wakeup(self):
        # eventfd(2) that call_soon_threadsafe writes while the loop blocks in the kernel.
        cdef FdWatch w
        cdef int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)
        if fd < 0:
            raise os_error(errno)
        self._wake_fd = fd
        w = self._watch_for(fd)
        w.internal = True
        w.want = POLLIN
        self._backend.update(self, w)

    cdef int _check_fork(self) except -1:
        if self._fork_gen == _fork_generation:
            return 0
        self._fork_gen = _fork_generation
        # Our eventfd and kernel wait object are shared with the parent: replace them.
        if self._wake_fd >= 0:
            self._watches[self._wake_fd] = None
            close(self._wake_fd)
            self._wake_fd = -1
        self._open_wakeup()
        self._backend.reinit(self)
        return 0

    cdef int _fd_from(self, fileobj) except -1:
        # selectors._fileobj_to_fd semantics and messages.
        cdef int fd = _fileno_of(fileobj)
        if fd < 0:
            raise ValueError(f"Invalid file descriptor: {fd}")
        return fd

    cdef int _watched_fd(self, fileobj) except -1:
        # The fd of fileobj's watch: a socket closed since add_reader (fileno() -1) is
        # found by the object, as selectors' _fileobj_lookup does.
        cdef int fd = _fileno_of(fileobj)
        cdef FdWatch w
        if fd >= 0:
            return fd
        for w in self._watches:
            if w is not None and w.fileobj is fileobj:
                return w.fd
        raise ValueError(f"Invalid file descriptor: {fd}")

    cdef int _check_watchable(self, int fd) except -1:
        # epoll refuses regular files and directories (EPERM) and closed fds (EBADF);
        # a poll on io_uring would accept the first and fail the second only later.
        # Check up front so both backends raise what asyncio raises, at the call.
        cdef stat st
        if fstat(fd, &st) < 0:
            raise os_error(errno)
        if S_ISREG(st.st_mode) or S_ISDIR(st.st_mode):
            raise os_error(EPERM)
        return 0

    cdef object _swap_handle(self, int fd, bint writer, handle,
                             unsigned char mode=WATCH_LEVEL):
        # Put `handle` (or None) in fd's watch for one direction and tell the backend;
        # if the backend refuses, the watch is left as it was. Returns the handle it
        # replaced. Every add/remove of a reader or writer goes through here.
        # mode: how the handle consumes events (WATCH_* in _backend/common.pxi).
        cdef FdWatch w = self._watch_for(fd)
        cdef unsigned char old_mode
        if writer:
            old, old_mode = w.writer, w.writer_mode
            w.writer, w.writer_mode = handle, mode
        else:
            old, old_mode = w.reader, w.reader_mode
            w.reader, w.reader_mode = handle, mode
        try:
            self._apply_interest(w)
        except BaseException:
            if writer:
                w.writer, w.writer_mode = old, old_mode
            else:
                w.reader, w.reader_mode = old, old_mode
            if w.want == 0 and not self._backend.holds(w) and self.watch_at(fd) is w:
                self._watches[fd] = None
            raise
        return old

    cdef _set_watch_handle(self, fileobj, bint writer, callback, tuple args,
                           bint sock_wait=False):
        # sock_wait: a sock_* operation waiting for one event on a socket it has just
        # used (so the fstat of _check_watchable can be skipped).
        cdef int fd
        cdef FdWatch w
        self._check_closed()
        fd = self._fd_from(fileobj)
        self._check_fork()
        handle = self._new_handle(callback, args, None)
        w = self.watch_at(fd)
        if not sock_wait and (w is None or w.want == 0):
            self._check_watchable(fd)
        elif not sock_wait and w.fileobj is not None and w.fileobj != fileobj:
            # Another object with the same fd number: the one watched may have been
            # closed without remove_reader(), its kernel entry gone with it (epoll(7)),
            # and the number reused. Register again rather than trust that entry.
            self._backend.reregister(w)
        old = self._swap_handle(fd, writer, handle,
                                WATCH_ONESHOT if sock_wait else WATCH_USER)
        if not sock_wait:
            (<FdWatch>self._watches[fd]).fileobj = fileobj
        if old is not None:
            (<Handle>old).cancel()
        return handle

    cdef bint _clear_watch_handle(self, fileobj, bint writer) except -1:
        cdef int fd
        cdef FdWatch w
        if self._closed:
            return False
        fd = self._watched_fd(fileobj)
        self._check_fork()
        w = self.watch_at(fd)
        if w is None or w.internal:
            return False
        old = w.writer if writer else w.reader
        if old is None:
            return False
        self._swap_handle(fd, writer, None)
        (<Handle>old).cancel()
        return True

    # The transports' own watches: a Handle made once per transport and direction, put
    # in (or taken out of) the fd watch without the checks and allocation of add_reader.

    cdef int _watch_fd(self, int fd, bint writer, Handle handle,
                       unsigned char mode=WATCH_LEVEL) except -1:
        self._check_closed()
        self._check_fork()
        self._swap_handle(fd, writer, handle, mode)
        return 0

    cdef int _unwatch_fd(self, int fd, bint writer, bint close_later=False) except -1:
        # close_later: the caller closes fd only in a later pass, after the next kernel
        # wait (see FdWatch.close_later).
        cdef FdWatch w
        if self._closed:
            return 0
        self._check_fork()
        w = self.watch_at(fd)
        if w is not None:
            w.close_later = close_later
            try:
                self._swap_handle(fd, writer, None)
            finally:
                w.close_later = False
        return 0

    cdef char *_receive_buffer(self) except NULL:
        if self._recv_buf == NULL:
            self._recv_buf = <char *>PyMem_Malloc(RECV_SIZE)
            if self._recv_buf == NULL:
                raise MemoryError()
        return self._recv_buf

    cdef int _drop_watch_handle(self, int fd, bint writer, Handle handle) except -1:
        # Stop watching fd for `handle`, if it still holds the watch.
        cdef FdWatch w = self.watch_at(fd)
        if w is None or (w.writer if writer else w.reader) is not handle:
            return 0
        self._clear_watch_handle(fd, writer)
        return 0

    def _ensure_fd_no_transport(self, fd):
        # asyncio refuses add_reader & co. on an fd a live transport owns.
        cdef int fileno
        if not self._transports:
            return
        fileno = _fileno_of(fd)
        transport = self._transports.get(fileno)
        if transport is not None and not transport.is_closing():
            raise RuntimeError(f'File descriptor {fd!r} is used by transport {transport!r}')

    def add_reader(self, fd, callback, *args):
        self._ensure_fd_no_transport(fd)
        self._set_watch_handle(fd, False, callback, args)

    def remove_reader(self, fd):
        self._ensure_fd_no_transport(fd)
        return self._clear_watch_handle(fd, False)

    def add_writer(self, fd, callback, *args):
        self._ensure_fd_no_transport(fd)
        self._set_watch_handle(fd, True, callback, args)

    def remove_writer(self, fd):
        self._ensure_fd_no_transport(fd)
        return self._clear_watch_handle(fd, True)

    # ---- scheduling -------------------------------------------------------------

    cdef inline int _check_closed(self) except -1:
        if self._closed:
            raise RuntimeError('Event loop is closed')
        return 0

    cdef int _debug_checks(self, callback, str method, bint thread) except -1:
        if thread:
            self._check_thread()
        if _is_coroutine_or_coroutine_function(callback):
            raise TypeError(f"coroutines cannot be used with {method}()")
        if not callable(callback):
            raise TypeError(f'a callable object was expected by {method}(), got {callback!r}')
        return 0

    def _check_thread(self):
        # asyncio's debug-mode guard against non-thread-safe calls from other threads.
        if self._thread_ident != 0 and PyThread_get_thread_ident() != self._thread_ident:
            raise RuntimeError(
                "Non-thread-safe operation invoked on an event loop other "
                "than the current one")

    cdef inline Handle _new_handle(self, callback, tuple args, context):
        cdef Handle h = Handle.__new__(Handle)
        h._callback = callback
        h._args = args
        h._loop = self
        h._context = PyContext_CopyCurrent() if context is None else context
        if self._debug:
            h._source_traceback = _format_helpers.extract_stack(sys._getframe(0))
        return h

    def call_soon(self, callback, *args, context=None):
        self._check_closed()
        if self._debug:
            self._debug_checks(callback, 'call_soon', True)
        h = self._new_handle(callback, args, context)
        ready_push_new(&self.ready, h, context is None)
        return h

    cdef int _soon(self, callback, tuple args) except -1:
        # call_soon for the loop's own transports: always on the loop's thread with a
        # callable, so without the Python call and the debug-mode checks.
        self._check_closed()
        ready_push_new(&self.ready, self._new_handle(callback, args, None), True)
        return 0

    def call_soon_threadsafe(self, callback, *args, context=None):
        cdef uint64_t one = 1
        self._check_closed()
        if self._debug:
            self._debug_checks(callback, 'call_soon_threadsafe', False)
        h = self._new_handle(callback, args, context)
        h._ts_state = TS_PENDING
        ready_push_new(&self.ready, h, context is None)
        # Only a loop blocked in the kernel needs waking; a running one will see the
        # queue before it next decides how long to wait (see _poll).
        if self._polling and not self._wakeup_sent and self._wake_fd >= 0:
            # One write wakes the wait; later callbacks ride on it.
            self._wakeup_sent = True
            write(self._wake_fd, &one, sizeof(one))
            self.st_threadsafe_wakeups += 1
        return h

    def _add_callback(self, handle):
        # Queue an existing handle (signal handlers); asyncio's private name.
        if not (<Handle?>handle)._cancelled:
            ready_push(&self.ready, <Handle>handle)

    cdef inline int queue_handle(self, Handle handle) except -1:
        # The transports' requeue: run their own handle again on the next pass.
        return ready_push(&self.ready, handle)

    def call_later(self, delay, callback, *args, context=None):
        if delay is None:
            raise TypeError('delay must not be None')
        return self._call_at(self._now() + <double>delay, callback, args, context)

    def call_at(self, when, callback, *args, context=None):
        if when is None:
            raise TypeError('when cannot be None')
        th = self._call_at(when, callback, args, context)
        th._when_is_int = exact_int(when)
        return th

    cdef TimerHandle _call_at(self, double when, callback, tuple args, context):
        cdef TimerHandle th
        self._check_closed()
        if self._debug:
            self._debug_checks(callback, 'call_at', True)
        th = TimerHandle.__new__(TimerHandle)
        th._callback = callback
        th._args = args
        th._loop = self
        th._context = PyContext_CopyCurrent() if context is None else context
        if self._debug:
            th._source_traceback = _format_helpers.extract_stack(sys._getframe(0))
        th._when = when
        th._scheduled = True
        heap_push(&self.timers, when, th)
        park(th, context is None)
        self.st_timers_scheduled += 1
        return th

    def time(self):
        return monotonic_now()

    cdef inline double _now(self) except? -1:
        if self._clock is None:
            return monotonic_now()
        return self._clock()

    # Replacing loop.time is seen when it happens, so the timers cost one test per
    # read of the clock, not a lookup of an instance attribute.

    def __setattr__(self, name, value):
        PyObject_GenericSetAttr(self, name, <PyObject *>value)
        if name == "time":
            self._clock_changed()

    def __delattr__(self, name):
        PyObject_GenericSetAttr(self, name, NULL)
        if name == "time":
            self._clock_changed()

    cdef _clock_changed(self):
        clock = self.time
        if type(self).time is CoreLoop.time and "time" not in getattr(self, "__dict__", ()):
            clock = None
        self._clock = clock

    # ---- running ----------------------------------------------------------------

    cdef int _drop_cancelled_timers(self) except -1:
        cdef PyObject *p
        cdef TimerHandle th
        cdef Py_ssize_t i, kept
        if (self._timer_cancelled > MIN_TIMERS_FOR_COMPACTION
                and self._timer_cancelled * 2 > self.timers.len):
            kept = 0
            dropped = []
            for i in range(self.timers.len):
                th = <TimerHandle>self.timers.items[i].handle
                if th._cancelled:
                    th._scheduled = False
                    unpark(th)
                    dropped.append(th)
                    Py_DECREF(th)
                else:
                    self.timers.items[kept] = self.timers.items[i]
                    kept += 1
            self.timers.len = kept
            heap_heapify(&self.timers)
            self._timer_cancelled = 0
            del dropped     # their last references go only once the heap is consistent
        else:
            while self.timers.len and (<TimerHandle>self.timers.items[0].handle)._cancelled:
                p = heap_pop(&self.timers)
                th = <TimerHandle>p
                unpark(th)
                Py_DECREF(th)
                th._scheduled = False
                self._timer_cancelled -= 1
        return 0

    cdef int _poll(self, double timeout) except -1:
        cdef int64_t t0, t1
        if timeout != 0:
            # Tell call_soon_threadsafe to write the eventfd from now on, then look at
            # the queue once more: both happen under the GIL, so a callback added by
            # another thread is either seen here or followed by a wake-up write.
            self._polling = True
            if self.ready.count:
                timeout = 0
        t0 = monotonic_ns()
        if self._mon != NULL:       # blocking detector: waiting in the kernel is not blocking
            rl_mon_idle(self._mon)
        try:
            self._backend.wait(self, timeout)
        finally:
            self._polling = False
            self._wakeup_sent = False
            t1 = monotonic_ns()
            if self._mon != NULL:
                rl_mon_awake(self._mon, t1)
        self.st_wait_ns += t1 - t0
        self.st_io_waits += 1
        return 0

    cdef int _run_once(self) except -1:
        cdef double timeout, end, now
        cdef PyObject *p
        cdef TimerHandle th
        cdef Handle h
        cdef Py_ssize_t ntodo

        self._drop_cancelled_timers()
        if self.ready.count or self._stopping:
            timeout = 0
        elif self.timers.len:
            timeout = self.timers.items[0].when - self._now()
            if timeout < 0:
                timeout = 0
        else:
            timeout = -1
        # With callbacks queued and nothing watched there is nothing the kernel could
        # tell us: skip the syscall (asyncio and uvloop poll every pass regardless).
        if timeout != 0 or self._n_user_watches or self._backend.has_pending():
            self._poll(timeout)

        if self.timers.len:
            now = self._now()
            end = now + _CLOCK_RESOLUTION
            while self.timers.len and self.timers.items[0].when < end:
                p = heap_pop(&self.timers)
                th = <TimerHandle>p
                Py_DECREF(th)
                th._scheduled = False
                if th._cancelled:
                    unpark(th)
                    self._timer_cancelled -= 1
                    continue
                ready_push(&self.ready, th)     # still parked, till it leaves the queue
                # loop health: how late it fires (no clock read of its own)
                self._timer_lag[self.st_timers_fired % TIMER_LAG_WINDOW] = now - th._when
                self.st_timers_fired += 1
            th = None

        # Run what was ready at the start of this pass; callbacks they add wait for
        # the next pass (asyncio's ordering guarantee).
        ntodo = self.ready.count
        while ntodo > 0:
            ntodo -= 1
            p = ring_pop(&self.ready)
            h = <Handle>p
            unpark(h)
            Py_DECREF(h)
            if h._cancelled:
                continue
            self.st_callbacks += 1
            if self._debug:
                self._run_timed(h)
            elif self._mon != NULL:     # blocking detector
                self._run_monitored(h)
            else:
                h.run()
        self.st_iterations += 1
        return 0

    cdef int _run_timed(self, Handle h) except -1:
        cdef double t0 = monotonic_now()
        cdef double dt
        h.run()
        dt = monotonic_now() - t0
        if dt >= self.slow_callback_duration:
            _aio_base_events.logger.warning(
                'Executing %s took %.3f seconds', _aio_base_events._format_handle(h), dt)
        return 0

    cdef int _check_running(self) except -1:
        if self._thread_ident != 0:
            raise RuntimeError('This event loop is already running')
        if _aio_events._get_running_loop() is not None:
            raise RuntimeError('Cannot run the event loop while another loop is running')
        return 0

    def run_forever(self):
        """Run until stop() is called."""
        # Looked up per run, as asyncio's loop does: asyncio.events' pure-Python and C
        # running-loop functions keep separate state from 3.14 on, and code (CPython's
        # tests) may swap one for the other.
        set_running_loop = _aio_events._set_running_loop
        self._check_closed()
        self._check_running()
        self._check_fork()
        self._backend.prepare_thread(self)
        self._thread_ident = PyThread_get_thread_ident()
        self._thread_id = threading.get_ident()
        self._old_agen_hooks = sys.get_asyncgen_hooks()
        self._run_started_ns = monotonic_ns()
        try:
            self._set_coroutine_origin_tracking(self._debug)
            sys.set_asyncgen_hooks(firstiter=self._asyncgen_firstiter_hook,
                                   finalizer=self._asyncgen_finalizer_hook)
            set_running_loop(self)
            self._outer_depth = python_depth()     # blocking detector
            if self._mon != NULL:
                self._monitor_enter()
            while True:
                self._run_once()
                if self._stopping:
                    break
        finally:
            if self._mon != NULL:       # blocking detector
                rl_mon_leave(self._mon)
            self._stopping = False
            self._thread_ident = 0
            self._thread_id = None
            set_running_loop(None)
            self._set_coroutine_origin_tracking(False)
            sys.set_asyncgen_hooks(*self._old_agen_hooks)
            self._old_agen_hooks = None
            self.st_in_run_ns += monotonic_ns() - self._run_started_ns

    def stop(self):
        self._stopping = True

    def is_running(self):
        return self._thread_ident != 0

    def is_closed(self):
        return self._closed

    def get_debug(self):
        return self._debug

    def close(self):
        if self._thread_ident != 0:
            raise RuntimeError("Cannot close a running event loop")
        if self._closed:
            return
        self._close_parts()    # the Python parts (ringloop/_parts.py)
        self._monitor_off()    # blocking detector
        self._closed = True
        ready_clear(&self.ready)
        heap_clear(&self.timers)
        self._timer_cancelled = 0
        self._watches = []
        self._n_user_watches = 0
        if self._backend is not None:
            self._backend.close(self)
        if self._wake_fd >= 0:
            close(self._wake_fd)
            self._wake_fd = -1

    # ---- futures and tasks --------------------------------------------------------

    def create_future(self):
        # asyncio.futures.Future and asyncio.tasks.Task are looked up per call, as
        # asyncio's loop does: code may swap in the pure-Python classes (CPython's
        # tests do, asyncio.capture_call_graph then needs them).
        return _aio_futures.Future(loop=self)

    def create_task(self, coro, *, name=None, context=None, **kwargs):
        self._check_closed()
        if self._task_factory is None:
            task = _aio_tasks.Task(coro, loop=self, name=name, context=context, **kwargs)
            if task._source_traceback:
                del task._source_traceback[-1]
            return task
        if context is not None:
            kwargs['context'] = context
        if _TASK_FACTORY_TAKES_NAME:
            # 3.14+: the factory gets the name (asyncio/base_events.py), so an eager
            # task has it while its first step runs.
            if name is not None:
                kwargs['name'] = name
            return self._task_factory(self, coro, **kwargs)
        task = self._task_factory(self, coro, **kwargs)
        if name is not None:
            task.set_name(name)
        return task

    def set_task_factory(self, factory):
        if factory is not None and not callable(factory):
            raise TypeError('task factory must be a callable or None')
        self._task_factory = factory

    def get_task_factory(self):
        return self._task_factory

    # ---- introspection ------------------------------------------------------------

    @property
    def backend_name(self):
        return self._backend.name if self._backend is not None else None

    def _backend_details(self):
        return self._backend.info()

    def stats(self):
        """Counters of this loop's work since it was created."""
        cdef int64_t in_run = self.st_in_run_ns
        if self._thread_ident != 0:
            in_run += monotonic_ns() - self._run_started_ns
        return {
            "iterations": self.st_iterations,
            "callbacks": self.st_callbacks,
            "timers_scheduled": self.st_timers_scheduled,
            "timers_fired": self.st_timers_fired,
            "timers_cancelled": self.st_timers_cancelled,
            "io_waits": self.st_io_waits,
            "io_events": self.st_io_events,
            "wait_ns": self.st_wait_ns,
            "run_ns": max(0, in_run - self.st_wait_ns),
            "threadsafe_wakeups": self.st_threadsafe_wakeups,
            "ready": self.ready.count,
            "timers_pending": self.timers.len - self._timer_cancelled,
            "fds_watched": self._n_user_watches,
            "blocks": self.st_blocks,
            "timer_lag": self._timer_lag_summary(),
        }

    cdef dict _timer_lag_summary(self):
        # p50, p99 and max of how late the last TIMER_LAG_WINDOW timers fired, seconds.
        cdef Py_ssize_t n = <Py_ssize_t>min(self.st_timers_fired, TIMER_LAG_WINDOW)
        if n == 0:
            return {"window": 0, "p50": None, "p99": None, "max": None}
        lags = sorted([max(0.0, self._timer_lag[i]) for i in range(n)])
        return {"window": n, "p50": lags[(n - 1) // 2], "p99": lags[(n * 99 - 1) // 100],
                "max": lags[n - 1]}

    # ---- blocking detector (ringloop/_monitor/, ringloop/monitor.py) ------------------
    # Hooks elsewhere in the loop, each marked "blocking detector": run_forever (enter/
    # leave), _poll (idle in the kernel), _run_once (one branch per callback), close.

    cdef int _run_monitored(self, Handle h) except -1:
        cdef uint64_t seq = rl_mon_callback(self._mon, <PyObject *>h)
        if self._debug:
            self._run_timed(h)
        else:
            h.run()
        # The callback may have turned the detector off (set_warn_blocking(None)).
        if self._mon != NULL and rl_mon_flagged(self._mon, seq):
            self._report_block(h, seq)
        return 0

    cdef int _report_block(self, Handle h, uint64_t seq) except -1:
        cdef int64_t blocked_ns = monotonic_ns() - self._mon.flagged_start_ns
        self.st_blocks += 1
        self._blocking.report(h, blocked_ns / 1e9, monitor_take_stack(self._mon, seq))
        return 0

    cdef int _monitor_enter(self) except -1:
        cdef int err
        # The frames below run_forever are the loop's caller's: reports leave them out.
        self._blocking.outer_depth = self._outer_depth
        err = rl_mon_start(self._mon)
        if err:
            raise OSError(err, os.strerror(err))
        rl_mon_enter(self._mon, PyThreadState_Get())
        return 0

    def set_warn_blocking(self, threshold):
        """Report callbacks that block the loop longer than `threshold` (seconds, or a
        string like "50ms"); None turns the detector off."""
        from ringloop.monitor import BlockingMonitor, parse_threshold
        cdef object seconds = parse_threshold(threshold)
        self._check_closed()
        if seconds is None:
            self._monitor_off()
            return
        if self._blocking is None:
            self._blocking = BlockingMonitor(self)
        self._blocking.threshold = seconds
        if self._mon != NULL:
            rl_mon_set_threshold(self._mon, seconds_to_ns(seconds))
            return
        self._mon = monitor_new(seconds, self._blocking.describe)
        if self._thread_ident != 0:     # set from inside the running loop
            self._monitor_enter()

    cdef int _monitor_off(self) except -1:
        # Stops the watchdog; imports nothing, so close() may call it at interpreter
        # shutdown (a loop closed by its __del__).
        if self._mon != NULL:
            monitor_free(self._mon)
            self._mon = NULL
        return 0

    def get_warn_blocking(self):
        """The blocking detector's threshold in seconds, or None when it is off."""
        if self._mon == NULL:
            return None
        return self._mon.threshold_ns / 1e9

    def blocking_report(self):
        """The places that blocked this loop, most total blocked time first: a list of
        dicts (site, function, count, total, worst, callback)."""
        if self._blocking is None:
            return []
        return self._blocking.ranking()
