"""Declarations from ``s2n.h``: library, config, connection, client hello, I/O."""

INCLUDES = "#include <s2n.h>\n"

CDEF = r"""
#define S2N_SUCCESS ...
#define S2N_FAILURE ...
#define S2N_CALLBACK_BLOCKED ...
#define S2N_SSLv2 ...
#define S2N_SSLv3 ...
#define S2N_TLS10 ...
#define S2N_TLS11 ...
#define S2N_TLS12 ...
#define S2N_TLS13 ...
#define S2N_UNKNOWN_PROTOCOL_VERSION ...

typedef enum {
    S2N_ERR_T_OK, S2N_ERR_T_IO, S2N_ERR_T_CLOSED, S2N_ERR_T_BLOCKED,
    S2N_ERR_T_ALERT, S2N_ERR_T_PROTO, S2N_ERR_T_INTERNAL, S2N_ERR_T_USAGE, ...
} s2n_error_type;

typedef enum { S2N_SERVER, S2N_CLIENT, ... } s2n_mode;
typedef enum {
    S2N_NOT_BLOCKED, S2N_BLOCKED_ON_READ, S2N_BLOCKED_ON_WRITE,
    S2N_BLOCKED_ON_APPLICATION_INPUT, S2N_BLOCKED_ON_EARLY_DATA, ...
} s2n_blocked_status;
typedef enum { S2N_CERT_AUTH_NONE, S2N_CERT_AUTH_REQUIRED, S2N_CERT_AUTH_OPTIONAL, ... } s2n_cert_auth_type;
typedef enum { S2N_BUILT_IN_BLINDING, S2N_SELF_SERVICE_BLINDING, ... } s2n_blinding;
typedef enum { S2N_CLIENT_HELLO_CB_BLOCKING, S2N_CLIENT_HELLO_CB_NONBLOCKING, ... } s2n_client_hello_cb_mode;
typedef enum { S2N_STATUS_REQUEST_NONE, S2N_STATUS_REQUEST_OCSP, ... } s2n_status_request_type;
typedef enum { S2N_EXTENSION_SERVER_NAME, S2N_EXTENSION_ALPN, S2N_EXTENSION_SUPPORTED_GROUPS,
               S2N_EXTENSION_SIGNATURE_ALGORITHMS, S2N_EXTENSION_SUPPORTED_VERSIONS, ... } s2n_tls_extension_type;

struct s2n_config;
struct s2n_connection;
struct s2n_cert;
struct s2n_cert_chain_and_key;
struct s2n_client_hello;

int *s2n_errno_location(void);
int s2n_error_get_type(int error);
const char *s2n_strerror(int error, const char *lang);
const char *s2n_strerror_debug(int error, const char *lang);
const char *s2n_strerror_name(int error);
const char *s2n_strerror_source(int error);
unsigned long s2n_get_openssl_version(void);
int s2n_init(void);

/* config */
struct s2n_config *s2n_config_new(void);
int s2n_config_free(struct s2n_config *config);
int s2n_config_set_cipher_preferences(struct s2n_config *config, const char *version);
struct s2n_cert_chain_and_key *s2n_cert_chain_and_key_new(void);
int s2n_cert_chain_and_key_load_pem_bytes(struct s2n_cert_chain_and_key *chain_and_key,
        uint8_t *chain_pem, uint32_t chain_pem_len, uint8_t *private_key_pem, uint32_t private_key_pem_len);
int s2n_cert_chain_and_key_free(struct s2n_cert_chain_and_key *cert_and_key);
int s2n_config_add_cert_chain_and_key_to_store(struct s2n_config *config, struct s2n_cert_chain_and_key *cert_key_pair);
int s2n_config_set_verification_ca_location(struct s2n_config *config, const char *ca_pem_filename, const char *ca_dir);
int s2n_config_add_pem_to_trust_store(struct s2n_config *config, const char *pem);
int s2n_config_wipe_trust_store(struct s2n_config *config);
int s2n_config_load_system_certs(struct s2n_config *config);
int s2n_config_disable_x509_verification(struct s2n_config *config);
int s2n_config_set_max_cert_chain_depth(struct s2n_config *config, uint16_t max_depth);
int s2n_config_set_protocol_preferences(struct s2n_config *config, const char *const *protocols, int protocol_count);
int s2n_config_set_session_tickets_onoff(struct s2n_config *config, uint8_t enabled);
int s2n_config_add_ticket_crypto_key(struct s2n_config *config, const uint8_t *name, uint32_t name_len,
        uint8_t *key, uint32_t key_len, uint64_t intro_time_in_seconds_from_epoch);
int s2n_config_set_client_auth_type(struct s2n_config *config, s2n_cert_auth_type client_auth_type);
int s2n_config_set_status_request_type(struct s2n_config *config, s2n_status_request_type type);
int s2n_config_set_max_blinding_delay(struct s2n_config *config, uint32_t seconds);
int s2n_config_set_ctx(struct s2n_config *config, void *ctx);

typedef uint8_t (*s2n_verify_host_fn)(const char *host_name, size_t host_name_len, void *data);
int s2n_config_set_verify_host_callback(struct s2n_config *config, s2n_verify_host_fn, void *data);
typedef int s2n_client_hello_fn(struct s2n_connection *conn, void *ctx);
int s2n_config_set_client_hello_cb(struct s2n_config *config, s2n_client_hello_fn client_hello_callback, void *ctx);
int s2n_config_set_client_hello_cb_mode(struct s2n_config *config, s2n_client_hello_cb_mode cb_mode);
int s2n_client_hello_cb_done(struct s2n_connection *conn);
int s2n_connection_server_name_extension_used(struct s2n_connection *conn);
typedef int (*s2n_key_log_fn)(void *ctx, struct s2n_connection *conn, uint8_t *logline, size_t len);
int s2n_config_set_key_log_cb(struct s2n_config *config, s2n_key_log_fn callback, void *ctx);

/* client hello */
struct s2n_client_hello *s2n_connection_get_client_hello(struct s2n_connection *conn);
struct s2n_client_hello *s2n_client_hello_parse_message(const uint8_t *bytes, uint32_t size);
int s2n_client_hello_free(struct s2n_client_hello **ch);
ssize_t s2n_client_hello_get_raw_message_length(struct s2n_client_hello *ch);
ssize_t s2n_client_hello_get_raw_message(struct s2n_client_hello *ch, uint8_t *out, uint32_t max_length);
int s2n_client_hello_get_server_name_length(struct s2n_client_hello *ch, uint16_t *length);
int s2n_client_hello_get_server_name(struct s2n_client_hello *ch, uint8_t *server_name, uint16_t length, uint16_t *out_length);

/* connection */
struct s2n_connection *s2n_connection_new(s2n_mode mode);
int s2n_connection_free(struct s2n_connection *conn);
int s2n_connection_wipe(struct s2n_connection *conn);
s2n_mode s2n_connection_get_mode(struct s2n_connection *conn);
int s2n_connection_set_verify_host_callback(struct s2n_connection *conn, s2n_verify_host_fn host_fn, void *data);
int s2n_client_hello_get_session_id_length(struct s2n_client_hello *ch, uint32_t *out_length);
int s2n_connection_set_config(struct s2n_connection *conn, struct s2n_config *config);
int s2n_connection_set_ctx(struct s2n_connection *conn, void *ctx);
void *s2n_connection_get_ctx(struct s2n_connection *conn);
int s2n_connection_set_fd(struct s2n_connection *conn, int fd);
typedef int s2n_recv_fn(void *io_context, uint8_t *buf, uint32_t len);
typedef int s2n_send_fn(void *io_context, const uint8_t *buf, uint32_t len);
int s2n_connection_set_recv_ctx(struct s2n_connection *conn, void *ctx);
int s2n_connection_set_send_ctx(struct s2n_connection *conn, void *ctx);
int s2n_connection_set_recv_cb(struct s2n_connection *conn, s2n_recv_fn recv);
int s2n_connection_set_send_cb(struct s2n_connection *conn, s2n_send_fn send);
int s2n_connection_prefer_throughput(struct s2n_connection *conn);
int s2n_connection_prefer_low_latency(struct s2n_connection *conn);
int s2n_connection_set_blinding(struct s2n_connection *conn, s2n_blinding blinding);
uint64_t s2n_connection_get_delay(struct s2n_connection *conn);
int s2n_connection_set_cipher_preferences(struct s2n_connection *conn, const char *version);
int s2n_connection_set_client_auth_type(struct s2n_connection *conn, s2n_cert_auth_type client_auth_type);
int s2n_connection_get_client_auth_type(struct s2n_connection *conn, s2n_cert_auth_type *client_auth_type);
int s2n_connection_set_protocol_preferences(struct s2n_connection *conn, const char *const *protocols, int protocol_count);
int s2n_set_server_name(struct s2n_connection *conn, const char *server_name);
const char *s2n_get_server_name(struct s2n_connection *conn);
const char *s2n_get_application_protocol(struct s2n_connection *conn);
int s2n_negotiate(struct s2n_connection *conn, s2n_blocked_status *blocked);
ssize_t s2n_send(struct s2n_connection *conn, const void *buf, ssize_t size, s2n_blocked_status *blocked);
ssize_t s2n_recv(struct s2n_connection *conn, void *buf, ssize_t size, s2n_blocked_status *blocked);
uint32_t s2n_peek(struct s2n_connection *conn);
int s2n_shutdown(struct s2n_connection *conn, s2n_blocked_status *blocked);
int s2n_shutdown_send(struct s2n_connection *conn, s2n_blocked_status *blocked);
int s2n_connection_set_session(struct s2n_connection *conn, const uint8_t *session, size_t length);
int s2n_connection_get_session(struct s2n_connection *conn, uint8_t *session, size_t max_length);
int s2n_connection_get_session_length(struct s2n_connection *conn);
int s2n_connection_is_session_resumed(struct s2n_connection *conn);

/* negotiated facts */
int s2n_connection_get_client_cert_chain(struct s2n_connection *conn, uint8_t **der_cert_chain_out, uint32_t *cert_chain_len);
int s2n_connection_client_cert_used(struct s2n_connection *conn);
int s2n_connection_get_peer_cert_chain(const struct s2n_connection *conn, struct s2n_cert_chain_and_key *cert_chain);
int s2n_cert_chain_get_length(const struct s2n_cert_chain_and_key *chain_and_key, uint32_t *cert_length);
int s2n_cert_chain_get_cert(const struct s2n_cert_chain_and_key *chain_and_key, struct s2n_cert **out_cert, const uint32_t cert_idx);
int s2n_cert_get_der(const struct s2n_cert *cert, const uint8_t **out_cert_der, uint32_t *cert_length);
uint64_t s2n_connection_get_wire_bytes_in(struct s2n_connection *conn);
uint64_t s2n_connection_get_wire_bytes_out(struct s2n_connection *conn);
int s2n_connection_get_client_protocol_version(struct s2n_connection *conn);
int s2n_connection_get_server_protocol_version(struct s2n_connection *conn);
int s2n_connection_get_actual_protocol_version(struct s2n_connection *conn);
const char *s2n_connection_get_cipher(struct s2n_connection *conn);
int s2n_connection_get_cipher_iana_value(struct s2n_connection *conn, uint8_t *first, uint8_t *second);
int s2n_connection_get_key_exchange_group(struct s2n_connection *conn, const char **group_name);
int s2n_connection_get_signature_scheme(struct s2n_connection *conn, const char **scheme_name);
int s2n_connection_get_alert(struct s2n_connection *conn);
const char *s2n_connection_get_handshake_type_name(struct s2n_connection *conn);
const char *s2n_connection_get_last_message_name(struct s2n_connection *conn);
bool s2n_connection_handshake_complete(struct s2n_connection *conn);

/* Python callbacks (implemented with @ffi.def_extern in s2npy._callbacks) */
extern "Python" int s2npy_recv_cb(void *io_context, uint8_t *buf, uint32_t len);
extern "Python" int s2npy_send_cb(void *io_context, const uint8_t *buf, uint32_t len);
extern "Python" uint8_t s2npy_verify_host_cb(const char *host_name, size_t host_name_len, void *data);
extern "Python" int s2npy_client_hello_cb(struct s2n_connection *conn, void *ctx);
extern "Python" int s2npy_key_log_cb(void *ctx, struct s2n_connection *conn, uint8_t *logline, size_t len);

/* exported for versions(): the libcrypto in use (aws-lc or OpenSSL) */
const char *OpenSSL_version(int t);
"""
