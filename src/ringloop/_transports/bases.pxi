# The extension-type bases that make ringloop's transports instances of asyncio's
# transport classes; built in C by ringloop._transport_bases (see its header comment).

from cpython.buffer cimport PyObject_GetBuffer, PyBuffer_Release, PyBUF_SIMPLE, PyBUF_WRITABLE
import socket as _socket

cdef extern from "transport_bases.h":
    ctypedef class ringloop._transport_bases.Transport [object RLTransportBase, check_size ignore]:
        cdef object _extra
    # Also an asyncio.Transport (see transport_bases.c).
    ctypedef class ringloop._transport_bases.DatagramTransport [object RLDatagramTransportBase, check_size ignore]:
        cdef object _extra
