# The interface every kernel backend implements, and the per-fd interest record.
#
# The loop owns one FdWatch per watched fd (reader/writer handles and the wanted poll
# mask). When a watch's interest changes the loop calls backend.update(watch); when the
# loop waits it calls backend.wait(loop, timeout) and the backend hands each readiness
# event back with loop.fd_ready(watch, revents). Readiness is level-triggered on both
# backends, as asyncio's add_reader is.

cdef enum:
    # How a watch's handle consumes readiness (FdWatch.reader_mode / writer_mode).
    WATCH_LEVEL = 0      # level-triggered, as asyncio's selectors (transports' writers, pipes)
    WATCH_ONESHOT = 1    # a sock_* operation: done after one event
    WATCH_DRAINS = 2     # a transport: reads until the fd would block, or asks again
    WATCH_USER = 3       # add_reader/add_writer: level-triggered; the caller owns the fd
                         # and may close it without removing the watch (FdWatch.user)


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
        # How each direction's handle uses its events (WATCH_* below).
        unsigned char reader_mode
        unsigned char writer_mode
        bint registered         # epoll: the kernel has an entry for fd (maybe disarmed)
        bint kernel_oneshot     # epoll: that entry is EPOLLONESHOT
        bint kernel_multishot   # io_uring: the armed poll is multishot
        bint peer_closed        # io_uring: a poll reported POLLRDHUP/POLLHUP/POLLERR
        # Set during an update by a watcher that closes the fd only after the loop's
        # next kernel wait: a cancel of its poll can wait for that wait's submission.
        bint close_later
        int epfd                # io_uring: the epoll instance an add_reader/add_writer
                                # watch is polled through (uring.pxi), or -1
        # What add_reader/add_writer was given (asyncio's SelectorKey.fileobj), so
        # remove_reader/remove_writer find the watch of a socket closed since; None
        # when no handle of the watch is the user's.
        object fileobj

    def __cinit__(self, int fd):
        self.fd = fd
        self.epfd = -1

    cdef inline bint user(self):
        # Some handle came from add_reader/add_writer (io_uring polls it through epoll).
        return ((self.reader is not None and self.reader_mode == WATCH_USER)
                or (self.writer is not None and self.writer_mode == WATCH_USER))

    cdef inline bint oneshot(self):
        # Every handle is a sock_* operation's wait, which ends after one event
        # (epoll: EPOLLONESHOT, see epoll.pxi).
        if self.reader is None and self.writer is None:
            return False        # no handle (or the loop's own wake-up fd)
        return ((self.reader is None or self.reader_mode == WATCH_ONESHOT)
                and (self.writer is None or self.writer_mode == WATCH_ONESHOT))

    cdef inline bint multishot(self):
        # Only a reader that drains the fd (a transport) is watched: a notification
        # per wake-up is enough for it (io_uring: a multishot poll, see uring.pxi).
        # Not once the peer has closed: a short read does not consume the EOF, so
        # from then on the reader needs level-triggered events to see it.
        return (self.writer is None and self.reader is not None
                and self.reader_mode == WATCH_DRAINS and not self.peer_closed)


cdef class Op:
    # One kernel operation submitted by completion (io_uring; Backend.has_ops()). The
    # backend keeps the Op in a slot from submission to its final completion (one
    # without IORING_CQE_F_MORE), also after a cancel, so everything the Op references
    # (buffers the kernel writes, the socket) stays alive while the kernel may touch
    # it. Subclasses hold those objects and override complete().
    cdef:
        uint32_t slot           # index in the backend's slot table while in flight
        uint32_t gen            # generation of the submission, in its user_data
        bint in_flight          # submitted, final completion not yet seen
        bint cancelled          # cancel asked: the owner no longer waits for results

    cdef int complete(self, int res, bint more) except -1:
        # One completion: res as in io_uring_cqe.res (>= 0, or -errno); more: the
        # operation stays in flight (multishot). Called inside the backend's reap:
        # schedule work, never run user code here. A final -ECANCELED on an Op that
        # was not cancelled means the ring went away under it (fork): submit again.
        return 0


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
