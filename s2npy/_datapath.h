/* What the two C files of s2npy._datapath share: _datapath.c (the module, DataChannel, the
 * create call and the negotiate step) and _connection_core.c (ConnectionCore). Both are
 * compiled with hidden visibility: nothing here leaves the extension. */
#ifndef S2NPY_DATAPATH_H
#define S2NPY_DATAPATH_H

#define Py_LIMITED_API 0x030B0000
#include <Python.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>

#define NOT_CALLED (-2)
#define CALLED (-1)

/* The attribute names both files read, interned once by connection_core_exec (_connection_core.c).
 * N_POOL_CLOSED and N_CAPACITY are an IdleConnections' (pool.py); N_CLOSED is a Connection's. */
enum core_name {
    N_MODE, N_C_MODE, N_IN_CALLS, N_UNFREED, N_CONFIG, N_PTR,
    N_C_ADDRESS, N_IO_OBJECT, N_IO_BINDING, N_FD, N_TRACE, N_HANDSHAKE_DONE, N_CALLBACK_ERROR, N_ERROR,
    N_CALLS_CONNECTIONS, N_FROZEN, N_USERS, N_IDLE, N_ADDRESS, N_GETTIMEOUT, N_FILENO, N_END_ADDRESS, N_LEVEL,
    N_SETUP, N_CREATION_FAILED, N_TRACED_NEGOTIATE, N_NEGOTIATE_FINISH, N_UNTRACED_OUTCOME, N_CLOSE, N_PEER_CHAIN,
    N_LOADED, N_CHANNEL, N_CLOSED, N_RELEASE, N_FULL_CLOSE, N_LOAD, N_RAW, N_CHAIN, N_IO, N_SERVER_NAME, N_SESSION,
    N_BLINDING, N_TRACED_TRY_NEGOTIATE, N_DETACH, N_TAP, N_HANDLE, N_POOL_CLOSED, N_CAPACITY, N_COUNT
};
extern PyObject *core_names[N_COUNT];
#define NAME(n) core_names[N_##n]

/* s2npy_connection_create (build_s2n.py): a connection set up for a Connection, or NULL with
 * *failed_step set (s2n_errno left for the caller). */
typedef void *create_fn(void *reuse, int mode, void *config, void *context, void *verify_host, void *verify_data,
                        int blinding, const char *server_name, int fd, void *mem, int prefer, int cert_auth,
                        const char *policy, void *alpn, int alpn_count, const void *session,
                        uint32_t session_length, int *failed_step);
/* s2npy_negotiate (build_s2n.py): 0 done, 1 blocked, -1 failed; facts filled on completion if not NULL. */
typedef int negotiate_fn(void *conn, int *blocked, void *facts, void *progress);

/* s2n_connection_wipe, s2n_connection_free (s2n.h). */
typedef int connection_fn(void *conn);

/* s2npy_connection_create with the GIL rule of _datapath.c's create_connection: the GIL held
 * for a reused connection (~1 us), released to allocate a new one (~30 us). */
void *create_with_gil_rule(void *reuse, int mode, void *config, void *context, void *verify_host, void *verify_data,
                           int blinding, const char *server_name, int fd, void *mem, int prefer, int cert_auth,
                           const char *policy, void *alpn, int alpn_count, const void *session,
                           uint32_t session_length, int *failed_step);

/* IdleConnections.give's work (pool.py): the connection wiped and kept in the pool, or freed. */
int give_back(PyObject *pool, PyObject *pointer, void *conn, long mode);

/* A pointer given to Python as an int (0 for NULL), or NULL with an exception set. */
void *address_of(PyObject *number);
/* A Connection's s2n_connection address (its _c_address), or NULL: closed, or an exception set. */
void *connection_address(PyObject *connection);
/* Enter / leave a Connection's call guard (its in_calls list): see _datapath.c. */
int enter(PyObject *in_calls);
int leave(PyObject *in_calls);
/* One untraced s2npy_negotiate call with its call guard: see _datapath.c. */
PyObject *negotiate_step(PyObject *connection, PyObject *in_calls, int *blocked, void *facts);

/* _connection_core.c: ConnectionCore added to the module (and its names interned), and
 * bind_core(namespace), the module function that gives its fast paths their objects. */
int connection_core_exec(PyObject *module);
PyObject *bind_core(PyObject *module, PyObject *namespace);

#endif
