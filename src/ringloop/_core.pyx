# cython: language_level=3
"""ringloop's compiled core: handles, the ready queue, the timer heap, the two kernel
backends (io_uring, epoll) and the loop's run_once.

One extension module built from include files (one job each), so the hot path inlines
across them: _handles.pxi, _queues.pxi, _backend/*.pxi, _loop.pxi, and the
transports in _transports/*.pxi. Their declarations are in _core.pxd (and the layer
.pxd files it includes); docs/architecture.md is the map. _malloc.pxi sets glibc's
heap trimming once per process.
"""
cimport cython
from cpython.ref cimport PyObject, Py_INCREF, Py_DECREF
from cpython.mem cimport PyMem_Malloc, PyMem_Realloc, PyMem_Free
from libc.stdint cimport uint64_t, int64_t, uint32_t
from libc.errno cimport errno, EINTR, EAGAIN, ENOENT, EEXIST, EBADF, EPERM, ENOSYS, EINVAL

import asyncio
import os
import sys
import threading
from asyncio import events as _aio_events
from asyncio import format_helpers as _format_helpers
from asyncio import coroutines as _aio_coroutines
from ringloop._coroutine_check import is_coroutine_or_coroutine_function as _is_coroutine_or_coroutine_function

include "_externs.pxi"
include "_malloc.pxi"
include "_handles.pxi"
include "_queues.pxi"
include "_backend/common.pxi"
include "_backend/epoll.pxi"
include "_backend/uring.pxi"
include "_monitor/monitor.pxi"
include "_loop.pxi"
include "_transports/sockdefs.pxi"
include "_transports/writequeue.pxi"
include "_transports/common.pxi"
include "_transports/stream.pxi"
include "_transports/sslproto.pxi"
include "_transports/datagram.pxi"
include "_transports/pipe.pxi"
include "_transports/listener.pxi"
include "_transports/sockops.pxi"
