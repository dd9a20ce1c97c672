/* s2npy._datapath's ConnectionCore (see below): Connection's base type, in C.
 * Part of the _datapath extension (setup.py), with _datapath.c, whose negotiate step, create
 * call (with its GIL rule) and call guard it uses (_datapath.h). */

#include "_datapath.h"

/* --- ConnectionCore: Connection() and negotiate() without Python frames ------------------
 *
 * Connection (connection.py) is a Python subclass of this type; its state stays in its
 * __dict__, where its Python methods find it. What runs here is the common case of its
 * construction and of its untraced negotiate() and try_negotiate(): on a socket, fd or memory
 * pipe, with a config that calls no Python back, no tracing and no per-connection overrides.
 * Anything else calls the Python methods that handle every case: Connection._setup (the full
 * constructor), _traced_negotiate, _negotiate_finish and _untraced_outcome.
 * Why: socketpair handshakes run a client and a server thread, which take turns with the GIL.
 * A server thread woken with its socket waits for the GIL while its client sets its
 * connection up, and again, at the end, while its client returns from negotiate(); each wait
 * is a sleep and a wake-up on the handshake's critical path. The less Python in those
 * windows, the fewer waits (BENCHMARKS.md, "GIL waits"). */

/* The C part of a Connection: what its s2n calls write, owned by the object (no cffi allocation
 * per connection). Python reads it through the addresses the getters below give. */
typedef struct {
    PyObject_HEAD
    int blocked[3];  /* s2n_blocked_status (an int enum): [0] negotiate, [1] send and shutdown, [2] recv;
                      * one per direction, so that a thread receiving while another sends reads its own */
    int recv_failed; /* set when a recv burst's later record failed */
} ConnectionCore;

static const char *const core_name_text[N_COUNT] = {
    "mode", "_c_mode", "_in_calls", "_unfreed", "config", "_ptr",
    "_c_address", "_io_object", "_io_binding", "_fd", "trace", "_handshake_done", "_callback_error", "error",
    "_calls_connections", "_frozen", "_users", "_idle", "_address", "gettimeout", "fileno", "_end_address", "level",
    "_setup", "_creation_failed", "_traced_negotiate", "_negotiate_finish", "_untraced_outcome", "close",
    "_peer_chain", "loaded", "_channel", "closed", "_release", "_close", "_load", "_raw", "_chain", "io", "server_name",
    "session", "blinding", "_traced_try_negotiate", "_detach", "_tap", "_handle", "_closed", "capacity",
};
PyObject *core_names[N_COUNT];

/* What bind_core() gave: the Python objects and constants the fast paths use. */
static struct {
    PyObject *config_type, *socket_type, *pipe_end_type; /* exact types the fast set-up takes */
    PyObject *modes;          /* connection._MODES: spelling (a str or a Mode) -> (Mode, s2n mode) */
    PyObject *client_mode;    /* Mode.CLIENT, the default */
    PyObject *encode_server_name; /* connection._encode_server_name (cached IDNA) */
    PyObject *trace_logger;   /* the s2npy.trace logger: DEBUG turns tracing on */
    PyObject *ffi_cast, *connection_type; /* cffi: ffi.cast and the pointer type it makes */
    PyObject *orphan_errors;  /* _callbacks.orphan_errors (.error: a callback's unattributed exception) */
    PyObject *blocked_members; /* Blocked's value -> member map */
    PyObject *chain_type, *facts_type, *partial, *peer_cert_ders; /* the facts (facts.py) */
    PyObject *self_service;   /* "self-service", the default blinding */
    long debug_level, max_fd;
    Py_ssize_t facts_size; /* sizeof(struct s2npy_facts) */
    int trace_env, blinding, server_mode;
    void *accept_any_host;
} core;

static int set_attr(PyObject *object, enum core_name name, PyObject *value)
{
    return PyObject_SetAttr(object, core_names[name], value);
}

/* set_attr taking the reference to `value` (NULL: an error already set). */
static int set_attr_new(PyObject *object, enum core_name name, PyObject *value)
{
    if (value == NULL) return -1;
    int result = PyObject_SetAttr(object, core_names[name], value);
    Py_DECREF(value);
    return result;
}

/* 1 if the attribute is None, 0 if not, -1 on error. */
static int attr_is_none(PyObject *object, enum core_name name)
{
    PyObject *value = PyObject_GetAttr(object, core_names[name]);
    if (value == NULL) return -1;
    int none = value == Py_None;
    Py_DECREF(value);
    return none;
}

/* list.pop() with the GIL held (so atomic: each item goes to one taker): the last item (a new
 * reference), or NULL: the list is empty (no exception) or an error is set. */
static PyObject *list_pop(PyObject *list)
{
    Py_ssize_t size = PyList_Size(list);
    PyObject *item = size > 0 ? PyList_GetItem(list, size - 1) : NULL;
    Py_XINCREF(item);
    if (item != NULL && PyList_SetSlice(list, size - 1, size, NULL) < 0) Py_CLEAR(item);
    return item;
}

/* What the fast set-up takes from Connection()'s arguments. */
struct setup_args {
    PyObject *config, *mode, *io, *server_name, *session;
    PyObject *mode_pair;    /* (Mode, s2n mode), borrowed from core.modes */
    PyObject *name_bytes;   /* the encoded server name, or NULL */
    int fd;                 /* -1: none */
    void *mem;              /* a memory pipe's C end, or NULL */
};

/* Whether a keyword (a str) is one of the interned names: call sites pass interned keywords, so
 * the pointers match at once; anything else is compared by value. */
static int same_name(PyObject *key, enum core_name name)
{
    return key == core_names[name] || PyUnicode_Compare(key, core_names[name]) == 0;
}

/* 1 if the value of a keyword the fast set-up does not handle is its default (None, or the
 * default blinding). */
static int keyword_default(PyObject *key, PyObject *value)
{
    if (value == Py_None) return 1;
    if (same_name(key, N_BLINDING)) return PyUnicode_Check(value) && PyUnicode_Compare(value, core.self_service) == 0;
    if (same_name(key, N_TRACE)) return value == Py_False;
    return 0;
}

/* The fd of a socket without a timeout or of an int, in range; -1: not one the fast set-up takes. */
static int plain_fd(PyObject *io)
{
    long fd;
    if (PyLong_CheckExact(io)) {
        fd = PyLong_AsLong(io);
    } else {
        PyObject *timeout = PyObject_CallMethodObjArgs(io, NAME(GETTIMEOUT), NULL);
        if (timeout == NULL) return -1;
        int blocking = timeout == Py_None || (PyFloat_Check(timeout) && PyFloat_AsDouble(timeout) == 0.0);
        Py_DECREF(timeout);
        if (!blocking) return -1;
        PyObject *number = PyObject_CallMethodObjArgs(io, NAME(FILENO), NULL);
        if (number == NULL) return -1;
        fd = PyLong_AsLong(number);
        Py_DECREF(number);
    }
    if (fd == -1 && PyErr_Occurred()) return -1;
    return fd >= 0 && fd <= core.max_fd ? (int) fd : -1;
}

/* 1 if Connection(*args, **kwargs) is a case the fast set-up takes (`out` filled), 0 if the
 * Python constructor must run, -1 on error. Nothing is changed here; any exception a check
 * meets is cleared (the Python constructor reports it as it always has). */
static int fast_setup_args(PyObject *args, PyObject *kwargs, struct setup_args *out)
{
    Py_ssize_t nargs = PyTuple_Size(args);
    if (nargs < 1 || nargs > 2) return 0;
    out->config = PyTuple_GetItem(args, 0);
    out->mode = nargs == 2 ? PyTuple_GetItem(args, 1) : core.client_mode;
    out->io = out->server_name = out->session = Py_None;
    PyObject *trace = Py_None, *key, *value;
    Py_ssize_t position = 0;
    while (kwargs != NULL && PyDict_Next(kwargs, &position, &key, &value)) {
        if (!PyUnicode_Check(key)) return 0;
        if (same_name(key, N_IO)) out->io = value;
        else if (same_name(key, N_SERVER_NAME)) out->server_name = value;
        else if (same_name(key, N_SESSION)) out->session = value;
        else if (same_name(key, N_TRACE)) trace = value;
        else if (!keyword_default(key, value)) return 0; /* an override, or an unknown keyword */
    }
    if ((PyObject *) Py_TYPE(out->config) != core.config_type) return 0;
    if (trace == Py_None) { /* tracing without code changes: S2NPY_TRACE or the logger at DEBUG */
        if (core.trace_env) return 0;
        PyObject *level = PyObject_GetAttr(core.trace_logger, NAME(LEVEL));
        if (level == NULL) return -1;
        long number = PyLong_AsLong(level);
        Py_DECREF(level);
        if (number == -1 && PyErr_Occurred()) return -1;
        if (number == core.debug_level) return 0;
    } else if (trace != Py_False) {
        return 0;
    }
    if (!PyUnicode_CheckExact(out->mode) && !PyObject_TypeCheck(out->mode, Py_TYPE(core.client_mode))) return 0;
    out->mode_pair = PyDict_GetItemWithError(core.modes, out->mode);
    if (out->mode_pair == NULL) return PyErr_Occurred() ? -1 : 0;
    if (out->session != Py_None && (!PyBytes_CheckExact(out->session) || PyBytes_Size(out->session) == 0 ||
                                    PyBytes_Size(out->session) > UINT32_MAX))
        return 0;
    out->fd = -1;
    out->mem = NULL;
    if ((PyObject *) Py_TYPE(out->io) == core.pipe_end_type) { /* not a subclass: native_end() is its C end */
        PyObject *end = PyObject_GetAttr(out->io, NAME(END_ADDRESS));
        out->mem = end != NULL ? address_of(end) : NULL;
        Py_XDECREF(end);
        if (out->mem == NULL) {
            PyErr_Clear();
            return 0;
        }
    } else if (out->io != Py_None) {
        if (!PyLong_CheckExact(out->io) && (PyObject *) Py_TYPE(out->io) != core.socket_type) return 0;
        out->fd = plain_fd(out->io);
        if (out->fd < 0) {
            PyErr_Clear();
            return 0;
        }
    }
    PyObject *config = out->config;
    int calls = attr_is_none(config, N_PTR); /* a closed config: the Python constructor says so */
    if (calls != 0) return calls < 0 ? -1 : 0;
    PyObject *flag = PyObject_GetAttr(config, NAME(CALLS_CONNECTIONS));
    if (flag == NULL) return -1;
    calls = PyObject_IsTrue(flag);
    Py_DECREF(flag);
    if (calls != 0) return calls < 0 ? -1 : 0; /* its callbacks need the connection's handle */
    if (out->server_name != Py_None) {
        if (!PyUnicode_CheckExact(out->server_name) || PyUnicode_GetLength(out->server_name) == 0) return 0;
        out->name_bytes = PyObject_CallFunctionObjArgs(core.encode_server_name, out->server_name, NULL);
        if (out->name_bytes == NULL) {
            PyErr_Clear(); /* not a host name: the Python constructor says why */
            return 0;
        }
    }
    return 1;
}

/* config._attach(): frozen, and one more user. */
static int attach(PyObject *config)
{
    if (set_attr(config, N_FROZEN, Py_True) < 0) return -1;
    PyObject *users = PyObject_GetAttr(config, NAME(USERS));
    if (users == NULL) return -1;
    int result = PyList_Append(users, Py_None);
    Py_DECREF(users);
    return result;
}

/* config._idle.take(mode): a wiped connection's address to reuse, with *pointer its cffi pointer
 * (a new reference), or NULL: none (*pointer NULL too), or an error set. */
static void *take_idle(PyObject *config, long mode, PyObject **pointer)
{
    *pointer = NULL;
    PyObject *idle = PyObject_GetAttr(config, NAME(IDLE));
    PyObject *lists = idle != NULL ? PyObject_GetAttr(idle, NAME(IDLE)) : NULL;
    Py_XDECREF(idle);
    PyObject *list = lists != NULL ? PySequence_GetItem(lists, mode) : NULL;
    Py_XDECREF(lists);
    PyObject *entry = list != NULL ? list_pop(list) : NULL; /* (pointer, address): pool.py */
    Py_XDECREF(list);
    if (entry == NULL) return NULL;
    void *address = NULL;
    if (PyTuple_Check(entry) && PyTuple_Size(entry) == 2) {
        address = address_of(PyTuple_GetItem(entry, 1));
        *pointer = address != NULL ? Py_NewRef(PyTuple_GetItem(entry, 0)) : NULL;
    } else {
        PyErr_SetString(PyExc_TypeError, "IdleConnections holds (pointer, address) pairs");
    }
    Py_DECREF(entry);
    return address;
}

/* On a set-up error: call object.name() to undo what was done (its own failure is dropped), and
 * return -1 with the set-up's exception still set. */
static int undo_and_fail(PyObject *object, enum core_name name)
{
    PyObject *type, *value, *traceback;
    PyErr_Fetch(&type, &value, &traceback);
    PyObject *result = PyObject_CallMethodObjArgs(object, core_names[name], NULL);
    Py_XDECREF(result);
    PyErr_Restore(type, value, traceback);
    return -1;
}

/* The set-up Connection._setup makes for these arguments: 0, or -1 with an exception. */
static int fast_setup(PyObject *self, struct setup_args *a)
{
    PyObject *config = a->config;
    long mode = PyLong_AsLong(PyTuple_GetItem(a->mode_pair, 1));
    if (mode == -1 && PyErr_Occurred()) return -1;
    if (set_attr(self, N_MODE, PyTuple_GetItem(a->mode_pair, 0)) < 0 ||
        set_attr(self, N_C_MODE, PyTuple_GetItem(a->mode_pair, 1)) < 0 ||
        set_attr_new(self, N_IN_CALLS, PyList_New(0)) < 0 || set_attr_new(self, N_UNFREED, PyList_New(0)) < 0)
        return -1;
    if (set_attr(self, N_CONFIG, config) < 0) return -1;
    PyObject *config_address = PyObject_GetAttr(config, NAME(ADDRESS));
    void *config_ptr = config_address != NULL ? address_of(config_address) : NULL;
    Py_XDECREF(config_address);
    if (PyErr_Occurred() || attach(config) < 0) return -1;
    /* From here the config counts this connection: every way out gives it back. */
    PyObject *pointer = NULL; /* the reused connection's cffi pointer: Connection._ptr again */
    void *reuse = take_idle(config, mode, &pointer);
    if (PyErr_Occurred()) return undo_and_fail(config, N_DETACH);
    char *session = NULL;
    Py_ssize_t session_length = 0;
    if (a->session != Py_None) PyBytes_AsStringAndSize(a->session, &session, &session_length);
    int server = mode == core.server_mode, failed_step = 0;
    void *conn = create_with_gil_rule(reuse, (int) mode, config_ptr, NULL, server ? core.accept_any_host : NULL, NULL,
                                      core.blinding, a->name_bytes ? PyBytes_AsString(a->name_bytes) : NULL, a->fd,
                                      a->mem, 0, -1, NULL, NULL, 0, session, (uint32_t) session_length, &failed_step);
    if (conn == NULL) { /* the Python method gives the config back and raises what s2n said */
        Py_XDECREF(pointer);
        PyObject *step = PyLong_FromLong(failed_step);
        PyObject *result = step != NULL ? PyObject_CallMethodObjArgs(self, NAME(CREATION_FAILED), step,
                                                                     a->server_name, NULL) : NULL;
        Py_XDECREF(step);
        Py_XDECREF(result);
        return -1;
    }
    if (conn != reuse) Py_CLEAR(pointer);
    PyObject *address = PyLong_FromVoidPtr(conn);
    if (pointer == NULL && address != NULL) /* a new connection: its cffi pointer */
        pointer = PyObject_CallFunctionObjArgs(core.ffi_cast, core.connection_type, address, NULL);
    PyObject *unfreed = pointer != NULL ? PyObject_GetAttr(self, NAME(UNFREED)) : NULL;
    int failed = unfreed == NULL || set_attr(self, N_PTR, pointer) < 0 || set_attr(self, N_C_ADDRESS, address) < 0 ||
                 PyList_Append(unfreed, pointer) < 0;
    /* s2n already does the I/O: the socket or fd, or the pipe end (which reports its own errors). */
    if (!failed && (a->fd >= 0 || a->mem != NULL))
        failed = set_attr(self, N_IO_OBJECT, a->io) < 0 ||
                 (a->mem != NULL ? set_attr(self, N_IO_BINDING, a->io) : set_attr_new(self, N_FD, PyLong_FromLong(a->fd))) < 0;
    Py_XDECREF(address);
    Py_XDECREF(pointer);
    Py_XDECREF(unfreed);
    if (failed) /* a half-made connection frees at once (close() gives it back if it got as far) */
        return undo_and_fail(self, N_CLOSE);
    return 0;
}

static int core_init(PyObject *self, PyObject *args, PyObject *kwargs)
{
    struct setup_args setup = {0};
    int fast = core.config_type != NULL ? fast_setup_args(args, kwargs, &setup) : 0;
    if (fast != 0) {
        int result = fast > 0 ? fast_setup(self, &setup) : -1;
        Py_XDECREF(setup.name_bytes);
        return result;
    }
    PyObject *method = PyObject_GetAttr(self, NAME(SETUP));
    PyObject *result = method != NULL ? PyObject_Call(method, args, kwargs) : NULL;
    Py_XDECREF(method);
    if (result == NULL) return -1;
    Py_DECREF(result);
    return 0;
}

/* After an untraced negotiate step: 1 if it finished cleanly with nothing for Python to raise
 * (outcome 0 or a blocked status, no callback exception pending), 0 if not, -1 on error. */
static int clean_outcome(PyObject *self, PyObject *outcome)
{
    if (!PyLong_CheckExact(outcome) || PyLong_AsLong(outcome) < 0) return 0;
    int none = attr_is_none(self, N_CALLBACK_ERROR);
    if (none != 1) return none;
    return attr_is_none(core.orphan_errors, N_ERROR);
}

/* object.__new__(type) for a Python class (no __init__). */
static PyObject *new_instance(PyObject *type)
{
    allocfunc alloc = (allocfunc) PyType_GetSlot((PyTypeObject *) type, Py_tp_alloc);
    return alloc((PyTypeObject *) type, 0);
}

/* _lazy_peer_chain(ptr): the view of the peer chain that facts hand out, read from s2n on first
 * use (or when the connection closes): an earlier call's view while it is alive and not read
 * yet (a chain read mid-handshake may since have changed), else a new one, which the
 * connection keeps a weak reference to (Connection._keep_chains reads it before the free). */
static PyObject *lazy_peer_chain(PyObject *self, PyObject *ptr)
{
    PyObject *reference = PyObject_GetAttr(self, NAME(PEER_CHAIN));
    if (reference == NULL) return NULL;
    if (reference != Py_None) {
        PyObject *view = PyWeakref_GetObject(reference); /* borrowed; None once it is gone */
        Py_XINCREF(view);
        Py_DECREF(reference);
        if (view == NULL) return NULL;
        int loaded = view == Py_None ? 1 : 0;
        if (!loaded) {
            PyObject *flag = PyObject_GetAttr(view, NAME(LOADED));
            loaded = flag != NULL ? PyObject_IsTrue(flag) : -1;
            Py_XDECREF(flag);
        }
        if (loaded <= 0) {
            if (loaded == 0) return view;
            Py_DECREF(view);
            return NULL;
        }
        Py_DECREF(view);
    } else {
        Py_DECREF(reference);
    }
    /* A PeerCertChain is only its _load until read (facts.py): object.__new__ and that attribute. */
    PyObject *view = new_instance(core.chain_type);
    PyObject *load = view != NULL ? PyObject_CallFunctionObjArgs(core.partial, core.peer_cert_ders, ptr, NULL) : NULL;
    if (load == NULL || set_attr_new(view, N_LOAD, load) < 0 ||
            set_attr_new(self, N_PEER_CHAIN, PyWeakref_NewRef(view, NULL)) < 0) {
        Py_XDECREF(view);
        return NULL;
    }
    return view;
}

/* The facts of an untraced handshake that completed, from the struct its last step filled. */
static PyObject *completed_facts(PyObject *self, PyObject *raw)
{
    PyObject *ptr = PyObject_GetAttr(self, NAME(PTR));
    PyObject *chain = ptr != NULL ? lazy_peer_chain(self, ptr) : NULL;
    /* As facts.facts_from_struct makes them: object.__new__, the snapshot and the chain view in
     * its __dict__ (NegotiatedFacts is a frozen dataclass), decoded when a field is first read. */
    PyObject *facts = chain != NULL ? new_instance(core.facts_type) : NULL;
    if (facts != NULL && (PyObject_GenericSetAttr(facts, NAME(RAW), raw) < 0 ||
                          PyObject_GenericSetAttr(facts, NAME(CHAIN), chain) < 0))
        Py_CLEAR(facts);
    Py_XDECREF(ptr);
    Py_XDECREF(chain);
    return facts;
}

/* One untraced negotiate step of a Connection (negotiate_step, its call guard, blocked status
 * and `facts`): the outcome, with *clean set as clean_outcome says (-1 and NULL on error). */
static PyObject *untraced_step(PyObject *self, void *facts, int *clean)
{
    PyObject *in_calls = PyObject_GetAttr(self, NAME(IN_CALLS));
    PyObject *outcome = NULL;
    if (in_calls != NULL && PyList_Check(in_calls))
        outcome = negotiate_step(self, in_calls, ((ConnectionCore *) self)->blocked, facts);
    else if (in_calls != NULL)
        PyErr_SetString(PyExc_TypeError, "Connection._in_calls must be a list");
    Py_XDECREF(in_calls);
    *clean = outcome != NULL ? clean_outcome(self, outcome) : -1;
    if (*clean < 0) Py_CLEAR(outcome);
    return outcome;
}

/* negotiate(): untraced, one negotiate step (blocking I/O runs the whole handshake in it). */
static PyObject *core_negotiate(PyObject *self, PyObject *Py_UNUSED(unused))
{
    int untraced = attr_is_none(self, N_TRACE), clean = -1;
    if (untraced <= 0) return untraced < 0 ? NULL : PyObject_CallMethodObjArgs(self, NAME(TRACED_NEGOTIATE), NULL);
    /* The struct s2npy_facts the completing step fills, as a bytearray (facts.py views it). */
    PyObject *raw = PyByteArray_FromStringAndSize(NULL, core.facts_size);
    if (raw != NULL) memset(PyByteArray_AsString(raw), 0, core.facts_size);
    PyObject *outcome = raw != NULL ? untraced_step(self, PyByteArray_AsString(raw), &clean) : NULL, *result = NULL;
    if (clean == 1 && PyLong_AsLong(outcome) == 0) {
        if (set_attr(self, N_HANDSHAKE_DONE, Py_True) == 0) result = completed_facts(self, raw);
    } else if (clean == 0 || clean == 1) { /* blocked (a Want*Error), failed, or a callback's exception */
        result = PyObject_CallMethodObjArgs(self, NAME(NEGOTIATE_FINISH), outcome, raw, NULL);
    }
    Py_XDECREF(raw);
    Py_XDECREF(outcome);
    return result;
}

/* try_negotiate(): as negotiate(), returning the Blocked status (NOT_BLOCKED: done). */
static PyObject *core_try_negotiate(PyObject *self, PyObject *Py_UNUSED(unused))
{
    int untraced = attr_is_none(self, N_TRACE), clean = -1;
    if (untraced <= 0) return untraced < 0 ? NULL : PyObject_CallMethodObjArgs(self, NAME(TRACED_TRY_NEGOTIATE), NULL);
    PyObject *outcome = untraced_step(self, NULL, &clean), *result = NULL;
    if (clean == 1) {
        if (PyLong_AsLong(outcome) != 0 || set_attr(self, N_HANDSHAKE_DONE, Py_True) == 0) {
            result = PyDict_GetItemWithError(core.blocked_members, outcome);
            Py_XINCREF(result);
            if (result == NULL && !PyErr_Occurred()) PyErr_SetObject(PyExc_KeyError, outcome);
        }
    } else if (clean == 0) {
        result = PyObject_CallMethodObjArgs(self, NAME(UNTRACED_OUTCOME), outcome, NULL);
    }
    Py_XDECREF(outcome);
    return result;
}

/* 1 if close() can free the connection at once, as Connection._close would, with no Python
 * frames: no call of another thread inside it, no data channel to detach and no facts' chain
 * view to copy before the free; 0 if Connection._close must run; -1 on error. */
static int plain_close(PyObject *self)
{
    PyObject *in_calls = PyObject_GetAttr(self, NAME(IN_CALLS));
    if (in_calls == NULL) return -1;
    int plain = PyList_Check(in_calls) && PyList_Size(in_calls) == 0;
    Py_DECREF(in_calls);
    int none = plain ? attr_is_none(self, N_CHANNEL) : 0;
    if (none <= 0) return none;
    PyObject *reference = PyObject_GetAttr(self, NAME(PEER_CHAIN));
    if (reference == NULL) return -1;
    plain = reference == Py_None || PyWeakref_GetObject(reference) == Py_None; /* no view, or it is gone */
    Py_DECREF(reference);
    return plain;
}

/* Connection._release's work without its frames, for a connection without a trace tap (with
 * one: that method): the s2n connection given back to the config's pool (give_back, _datapath.c),
 * the config's count of users down by one (Config._detach), the I/O and the handle let go. */
static PyObject *release(PyObject *self, PyObject *pointer, void *conn)
{
    int untapped = attr_is_none(self, N_TAP);
    if (untapped != 1) return untapped < 0 ? NULL : PyObject_CallMethodObjArgs(self, NAME(RELEASE), pointer, NULL);
    PyObject *config = PyObject_GetAttr(self, NAME(CONFIG));
    PyObject *pool = config != NULL ? PyObject_GetAttr(config, NAME(IDLE)) : NULL;
    PyObject *mode = pool != NULL ? PyObject_GetAttr(self, NAME(C_MODE)) : NULL;
    long c_mode = mode != NULL ? PyLong_AsLong(mode) : -1;
    int given = PyErr_Occurred() ? -1 : give_back(pool, pointer, conn, c_mode);
    Py_XDECREF(mode);
    Py_XDECREF(pool);
    PyObject *users = given == 0 ? PyObject_GetAttr(config, NAME(USERS)) : NULL;
    PyObject *user = users != NULL ? list_pop(users) : NULL;
    Py_XDECREF(user);
    Py_XDECREF(users);
    Py_XDECREF(config);
    if (PyErr_Occurred() || set_attr(self, N_IO_BINDING, Py_None) < 0 || set_attr(self, N_IO_OBJECT, Py_None) < 0 ||
        set_attr(self, N_HANDLE, Py_None) < 0)
        return NULL;
    Py_RETURN_NONE;
}

/* close(): Connection._close's work for a plain close (above), without its frames: the pointer
 * cleared, then given back (release). Anything else: Connection._close. */
static PyObject *core_close(PyObject *self, PyObject *Py_UNUSED(unused))
{
    int closed = attr_is_none(self, N_PTR);
    if (closed != 0) {
        if (closed < 0) return NULL;
        Py_RETURN_NONE; /* idempotent */
    }
    int plain = plain_close(self);
    if (plain <= 0) return plain < 0 ? NULL : PyObject_CallMethodObjArgs(self, NAME(FULL_CLOSE), NULL);
    void *conn = connection_address(self);
    if (conn == NULL) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "an open Connection without its s2n connection");
        return NULL;
    }
    PyObject *zero = PyLong_FromLong(0);
    int failed = zero == NULL || set_attr(self, N_PTR, Py_None) < 0 || set_attr(self, N_C_ADDRESS, zero) < 0 ||
                 set_attr(self, N_CLOSED, Py_True) < 0;
    Py_XDECREF(zero);
    PyObject *unfreed = failed ? NULL : PyObject_GetAttr(self, NAME(UNFREED));
    if (unfreed == NULL) return NULL;
    PyObject *pointer = list_pop(unfreed), *result = NULL;
    Py_DECREF(unfreed);
    if (pointer != NULL) result = release(self, pointer, conn);
    else if (!PyErr_Occurred()) result = Py_NewRef(Py_None); /* freed already, as _free_once finds */
    Py_XDECREF(pointer);
    return result;
}

/* A Connection dropped while open frees its s2n connection (close()), as __del__ would. */
static void core_finalize(PyObject *self)
{
    PyObject *type, *value, *traceback;
    PyErr_Fetch(&type, &value, &traceback);
    int closed = attr_is_none(self, N_PTR);
    if (closed == 0) {
        PyObject *result = PyObject_CallMethodObjArgs(self, NAME(CLOSE), NULL);
        if (result == NULL) PyErr_WriteUnraisable(self);
        Py_XDECREF(result);
    } else if (closed < 0) {
        PyErr_Clear(); /* a half-made object (no _ptr class default): nothing to free */
    }
    PyErr_Restore(type, value, traceback);
}

static PyMethodDef core_methods[] = {
    {"negotiate", core_negotiate, METH_NOARGS,
     "Do the TLS handshake; return the negotiated facts.\n\n"
     "Raises :class:`~s2npy.WantReadError`/``WantWriteError``/\n"
     "``WantApplicationInputError`` on non-blocking I/O (call again when\n"
     "ready), or the :class:`~s2npy.S2NError` subclass that says why the\n"
     "handshake failed, with ``exc.diagnosis`` (and ``exc.trace`` if traced)."},
    {"try_negotiate", core_try_negotiate, METH_NOARGS,
     "Run the handshake as far as the I/O allows; ``NOT_BLOCKED`` means done."},
    {"close", core_close, METH_NOARGS,
     "Free the s2n connection (the socket/transport is not closed). Idempotent.\n\n"
     "Safe while another thread is inside negotiate/send/recv/shutdown: the\n"
     "connection is freed when that call returns (it then fails)."},
    {"_lazy_peer_chain", lazy_peer_chain, METH_O,
     "_lazy_peer_chain(ptr): a view of the peer chain read on first use (or when this connection closes)"},
    {NULL, NULL, 0, NULL},
};

static PyObject *core_blocked_address(PyObject *self, void *Py_UNUSED(closure))
{
    return PyLong_FromVoidPtr(((ConnectionCore *) self)->blocked);
}

static PyObject *core_recv_failed_address(PyObject *self, void *Py_UNUSED(closure))
{
    return PyLong_FromVoidPtr(&((ConnectionCore *) self)->recv_failed);
}

static PyGetSetDef core_getset[] = {
    {"_blocked_address", core_blocked_address, NULL, "the address of the s2n_blocked_status[3] s2n calls set", NULL},
    {"_recv_failed_address", core_recv_failed_address, NULL, "the address of the recv-failed flag (an int)", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot core_slots[] = {
    {Py_tp_doc, "Connection's construction and untraced negotiate() and close() in C (see _connection_core.c); subclassed by Connection"},
    {Py_tp_methods, core_methods},
    {Py_tp_getset, core_getset},
    {Py_tp_finalize, core_finalize},
    {Py_tp_init, core_init},
    {Py_tp_new, PyType_GenericNew},
    {0, NULL},
};

static PyType_Spec core_spec = {"s2npy._datapath.ConnectionCore", sizeof(ConnectionCore), 0, Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
                                core_slots};

/* bind_core(namespace): the objects the fast paths use, from a dict (see connection.py). */
PyObject *bind_core(PyObject *Py_UNUSED(module), PyObject *namespace)
{
    static const struct { const char *key; PyObject **field; } objects[] = {
        {"config_type", &core.config_type}, {"socket_type", &core.socket_type},
        {"pipe_end_type", &core.pipe_end_type}, {"modes", &core.modes}, {"client_mode", &core.client_mode},
        {"encode_server_name", &core.encode_server_name}, {"trace_logger", &core.trace_logger},
        {"ffi_cast", &core.ffi_cast}, {"connection_type", &core.connection_type},
        {"orphan_errors", &core.orphan_errors},
        {"blocked_members", &core.blocked_members}, {"self_service", &core.self_service},
        {"chain_type", &core.chain_type}, {"facts_type", &core.facts_type}, {"partial", &core.partial},
        {"peer_cert_ders", &core.peer_cert_ders},
    };
    if (!PyDict_Check(namespace)) {
        PyErr_SetString(PyExc_TypeError, "bind_core(namespace: dict)");
        return NULL;
    }
    for (size_t i = 0; i < sizeof(objects) / sizeof(*objects); i++) {
        PyObject *value = PyDict_GetItemString(namespace, objects[i].key);
        if (value == NULL) return PyErr_Format(PyExc_KeyError, "bind_core: no %s", objects[i].key);
        PyObject *previous = *objects[i].field;
        Py_INCREF(value);
        *objects[i].field = value;
        Py_XDECREF(previous);
    }
    PyObject *numbers[6];
    static const char *const number_keys[] = {"debug_level", "max_fd", "trace_env", "blinding", "server_mode",
                                              "facts_size"};
    for (size_t i = 0; i < 6; i++)
        if ((numbers[i] = PyDict_GetItemString(namespace, number_keys[i])) == NULL)
            return PyErr_Format(PyExc_KeyError, "bind_core: no %s", number_keys[i]);
    PyObject *accept_any = PyDict_GetItemString(namespace, "accept_any_host");
    if (accept_any == NULL) return PyErr_Format(PyExc_KeyError, "bind_core: no accept_any_host");
    core.debug_level = PyLong_AsLong(numbers[0]);
    core.max_fd = PyLong_AsLong(numbers[1]);
    core.trace_env = PyObject_IsTrue(numbers[2]);
    core.blinding = (int) PyLong_AsLong(numbers[3]);
    core.server_mode = (int) PyLong_AsLong(numbers[4]);
    core.facts_size = PyLong_AsSsize_t(numbers[5]);
    core.accept_any_host = address_of(accept_any);
    if (PyErr_Occurred()) return NULL;
    Py_RETURN_NONE;
}

int connection_core_exec(PyObject *module)
{
    for (int i = 0; i < N_COUNT; i++)
        if (core_names[i] == NULL && (core_names[i] = PyUnicode_InternFromString(core_name_text[i])) == NULL) return -1;
    PyObject *core_type = PyType_FromSpec(&core_spec);
    if (core_type == NULL || PyModule_AddObject(module, "ConnectionCore", core_type) < 0) {
        Py_XDECREF(core_type);
        return -1;
    }
    return 0;
}
