#include <errno.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <string.h>
#include "ring.h"

/* Flag sets, best first. SINGLE_ISSUER + DEFER_TASKRUN (kernel 6.1) keep completion work
 * in our own io_uring_enter calls; R_DISABLED lets the thread that first runs the loop,
 * not the one that created it, become the single issuer (io_uring_setup(2),
 * IORING_SETUP_SINGLE_ISSUER). COOP_TASKRUN (5.19) is the fallback. TASKRUN_FLAG makes the
 * kernel raise IORING_SQ_TASKRUN when completion work waits for us, which lets a
 * non-blocking pass skip io_uring_enter when there is none (rl_ring_idle). */
static const unsigned FLAG_SETS[] = {
    IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_COOP_TASKRUN |
        IORING_SETUP_TASKRUN_FLAG | IORING_SETUP_SUBMIT_ALL | IORING_SETUP_R_DISABLED,
    IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG | IORING_SETUP_SUBMIT_ALL,
    IORING_SETUP_SUBMIT_ALL,
    0,
};

int rl_ring_init(rl_ring *r, unsigned entries)
{
    int ret = -EINVAL;
    memset(r, 0, sizeof(*r));
    for (size_t i = 0; i < sizeof(FLAG_SETS) / sizeof(FLAG_SETS[0]); i++) {
        struct io_uring_params p;
        memset(&p, 0, sizeof(p));
        p.flags = FLAG_SETS[i];
        ret = io_uring_queue_init_params(entries, &r->ring, &p);
        if (ret == 0) {
            r->setup_flags = p.flags;
            r->features = p.features;
            r->initialized = 1;
            r->enabled = !(p.flags & IORING_SETUP_R_DISABLED);
            return 0;
        }
        if (ret != -EINVAL)
            break;   /* EPERM, ENOMEM, ENOSYS: no flag set will help */
    }
    return ret;
}

int rl_ring_enable(rl_ring *r)
{
    if (r->enabled)
        return 0;
    int ret = io_uring_enable_rings(&r->ring);
    if (ret == 0)
        r->enabled = 1;
    return ret;
}

struct io_uring_sqe *rl_ring_sqe(rl_ring *r, int *err)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&r->ring);
    if (sqe)
        return sqe;
    int ret = io_uring_submit(&r->ring);
    if (ret < 0) {
        *err = -ret;
        return NULL;
    }
    sqe = io_uring_get_sqe(&r->ring);
    if (!sqe)
        *err = EBUSY;
    return sqe;
}

int rl_ring_wait(rl_ring *r, long long timeout_ns)
{
    struct io_uring_cqe *cqe;
    int ret;
    if (timeout_ns == 0) {
        /* With DEFER_TASKRUN completions are only posted inside io_uring_enter with
         * GETEVENTS, so even a non-blocking pass must enter the kernel. */
        ret = io_uring_submit_and_get_events(&r->ring);
    } else if (timeout_ns < 0) {
        ret = io_uring_submit_and_wait(&r->ring, 1);
    } else {
        /* Submit first: liburing re-enters to wait after a submission, so a signal
         * arriving during that enter would not end the wait (no -EINTR). */
        if (io_uring_sq_ready(&r->ring)) {
            ret = io_uring_submit(&r->ring);
            if (ret < 0)
                return ret;
        }
        struct __kernel_timespec ts;
        ts.tv_sec = timeout_ns / 1000000000LL;
        ts.tv_nsec = timeout_ns % 1000000000LL;
        ret = io_uring_submit_and_wait_timeout(&r->ring, &cqe, 1, &ts, NULL);
        if (ret == -ETIME)
            ret = 0;
    }
    if (ret == -EAGAIN || ret == -EBUSY)
        ret = 0;   /* completion queue backlog: reap, then come back */
    return ret;
}

/* The kernel task id, cached per thread. SINGLE_ISSUER binds a ring to a kernel task;
 * pthread_t values are reused by new threads, so they cannot tell tasks apart. */
static __thread long cached_tid;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;
static void forget_tid(void) { cached_tid = 0; }
static void install_atfork(void) { pthread_atfork(NULL, NULL, forget_tid); }

long rl_current_tid(void)
{
    pthread_once(&atfork_once, install_atfork);
    if (!cached_tid)
        cached_tid = syscall(SYS_gettid);
    return cached_tid;
}

int rl_ring_idle(rl_ring *r)
{
    if (!(r->setup_flags & IORING_SETUP_TASKRUN_FLAG))
        return 0;   /* without the flag only io_uring_enter can tell */
    return io_uring_sq_ready(&r->ring) == 0 && io_uring_cq_ready(&r->ring) == 0 &&
           !(IO_URING_READ_ONCE(*r->ring.sq.kflags) & (IORING_SQ_TASKRUN | IORING_SQ_CQ_OVERFLOW));
}

int rl_ring_opcode_supported(rl_ring *r, int opcode)
{
    struct io_uring_probe *probe = io_uring_get_probe_ring(&r->ring);
    if (!probe)
        return 0;
    int ok = io_uring_opcode_supported(probe, opcode);
    io_uring_free_probe(probe);
    return ok;
}

void rl_ring_exit(rl_ring *r)
{
    if (r->initialized) {
        io_uring_queue_exit(&r->ring);
        r->initialized = 0;
    }
}
