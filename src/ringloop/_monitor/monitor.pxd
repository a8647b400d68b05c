# The blocking detector's native half (watchdog.c) as the loop sees it; bodies of the
# helpers around it: _monitor/monitor.pxi.

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
