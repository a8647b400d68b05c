/* ring.h: the small C layer over liburing that the Cython io_uring backend uses.
 * Set-up with flag fallback, SQE allocation that never fails for lack of room,
 * and one submit+wait entry point. Everything else is inline liburing. */
#ifndef RINGLOOP_RING_H
#define RINGLOOP_RING_H

#include <liburing.h>

typedef struct {
    struct io_uring ring;
    unsigned setup_flags;   /* the flags io_uring_setup accepted */
    unsigned features;      /* IORING_FEAT_* the kernel reported */
    int initialized;
    int enabled;            /* started with IORING_SETUP_R_DISABLED until enabled */
} rl_ring;

/* Set up a ring, trying the best flag sets first and dropping flags on EINVAL.
 * Returns 0, or -errno of the last attempt. */
int rl_ring_init(rl_ring *r, unsigned entries);

/* Enable a ring created disabled; the calling thread becomes its only submitter
 * (IORING_SETUP_SINGLE_ISSUER). Idempotent. Returns 0 or -errno. */
int rl_ring_enable(rl_ring *r);

/* An SQE, submitting what is queued first when the submission queue is full.
 * Returns NULL only if the kernel refuses the submission (errno-like in *err). */
struct io_uring_sqe *rl_ring_sqe(rl_ring *r, int *err);

/* Submit what is queued and wait for at least one completion or the timeout.
 * timeout_ns < 0 waits without limit, 0 only submits and collects.
 * Returns >= 0, or -EINTR when a signal interrupted the wait, or another -errno. */
int rl_ring_wait(rl_ring *r, long long timeout_ns);

/* The calling thread's kernel task id (cached; reset in a forked child). */
long rl_current_tid(void);

/* 1 when a non-blocking wait could report nothing: no SQE queued, no CQE posted and
 * no completion work flagged by the kernel (needs IORING_SETUP_TASKRUN_FLAG). */
int rl_ring_idle(rl_ring *r);

/* Whether the kernel supports an opcode (via IORING_REGISTER_PROBE). */
int rl_ring_opcode_supported(rl_ring *r, int opcode);

/* Unmap and close the ring. Safe in a forked child (touches only this process). */
void rl_ring_exit(rl_ring *r);

#endif
