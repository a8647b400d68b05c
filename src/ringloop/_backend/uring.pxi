# The io_uring backend. Readiness (add_reader/add_writer) is a one-shot IORING_OP_POLL_ADD
# per watched fd, re-armed after each event once its callback has run: a one-shot poll
# checks readiness when it is armed, so this is level-triggered like epoll (a multishot
# poll fires on wake-ups only, which would lose a partially drained reader). A watch
# whose reader drains the fd (FdWatch.multishot: transports, listeners) gets a multishot
# poll instead, which stays armed: no re-arming SQE per event. (IORING_POLL_ADD_LEVEL
# cannot be combined with IORING_POLL_ADD_MULTI: the kernel answers EINVAL.)
# Interest changes are batched: the watch is marked dirty and reconciled just before the
# next io_uring_enter, which submits them together with the wait.
#
# An add_reader/add_writer watch (FdWatch.user) is polled through an epoll instance
# of its own (FdWatch.epfd), which holds just that fd: the ring polls the epoll fd.
# An armed IORING_OP_POLL_ADD holds a reference to the file it polls, so a socket its
# owner closed without remove_reader() would stay open in the kernel (no EOF for the
# peer) for as long as the poll stays armed, and a poll on a file whose last fd is
# closed is never woken by that close. An epoll entry holds no reference and goes
# away with the file (epoll(7)), as asyncio's selector sees it. One instance per
# watch, not one for all: its readiness then names the watch, without an epoll_wait.
#
# Operations by completion (Op, common.pxi: accept, recv, send) live in a slot table:
# an Op holds its slot from submission to its final CQE (no IORING_CQE_F_MORE), so the
# buffers and sockets it references outlive anything the kernel may still do with
# them, also after an IORING_OP_ASYNC_CANCEL. Ring teardown cancels every Op and waits
# for their final CQEs before the ring goes (close); after fork the child's ring is
# new, so its Ops are ended with -ECANCELED and their owners submit them again.
#
# user_data layout: kind (8 bits) | generation (24 bits) | fd or slot (32 bits). A
# poll completion whose generation is not the watch's current one is stale (a
# cancelled poll) and is ignored, so no Python object is ever referenced from the
# kernel.

from libc.stdint cimport uint16_t

cdef extern from "<sys/socket.h>" nogil:
    enum:
        MSG_WAITALL

cdef extern from "ring.h" nogil:
    struct io_uring:
        pass
    struct io_uring_sqe:
        uint64_t user_data
        uint16_t ioprio
    struct io_uring_cqe:
        uint64_t user_data
        int res
        uint32_t flags
    ctypedef struct rl_ring:
        io_uring ring
        unsigned setup_flags
        unsigned features
        int initialized
        int enabled
    int rl_ring_init(rl_ring *r, unsigned entries)
    int rl_ring_enable(rl_ring *r)
    io_uring_sqe *rl_ring_sqe(rl_ring *r, int *err)
    int rl_ring_wait(rl_ring *r, long long timeout_ns)
    int rl_ring_idle(rl_ring *r)
    long rl_current_tid()
    int rl_ring_opcode_supported(rl_ring *r, int opcode)
    void rl_ring_exit(rl_ring *r)
    void io_uring_prep_poll_add(io_uring_sqe *sqe, int fd, unsigned poll_mask)
    void io_uring_prep_poll_multishot(io_uring_sqe *sqe, int fd, unsigned poll_mask)
    void io_uring_prep_cancel64(io_uring_sqe *sqe, uint64_t user_data, int flags)
    void io_uring_prep_accept(io_uring_sqe *sqe, int fd, void *addr, unsigned int *addrlen,
                              int flags)
    void io_uring_prep_multishot_accept(io_uring_sqe *sqe, int fd, void *addr,
                                        unsigned int *addrlen, int flags)
    void io_uring_prep_recv(io_uring_sqe *sqe, int fd, void *buf, size_t len, int flags)
    void io_uring_prep_send(io_uring_sqe *sqe, int fd, const void *buf, size_t len, int flags)
    void io_uring_sqe_set_data64(io_uring_sqe *sqe, uint64_t data)
    unsigned io_uring_peek_batch_cqe(io_uring *ring, io_uring_cqe **cqes, unsigned count)
    void io_uring_cq_advance(io_uring *ring, unsigned nr)
    unsigned io_uring_sq_ready(const io_uring *ring)
    int io_uring_submit_and_get_events(io_uring *ring)
    enum:
        IORING_SETUP_SQPOLL
        IORING_SETUP_SUBMIT_ALL
        IORING_SETUP_COOP_TASKRUN
        IORING_SETUP_SINGLE_ISSUER
        IORING_SETUP_DEFER_TASKRUN
        IORING_SETUP_R_DISABLED
        IORING_SETUP_TASKRUN_FLAG
        IORING_FEAT_NODROP
        IORING_CQE_F_MORE
        IORING_ASYNC_CANCEL_ANY
        IORING_RECVSEND_POLL_FIRST
        IORING_FEAT_EXT_ARG
        IORING_FEAT_FAST_POLL
        IORING_FEAT_NATIVE_WORKERS
        IORING_FEAT_SUBMIT_STABLE
        IORING_OP_POLL_ADD
        IORING_OP_POLL_REMOVE
        IORING_OP_RECV
        IORING_OP_SEND
        IORING_OP_ACCEPT
        IORING_OP_CONNECT
        IORING_OP_READ
        IORING_OP_WRITE
        IORING_OP_OPENAT
        IORING_OP_STATX
        IORING_OP_FSYNC
        IORING_OP_CLOSE
        IORING_OP_TIMEOUT
        IORING_OP_ASYNC_CANCEL
        IORING_OP_PROVIDE_BUFFERS
        IORING_OP_SENDMSG
        IORING_OP_RECVMSG
        IORING_OP_SPLICE

cdef enum:
    RING_ENTRIES = 256
    CQE_BATCH = 256
    KIND_POLL = 1
    KIND_IGNORE = 2
    KIND_OP = 3
    # How long ring teardown waits for the final CQEs of cancelled Ops (socket
    # operations end at once on cancel; this only bounds a kernel that does not).
    TEARDOWN_WAIT_NS = 1000000000

cdef inline uint64_t poll_token(uint32_t gen, int fd) noexcept:
    return (<uint64_t>KIND_POLL << 56) | (<uint64_t>(gen & 0xFFFFFF) << 32) | <uint32_t>fd

cdef inline uint64_t op_token(Op op) noexcept:
    return (<uint64_t>KIND_OP << 56) | (<uint64_t>(op.gen & 0xFFFFFF) << 32) | op.slot

# Ops whose final CQE never came before their ring went (teardown timed out, or the
# ring was left to another thread): kept referenced for the life of the process,
# since the kernel may still write into their buffers.
cdef list _orphaned_ops = []

_SETUP_FLAG_NAMES = (
    (IORING_SETUP_SINGLE_ISSUER, "SINGLE_ISSUER"), (IORING_SETUP_DEFER_TASKRUN, "DEFER_TASKRUN"),
    (IORING_SETUP_COOP_TASKRUN, "COOP_TASKRUN"), (IORING_SETUP_SUBMIT_ALL, "SUBMIT_ALL"),
    (IORING_SETUP_R_DISABLED, "R_DISABLED"), (IORING_SETUP_TASKRUN_FLAG, "TASKRUN_FLAG"),
)
_FEATURE_NAMES = (
    (IORING_FEAT_NODROP, "NODROP"), (IORING_FEAT_EXT_ARG, "EXT_ARG"),
    (IORING_FEAT_FAST_POLL, "FAST_POLL"), (IORING_FEAT_NATIVE_WORKERS, "NATIVE_WORKERS"),
    (IORING_FEAT_SUBMIT_STABLE, "SUBMIT_STABLE"),
)
_OPCODE_NAMES = (
    (IORING_OP_POLL_ADD, "POLL_ADD"), (IORING_OP_POLL_REMOVE, "POLL_REMOVE"),
    (IORING_OP_RECV, "RECV"), (IORING_OP_SEND, "SEND"), (IORING_OP_SENDMSG, "SENDMSG"),
    (IORING_OP_RECVMSG, "RECVMSG"), (IORING_OP_ACCEPT, "ACCEPT"), (IORING_OP_CONNECT, "CONNECT"),
    (IORING_OP_READ, "READ"), (IORING_OP_WRITE, "WRITE"), (IORING_OP_OPENAT, "OPENAT"),
    (IORING_OP_STATX, "STATX"), (IORING_OP_FSYNC, "FSYNC"), (IORING_OP_CLOSE, "CLOSE"),
    (IORING_OP_TIMEOUT, "TIMEOUT"), (IORING_OP_ASYNC_CANCEL, "ASYNC_CANCEL"),
    (IORING_OP_PROVIDE_BUFFERS, "PROVIDE_BUFFERS"), (IORING_OP_SPLICE, "SPLICE"),
)
REQUIRED_OPCODES = ("POLL_ADD", "ASYNC_CANCEL")


cdef list _flag_names(unsigned value, tuple table):
    return [name for bit, name in table if value & bit]


@cython.no_gc_clear      # __dealloc__ still needs the Ops in flight (their buffers)
cdef class UringBackend(Backend):
    cdef:
        rl_ring r
        list dirty
        long owner               # kernel task that enabled the ring: its only submitter
        uint32_t next_gen
        bint reaping             # inside _reap: the CQ batch is not yet advanced
        list ops                 # slot -> the Op in flight there, or None
        list free_slots
        Py_ssize_t n_ops         # Ops in flight
        dict user_watches        # fd -> FdWatch: the watches with an epoll fd
        io_uring_cqe *cqes[CQE_BATCH]

    def __cinit__(self):
        self.name = "io_uring"
        self.dirty = []
        self.ops = []
        self.free_slots = []
        self._open()
        self.user_watches = {}

    cdef _open(self):
        cdef int ret = rl_ring_init(&self.r, RING_ENTRIES)
        if ret < 0:
            raise os_error(-ret)
        for opname in REQUIRED_OPCODES:
            if not self.opcode_supported(opname):
                rl_ring_exit(&self.r)
                raise OSError(EINVAL, f"io_uring lacks IORING_OP_{opname}")
        self.owner = 0

    cdef bint opcode_supported(self, str opname):
        for op, name in _OPCODE_NAMES:
            if name == opname:
                return rl_ring_opcode_supported(&self.r, op)
        return False

    cdef int update(self, CoreLoop loop, FdWatch w) except -1:
        if w.user() or w.epfd >= 0:
            self._sync_user_epoll(w)
            if w.epfd >= 0:
                return self._mark_dirty(w)  # its poll holds only the epoll fd: no hurry
        self._mark_dirty(w)
        if w.want == 0 and w.armed and not w.close_later:
            # Cancel at once: an armed poll holds a reference to the file, and the user
            # may close the fd right after remove_reader() and expect the peer to see it.
            # (A transport closing in a later pass lets the cancel go with the next wait.)
            self._submit_now(loop)
        return 0

    cdef inline int _mark_dirty(self, FdWatch w) except -1:
        if not w.dirty:
            w.dirty = True
            self.dirty.append(w)
        return 0

    cdef int _sync_user_epoll(self, FdWatch w) except -1:
        # Puts w.fd in w's epoll instance with what w wants, made on first use; takes
        # it away once no add_reader/add_writer handle is left.
        cdef epoll_event ev
        cdef int rc
        cdef bint fresh = w.epfd < 0
        if not w.user():
            self._release_epoll(w)
            return 0
        if fresh:
            w.epfd = epoll_create1(EPOLL_CLOEXEC)
            if w.epfd < 0:
                w.epfd = -1
                raise os_error(errno)
            self.user_watches[w.fd] = w
            w.kernel_mask = 0           # re-armed on the epoll fd (a sock_* wait's poll
                                        # on w.fd, if any, is cancelled)
        ev.events = w.want
        ev.data.u64 = <uint64_t>w.fd
        rc = epoll_ctl(w.epfd, EPOLL_CTL_ADD if fresh else EPOLL_CTL_MOD, w.fd, &ev)
        if rc < 0 and not fresh and errno == ENOENT:
            # The file went with its entry (closed), and the number is another's now.
            rc = epoll_ctl(w.epfd, EPOLL_CTL_ADD, w.fd, &ev)
        if rc < 0:
            err = errno
            if fresh:
                self._release_epoll(w)
            raise os_error(err)
        return 0

    cdef int _release_epoll(self, FdWatch w) except -1:
        if w.epfd < 0:
            return 0
        if w.armed:
            self._cancel_poll(w)
        close(w.epfd)
        w.epfd = -1
        del self.user_watches[w.fd]
        return 0

    cdef uint32_t _user_events(self, FdWatch w) except? 0xFFFFFFFF:
        # What w.fd is ready for, its epoll fd having polled readable. For one
        # direction that is known: the epoll fd is readable only while its entry is
        # ready for what it wants or in error (eventpoll.c checks again when polled).
        cdef epoll_event ev
        if w.want == POLLIN or w.want == POLLOUT:
            return w.want
        if epoll_wait(w.epfd, &ev, 1, 0) == 1:
            return ev.events
        return 0

    cdef int _cancel_poll(self, FdWatch w) except -1:
        cdef io_uring_sqe *sqe = self._sqe()
        # ASYNC_CANCEL, not POLL_REMOVE: POLL_REMOVE fails with EALREADY while a
        # wake-up of the poll is pending (with DEFER_TASKRUN, until our next
        # io_uring_enter), which leaves a multishot poll armed for good.
        io_uring_prep_cancel64(sqe, poll_token(w.gen, w.fd), 0)
        io_uring_sqe_set_data64(sqe, <uint64_t>KIND_IGNORE << 56)
        w.armed = False
        w.kernel_mask = 0
        return 0

    cdef int _submit_now(self, CoreLoop loop) except -1:
        # Submit what is queued and collect what completed, without waiting; not from
        # inside _reap (the CQ batch is not advanced yet) nor from a thread that may
        # not submit (IORING_SETUP_SINGLE_ISSUER).
        if self.reaping or self.owner != rl_current_tid():
            return 0
        self._flush(loop)
        rl_ring_wait(&self.r, 0)
        self._reap(loop)
        return 0

    cdef bint has_pending(self) noexcept:
        # Ops in flight: their completions must be collected even when nothing is
        # watched (rl_ring_idle keeps that pass free of syscalls when none came).
        return (len(self.dirty) > 0 or self.n_ops > 0
                or io_uring_sq_ready(&self.r.ring) > 0)

    # ---- operations by completion (Op, common.pxi) -----------------------------------

    cdef bint has_ops(self) noexcept:
        return True

    cdef io_uring_sqe *_op_sqe(self, Op op) except NULL:
        # An SQE for op, which holds a slot from now to its final CQE. The caller
        # preps it, then sets its user_data to op_token(op).
        cdef io_uring_sqe *sqe
        cdef Py_ssize_t slot
        if op.in_flight:
            raise RuntimeError("operation already in flight")
        if not self.r.initialized:
            raise RuntimeError('Event loop is closed')
        sqe = self._sqe()
        if self.free_slots:
            slot = self.free_slots.pop()
            self.ops[slot] = op
        else:
            slot = len(self.ops)
            self.ops.append(op)
        self.next_gen = (self.next_gen + 1) & 0xFFFFFF
        op.slot = <uint32_t>slot
        op.gen = self.next_gen
        op.in_flight = True
        op.cancelled = False
        self.n_ops += 1
        return sqe

    cdef int submit_accept(self, Op op, int fd, bint multishot, void *addr,
                           unsigned int *addrlen) except -1:
        cdef io_uring_sqe *sqe = self._op_sqe(op)
        if multishot:
            io_uring_prep_multishot_accept(sqe, fd, addr, addrlen, SOCK_NONBLOCK | SOCK_CLOEXEC)
        else:
            io_uring_prep_accept(sqe, fd, addr, addrlen, SOCK_NONBLOCK | SOCK_CLOEXEC)
        io_uring_sqe_set_data64(sqe, op_token(op))
        return 0

    cdef int submit_recv(self, Op op, int fd, void *buf, size_t size) except -1:
        cdef io_uring_sqe *sqe = self._op_sqe(op)
        io_uring_prep_recv(sqe, fd, buf, size, 0)
        # Callers submit after recv(2) said EAGAIN (or predicted it): wait for data
        # first instead of trying again at once.
        sqe.ioprio |= IORING_RECVSEND_POLL_FIRST
        io_uring_sqe_set_data64(sqe, op_token(op))
        return 0

    cdef int submit_send(self, Op op, int fd, const void *buf, size_t size) except -1:
        cdef io_uring_sqe *sqe = self._op_sqe(op)
        # MSG_WAITALL: the kernel finishes a partial send on a stream socket itself.
        io_uring_prep_send(sqe, fd, buf, size, MSG_NOSIGNAL | MSG_WAITALL)
        sqe.ioprio |= IORING_RECVSEND_POLL_FIRST     # sent after send(2) filled the socket
        io_uring_sqe_set_data64(sqe, op_token(op))
        return 0

    cdef int cancel_op(self, CoreLoop loop, Op op) except -1:
        cdef io_uring_sqe *sqe
        if op.cancelled or not op.in_flight or not self.r.initialized:
            op.cancelled = True
            return 0
        op.cancelled = True
        sqe = self._sqe()
        io_uring_prep_cancel64(sqe, op_token(op), 0)
        io_uring_sqe_set_data64(sqe, <uint64_t>KIND_IGNORE << 56)
        # At once: an operation in flight holds a reference to the file (a closed
        # listening socket would go on accepting connections), and the final CQE of a
        # cancelled recv should be in before the next recv on that socket.
        self._submit_now(loop)
        return 0

    cdef int _op_done(self, uint64_t ud, int res, uint32_t flags) except -1:
        cdef uint32_t slot = <uint32_t>(ud & 0xFFFFFFFF)
        cdef bint more = (flags & IORING_CQE_F_MORE) != 0
        cdef Op op
        if slot >= <uint32_t>len(self.ops) or self.ops[slot] is None:
            return 0
        op = <Op>self.ops[slot]
        if op.gen != <uint32_t>((ud >> 32) & 0xFFFFFF):
            return 0
        if not more:
            self._release(op)
        op.complete(res, more)
        return 0

    cdef int _release(self, Op op) except -1:
        self.ops[op.slot] = None
        self.free_slots.append(op.slot)
        self.n_ops -= 1
        op.in_flight = False
        return 0

    cdef int _end_ops(self, bint orphan) except -1:
        # The ring went (fork, another thread) with Ops in flight: end each with
        # -ECANCELED; an Op that was not cancelled is submitted again by its owner, as
        # a new Op. orphan: the old ring may still complete them, so keep them alive.
        cdef Op op
        cdef list ops = [o for o in self.ops if o is not None]
        self.ops = []
        self.free_slots = []
        self.n_ops = 0
        for op in ops:
            op.in_flight = False
            if orphan:
                _orphaned_ops.append(op)
        for op in ops:
            op.complete(-ECANCELED, False)
        return 0

    cdef int _cancel_all_ops(self, CoreLoop loop) except -1:
        # Ring teardown with Ops in flight: cancel them all and collect their final
        # CQEs, so no buffer is released while the kernel may still write to it. An Op
        # the kernel does not end in time is kept alive for good (_orphaned_ops).
        cdef io_uring_sqe *sqe
        cdef int err = 0
        cdef int64_t deadline
        cdef bint live = self.r.enabled   # a disabled ring never saw a submission
        if self.n_ops == 0:
            return 0
        for op in self.ops:
            if op is not None:
                (<Op>op).cancelled = True
        if live and self.owner == rl_current_tid():
            sqe = rl_ring_sqe(&self.r, &err)
            if sqe != NULL:
                io_uring_prep_cancel64(sqe, 0, IORING_ASYNC_CANCEL_ANY)
                io_uring_sqe_set_data64(sqe, <uint64_t>KIND_IGNORE << 56)
                deadline = monotonic_ns() + TEARDOWN_WAIT_NS
                while self.n_ops and monotonic_ns() < deadline:
                    if rl_ring_wait(&self.r, 10000000) < 0:
                        break
                    self._reap(loop)
        self._end_ops(live)
        return 0

    cdef int prepare_thread(self, CoreLoop loop) except -1:
        cdef long me = rl_current_tid()
        cdef int ret
        if self.owner == me:
            return 0
        if self.r.enabled:
            # IORING_SETUP_SINGLE_ISSUER binds the ring to one thread; a loop run
            # from another thread gets a ring of its own. The old ring may still
            # complete its Ops (this thread cannot cancel them): keep them alive.
            self._reinit(loop, True)
        ret = rl_ring_enable(&self.r)
        if ret < 0:
            raise os_error(-ret)
        self.owner = me
        return 0

    cdef io_uring_sqe *_sqe(self) except NULL:
        cdef int err = 0
        cdef io_uring_sqe *sqe = rl_ring_sqe(&self.r, &err)
        if sqe == NULL:
            raise os_error(err)
        return sqe

    cdef int _flush(self, CoreLoop loop) except -1:
        cdef FdWatch w
        cdef io_uring_sqe *sqe
        cdef bint multishot
        cdef list dirty = self.dirty
        if not dirty:
            return 0
        self.dirty = []
        for w in dirty:
            w.dirty = False
            multishot = w.multishot()
            if w.armed and (w.kernel_mask != w.want or w.kernel_multishot != multishot):
                self._cancel_poll(w)
            if not w.armed and w.want:
                self.next_gen = (self.next_gen + 1) & 0xFFFFFF
                w.gen = self.next_gen
                sqe = self._sqe()
                if w.epfd >= 0:
                    io_uring_prep_poll_add(sqe, w.epfd, POLLIN)
                elif multishot:
                    io_uring_prep_poll_multishot(sqe, w.fd, w.want | POLLRDHUP)
                else:
                    io_uring_prep_poll_add(sqe, w.fd, w.want)
                io_uring_sqe_set_data64(sqe, poll_token(w.gen, w.fd))
                w.armed = True
                w.kernel_mask = w.want
                w.kernel_multishot = multishot
        return 0

    cdef int wait(self, CoreLoop loop, double timeout) except -1:
        cdef int64_t ns = timeout_to_ns(timeout)
        cdef int ret
        if ns == 0 and not self.dirty and rl_ring_idle(&self.r):
            return 0        # nothing to submit and nothing completed: no syscall
        self._flush(loop)
        if ns == 0:
            ret = rl_ring_wait(&self.r, 0)
        else:
            with nogil:
                ret = rl_ring_wait(&self.r, ns)
        if ret < 0 and ret != -EINTR:
            raise os_error(-ret)
        if ns != 0:
            # io_uring_enter that also submitted returns the submitted count, not
            # -EINTR, when a signal ends its wait: run Python's handlers regardless.
            PyErr_CheckSignals()
        return self._reap(loop)

    cdef int _reap(self, CoreLoop loop) except -1:
        cdef unsigned n, i
        cdef int total = 0
        cdef uint64_t ud
        cdef int res
        self.reaping = True
        try:
            while True:
                n = io_uring_peek_batch_cqe(&self.r.ring, self.cqes, CQE_BATCH)
                if n == 0:
                    return total
                i = 0
                try:
                    while i < n:
                        ud = self.cqes[i].user_data
                        res = self.cqes[i].res
                        if (ud >> 56) == KIND_OP:
                            self._op_done(ud, res, self.cqes[i].flags)
                        elif (ud >> 56) == KIND_POLL and loop is not None:
                            self._poll_done(loop, <int>(ud & 0xFFFFFFFF),
                                            <uint32_t>((ud >> 32) & 0xFFFFFF), res,
                                            self.cqes[i].flags & IORING_CQE_F_MORE)
                        i += 1
                except BaseException:
                    # Never see a CQE twice: this one and those before it are handled.
                    io_uring_cq_advance(&self.r.ring, i + 1)
                    raise
                io_uring_cq_advance(&self.r.ring, n)
                total += n
        finally:
            self.reaping = False

    cdef int _poll_done(self, CoreLoop loop, int fd, uint32_t gen, int res,
                        bint more) except -1:
        # more: a multishot poll that stays armed (IORING_CQE_F_MORE).
        cdef FdWatch w = loop.watch_at(fd)
        if w is None or not w.armed or w.gen != gen:
            return 0        # completion of a poll we already cancelled
        if more:
            if res & (POLLRDHUP | POLLHUP | POLLERR):
                w.peer_closed = True
                self.update(loop, w)    # back to a level-triggered (one-shot) poll
            loop.fd_ready(w, <uint32_t>res)
            return 0
        w.armed = False
        w.kernel_mask = 0
        if res < 0:
            if res == -ECANCELED:
                if w.want:
                    self._mark_dirty(w)     # cancelled by the kernel (ring teardown): re-arm
                return 0
            # EBADF: the fd was closed while watched. Wake its handlers as for an
            # error, so their next operation on it raises instead of waiting forever;
            # the watch stays unarmed until its interest changes.
            loop.fd_ready(w, POLLERR)
            return 0
        if w.want:
            self._mark_dirty(w)         # re-armed after the callbacks of this pass ran
        if w.epfd >= 0:
            res = self._user_events(w)
        loop.fd_ready(w, <uint32_t>res)
        return 0

    cdef int reinit(self, CoreLoop loop) except -1:
        # After fork() the ring's memory is shared with the parent; unmap our view and
        # close our fd (the parent's ring is untouched) and start a new one. The
        # parent's Ops never complete here (and write only the parent's memory).
        return self._reinit(loop, False)

    cdef int _reinit(self, CoreLoop loop, bint orphan_ops) except -1:
        rl_ring_exit(&self.r)
        self.dirty = []
        self._open()
        self._close_user_epolls()       # after fork() shared with the parent: new ones
        for w in loop.iter_watches():
            (<FdWatch>w).armed = False
            (<FdWatch>w).kernel_mask = 0
            (<FdWatch>w).dirty = False
            self.update(loop, <FdWatch>w)
        self._end_ops(orphan_ops)
        return 0

    cdef close(self, CoreLoop loop):
        self._cancel_all_ops(loop)
        rl_ring_exit(&self.r)
        self._close_user_epolls()

    cdef int _close_user_epolls(self) except -1:
        for w in self.user_watches.values():
            close((<FdWatch>w).epfd)
            (<FdWatch>w).epfd = -1
        self.user_watches = {}
        return 0

    cdef dict info(self):
        return {
            "setup_flags": _flag_names(self.r.setup_flags, _SETUP_FLAG_NAMES),
            "features": _flag_names(self.r.features, _FEATURE_NAMES),
        }

    def __dealloc__(self):
        if self.n_ops:
            try:
                self._cancel_all_ops(None)
            except BaseException:
                pass
        rl_ring_exit(&self.r)
        self._close_user_epolls()


def probe_io_uring():
    """Try to set up a ring as the backend would; report what the kernel offers."""
    cdef rl_ring r
    cdef int ret = rl_ring_init(&r, 8)
    if ret < 0:
        return {"available": False, "errno": -ret, "error": os.strerror(-ret),
                "setup_flags": [], "features": [], "opcodes": []}
    try:
        opcodes = [name for op, name in _OPCODE_NAMES if rl_ring_opcode_supported(&r, op)]
        missing = [name for name in REQUIRED_OPCODES if name not in opcodes]
        return {
            "available": not missing,
            "errno": EINVAL if missing else 0,
            "error": f"missing opcodes: {', '.join(missing)}" if missing else None,
            "setup_flags": _flag_names(r.setup_flags, _SETUP_FLAG_NAMES),
            "features": _flag_names(r.features, _FEATURE_NAMES),
            "opcodes": opcodes,
        }
    finally:
        rl_ring_exit(&r)
