# CoreLoop (bodies: _loop.pxi): the compiled half of ringloop.Loop. It owns the ready
# queue, the timer heap, the fd watches and the backend, and runs iterations. The
# Python half (ringloop/_loopclass.py and its parts) is described by LOOP_PARTS in
# ringloop/_parts.py; docs/architecture.md draws both.

cdef enum:
    # The loop's receive buffer, lent to the transports (_receive_buffer): bytes asked
    # of one recv() into it (asyncio's max_size).
    RECV_SIZE = 256 * 1024
    # Writes gather at most this many buffers per sendmsg()/writev() (well under
    # IOV_MAX = 1024).
    MAX_IOV = 64
    # loop.stats() gives timer lag percentiles over this many recent timers.
    TIMER_LAG_WINDOW = 512


cdef class CoreLoop:
    cdef:
        ReadyQueue ready
        TimerHeap timers
        readonly Py_ssize_t _timer_cancelled
        bint _stopping
        # readonly: asyncio.BaseEventLoop and uvloop.Loop both have a `_closed`
        # attribute that code outside the loop reads (uvloop's test_close does).
        readonly bint _closed
        public bint _debug
        bint _polling
        bint _wakeup_sent        # the eventfd was written during the current wait
        unsigned long _thread_ident
        readonly object _thread_id
        Backend _backend
        list _watches            # fd -> its FdWatch, or None
        Py_ssize_t _n_user_watches
        int _wake_fd
        uint64_t _fork_gen
        object _task_factory
        # What the timers read instead of the monotonic clock when loop.time is
        # replaced (mock.patch.object(loop, "time", ...), or a subclass's time()), as
        # asyncio's scheduler reads self.time(); None: not replaced.
        object _clock
        object _old_agen_hooks
        public double slow_callback_duration
        int64_t _run_started_ns
        int64_t st_in_run_ns
        uint64_t st_iterations, st_callbacks, st_timers_scheduled, st_timers_fired
        uint64_t st_timers_cancelled, st_io_waits, st_io_events, st_threadsafe_wakeups
        int64_t st_wait_ns
        char *_recv_buf          # the transports' receive buffer (RECV_SIZE), made on first use
        readonly dict _transports  # fd -> the transport that owns it (asyncio's loop._transports)
        # The sock_* layer's per-loop state, which only that layer reads (sockops.pxi).
        SockRecvState _sock_recv
        # blocking detector (_monitor/): the watchdog's shared state, NULL when off,
        # and the reports (ringloop.monitor.BlockingMonitor)
        rl_monitor *_mon
        object _blocking
        uint64_t st_blocks
        int _outer_depth        # Python frames below run_forever: the caller's
        # loop health: how late the last TIMER_LAG_WINDOW timers ran (a ring of seconds)
        double _timer_lag[TIMER_LAG_WINDOW]

    # ---- the loop API for transports, listeners and sock_* operations ----
    # A handle for a callback (no debug checks: the callers are the loop's own).
    cdef inline Handle _new_handle(self, callback, tuple args, context)
    # call_soon on the loop's thread, for a callable the loop's own code passes.
    cdef int _soon(self, callback, tuple args) except -1
    # Queue an existing handle for the next pass (a transport reading again).
    cdef inline int queue_handle(self, Handle handle) except -1
    # Put a handle in fd's watch for one direction (mode: WATCH_*), or take it out;
    # close_later: the caller closes fd only after the loop's next kernel wait.
    cdef int _watch_fd(self, int fd, bint writer, Handle handle,
                       unsigned char mode=*) except -1
    cdef int _unwatch_fd(self, int fd, bint writer, bint close_later=*) except -1
    # Stop watching fd for `handle`, if it still holds the watch (sock_* waits).
    cdef int _drop_watch_handle(self, int fd, bint writer, Handle handle) except -1
    # add_reader's path for a sock_* wait: one event, then done (WATCH_ONESHOT).
    cdef _set_watch_handle(self, fileobj, bint writer, callback, tuple args,
                           bint sock_wait=*)
    # The receive buffer (RECV_SIZE bytes), borrowed until the caller returns to
    # the loop: copy out what is kept.
    cdef char *_receive_buffer(self) except NULL
    cdef inline int _check_closed(self) except -1
    # Before touching kernel objects: a loop inherited across fork() makes new ones.
    cdef int _check_fork(self) except -1

    # ---- for the backends ----
    cdef FdWatch watch_at(self, int fd)
    cdef list iter_watches(self)
    # A backend's event: w's fd is ready (revents: POLL* bits).
    cdef int fd_ready(self, FdWatch w, uint32_t revents) except -1

    # ---- inside the loop ----
    cdef FdWatch _watch_for(self, int fd)
    cdef int _apply_interest(self, FdWatch w) except -1
    cdef _open_wakeup(self)
    cdef int _fd_from(self, fileobj) except -1
    cdef int _watched_fd(self, fileobj) except -1
    cdef int _check_watchable(self, int fd) except -1
    cdef object _swap_handle(self, int fd, bint writer, handle, unsigned char mode=*)
    cdef bint _clear_watch_handle(self, fileobj, bint writer) except -1
    cdef int _debug_checks(self, callback, str method, bint thread) except -1
    cdef TimerHandle _call_at(self, double when, callback, tuple args, context)
    # The loop's clock: monotonic, or loop.time where it was replaced (_clock).
    cdef inline double _now(self) except? -1
    cdef _clock_changed(self)
    cdef int _drop_cancelled_timers(self) except -1
    cdef int _poll(self, double timeout) except -1
    cdef int _run_once(self) except -1
    cdef int _run_timed(self, Handle h) except -1
    cdef int _check_running(self) except -1
    cdef dict _timer_lag_summary(self)

    # ---- the blocking detector's hooks (bodies at the end of _loop.pxi) ----
    cdef int _run_monitored(self, Handle h) except -1
    cdef int _report_block(self, Handle h, uint64_t seq) except -1
    cdef int _monitor_enter(self) except -1
    cdef int _monitor_off(self) except -1
