# The backend contract (bodies: _backend/common.pxi; the two backends: epoll.pxi and
# uring.pxi, which keep their own classes private). The loop and the transports use a
# backend only through the methods of Backend; a backend keeps what it knows of the
# kernel's side of a watch in its own subclass of FdWatch (made by new_watch), which
# nothing outside it reads.

cdef enum:
    # How a watch's handle consumes readiness (FdWatch.reader_mode / writer_mode).
    WATCH_LEVEL = 0      # level-triggered, as asyncio's selectors (transports' writers, pipes)
    WATCH_ONESHOT = 1    # a sock_* operation: done after one event
    WATCH_DRAINS = 2     # a transport: reads until the fd would block, or asks again
    WATCH_USER = 3       # add_reader/add_writer: level-triggered; the caller owns the fd
                         # and may close it without removing the watch (FdWatch.user)


cdef class FdWatch:
    # The loop's record of one watched fd: its handles and the poll mask they want.
    cdef:
        int fd
        object reader           # Handle or None
        object writer           # Handle or None
        uint32_t want           # POLLIN | POLLOUT wanted now
        bint internal           # the loop's own wake-up fd, not a user reader
        # How each direction's handle uses its events (WATCH_*).
        unsigned char reader_mode
        unsigned char writer_mode
        # Set during an update by a watcher that closes the fd only after the loop's
        # next kernel wait: a cancel of its poll can wait for that wait's submission.
        bint close_later
        # What add_reader/add_writer was given (asyncio's SelectorKey.fileobj), so
        # remove_reader/remove_writer find the watch of a socket closed since; None
        # when no handle of the watch is the user's.
        object fileobj

    # Some handle came from add_reader/add_writer.
    cdef inline bint user(self)
    # Every handle is a sock_* operation's wait, which ends after one event.
    cdef inline bint oneshot(self)
    # Only a reader that drains the fd (a transport) is watched.
    cdef inline bint drains_only(self)


cdef class Op:
    # One kernel operation submitted by completion (Backend.has_ops()). The backend
    # keeps the Op from submission to its final completion, also after a cancel, so
    # what it references (buffers the kernel writes, the socket) stays alive while the
    # kernel may touch it. Subclasses hold those objects and override complete().
    cdef:
        uint32_t slot           # index in the backend's slot table while in flight
        uint32_t gen            # generation of the submission, in its user_data
        bint in_flight          # submitted, final completion not yet seen
        bint cancelled          # cancel asked: the owner no longer waits for results

    # One completion: res as in io_uring_cqe.res (>= 0, or -errno); more: the
    # operation stays in flight (multishot). Called inside the backend's reap:
    # schedule work, never run user code. A final -ECANCELED on an Op that was not
    # cancelled means the ring went away under it (fork): submit again.
    cdef int complete(self, int res, bint more) except -1


cdef class Backend:
    cdef readonly str name

    # ---- readiness (both backends) ----
    # The loop's record for fd, of the backend's own FdWatch subclass.
    cdef FdWatch new_watch(self, int fd)
    # Whether the kernel keeps state for w's fd past its interest (want 0): the loop
    # then keeps w at its fd.
    cdef bint holds(self, FdWatch w) noexcept
    # What the kernel has for w may be stale (its fd closed and the number reused):
    # the next update registers w afresh.
    cdef void reregister(self, FdWatch w) noexcept
    # w's interest (want, modes, handles) changed: bring the kernel in line, now or
    # before the next wait.
    cdef int update(self, CoreLoop loop, FdWatch w) except -1
    # Wait up to timeout (< 0: no limit; 0: do not block); hand each event to
    # loop.fd_ready(watch, revents).
    cdef int wait(self, CoreLoop loop, double timeout) except -1
    # Whether wait() has submissions to make even when nothing is watched.
    cdef bint has_pending(self) noexcept

    # ---- threads and fork ----
    # The loop starts running in the calling thread.
    cdef int prepare_thread(self, CoreLoop loop) except -1
    # Whether the calling thread is the one that submits to the kernel object.
    cdef bint owned_by_current_thread(self) noexcept
    # New kernel objects (after fork(), whose child shares the parent's); every
    # watch is registered again, every Op in flight ends with -ECANCELED.
    cdef int reinit(self, CoreLoop loop) except -1

    # ---- operations by completion (io_uring only; callers check has_ops()) ----
    cdef bint has_ops(self) noexcept
    # accept4(fd, addr, addrlen, SOCK_NONBLOCK | SOCK_CLOEXEC); res: the new fd.
    cdef int submit_accept(self, Op op, int fd, bint multishot, void *addr,
                           unsigned int *addrlen) except -1
    # recv(fd, buf, size, 0); res: the byte count.
    cdef int submit_recv(self, Op op, int fd, void *buf, size_t size) except -1
    # send(fd, buf, size, MSG_NOSIGNAL | MSG_WAITALL); res: the byte count.
    cdef int submit_send(self, Op op, int fd, const void *buf, size_t size) except -1
    # Ask the kernel to end op; its final completion still comes.
    cdef int cancel_op(self, CoreLoop loop, Op op) except -1

    cdef close(self, CoreLoop loop)
    cdef dict info(self)
