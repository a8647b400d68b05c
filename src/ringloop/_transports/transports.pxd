# The transports' C-level declarations (bodies: _transports/*.pxi). What the loop
# lends them is CoreLoop's "loop API" (_loop.pxd); a transport reaches a backend only
# for operations by completion (listener.pxi, sockops.pxi), through Backend's methods.

# The extension-type bases that make the transports instances of asyncio's transport
# classes; built in C by ringloop._transport_bases (see transport_bases.c).
cdef extern from "transport_bases.h":
    ctypedef class ringloop._transport_bases.Transport [object RLTransportBase, check_size ignore]:
        cdef object _extra
    # Also an asyncio.Transport (see transport_bases.c).
    ctypedef class ringloop._transport_bases.DatagramTransport [object RLDatagramTransportBase, check_size ignore]:
        cdef object _extra


@cython.final
cdef class WriteQueue:
    # The write path of the stream, pipe and datagram transports (writequeue.pxi):
    # what the kernel has not taken yet, in a Ring of owned references, bytes (a
    # byte stream, head partly written) or (bytes, address) tuples (datagrams), and
    # asyncio's write flow control over its size.
    cdef:
        Ring items
        Py_ssize_t offset           # bytes of the head item already written (byte streams)
        readonly Py_ssize_t size    # bytes queued and not written
        Py_ssize_t high_water
        Py_ssize_t low_water
        readonly bint protocol_paused   # pause_writing() was called on the protocol

    cdef void clear(self) noexcept
    cdef int push(self, item, Py_ssize_t nbytes) except -1
    cdef inline PyObject *head(self) noexcept
    cdef int pop(self, Py_ssize_t nbytes) noexcept
    cdef int queue_bytes(self, data, Py_ssize_t already_written) except -1
    cdef int consume(self, Py_ssize_t n) except -1
    # write() of a byte stream: WRITE_DONE, WRITE_QUEUED, WRITE_APPENDED or -errno.
    cdef inline int write_now(self, int fd, bint socket, data) except? -1
    # Flush (part of) a byte-stream queue: bytes written, or -errno.
    cdef ssize_t write_queued(self, int fd, bint socket) except? -1
    cdef int set_limits(self, high, low) except -1
    cdef inline int pause_if_full(self, CoreLoop loop, transport, protocol) except -1
    cdef inline int resume_if_drained(self, CoreLoop loop, transport, protocol) except -1


cdef class SockRecvState:
    # The sock_* layer's state for one loop (sockops.pxi).
    cdef:
        bytearray waited    # fd -> 1: its last sock_recv had to wait
        dict ops            # fd -> its sock_recv in flight by completion, or the data
                            # one got after its caller was cancelled
