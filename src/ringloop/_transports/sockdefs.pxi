# C socket calls the transports make directly (socket(7), send(2), recv(2)), instead of
# going through Python socket objects on the hot path.

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
    #include <sys/socket.h>
    /* recv(2) of up to `size` bytes straight into a new bytes object, shrunk to what
     * arrived (as socket.recv does: one copy, by the kernel). None when it would
     * block; NULL with OSError set when recv fails. */
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
        if (n != size && _PyBytes_Resize(&data, n) < 0)
            return NULL;
        return data;
    }
    """
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

cdef enum:
    # Writes gather at most this many buffers per sendmsg() (well under IOV_MAX = 1024).
    MAX_IOV = 64
    # Bytes asked of one recv() into the loop's buffer (asyncio's max_size).
    RECV_SIZE = 256 * 1024

cdef inline bint would_block(int err) noexcept:
    # EWOULDBLOCK is EAGAIN on Linux.
    return err == EAGAIN or err == EINTR
