"""Declarations from ``s2n/unstable/events.h``: handshake event and per-message checkpoints."""

INCLUDES = "#include <s2n/unstable/events.h>\n"
PROBE = "s2n_config_set_timing_checkpoint_cb"

CDEF = r"""
struct s2n_event_handshake {
    int protocol_version;
    const char *cipher;
    const char *group;
    const char *security_policy_label;
    uint64_t handshake_time_ns;
    uint64_t handshake_start_ns;
    uint64_t handshake_end_ns;
    int error_code;
    ...;
};
typedef void (*s2n_event_on_handshake_cb)(struct s2n_connection *conn, void *subscriber, struct s2n_event_handshake *event);
int s2n_config_set_subscriber(struct s2n_config *config, void *subscriber);
int s2n_config_set_handshake_event(struct s2n_config *config, s2n_event_on_handshake_cb callback);

struct s2n_timing_checkpoint {
    const char *name;
    uint8_t role;
    uint64_t timestamp_ns;
    ...;
};
typedef void (*s2n_event_on_timing_checkpoint_cb)(struct s2n_connection *conn, void *subscriber, struct s2n_timing_checkpoint *checkpoint);
int s2n_config_set_timing_checkpoint_cb(struct s2n_config *config, s2n_event_on_timing_checkpoint_cb callback);

extern "Python" void s2npy_handshake_event_cb(struct s2n_connection *conn, void *subscriber, struct s2n_event_handshake *event);
extern "Python" void s2npy_checkpoint_cb(struct s2n_connection *conn, void *subscriber, struct s2n_timing_checkpoint *checkpoint);
"""
