/* ringloop._transport_bases: compiled bases that make ringloop's Cython transports
 * real instances of asyncio's transport classes (isinstance(t, asyncio.Transport)).
 *
 * asyncio.BaseTransport is a Python class with __slots__ = ('_extra',), so its
 * instances are PyObject_HEAD + one pointer. A Cython extension type cannot list a
 * Python class as its base directly, but it can extend an extension type with that
 * layout. For each asyncio class we create here, at import, a heap type with
 * PyType_FromSpecWithBases whose base is the asyncio class and whose C struct is
 * RLTransportBase; the Cython transports (ringloop._core) derive from these.
 *
 * Why not let Cython use the asyncio class itself: Cython's generated tp_traverse and
 * tp_dealloc chain to the base's slots, and for a class statement those are
 * CPython's subtype_traverse/subtype_dealloc, which walk from Py_TYPE(self) down to
 * the first non-"subtype" base -- back into the Cython type -- and recurse forever.
 * Our slots below end the chain: they handle `_extra` and stop. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include "transport_bases.h"

static int base_traverse(PyObject *self, visitproc visit, void *arg)
{
    Py_VISIT(((RLTransportBase *)self)->_extra);
    /* Instances of the heap type itself own a reference to it; instances of a
     * static Cython subclass do not, and a heap subclass of that is visited by
     * subtype_traverse. */
    if (Py_TYPE(self)->tp_traverse == base_traverse)
        Py_VISIT(Py_TYPE(self));
    return 0;
}

static int base_clear(PyObject *self)
{
    Py_CLEAR(((RLTransportBase *)self)->_extra);
    return 0;
}

static void base_dealloc(PyObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    base_clear(self);
    tp->tp_free(self);
    /* See base_traverse: only direct instances hold a reference to their type. */
    if (tp->tp_dealloc == base_dealloc)
        Py_DECREF(tp);
}

static PyObject *base_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    /* Ignore the arguments (object.__new__ would refuse them), and start `_extra`
     * as None: Cython's assignments DECREF the old value of a field it did not
     * initialise itself. */
    PyObject *self = type->tp_alloc(type, 0);
    if (self != NULL) {
        Py_INCREF(Py_None);
        ((RLTransportBase *)self)->_extra = Py_None;
    }
    return self;
}

static PyType_Slot base_slots[] = {
    {Py_tp_new, base_new},
    {Py_tp_traverse, base_traverse},
    {Py_tp_clear, base_clear},
    {Py_tp_dealloc, base_dealloc},
    {0, NULL},
};

/* (name in this module, asyncio classes it derives from: one or two).
 * DatagramTransport is also an asyncio.Transport, as asyncio's own socket datagram
 * transport is (_SelectorDatagramTransport derives from both; CPython's tests check
 * isinstance(transport, asyncio.Transport) on create_datagram_endpoint's result). */
static const char *const BASES[][3] = {
    {"Transport", "Transport", NULL},
    {"DatagramTransport", "Transport", "DatagramTransport"},
    {"ReadTransport", "ReadTransport", NULL},
    {"SubprocessTransport", "SubprocessTransport", NULL},
};

static PyObject *asyncio_class(PyObject *transports, const char *asyncio_name)
{
    Py_ssize_t basicsize;
    PyObject *cls = PyObject_GetAttrString(transports, asyncio_name);
    if (cls == NULL)
        return NULL;
    if (!PyType_Check(cls)) {
        PyErr_Format(PyExc_TypeError, "asyncio.%s is not a class", asyncio_name);
        Py_DECREF(cls);
        return NULL;
    }
    basicsize = ((PyTypeObject *)cls)->tp_basicsize;
    if (basicsize != (Py_ssize_t)sizeof(RLTransportBase)) {
        /* A future asyncio that changes BaseTransport's slots must fail loudly. */
        PyErr_Format(PyExc_ImportError,
                     "asyncio.%s has instance size %zd, ringloop expects %zd",
                     asyncio_name, basicsize, (Py_ssize_t)sizeof(RLTransportBase));
        Py_DECREF(cls);
        return NULL;
    }
    return cls;
}

static int add_base(PyObject *module, PyObject *transports, const char *name,
                    const char *asyncio_name, const char *asyncio_name2)
{
    char qualname[96];
    PyObject *cls, *cls2 = NULL, *bases, *type;

    cls = asyncio_class(transports, asyncio_name);
    if (cls == NULL)
        return -1;
    if (asyncio_name2 != NULL) {
        cls2 = asyncio_class(transports, asyncio_name2);
        if (cls2 == NULL) {
            Py_DECREF(cls);
            return -1;
        }
    }
    PyOS_snprintf(qualname, sizeof(qualname), "ringloop._transport_bases.%s", name);
    PyType_Spec spec = {
        qualname, sizeof(RLTransportBase), 0,
        Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC, base_slots,
    };
    bases = cls2 == NULL ? PyTuple_Pack(1, cls) : PyTuple_Pack(2, cls, cls2);
    Py_DECREF(cls);
    Py_XDECREF(cls2);
    if (bases == NULL)
        return -1;
    type = PyType_FromSpecWithBases(&spec, bases);
    Py_DECREF(bases);
    if (type == NULL)
        return -1;
    if (PyModule_AddObject(module, name, type) < 0) {
        Py_DECREF(type);
        return -1;
    }
    return 0;
}

static int exec_module(PyObject *module)
{
    size_t i;
    PyObject *transports = PyImport_ImportModule("asyncio.transports");
    if (transports == NULL)
        return -1;
    for (i = 0; i < sizeof(BASES) / sizeof(BASES[0]); i++) {
        if (add_base(module, transports, BASES[i][0], BASES[i][1], BASES[i][2]) < 0) {
            Py_DECREF(transports);
            return -1;
        }
    }
    Py_DECREF(transports);
    return 0;
}

static PyModuleDef_Slot module_slots[] = {
    {Py_mod_exec, exec_module},
#ifdef Py_GIL_DISABLED
    /* Needs the GIL on free-threaded builds, like ringloop._core (see backend_info()). */
    {Py_mod_gil, Py_MOD_GIL_USED},
#endif
    {0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "ringloop._transport_bases",
    "Extension-type bases deriving from asyncio's transport classes.",
    0, NULL, module_slots,
};

PyMODINIT_FUNC PyInit__transport_bases(void)
{
    return PyModuleDef_Init(&module_def);
}
