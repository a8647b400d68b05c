# The epoll backend: level-triggered epoll(7), interest changes applied at once with
# epoll_ctl so errors (EBADF, EPERM for regular files) reach add_reader's caller,
# exactly as asyncio's selector does. Waits use epoll_pwait2 (nanosecond timeout,
# Linux 5.11) and fall back to epoll_wait (milliseconds, rounded up) without it.
#
# One-shot watches (only sock_* operations waiting, see FdWatch.oneshot) are
# registered with EPOLLONESHOT: the kernel disarms the entry when it reports it, so
# the wait that ends costs no EPOLL_CTL_DEL and the next one re-arms the kept entry
# with one EPOLL_CTL_MOD (instead of an ADD and a DEL per wait). A disarmed entry
# reports nothing, not even EPOLLHUP/EPOLLERR (epoll_ctl(2)), so one left behind for
# a socket closed while another fd still refers to it cannot wake the loop.

cdef extern from "<sys/epoll.h>" nogil:
    union epoll_data_t:
        void *ptr
        int fd
        uint32_t u32
        uint64_t u64
    struct epoll_event:
        uint32_t events
        epoll_data_t data
    int epoll_create1(int flags)
    int epoll_ctl(int epfd, int op, int fd, epoll_event *event)
    int epoll_wait(int epfd, epoll_event *events, int maxevents, int timeout)
    int epoll_pwait2(int epfd, epoll_event *events, int maxevents, const timespec *timeout, const void *sigmask)
    int EPOLL_CLOEXEC
    int EPOLL_CTL_ADD
    int EPOLL_CTL_MOD
    int EPOLL_CTL_DEL
    int EPOLLONESHOT


cdef class EpollWatch(FdWatch):
    cdef:
        uint32_t kernel_mask    # what the kernel's entry has armed
        bint registered         # the kernel has an entry for fd (maybe disarmed)
        bint kernel_oneshot     # that entry is EPOLLONESHOT


cdef class EpollBackend(Backend):
    cdef:
        int epfd
        epoll_event *events
        int max_events
        bint use_pwait2
        list fired_oneshot      # one-shot watches reported by the last wait

    def __cinit__(self):
        self.epfd = -1
        self.name = "epoll"
        self.use_pwait2 = True
        self.fired_oneshot = []
        self.max_events = 256
        self.events = <epoll_event *>PyMem_Malloc(self.max_events * sizeof(epoll_event))
        if self.events == NULL:
            raise MemoryError()
        self._open()

    cdef _open(self):
        self.epfd = epoll_create1(EPOLL_CLOEXEC)
        if self.epfd < 0:
            raise os_error(errno)

    cdef FdWatch new_watch(self, int fd):
        return EpollWatch(fd)

    cdef bint holds(self, FdWatch w) noexcept:
        return (<EpollWatch>w).registered

    cdef void reregister(self, FdWatch w) noexcept:
        (<EpollWatch>w).kernel_mask = 0

    cdef int update(self, CoreLoop loop, FdWatch watch) except -1:
        cdef EpollWatch w = <EpollWatch>watch
        cdef epoll_event ev
        cdef int op, rc
        cdef bint oneshot = w.oneshot()
        if w.want == w.kernel_mask and (w.want == 0 or oneshot == w.kernel_oneshot):
            return 0        # also: a one-shot entry the kernel disarmed stays kept
        if w.want == 0:
            # The fd may already be closed (the kernel then dropped it): not an error,
            # as in selectors.EpollSelector.unregister.
            epoll_ctl(self.epfd, EPOLL_CTL_DEL, w.fd, &ev)
            w.kernel_mask = 0
            w.registered = False
            return 0
        ev.events = w.want | (EPOLLONESHOT if oneshot else 0)
        ev.data.u64 = <uint64_t>w.fd
        op = EPOLL_CTL_MOD if w.registered else EPOLL_CTL_ADD
        rc = epoll_ctl(self.epfd, op, w.fd, &ev)
        if rc < 0 and op == EPOLL_CTL_MOD and errno == ENOENT:
            # The fd number was closed and reused behind our back: register afresh.
            rc = epoll_ctl(self.epfd, EPOLL_CTL_ADD, w.fd, &ev)
        elif rc < 0 and op == EPOLL_CTL_ADD and errno == EEXIST:
            rc = epoll_ctl(self.epfd, EPOLL_CTL_MOD, w.fd, &ev)
        if rc < 0:
            raise os_error(errno)
        w.kernel_mask = w.want
        w.kernel_oneshot = oneshot
        w.registered = True
        return 0

    cdef int _rearm_fired(self, CoreLoop loop) except -1:
        # A one-shot watch whose handler did not end its wait (the operation would
        # still block) is armed again before the next wait.
        cdef EpollWatch w
        cdef list fired = self.fired_oneshot
        if not fired:
            return 0
        self.fired_oneshot = []
        for w in fired:
            self.update(loop, w)
        return 0

    cdef int wait(self, CoreLoop loop, double timeout) except -1:
        cdef int64_t ns = timeout_to_ns(timeout)
        cdef timespec ts
        cdef int n, i, ms
        cdef int err = 0
        cdef EpollWatch w
        self._rearm_fired(loop)
        if self.use_pwait2:
            ts.tv_sec = ns // 1000000000
            ts.tv_nsec = ns % 1000000000
            if ns == 0:
                n = epoll_pwait2(self.epfd, self.events, self.max_events, &ts, NULL)
            else:
                with nogil:
                    n = epoll_pwait2(self.epfd, self.events, self.max_events,
                                     &ts if ns > 0 else NULL, NULL)
            if n < 0 and errno == ENOSYS:
                self.use_pwait2 = False
                return 0
        else:
            ms = -1 if ns < 0 else <int>((ns + 999999) // 1000000)
            with nogil:
                n = epoll_wait(self.epfd, self.events, self.max_events, ms)
        if n < 0:
            err = errno
            if err == EINTR:
                PyErr_CheckSignals()
                return 0
            raise os_error(err)
        for i in range(n):
            w = <EpollWatch>loop.watch_at(<int>self.events[i].data.u64)
            if w is None:
                continue
            if w.kernel_oneshot:
                w.kernel_mask = 0       # the kernel disarmed the entry
                self.fired_oneshot.append(w)
            loop.fd_ready(w, self.events[i].events)
        if n == self.max_events:
            self._grow()
        return n

    cdef _grow(self):
        cdef epoll_event *bigger = <epoll_event *>PyMem_Realloc(
            self.events, 2 * self.max_events * sizeof(epoll_event))
        if bigger != NULL:
            self.events = bigger
            self.max_events *= 2

    cdef int reinit(self, CoreLoop loop) except -1:
        # After fork() the epoll instance is shared with the parent: close our copy
        # without touching its interest list, and build our own.
        if self.epfd >= 0:
            close(self.epfd)
            self.epfd = -1
        self._open()
        self.fired_oneshot = []
        for w in loop.iter_watches():
            (<EpollWatch>w).kernel_mask = 0
            (<EpollWatch>w).registered = False
            self.update(loop, <FdWatch>w)
        return 0

    cdef close(self, CoreLoop loop):
        if self.epfd >= 0:
            close(self.epfd)
            self.epfd = -1

    cdef dict info(self):
        return {"wait": "epoll_pwait2" if self.use_pwait2 else "epoll_wait"}

    def __dealloc__(self):
        if self.epfd >= 0:
            close(self.epfd)
        PyMem_Free(self.events)
