/* NativeConnection: a connection type written in C, for binding_floor.py's c-class variant.
 *
 * Compiled into native_bench.so next to native_bench.c (run.build_native(library=True)), so the
 * library is also a Python extension module, imported as `native_bench` once binding_floor.py
 * has loaded it with ctypes and called native_bench_setup. The type has Connection's signature and
 * makes the calls the py-class variant makes, native_bench_start/_negotiate/_release (set-up and
 * give-back with the GIL held, the handshake with it released), but from C methods: no Python
 * frame runs in a connection's life. What it measures is the ceiling of an s2npy whose Connection
 * is a C type; the gap between it and py-class is what Python frames in the lifecycle cost.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

struct s2n_connection;
struct s2n_connection *native_bench_start(int server, int fd);
int native_bench_negotiate(struct s2n_connection *conn);
int native_bench_release(struct s2n_connection *conn);

static PyObject *facts_type; /* s2npy.facts.NegotiatedFacts, made as facts_from_struct makes it */

typedef struct {
    PyObject_HEAD
    struct s2n_connection *conn; /* NULL once closed */
} NativeConnection;

static int native_connection_init(NativeConnection *self, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"config", "mode", "io", "server_name", "cert_auth", "policy", "alpn", "session",
                               "trace", "blinding", "prefer", NULL};
    PyObject *config, *mode = NULL, *io = Py_None, *ignored[8];
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|U$OOOOOOOOO", keywords, &config, &mode, &io, &ignored[0],
                                     &ignored[1], &ignored[2], &ignored[3], &ignored[4], &ignored[5], &ignored[6],
                                     &ignored[7]))
        return -1;
    int fd = PyObject_AsFileDescriptor(io);
    if (fd < 0) return -1;
    if (self->conn) native_bench_release(self->conn);
    self->conn = native_bench_start(mode && PyUnicode_CompareWithASCIIString(mode, "server") == 0, fd);
    return 0;
}

static PyObject *native_connection_negotiate(NativeConnection *self, PyObject *unused)
{
    struct s2n_connection *conn = self->conn;
    if (!conn) {
        PyErr_SetString(PyExc_ValueError, "the connection is closed");
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    native_bench_negotiate(conn); /* exits the process on failure, as native_bench does */
    Py_END_ALLOW_THREADS
    PyObject *facts = ((PyTypeObject *) facts_type)->tp_alloc((PyTypeObject *) facts_type, 0);
    PyObject *attributes = facts ? PyObject_GenericGetDict(facts, NULL) : NULL;
    if (!attributes || PyDict_SetItemString(attributes, "_raw", Py_None) < 0 ||
        PyDict_SetItemString(attributes, "_chain", Py_None) < 0) {
        Py_XDECREF(attributes);
        Py_XDECREF(facts);
        return NULL;
    }
    Py_DECREF(attributes);
    return facts;
}

static PyObject *native_connection_close(NativeConnection *self, PyObject *unused)
{
    if (self->conn) {
        native_bench_release(self->conn);
        self->conn = NULL;
    }
    Py_RETURN_NONE;
}

static void native_connection_dealloc(NativeConnection *self)
{
    if (self->conn) native_bench_release(self->conn);
    Py_TYPE(self)->tp_free((PyObject *) self);
}

static PyMethodDef native_connection_methods[] = {
    {"negotiate", (PyCFunction) native_connection_negotiate, METH_NOARGS, "The handshake; facts as Connection's."},
    {"close", (PyCFunction) native_connection_close, METH_NOARGS, "Give the connection back (idempotent)."},
    {NULL},
};

static PyTypeObject NativeConnectionType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "native_bench.NativeConnection",
    .tp_basicsize = sizeof(NativeConnection),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A connection over native_bench's calls, with Connection's signature: a C type.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc) native_connection_init,
    .tp_dealloc = (destructor) native_connection_dealloc,
    .tp_methods = native_connection_methods,
};

static struct PyModuleDef native_bench_module = {
    PyModuleDef_HEAD_INIT, "native_bench", "native_bench.so as a module: NativeConnection.", -1, NULL,
};

PyMODINIT_FUNC PyInit_native_bench(void)
{
    PyObject *facts = PyImport_ImportModule("s2npy.facts");
    facts_type = facts ? PyObject_GetAttrString(facts, "NegotiatedFacts") : NULL;
    Py_XDECREF(facts);
    if (!facts_type || PyType_Ready(&NativeConnectionType) < 0) return NULL;
    PyObject *module = PyModule_Create(&native_bench_module);
    if (module && PyModule_AddObjectRef(module, "NativeConnection", (PyObject *) &NativeConnectionType) < 0)
        Py_CLEAR(module);
    return module;
}
