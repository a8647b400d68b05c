# The blocking detector's native half (watchdog.c) as the loop sees it. The loop drives
# it from the end of _loop.pxi; the reports are ringloop/monitor.py.

from cpython.pystate cimport PyThreadState, PyThreadState_Get
from cpython.ref cimport Py_XDECREF

cdef extern from "watchdog.h":
    ctypedef struct rl_monitor:
        int64_t flagged_start_ns
        int64_t threshold_ns
        PyObject *stack
        PyObject *describe
    rl_monitor *rl_mon_new(int64_t threshold_ns, PyObject *describe)
    int rl_mon_start(rl_monitor *m) nogil
    void rl_mon_set_threshold(rl_monitor *m, int64_t threshold_ns) nogil
    int rl_mon_stop(rl_monitor *m) nogil
    PyObject *rl_mon_take_stack(rl_monitor *m, uint64_t seq)
    void rl_mon_enter(rl_monitor *m, PyThreadState *tstate) nogil
    void rl_mon_leave(rl_monitor *m) nogil
    void rl_mon_idle(rl_monitor *m) nogil
    void rl_mon_awake(rl_monitor *m, int64_t now_ns) nogil
    uint64_t rl_mon_callback(rl_monitor *m, PyObject *handle) nogil
    bint rl_mon_flagged(rl_monitor *m, uint64_t seq) nogil

cdef extern from "<stdlib.h>" nogil:
    void free(void *p)


cdef inline int64_t seconds_to_ns(double seconds):
    return <int64_t>(seconds * 1e9 + 0.5)


cdef rl_monitor *monitor_new(double threshold, describe) except NULL:
    cdef rl_monitor *m = rl_mon_new(seconds_to_ns(threshold), <PyObject *>describe)
    if m == NULL:
        raise MemoryError()
    return m


cdef void monitor_free(rl_monitor *m):
    # Stop its thread without the GIL (the thread may be waiting for it), then let go.
    cdef int left_running
    with nogil:
        left_running = rl_mon_stop(m)
    if left_running:
        return      # interpreter shutdown: the thread still reads m
    Py_XDECREF(m.stack)
    Py_XDECREF(m.describe)
    free(m)


cdef object monitor_take_stack(rl_monitor *m, uint64_t seq):
    # What the watchdog read while callback `seq` blocked, (stack, description), or None.
    cdef PyObject *p = rl_mon_take_stack(m, seq)
    if p == NULL:
        return None
    stack = <object>p
    Py_DECREF(stack)        # rl_mon_take_stack handed over its reference
    return stack


cdef int python_depth() except -1:
    # How many Python frames the calling thread has (sys._getframe walks them).
    cdef int n = 0
    f = sys._getframe(0)
    while f is not None:
        n += 1
        f = f.f_back
    return n
