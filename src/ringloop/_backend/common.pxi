# The interface every kernel backend implements, and the per-fd interest record.
#
# The loop owns one FdWatch per watched fd (reader/writer handles and the wanted poll
# mask), made by the backend (new_watch), whose subclass of FdWatch keeps what the
# backend knows of the kernel's side: the loop never reads it. When a watch's interest
# changes the loop calls backend.update(watch); when the loop waits it calls
# backend.wait(loop, timeout) and the backend hands each readiness event back with
# loop.fd_ready(watch, revents). Readiness is level-triggered on both backends, as
# asyncio's add_reader is.

cdef class FdWatch:
    # Declared in backend.pxd; backends subclass it.

    def __cinit__(self, int fd):
        self.fd = fd

    cdef inline bint user(self):
        # Some handle came from add_reader/add_writer.
        return ((self.reader is not None and self.reader_mode == WATCH_USER)
                or (self.writer is not None and self.writer_mode == WATCH_USER))

    cdef inline bint oneshot(self):
        # Every handle is a sock_* operation's wait, which ends after one event
        # (epoll: EPOLLONESHOT, see epoll.pxi).
        if self.reader is None and self.writer is None:
            return False        # no handle (or the loop's own wake-up fd)
        return ((self.reader is None or self.reader_mode == WATCH_ONESHOT)
                and (self.writer is None or self.writer_mode == WATCH_ONESHOT))

    cdef inline bint drains_only(self):
        # Only a reader that drains the fd (a transport) is watched: a notification
        # per wake-up is enough for it (io_uring: a multishot poll, see uring.pxi).
        return (self.writer is None and self.reader is not None
                and self.reader_mode == WATCH_DRAINS)


cdef class Op:
    # Declared in backend.pxd.

    cdef int complete(self, int res, bint more) except -1:
        # One completion: res as in io_uring_cqe.res (>= 0, or -errno); more: the
        # operation stays in flight (multishot). Called inside the backend's reap:
        # schedule work, never run user code here. A final -ECANCELED on an Op that
        # was not cancelled means the ring went away under it (fork): submit again.
        return 0


cdef class Backend:
    # Declared in backend.pxd: what the loop and the transports know of a backend.

    cdef FdWatch new_watch(self, int fd):
        # The loop's record for fd, of the backend's own subclass.
        return FdWatch(fd)

    cdef bint holds(self, FdWatch w) noexcept:
        # Whether the kernel keeps state for w's fd that outlives its interest (want
        # 0): the loop then keeps w at its fd, for the backend to find it again.
        return False

    cdef void reregister(self, FdWatch w) noexcept:
        pass

    cdef bint owned_by_current_thread(self) noexcept:
        # Whether the calling thread is the one that submits to the kernel object:
        # a fork() from it can still cancel what the backend has in flight.
        return True

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

    # Operations by completion (io_uring only). Callers check has_ops() and fall back
    # to readiness where it is False (epoll).
    cdef bint has_ops(self) noexcept:
        return False

    cdef int submit_accept(self, Op op, int fd, bint multishot, void *addr,
                           unsigned int *addrlen) except -1:
        # accept4(fd, addr, addrlen, SOCK_NONBLOCK | SOCK_CLOEXEC); res: the new fd.
        raise NotImplementedError

    cdef int submit_recv(self, Op op, int fd, void *buf, size_t size) except -1:
        # recv(fd, buf, size, 0); res: the byte count.
        raise NotImplementedError

    cdef int submit_send(self, Op op, int fd, const void *buf, size_t size) except -1:
        # send(fd, buf, size, MSG_NOSIGNAL | MSG_WAITALL); res: the byte count.
        raise NotImplementedError

    cdef int cancel_op(self, CoreLoop loop, Op op) except -1:
        # Ask the kernel to end op; its final completion still comes (complete()).
        raise NotImplementedError

    cdef close(self, CoreLoop loop):
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
