/* s2npy._datapath: Connection.send and recv_into per call, without cffi in the way,
 * the connection setup call, made with the GIL held when it reuses a connection
 * (create_connection, below), and the untraced negotiate step with its call guard
 * (negotiate_step, below), which ConnectionCore, Connection's base, uses: its construction,
 * handshake steps and close without Python frames in the common case (_connection_core.c).
 *
 * Why a second extension module: in bulk transfers the cost per call decides
 * the throughput, and through cffi a recv_into pays ffi.from_buffer (~0.45 us
 * with its release), the cffi call and three Python frames for the call guard
 * and the result checks. A DataChannel method does the same work in C: it takes
 * the caller's buffer with PyObject_GetBuffer, enters the connection's call
 * guard, releases the GIL around the one s2n call and leaves the guard.
 * Measured on 1 GiB of 64 KiB writes: 0.935x native C s2n through cffi, 1.01x
 * through this path (BENCHMARKS.md).
 *
 * The Connection (connection.py) owns everything a channel points at: the
 * s2n_connection, its send and recv blocked statuses and recv-failed flag, its burst reader and
 * its call-guard list (Connection._in_calls, shared with negotiate and close).
 * close() detaches the channel before it gives the pointer up. A method returns
 * a count >= 0 only when the s2n call succeeded cleanly and the connection is
 * still open; otherwise it returns one of two codes and Python does what it
 * always did:
 *   NOT_CALLED (-2): nothing was called and no guard entered (closed, a buffer
 *     cffi must judge, a bad nbytes, a reader still to set up): take the full path;
 *   CALLED (-1): s2n was called but its result needs Python (a failure, a later
 *     record's failure, a close meanwhile): the guard is still entered, outcome()
 *     gives (result, errno), and Python handles it and leaves the guard.
 *
 * s2n's function addresses come from the cffi module once, through bind(): this
 * module links nothing. Limited API 3.11 (abi3), like the cffi module. */

#include "_datapath.h"

/* s2npy_recv and s2n_send (build_s2n.py, s2n.h); blocked is an s2n_blocked_status (an int enum). */
typedef ssize_t recv_fn(void *conn, void *buf, ssize_t size, void *reader, int *blocked, int *failed);
typedef ssize_t send_fn(void *conn, const void *buf, ssize_t size, int *blocked);

static recv_fn *burst_recv;
static send_fn *s2n_send_fn;
static create_fn *connection_create;
static negotiate_fn *s2npy_negotiate_fn;
static connection_fn *connection_wipe, *connection_free; /* s2n_connection_wipe, s2n_connection_free */

/* Where the reader for recv bursts stands: set by the Connection's reader setup. */
enum reader_state {
    READER_PENDING, /* not made yet: the first recv_into makes it */
    READER_SMALL,   /* an exact reader: a buffer of ahead_min bytes or more needs its read-ahead made */
    READER_FINAL,   /* a reader with read-ahead, or none (reader NULL): nothing more to make */
};

struct outcome {
    Py_ssize_t result;
    int error_number;
};

typedef struct {
    PyObject_HEAD
    void *conn;          /* NULL once detached */
    PyObject *in_calls;  /* the Connection's call-guard list */
    int *blocked;        /* the Connection's send and recv s2n_blocked_status, in that order */
    int *failed;         /* the Connection's recv-failed flag */
    void *reader;
    int reader_state;
    Py_ssize_t ahead_min;
    struct outcome recv_outcome, send_outcome; /* per direction: one thread may send while one receives */
} DataChannel;

void *address_of(PyObject *number)
{
    return (void *) (uintptr_t) PyLong_AsUnsignedLongLong(number);
}

/* A C int argument, or -1 with the exception set: OverflowError out of range, as cffi does. */
static int int_argument(PyObject *number, int *out)
{
    long value = PyLong_AsLong(number);
    if (value == -1 && PyErr_Occurred()) return -1;
    if (value < INT_MIN || value > INT_MAX) {
        PyErr_Format(PyExc_OverflowError, "integer %ld does not fit 'int'", value);
        return -1;
    }
    *out = (int) value;
    return 0;
}

/* 0 once bind() gave the s2n functions, else -1 with RuntimeError set. */
static int require_bound(void)
{
    if (burst_recv != NULL && s2n_send_fn != NULL && connection_create != NULL && s2npy_negotiate_fn != NULL &&
        connection_wipe != NULL && connection_free != NULL)
        return 0;
    PyErr_SetString(PyExc_RuntimeError, "s2npy._datapath.bind() was not called");
    return -1;
}

/* Enter a call guard: push one entry on the Connection's in_calls list (Connection._begin_call's append). */
int enter(PyObject *in_calls)
{
    return PyList_Append(in_calls, Py_None);
}

/* Leave a call guard: pop one entry of the Connection's in_calls list (Connection._end_call's pop). */
int leave(PyObject *in_calls)
{
    Py_ssize_t size = PyList_Size(in_calls);
    return size > 0 ? PyList_SetSlice(in_calls, size - 1, size, NULL) : 0;
}

/* After the s2n call, GIL held: a clean count leaves the guard; anything else stays in it for Python. */
static PyObject *finish(DataChannel *self, struct outcome *outcome, Py_ssize_t result, int error_number,
                        int clean)
{
    if (clean && self->conn != NULL) {
        if (leave(self->in_calls) < 0) return NULL;
        return PyLong_FromSsize_t(result);
    }
    outcome->result = result;
    outcome->error_number = error_number;
    return PyLong_FromLong(CALLED);
}

static PyObject *channel_recv_into(PyObject *op, PyObject *const *args, Py_ssize_t nargs)
{
    DataChannel *self = (DataChannel *) op;
    Py_buffer view;
    Py_ssize_t nbytes = 0, result;
    int error_number;
    if (nargs < 1 || nargs > 2) {
        PyErr_SetString(PyExc_TypeError, "recv_into(buffer, nbytes=0)");
        return NULL;
    }
    if (nargs == 2 && (nbytes = PyLong_AsSsize_t(args[1])) == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        return PyLong_FromLong(NOT_CALLED);
    }
    if (self->conn == NULL || self->reader_state == READER_PENDING) return PyLong_FromLong(NOT_CALLED);
    if (PyObject_GetBuffer(args[0], &view, PyBUF_WRITABLE) < 0) {
        PyErr_Clear(); /* the full path raises what cffi says about this buffer */
        return PyLong_FromLong(NOT_CALLED);
    }
    Py_ssize_t size = nbytes ? nbytes : view.len;
    if (size < 0 || size > view.len || (self->reader_state == READER_SMALL && size >= self->ahead_min)
            || enter(self->in_calls) < 0) {
        PyErr_Clear();
        PyBuffer_Release(&view);
        return PyLong_FromLong(NOT_CALLED);
    }
    void *conn = self->conn; /* read after entering: close() cannot free it until we leave */
    Py_BEGIN_ALLOW_THREADS
    result = burst_recv(conn, view.buf, size, self->reader, self->blocked + 1, self->failed);
    error_number = errno;
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&view);
    return finish(self, &self->recv_outcome, result, error_number, result >= 0 && !*self->failed);
}

static PyObject *channel_send(PyObject *op, PyObject *data)
{
    DataChannel *self = (DataChannel *) op;
    Py_buffer view;
    Py_ssize_t result;
    int error_number;
    if (self->conn == NULL) return PyLong_FromLong(NOT_CALLED);
    if (PyObject_GetBuffer(data, &view, PyBUF_SIMPLE) < 0) {
        PyErr_Clear();
        return PyLong_FromLong(NOT_CALLED);
    }
    if (enter(self->in_calls) < 0) {
        PyErr_Clear();
        PyBuffer_Release(&view);
        return PyLong_FromLong(NOT_CALLED);
    }
    void *conn = self->conn;
    Py_BEGIN_ALLOW_THREADS
    result = s2n_send_fn(conn, view.buf, view.len, self->blocked);
    error_number = errno;
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&view);
    return finish(self, &self->send_outcome, result, error_number, result >= 0);
}

static PyObject *channel_outcome(PyObject *op, PyObject *sending)
{
    DataChannel *self = (DataChannel *) op;
    struct outcome *outcome = PyObject_IsTrue(sending) ? &self->send_outcome : &self->recv_outcome;
    return Py_BuildValue("(ni)", outcome->result, outcome->error_number);
}

static PyObject *channel_set_reader(PyObject *op, PyObject *args)
{
    DataChannel *self = (DataChannel *) op;
    PyObject *address;
    int final;
    if (!PyArg_ParseTuple(args, "Op", &address, &final)) return NULL;
    void *reader = address_of(address);
    if (PyErr_Occurred()) return NULL;
    self->reader = reader;
    self->reader_state = final ? READER_FINAL : READER_SMALL;
    Py_RETURN_NONE;
}

static PyObject *channel_detach(PyObject *op, PyObject *Py_UNUSED(unused))
{
    ((DataChannel *) op)->conn = NULL;
    Py_RETURN_NONE;
}

static int channel_init(PyObject *op, PyObject *args, PyObject *Py_UNUSED(kwargs))
{
    DataChannel *self = (DataChannel *) op;
    PyObject *conn, *in_calls, *blocked, *failed;
    Py_ssize_t ahead_min;
    if (!PyArg_ParseTuple(args, "OO!OOn", &conn, &PyList_Type, &in_calls, &blocked, &failed, &ahead_min)) return -1;
    if (require_bound() < 0) return -1;
    self->conn = address_of(conn);
    self->blocked = address_of(blocked);
    self->failed = address_of(failed);
    if (PyErr_Occurred()) return -1;
    PyObject *previous = self->in_calls;
    Py_INCREF(in_calls);
    self->in_calls = in_calls;
    Py_XDECREF(previous);
    self->ahead_min = ahead_min;
    return 0;
}

static void channel_dealloc(PyObject *op)
{
    PyTypeObject *type = Py_TYPE(op);
    Py_XDECREF(((DataChannel *) op)->in_calls);
    freefunc free_slot = (freefunc) PyType_GetSlot(type, Py_tp_free);
    free_slot(op);
    Py_DECREF(type);
}

static PyMethodDef channel_methods[] = {
    {"recv_into", (PyCFunction) (void (*)(void)) channel_recv_into, METH_FASTCALL,
     "recv_into(buffer, nbytes=0) -> count >= 0, or NOT_CALLED / CALLED (see the module)"},
    {"send", channel_send, METH_O, "send(data) -> count >= 0, or NOT_CALLED / CALLED"},
    {"outcome", channel_outcome, METH_O, "outcome(sending) -> (result, errno) of the last CALLED call"},
    {"set_reader", channel_set_reader, METH_VARARGS,
     "set_reader(address, final): the recv burst reader (0: none); final: it needs no read-ahead made"},
    {"detach", channel_detach, METH_NOARGS, "forget the connection: every later call returns NOT_CALLED"},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot channel_slots[] = {
    {Py_tp_doc, "DataChannel(conn, in_calls, blocked, failed, ahead_min): addresses as ints (blocked: the send and"
                " recv statuses, in that order); see the module"},
    {Py_tp_methods, channel_methods},
    {Py_tp_init, channel_init},
    {Py_tp_new, PyType_GenericNew},
    {Py_tp_dealloc, channel_dealloc},
    {0, NULL},
};

static PyType_Spec channel_spec = {"s2npy._datapath.DataChannel", sizeof(DataChannel), 0, Py_TPFLAGS_DEFAULT,
                                   channel_slots};

/* create_connection(reuse, mode, config, context, verify_host, verify_data, blinding, server_name,
 * fd, mem, prefer, cert_auth, policy, alpn, alpn_count, session): s2npy_connection_create.
 * Pointers are addresses (0 for NULL); the server name, policy and session are bytes or None.
 * Returns the connection's address, or minus the step that failed.
 * Why not through cffi, which releases the GIL around every call: setting up a reused (wiped)
 * connection takes ~1 us, and releasing the GIL for it hands the GIL to a thread that just woke
 * (a server thread handed a socket while its client sets up), whose Python this thread then
 * waits for, on the handshake's critical path: so that call keeps the GIL (socketpair
 * handshakes +4%, BENCHMARKS.md). A new connection (reuse 0) is another matter: s2n_connection_new
 * allocates and mlocks ~44 KiB (~30 us), time the other thread can use, so that call releases it
 * (socketpair handshakes without reuse +5%). */
void *create_with_gil_rule(void *reuse, int mode, void *config, void *context, void *verify_host, void *verify_data,
                           int blinding, const char *server_name, int fd, void *mem, int prefer, int cert_auth,
                           const char *policy, void *alpn, int alpn_count, const void *session,
                           uint32_t session_length, int *failed_step)
{
    /* Released only to allocate (reuse NULL): the arguments' objects (bytes, the ALPN array) are
     * the caller's, alive through the call, and the config counts this connection as its user,
     * so it cannot be freed meanwhile. */
    PyThreadState *released = reuse == NULL ? PyEval_SaveThread() : NULL;
    void *conn = connection_create(reuse, mode, config, context, verify_host, verify_data, blinding, server_name,
                                   fd, mem, prefer, cert_auth, policy, alpn, alpn_count, session, session_length,
                                   failed_step);
    if (released != NULL) PyEval_RestoreThread(released);
    return conn;
}

static PyObject *create_connection(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 16) {
        PyErr_SetString(PyExc_TypeError, "create_connection takes 16 arguments");
        return NULL;
    }
    if (require_bound() < 0) return NULL;
    const char *server_name = args[7] == Py_None ? NULL : PyBytes_AsString(args[7]);
    const char *policy = args[12] == Py_None ? NULL : PyBytes_AsString(args[12]);
    void *alpn = address_of(args[13]);
    char *session = NULL;
    Py_ssize_t session_length = 0;
    if (args[15] != Py_None && PyBytes_AsStringAndSize(args[15], &session, &session_length) < 0) return NULL;
    if (session_length > UINT32_MAX) {
        PyErr_SetString(PyExc_OverflowError, "a session of more than 4 GiB");
        return NULL;
    }
    void *reuse = address_of(args[0]), *config = address_of(args[2]), *context = address_of(args[3]);
    void *verify_host = address_of(args[4]), *verify_data = address_of(args[5]), *mem = address_of(args[9]);
    int mode, blinding, fd, prefer, cert_auth, alpn_count;
    if (PyErr_Occurred() || int_argument(args[1], &mode) < 0 || int_argument(args[6], &blinding) < 0
            || int_argument(args[8], &fd) < 0 || int_argument(args[10], &prefer) < 0
            || int_argument(args[11], &cert_auth) < 0 || int_argument(args[14], &alpn_count) < 0)
        return NULL;
    int failed_step = 0;
    void *conn = create_with_gil_rule(reuse, mode, config, context, verify_host, verify_data, blinding, server_name,
                                      fd, mem, prefer, cert_auth, policy, alpn, alpn_count, session,
                                      (uint32_t) session_length, &failed_step);
    return conn != NULL ? PyLong_FromVoidPtr(conn) : PyLong_FromLong(-failed_step);
}

/* 1 if an IdleConnections (pool.py) keeps one more connection in `kept`, its list for the
 * connection's mode: the pool is open and below its capacity; 0 if not; -1 on error. */
static int pool_has_room(PyObject *pool, PyObject *kept)
{
    PyObject *closed = PyObject_GetAttr(pool, NAME(POOL_CLOSED));
    if (closed == NULL) return -1;
    int is_closed = PyObject_IsTrue(closed);
    Py_DECREF(closed);
    if (is_closed != 0) return is_closed < 0 ? -1 : 0;
    PyObject *capacity = PyObject_GetAttr(pool, NAME(CAPACITY));
    if (capacity == NULL) return -1;
    Py_ssize_t limit = PyLong_AsSsize_t(capacity), size = PyList_Size(kept);
    Py_DECREF(capacity);
    if ((limit == -1 || size == -1) && PyErr_Occurred()) return -1;
    return size < limit;
}

/* IdleConnections.give's work (pool.py), for it and for ConnectionCore's close(): a closed
 * connection's s2n connection wiped and kept in `pool` as (pointer, address) for the next
 * Connection on the config, or freed (pool full or closed, wipe failed). The GIL is released
 * around the wipe and the free (~17 us and ~30 us after a handshake), and the pool is checked
 * again after the wipe, as Config.close() may have closed it meanwhile: with the GIL held, the
 * check and the append cannot interleave with its clear(), so no lock is needed. The connection
 * is freed on every error path too. 0, or -1 with an exception set. */
int give_back(PyObject *pool, PyObject *pointer, void *conn, long mode)
{
    if (require_bound() < 0) return -1;
    PyObject *lists = PyObject_GetAttr(pool, NAME(IDLE));
    PyObject *kept = lists != NULL ? PySequence_GetItem(lists, mode) : NULL;
    Py_XDECREF(lists);
    int room = kept != NULL && PyList_Check(kept) ? pool_has_room(pool, kept) : -1;
    if (room == 1) {
        int wiped;
        Py_BEGIN_ALLOW_THREADS
        wiped = connection_wipe(conn) == 0;
        Py_END_ALLOW_THREADS
        room = wiped ? pool_has_room(pool, kept) : 0;
        PyObject *entry = room == 1 ? Py_BuildValue("(ON)", pointer, PyLong_FromVoidPtr(conn)) : NULL;
        if (entry != NULL && PyList_Append(kept, entry) == 0) {
            Py_DECREF(entry);
            Py_DECREF(kept);
            return 0;
        }
        if (room == 1) room = -1;
        Py_XDECREF(entry);
    }
    if (room == -1 && !PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "IdleConnections._idle must hold lists");
    Py_XDECREF(kept);
    Py_BEGIN_ALLOW_THREADS
    connection_free(conn);
    Py_END_ALLOW_THREADS
    return room < 0 ? -1 : 0;
}

static PyObject *give_back_call(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "give_back takes 4 arguments");
        return NULL;
    }
    void *conn = address_of(args[2]);
    long mode = PyLong_AsLong(args[3]);
    if (PyErr_Occurred()) return NULL;
    if (conn == NULL || mode < 0 || mode > 1) {
        PyErr_SetString(PyExc_ValueError, "give_back: a connection address and a mode (0 or 1)");
        return NULL;
    }
    if (give_back(args[0], args[1], conn, mode) < 0) return NULL;
    Py_RETURN_NONE;
}

/* The connection's s2n_connection address (Connection._c_address), or NULL: closed, or an
 * exception set. Read inside the call guard, as _begin_call reads the pointer. */
void *connection_address(PyObject *connection)
{
    PyObject *address = PyObject_GetAttr(connection, NAME(C_ADDRESS));
    if (address == NULL) return NULL;
    void *conn = address_of(address);
    Py_DECREF(address);
    return conn;
}

/* One s2npy_negotiate call for an untraced Connection (ConnectionCore's negotiate() and
 * try_negotiate(), _connection_core.c), with its call guard (the in_calls list) entered and
 * left here, as the DataChannel methods do. `facts`: the struct to fill on completion, or NULL.
 * Returns, with the guard left, the s2n_blocked_status: 0 (S2N_NOT_BLOCKED) when the handshake
 * is done, else what it waits for; NOT_CALLED if the connection was closed (nothing called, no
 * guard); otherwise (a failure, or a close meanwhile) the tuple (result, errno, connection
 * address) with the guard still entered, for Python to handle and leave.
 * Why in C: after a handshake step caches are cold, and there the Python call guard, the cffi
 * call and the result checks cost ~2 us a call (in-memory handshakes, BENCHMARKS.md). */
PyObject *negotiate_step(PyObject *connection, PyObject *in_calls, int *blocked, void *facts)
{
    if (require_bound() < 0 || enter(in_calls) < 0) return NULL;
    void *conn = connection_address(connection);
    if (conn == NULL) {
        PyObject *type, *value, *traceback;
        PyErr_Fetch(&type, &value, &traceback);
        leave(in_calls);
        PyErr_Restore(type, value, traceback);
        return PyErr_Occurred() ? NULL : PyLong_FromLong(NOT_CALLED);
    }
    int result, error_number;
    Py_BEGIN_ALLOW_THREADS
    result = s2npy_negotiate_fn(conn, blocked, facts, NULL);
    error_number = errno;
    Py_END_ALLOW_THREADS
    if (result == 0 || (result == 1 && *blocked > 0)) {
        void *still = connection_address(connection);
        if (still != NULL) {
            if (leave(in_calls) < 0) return NULL;
            return PyLong_FromLong(result == 0 ? 0 : *blocked);
        }
        if (PyErr_Occurred()) PyErr_Clear(); /* Python's path reads the closed state itself */
    }
    return Py_BuildValue("(iiN)", result, error_number, PyLong_FromVoidPtr(conn));
}

static PyObject *bind(PyObject *Py_UNUSED(module), PyObject *args)
{
    PyObject *recv_address, *send_address, *create_address, *negotiate_address, *wipe_address, *free_address;
    if (!PyArg_ParseTuple(args, "OOOOOO", &recv_address, &send_address, &create_address, &negotiate_address,
                          &wipe_address, &free_address))
        return NULL;
    recv_fn *recv = (recv_fn *) address_of(recv_address);
    send_fn *send = (send_fn *) address_of(send_address);
    create_fn *create = (create_fn *) address_of(create_address);
    negotiate_fn *negotiate_call = (negotiate_fn *) address_of(negotiate_address);
    connection_fn *wipe = (connection_fn *) address_of(wipe_address);
    connection_fn *free_call = (connection_fn *) address_of(free_address);
    if (PyErr_Occurred()) return NULL;
    burst_recv = recv;
    s2n_send_fn = send;
    connection_create = create;
    s2npy_negotiate_fn = negotiate_call;
    connection_wipe = wipe;
    connection_free = free_call;
    Py_RETURN_NONE;
}

static PyMethodDef module_methods[] = {
    {"bind", bind, METH_VARARGS,
     "bind(s2npy_recv, s2n_send, s2npy_connection_create, s2npy_negotiate, s2n_connection_wipe, s2n_connection_free"
     " addresses): once, before any other use"},
    {"give_back", (PyCFunction) (void (*)(void)) give_back_call, METH_FASTCALL,
     "give_back(pool, pointer, address, mode): IdleConnections.give's work, the GIL released around the wipe"},
    {"create_connection", (PyCFunction) (void (*)(void)) create_connection, METH_FASTCALL,
     "create_connection(reuse, mode, config, context, verify_host, verify_data, blinding, server_name, fd, mem,"
     " prefer, cert_auth, policy, alpn, alpn_count, session)"
     ": s2npy_connection_create with the GIL held; the address, or minus the failed step"},
    {"bind_core", bind_core, METH_O, "bind_core(namespace: dict): what ConnectionCore's fast paths use (connection.py)"},
    {NULL, NULL, 0, NULL},
};

static int module_exec(PyObject *module)
{
    PyObject *type = PyType_FromSpec(&channel_spec);
    if (type == NULL || PyModule_AddObject(module, "DataChannel", type) < 0) {
        Py_XDECREF(type);
        return -1;
    }
    if (connection_core_exec(module) < 0) return -1; /* interns the attribute names too */
    if (PyModule_AddIntConstant(module, "NOT_CALLED", NOT_CALLED) < 0) return -1;
    return PyModule_AddIntConstant(module, "CALLED", CALLED);
}

static PyModuleDef_Slot module_slots[] = {{Py_mod_exec, module_exec}, {0, NULL}};

static struct PyModuleDef datapath_module = {
    PyModuleDef_HEAD_INIT, "s2npy._datapath", "Connection.send/recv_into per call, its setup call and ConnectionCore (its construction, untraced negotiate steps and close), in C (see _datapath.c and _connection_core.c).", 0,
    module_methods, module_slots, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__datapath(void)
{
    return PyModuleDef_Init(&datapath_module);
}
