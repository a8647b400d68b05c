# The loop's two C-level queues (bodies: _queues.pxi).

cdef struct Ring:
    # A growable FIFO ring buffer of owned object references: the ready queue's
    # storage, and each transport's write queue's (WriteQueue).
    PyObject **items
    Py_ssize_t cap          # a power of two
    Py_ssize_t head
    Py_ssize_t count

# The ready queue: a Ring of Handles only (ready_push, ready_push_new, ready_clear).
ctypedef Ring ReadyQueue

cdef struct TimerEntry:
    double when
    uint64_t seq            # equal deadlines run in scheduling order
    PyObject *handle        # owned reference to a TimerHandle

cdef struct TimerHeap:
    # A binary min-heap of TimerEntry; cancelled timers are dropped lazily.
    TimerEntry *items
    Py_ssize_t len
    Py_ssize_t cap
    uint64_t next_seq
