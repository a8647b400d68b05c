# C socket calls the transports make directly (socket(7), send(2), recv(2)), instead of
# going through Python socket objects on the hot path.

from cpython.buffer cimport PyObject_GetBuffer, PyBuffer_Release, PyBUF_SIMPLE, PyBUF_WRITABLE
import socket as _socket

cdef extern from "<sys/uio.h>" nogil:
    struct iovec:
        void *iov_base
        size_t iov_len

cdef extern from "<sys/socket.h>" nogil:
    struct msghdr:
        void *msg_name
        unsigned int msg_namelen
        iovec *msg_iov
        size_t msg_iovlen
        void *msg_control
        size_t msg_controllen
        int msg_flags
    ssize_t recv(int fd, void *buf, size_t n, int flags)
    ssize_t send(int fd, const void *buf, size_t n, int flags)
    ssize_t sendmsg(int fd, const msghdr *msg, int flags)
    struct mmsghdr:
        msghdr msg_hdr
        unsigned int msg_len
    # (the last argument is a struct timespec *; the transports pass NULL)
    int recvmmsg(int fd, mmsghdr *msgvec, unsigned int vlen, int flags, void *timeout)
    int shutdown(int fd, int how)
    struct sockaddr:
        pass
    int accept4(int fd, sockaddr *addr, unsigned int *addrlen, int flags)
    int setsockopt(int fd, int level, int name, const void *value, unsigned int size)
    enum:
        MSG_NOSIGNAL
        MSG_DONTWAIT
        SHUT_WR
        SOCK_NONBLOCK
        SOCK_CLOEXEC

cdef extern from "<errno.h>":
    enum:
        EINPROGRESS
        EMFILE
        ENFILE
        ENOBUFS
        ENOMEM
        ECONNABORTED
        EPROTO

cdef extern from "<string.h>" nogil:
    void *memset(void *s, int c, size_t n)
    void *memcpy(void *dest, const void *src, size_t n)
    int memcmp(const void *a, const void *b, size_t n)

cdef extern from "Python.h":
    object PyBytes_FromStringAndSize(const char *v, Py_ssize_t n)
    char *PyBytes_AS_STRING(object o)
    Py_ssize_t PyBytes_GET_SIZE(object o)
    bint PyBytes_CheckExact(object o)

cdef extern from *:
    """
    #include <errno.h>
    #include <string.h>
    #include <sys/socket.h>
    /* How many bytes to allocate for a bytes object that will hold n.
     * On AMD Zen with glibc 2.36, memcpy of 2 KiB and more (rep movsb) runs about 25x
     * slower when the destination is 8-24 bytes ahead of the source modulo 4 KiB
     * (bench/floor/memcpy_alias.c; BENCHMARKS.md, "Heap trimming and memcpy"). Received
     * data is usually copied next into a buffer malloc places right after it (the
     * StreamReader's bytearray is). That buffer starts (glibc chunk size - 32) bytes
     * after the data: glibc's chunk is 8 bytes of header plus the request (33 bytes of
     * bytes header plus n), rounded up to 16, and the data starts 48 bytes into it.
     * For n within 8 bytes of a multiple of 4 KiB (a 4, 16, 64 or 100 KiB message) the
     * chunk is 48 modulo 4096, so the distance is 16: 16 bytes more move it to 32. */
    static inline Py_ssize_t rl_bytes_room(Py_ssize_t n) {
        return (n >= 2048 && ((n + 8) & 4095) < 16) ? n + 16 : n;
    }

    /* A new bytes object of the n bytes at buf, in a block of rl_bytes_room(n). */
    static PyObject *rl_bytes_from(const char *buf, Py_ssize_t n) {
        Py_ssize_t room = rl_bytes_room(n);
        PyObject *data = PyBytes_FromStringAndSize(NULL, room);
        if (data == NULL)
            return NULL;
        memcpy(PyBytes_AS_STRING(data), buf, (size_t)n);
        if (room != n) {
            Py_SET_SIZE(data, n);
            PyBytes_AS_STRING(data)[n] = '\0';
        }
        return data;
    }

    /* Shrink a new bytes object that a read filled with n of its bytes (0 <= n <= its
     * length) to hold n, in a block of rl_bytes_room(n). -1 with MemoryError set if
     * the shrink fails. */
    static int rl_bytes_trim(PyObject **data, Py_ssize_t n) {
        Py_ssize_t room = rl_bytes_room(n);
        if (room < PyBytes_GET_SIZE(*data) && _PyBytes_Resize(data, room) < 0)
            return -1;
        if (PyBytes_GET_SIZE(*data) != n) {
            Py_SET_SIZE(*data, n);
            PyBytes_AS_STRING(*data)[n] = '\0';
        }
        return 0;
    }

    /* recv(2) of up to `size` bytes straight into a new bytes object (as socket.recv
     * does: one copy, by the kernel). None when it would block; NULL with OSError set
     * when recv fails. */
    static PyObject *rl_recv_bytes(int fd, Py_ssize_t size) {
        PyObject *data = PyBytes_FromStringAndSize(NULL, size);
        ssize_t n;
        if (data == NULL)
            return NULL;
        n = recv(fd, PyBytes_AS_STRING(data), (size_t)size, MSG_DONTWAIT);
        if (n < 0) {
            int err = errno;
            Py_DECREF(data);
            if (err == EAGAIN || err == EINTR)
                Py_RETURN_NONE;
            errno = err;
            return PyErr_SetFromErrno(PyExc_OSError);
        }
        if (rl_bytes_trim(&data, n) < 0)
            return NULL;
        return data;
    }
    """
    object rl_bytes_from(const char *buf, Py_ssize_t n)
    int rl_bytes_trim(PyObject **data, Py_ssize_t n) except -1
    object rl_recv_bytes(int fd, Py_ssize_t size)

cdef extern from *:
    """
    #include <arpa/inet.h>
    #include <netinet/in.h>
    /* An AF_INET / AF_INET6 address as the socket module gives it: (host, port) or
     * (host, port, flowinfo, scope_id). None for other families (the caller asks
     * the socket instead). */
    static PyObject *rl_inet_address(const struct sockaddr_storage *ss) {
        char host[INET6_ADDRSTRLEN];
        if (ss->ss_family == AF_INET) {
            /* Dotted quad by hand: inet_ntop formats with sprintf, a visible share
             * of a server's cost per accepted connection. */
            const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
            const unsigned char *b = (const unsigned char *)&a->sin_addr;
            char *p = host;
            PyObject *h, *port, *t;
            for (int i = 0; i < 4; i++) {
                unsigned v = b[i];
                if (i)
                    *p++ = '.';
                if (v >= 100)
                    *p++ = (char)('0' + v / 100);
                if (v >= 10)
                    *p++ = (char)('0' + v / 10 % 10);
                *p++ = (char)('0' + v % 10);
            }
            h = PyUnicode_FromStringAndSize(host, p - host);
            port = h ? PyLong_FromLong(ntohs(a->sin_port)) : NULL;
            t = port ? PyTuple_New(2) : NULL;
            if (t == NULL) {
                Py_XDECREF(h);
                Py_XDECREF(port);
                return NULL;
            }
            PyTuple_SET_ITEM(t, 0, h);
            PyTuple_SET_ITEM(t, 1, port);
            return t;
        }
        if (ss->ss_family == AF_INET6) {
            const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
            inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
            return Py_BuildValue("(siII)", host, ntohs(a->sin6_port),
                                 (unsigned int)ntohl(a->sin6_flowinfo),
                                 (unsigned int)a->sin6_scope_id);
        }
        Py_RETURN_NONE;
    }
    """
    struct sockaddr_storage:
        unsigned short ss_family
    ctypedef unsigned int socklen_t
    object rl_inet_address(const sockaddr_storage *ss)
    ssize_t sendto(int fd, const void *buf, size_t n, int flags, const sockaddr *addr,
                   socklen_t addrlen)

cdef inline bint would_block(int err) noexcept:
    # EWOULDBLOCK is EAGAIN on Linux.
    return err == EAGAIN or err == EINTR
