/* The instance layout of asyncio.BaseTransport (__slots__ = ('_extra',)), shared by
 * ringloop._transport_bases (C) and the Cython transports that extend it. */
#ifndef RINGLOOP_TRANSPORT_BASES_H
#define RINGLOOP_TRANSPORT_BASES_H
#include <Python.h>
typedef struct {
    PyObject_HEAD
    PyObject *_extra;
} RLTransportBase;
/* The same layout under a second name: Cython wants one struct name per extern type. */
typedef RLTransportBase RLDatagramTransportBase;
#endif
