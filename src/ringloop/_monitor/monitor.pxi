# The blocking detector's native half (watchdog.c) as the loop sees it. The loop drives
# it from the end of _loop.pxi; the reports are ringloop/monitor.py.

# Declarations (the C API of watchdog.c): _monitor/monitor.pxd.

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
