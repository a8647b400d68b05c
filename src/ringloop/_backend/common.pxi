# The interface every kernel backend implements, and the per-fd interest record.
#
# The loop owns one FdWatch per watched fd (reader/writer handles and the wanted poll
# mask). When a watch's interest changes the loop calls backend.update(watch); when the
# loop waits it calls backend.wait(loop, timeout) and the backend hands each readiness
# event back with loop.fd_ready(watch, revents). Readiness is level-triggered on both
# backends, as asyncio's add_reader is.

cdef class FdWatch:
    cdef:
        int fd
        object reader           # Handle or None
        object writer           # Handle or None
        uint32_t want           # POLLIN | POLLOUT wanted now
        uint32_t kernel_mask    # what the kernel currently has (epoll: registered; io_uring: armed)
        bint armed              # io_uring: a POLL_ADD is in flight
        uint32_t gen            # io_uring: generation of the armed poll
        bint dirty              # io_uring: queued for reconciliation
        bint internal           # the loop's own wake-up fd, not a user reader
        # A sock_* operation's wait ends after one event; a watch whose handles are
        # all such waits is "one-shot" (epoll: EPOLLONESHOT, see epoll.pxi).
        bint reader_oneshot
        bint writer_oneshot
        bint registered         # epoll: the kernel has an entry for fd (maybe disarmed)
        bint kernel_oneshot     # epoll: that entry is EPOLLONESHOT

    def __cinit__(self, int fd):
        self.fd = fd

    cdef inline bint oneshot(self):
        if self.reader is None and self.writer is None:
            return False        # no handle (or the loop's own wake-up fd)
        return ((self.reader is None or self.reader_oneshot)
                and (self.writer is None or self.writer_oneshot))


cdef class Backend:
    cdef readonly str name

    cdef int update(self, CoreLoop loop, FdWatch w) except -1:
        raise NotImplementedError

    cdef int wait(self, CoreLoop loop, double timeout) except -1:
        # timeout < 0: no limit; 0: do not block. Dispatches events to loop.fd_ready().
        raise NotImplementedError

    cdef bint has_pending(self) noexcept:
        # Whether wait() has submissions to make even when nothing is watched.
        return False

    cdef int prepare_thread(self, CoreLoop loop) except -1:
        # Called when the loop starts running in the calling thread.
        return 0

    cdef int reinit(self, CoreLoop loop) except -1:
        # A new kernel object (after fork(), or for a new issuing thread); every
        # watch is registered again.
        raise NotImplementedError

    cdef close(self):
        pass

    cdef dict info(self):
        return {}


cdef inline int64_t timeout_to_ns(double timeout) noexcept:
    # asyncio caps a selector wait at one day (base_events.MAXIMUM_SELECT_TIMEOUT).
    if timeout < 0:
        return -1
    if timeout > 86400.0:
        timeout = 86400.0
    return <int64_t>(timeout * 1e9 + 0.5)
