# C declarations the core needs beyond Cython's bundled ones.

cdef extern from "Python.h":
    int PyContext_Enter(object) except -1
    int PyContext_Exit(object) except -1
    object PyContext_CopyCurrent()
    void PyObject_GC_Track(void *op)
    void PyObject_GC_UnTrack(void *op)
    int PyErr_CheckSignals() except -1
    unsigned long PyThread_get_thread_ident()
    int PyObject_GenericSetAttr(object o, object name, PyObject *value) except -1

cdef extern from "<errno.h>":
    enum:
        ECANCELED

cdef extern from "<time.h>" nogil:
    struct timespec:
        long tv_sec
        long tv_nsec
    int clock_gettime(int clk, timespec *tp)
    int CLOCK_MONOTONIC

cdef extern from "<unistd.h>" nogil:
    ssize_t read(int fd, void *buf, size_t count)
    ssize_t write(int fd, const void *buf, size_t count)
    int close(int fd)

cdef extern from "<sys/stat.h>" nogil:
    struct stat:
        unsigned int st_mode
    int fstat(int fd, stat *buf)
    bint S_ISREG(unsigned int m)
    bint S_ISDIR(unsigned int m)

cdef extern from "<sys/eventfd.h>" nogil:
    int eventfd(unsigned int initval, int flags)
    int EFD_CLOEXEC
    int EFD_NONBLOCK

cdef extern from "<poll.h>" nogil:
    enum:
        POLLIN
        POLLOUT
        POLLERR
        POLLHUP
        POLLRDHUP       # _GNU_SOURCE (setup.py defines it)

cdef inline double monotonic_now() noexcept nogil:
    # Same clock as time.monotonic(), at full (nanosecond) resolution.
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return <double>ts.tv_sec + <double>ts.tv_nsec * 1e-9

cdef inline int64_t monotonic_ns() noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return <int64_t>ts.tv_sec * 1000000000 + ts.tv_nsec

cdef object os_error(int err):
    return OSError(err, os.strerror(err))
