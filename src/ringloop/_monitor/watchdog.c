/* The blocking detector's watchdog thread: see watchdog.h. */
#include "watchdog.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

/* The watchdog samples this many times per threshold, never more often than every
 * MIN_INTERVAL_NS: a flagged duration is at most one interval too long. */
#define SAMPLES_PER_THRESHOLD 8
#define MIN_INTERVAL_NS 200000LL

static int64_t mono_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int finalizing(void) {
#if PY_VERSION_HEX >= 0x030D0000
    return Py_IsFinalizing();
#else
    return _Py_IsFinalizing();
#endif
}

/* The loop thread's Python stack, outermost first, as (file, line, function) tuples.
 * Under the GIL, while that thread is blocked in the callback (so its frames stand
 * still: it can only move them while holding the GIL we hold). */
static PyObject *read_stack(PyThreadState *tstate) {
    PyObject *frames = PyList_New(0);
    PyFrameObject *frame = frames ? PyThreadState_GetFrame(tstate) : NULL;
    while (frame != NULL) {
        PyCodeObject *code = PyFrame_GetCode(frame);
        PyObject *entry = Py_BuildValue("(OiO)", code->co_filename,
                                        PyFrame_GetLineNumber(frame), code->co_name);
        Py_DECREF(code);
        if (entry == NULL || PyList_Append(frames, entry) < 0) {
            Py_XDECREF(entry);
            Py_DECREF(frame);
            Py_CLEAR(frames);
            break;
        }
        Py_DECREF(entry);
        PyFrameObject *back = PyFrame_GetBack(frame);
        Py_DECREF(frame);
        frame = back;
    }
    if (frames != NULL && PyList_Reverse(frames) < 0)
        Py_CLEAR(frames);
    if (frames == NULL)
        PyErr_Clear();
    return frames;
}

/* Called by the watchdog, without the GIL, for a callback over the threshold. */
static void capture(rl_monitor *m, uint64_t seq) {
    if (finalizing())
        return;
    /* Waits for the GIL: at once if the callback sleeps in a syscall, within
     * sys.getswitchinterval() if it runs Python, only when it ends if it runs C code
     * that holds the GIL -- then the sequence number has moved and the stack is gone. */
    PyGILState_STATE gil = PyGILState_Ensure();
    if (__atomic_load_n(&m->seq, __ATOMIC_ACQUIRE) == seq
            && __atomic_load_n(&m->state, __ATOMIC_ACQUIRE) == RL_MON_BUSY) {
        PyObject *frames = read_stack(m->tstate);
        PyObject *described = PyObject_CallOneArg(m->describe, m->handle);
        PyObject *seen = NULL;
        if (frames != NULL && described != NULL)
            seen = PyTuple_Pack(2, frames, described);
        Py_XDECREF(frames);
        Py_XDECREF(described);
        if (seen != NULL) {
            Py_XSETREF(m->stack, seen);
            m->stack_seq = seq;
        } else {
            PyErr_WriteUnraisable(m->describe);
        }
    }
    PyGILState_Release(gil);
}

static void *watchdog_main(void *arg) {
    rl_monitor *m = arg;
    uint64_t last_seq = 0, flagged = 0;
    /* Not the thread's own start: it may be scheduled long after the loop went on. */
    int64_t prev_check = m->started_ns, start_bound = prev_check;

    pthread_mutex_lock(&m->lock);
    while (!m->stop) {
        int64_t interval = m->threshold_ns / SAMPLES_PER_THRESHOLD;
        if (interval < MIN_INTERVAL_NS)
            interval = MIN_INTERVAL_NS;
        int64_t deadline = mono_ns() + interval;
        struct timespec ts = {deadline / 1000000000LL, deadline % 1000000000LL};
        while (!m->stop && pthread_cond_timedwait(&m->wake, &m->lock, &ts) != ETIMEDOUT)
            ;
        if (m->stop)
            break;
        /* The clock first, then the loop's state: a sequence number read after `now`
         * that is still the old one means its successor started after `now`. */
        int64_t now = mono_ns();
        uint64_t seq = __atomic_load_n(&m->seq, __ATOMIC_ACQUIRE);
        int state = __atomic_load_n(&m->state, __ATOMIC_ACQUIRE);
        if (seq != last_seq || state != RL_MON_BUSY) {
            last_seq = seq;
            start_bound = prev_check;   /* the last check that saw its predecessor */
            prev_check = now;
            continue;
        }
        prev_check = now;
        int64_t awake = __atomic_load_n(&m->awake_ns, __ATOMIC_RELAXED);
        int64_t start = awake > start_bound ? awake : start_bound;
        if (seq == flagged || now - start < m->threshold_ns)
            continue;
        flagged = seq;
        m->flagged_start_ns = start;
        __atomic_store_n(&m->flagged_seq, seq, __ATOMIC_RELEASE);
        pthread_mutex_unlock(&m->lock);
        capture(m, seq);
        pthread_mutex_lock(&m->lock);
    }
    pthread_mutex_unlock(&m->lock);
    return NULL;
}

rl_monitor *rl_mon_new(int64_t threshold_ns, PyObject *describe) {
    rl_monitor *m = calloc(1, sizeof(*m));
    if (m != NULL) {
        m->threshold_ns = threshold_ns;
        Py_INCREF(describe);
        m->describe = describe;
    }
    return m;
}

int rl_mon_start(rl_monitor *m) {
    pthread_condattr_t cattr;
    sigset_t all, old;
    int err;
    if (m->thread_pid == getpid())
        return 0;
    /* None yet, or the parent's before fork(): its lock may have been held then. */
    pthread_mutex_init(&m->lock, NULL);
    pthread_condattr_init(&cattr);
    pthread_condattr_setclock(&cattr, CLOCK_MONOTONIC);
    pthread_cond_init(&m->wake, &cattr);
    pthread_condattr_destroy(&cattr);
    m->stop = 0;
    m->started_ns = mono_ns();
    /* Signals stay with the Python threads (the interpreter handles them there). */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    err = pthread_create(&m->thread, NULL, watchdog_main, m);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (err == 0)
        m->thread_pid = getpid();
    return err;
}

void rl_mon_set_threshold(rl_monitor *m, int64_t threshold_ns) {
    if (m->thread_pid == getpid()) {
        pthread_mutex_lock(&m->lock);
        m->threshold_ns = threshold_ns;
        pthread_cond_signal(&m->wake);
        pthread_mutex_unlock(&m->lock);
    } else {
        m->threshold_ns = threshold_ns;
    }
}

int rl_mon_stop(rl_monitor *m) {
    if (m->thread_pid != getpid())
        return 0;
    pthread_mutex_lock(&m->lock);
    m->stop = 1;
    pthread_cond_signal(&m->wake);
    pthread_mutex_unlock(&m->lock);
    m->thread_pid = 0;
    if (finalizing()) {
        /* A thread that asks for the GIL now never gets it back: do not wait. */
        pthread_detach(m->thread);
        return 1;
    }
    pthread_join(m->thread, NULL);
    return 0;
}

PyObject *rl_mon_take_stack(rl_monitor *m, uint64_t seq) {
    PyObject *stack = NULL;
    if (m->stack != NULL && m->stack_seq == seq) {
        stack = m->stack;
        m->stack = NULL;
    }
    return stack;
}
