# Declarations of ringloop._core, apart from the bodies (the .pxi files that
# _core.pyx includes). One extension module: Cython inlines across the include files
# of one module only, and the hot path (a callback, a read event, a write) crosses
# the handles, the loop, a backend and a transport. A .pxd beside the .pyx is how one
# module gets declarations apart from bodies: per-layer .pxd files that declare
# cdef classes would each be a module of its own. So this file includes one
# declaration file per layer, in the order the layers build on each other (see
# docs/architecture.md): handles, queues, backend, loop, transports.

cimport cython
from cpython.ref cimport PyObject
from libc.stdint cimport uint32_t, uint64_t, int64_t

# Types declared below and used before their own declaration.
cdef class CoreLoop

include "_handles.pxd"
include "_queues.pxd"
include "_backend/backend.pxd"
include "_monitor/monitor.pxd"
include "_loop.pxd"
include "_transports/transports.pxd"
