# The loop's two C-level queues.
#   ReadyQueue: a growable ring buffer (Ring) of owned Handle references (FIFO).
#   TimerHeap:  a binary min-heap of (when, seq, TimerHandle) structs; seq makes equal
#               deadlines run in scheduling order. Cancelled timers are dropped lazily.
# Neither runs Python code while its indices are inconsistent, so pushes from another
# thread (call_soon_threadsafe, which holds the GIL) cannot interleave with a pop.

cdef int ring_init(Ring *q, Py_ssize_t cap) except -1:
    q.items = <PyObject **>PyMem_Malloc(cap * sizeof(PyObject *))
    if q.items == NULL:
        raise MemoryError()
    q.cap = cap
    q.head = 0
    q.count = 0
    return 0

cdef int ring_grow(Ring *q) except -1:
    cdef Py_ssize_t newcap = q.cap * 2, i
    cdef PyObject **items = <PyObject **>PyMem_Malloc(newcap * sizeof(PyObject *))
    if items == NULL:
        raise MemoryError()
    for i in range(q.count):
        items[i] = q.items[(q.head + i) & (q.cap - 1)]
    PyMem_Free(q.items)
    q.items = items
    q.cap = newcap
    q.head = 0
    return 0

cdef inline int ring_push(Ring *q, object item) except -1:
    if q.count == q.cap:
        ring_grow(q)
    Py_INCREF(item)
    q.items[(q.head + q.count) & (q.cap - 1)] = <PyObject *>item
    q.count += 1
    return 0

cdef inline PyObject *ring_at(Ring *q, Py_ssize_t i) noexcept:
    # The i-th item from the head (borrowed); i < count.
    return q.items[(q.head + i) & (q.cap - 1)]

cdef inline PyObject *ring_pop(Ring *q) noexcept:
    # Returns an owned reference; the caller must have checked count > 0.
    cdef PyObject *h = q.items[q.head]
    q.head = (q.head + 1) & (q.cap - 1)
    q.count -= 1
    return h

cdef void ring_clear(Ring *q) noexcept:
    while q.count:
        Py_DECREF(<object>ring_pop(q))

cdef void ring_free(Ring *q) noexcept:
    if q.items != NULL:
        ring_clear(q)
        PyMem_Free(q.items)
        q.items = NULL


# The ready queue (ReadyQueue, a Ring): Handles only.

cdef inline int ready_push(ReadyQueue *q, Handle handle) except -1:
    return ring_push(q, handle)

cdef inline int ready_push_new(ReadyQueue *q, Handle h, bint own_context) except -1:
    # A handle the loop just made (own_context: with a context copied for it); behind
    # a queue deeper than the freelist it leaves the collector's lists (park()).
    ring_push(q, h)
    if q.count > PARK_QUEUE_MIN:
        park(h, own_context)
    return 0

cdef void ready_clear(ReadyQueue *q) noexcept:
    cdef PyObject *h
    while q.count:
        h = ring_pop(q)
        unpark(<Handle>h)
        Py_DECREF(<object>h)

cdef void ready_free(ReadyQueue *q) noexcept:
    if q.items != NULL:
        ready_clear(q)
        PyMem_Free(q.items)
        q.items = NULL


cdef inline bint timer_before(TimerEntry *a, TimerEntry *b) noexcept:
    return a.when < b.when or (a.when == b.when and a.seq < b.seq)

cdef void heap_sift_up(TimerHeap *h, Py_ssize_t pos) noexcept:
    cdef TimerEntry item = h.items[pos]
    cdef Py_ssize_t parent
    while pos > 0:
        parent = (pos - 1) >> 1
        if not timer_before(&item, &h.items[parent]):
            break
        h.items[pos] = h.items[parent]
        pos = parent
    h.items[pos] = item

cdef void heap_sift_down(TimerHeap *h, Py_ssize_t pos) noexcept:
    cdef TimerEntry item = h.items[pos]
    cdef Py_ssize_t child
    cdef Py_ssize_t n = h.len
    while True:
        child = 2 * pos + 1
        if child >= n:
            break
        if child + 1 < n and timer_before(&h.items[child + 1], &h.items[child]):
            child += 1
        if not timer_before(&h.items[child], &item):
            break
        h.items[pos] = h.items[child]
        pos = child
    h.items[pos] = item

cdef int heap_push(TimerHeap *h, double when, object handle) except -1:
    cdef Py_ssize_t newcap
    cdef TimerEntry *items
    if h.len == h.cap:
        newcap = h.cap * 2 if h.cap else 64
        items = <TimerEntry *>PyMem_Realloc(h.items, newcap * sizeof(TimerEntry))
        if items == NULL:
            raise MemoryError()
        h.items = items
        h.cap = newcap
    Py_INCREF(handle)
    h.items[h.len].when = when
    h.items[h.len].seq = h.next_seq
    h.items[h.len].handle = <PyObject *>handle
    h.next_seq += 1
    h.len += 1
    heap_sift_up(h, h.len - 1)
    return 0

cdef inline PyObject *heap_pop(TimerHeap *h) noexcept:
    # Removes the earliest entry and returns its owned handle reference; len > 0.
    cdef PyObject *handle = h.items[0].handle
    h.len -= 1
    if h.len:
        h.items[0] = h.items[h.len]
        heap_sift_down(h, 0)
    return handle

cdef void heap_heapify(TimerHeap *h) noexcept:
    cdef Py_ssize_t i = h.len // 2
    while i > 0:
        i -= 1
        heap_sift_down(h, i)

cdef void heap_clear(TimerHeap *h) noexcept:
    # Detach the array first: a DECREF may run Python code that schedules a new timer.
    cdef TimerEntry *items = h.items
    cdef Py_ssize_t i
    cdef Py_ssize_t n = h.len
    h.items = NULL
    h.len = 0
    h.cap = 0
    for i in range(n):
        (<TimerHandle>items[i].handle)._scheduled = False
        unpark(<TimerHandle>items[i].handle)
        Py_DECREF(<object>items[i].handle)
    PyMem_Free(items)
