/* The blocking detector's watchdog: a native thread per monitored loop that notices
 * one callback running longer than a threshold and reads the loop thread's Python
 * stack while it is still blocked.
 *
 * The loop side only stores to this struct: a sequence number bumped when a callback
 * starts and when the loop goes to or comes back from the kernel, whether it is idle
 * in the kernel, and when it last came back. The watchdog samples them every
 * threshold/8; a sequence number unchanged for the threshold while not idle is a block.
 */
#ifndef RINGLOOP_WATCHDOG_H
#define RINGLOOP_WATCHDOG_H

#include <Python.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/types.h>

enum { RL_MON_STOPPED = 0, RL_MON_BUSY = 1, RL_MON_IDLE = 2 };

typedef struct rl_monitor {
    /* written by the loop thread */
    uint64_t seq;
    int state;                  /* RL_MON_* */
    int64_t awake_ns;           /* CLOCK_MONOTONIC when the loop last left the kernel */
    PyThreadState *tstate;      /* the loop thread's, valid while state != STOPPED */
    /* written by the watchdog: the callback with sequence number flagged_seq ran
     * over the threshold; flagged_start_ns bounds its start from below. */
    uint64_t flagged_seq;
    int64_t flagged_start_ns;
    /* the callback running (borrowed: the loop holds it while it runs) */
    PyObject *handle;
    /* under the GIL: what the watchdog saw while callback stack_seq blocked, if it
     * could have the GIL in time: (stack, describe(handle)), the stack a list of
     * (file, line, function) tuples, outermost first */
    uint64_t stack_seq;
    PyObject *stack;
    PyObject *describe;         /* a callable of the handle, for the report */
    /* the thread */
    int64_t threshold_ns;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    pthread_t thread;
    pid_t thread_pid;           /* the process the thread runs in; 0: none */
    int64_t started_ns;         /* when it was asked for: the loop ran nothing before */
    int stop;
} rl_monitor;

/* describe: called with the blocked callback's handle while it blocks (a new
 * reference is taken). */
rl_monitor *rl_mon_new(int64_t threshold_ns, PyObject *describe);
/* Starts the watchdog thread if this process has none for m (after fork() the child
 * has none). Returns 0, or an errno. */
int rl_mon_start(rl_monitor *m);
void rl_mon_set_threshold(rl_monitor *m, int64_t threshold_ns);
/* Stops the thread and waits for it (call without the GIL). Returns 1 if it was left
 * to finish alone (interpreter shutdown): m must then not be freed. */
int rl_mon_stop(rl_monitor *m);
/* Takes the stack stored for seq, if any (a new reference), else NULL. Under the GIL. */
PyObject *rl_mon_take_stack(rl_monitor *m, uint64_t seq);

/* ---- loop side: plain stores, no syscall, no lock ---- */

static inline void rl_mon_enter(rl_monitor *m, PyThreadState *tstate) {
    m->tstate = tstate;
    __atomic_add_fetch(&m->seq, 1, __ATOMIC_RELAXED);
    __atomic_store_n(&m->state, RL_MON_BUSY, __ATOMIC_RELEASE);
}

static inline void rl_mon_leave(rl_monitor *m) {
    __atomic_store_n(&m->state, RL_MON_STOPPED, __ATOMIC_RELEASE);
}

static inline void rl_mon_idle(rl_monitor *m) {
    __atomic_store_n(&m->state, RL_MON_IDLE, __ATOMIC_RELAXED);
}

static inline void rl_mon_awake(rl_monitor *m, int64_t now_ns) {
    __atomic_store_n(&m->awake_ns, now_ns, __ATOMIC_RELAXED);
    __atomic_add_fetch(&m->seq, 1, __ATOMIC_RELAXED);
    __atomic_store_n(&m->state, RL_MON_BUSY, __ATOMIC_RELEASE);
}

/* Before a callback: returns its sequence number. */
static inline uint64_t rl_mon_callback(rl_monitor *m, PyObject *handle) {
    uint64_t s = m->seq + 1;
    m->handle = handle;
    __atomic_store_n(&m->seq, s, __ATOMIC_RELAXED);
    return s;
}

/* After it: did the watchdog flag it? */
static inline int rl_mon_flagged(rl_monitor *m, uint64_t seq) {
    return __atomic_load_n(&m->flagged_seq, __ATOMIC_ACQUIRE) == seq;
}

#endif
