"""Declarations from ``s2n/unstable/fingerprint.h``: JA3/JA4 of a ClientHello."""

INCLUDES = "#include <s2n/unstable/fingerprint.h>\n"
PROBE = "s2n_fingerprint_get_hash"

CDEF = r"""
typedef enum { S2N_FINGERPRINT_JA3, S2N_FINGERPRINT_JA4, ... } s2n_fingerprint_type;
struct s2n_fingerprint;
struct s2n_fingerprint *s2n_fingerprint_new(s2n_fingerprint_type type);
int s2n_fingerprint_free(struct s2n_fingerprint **fingerprint);
int s2n_fingerprint_set_client_hello(struct s2n_fingerprint *fingerprint, struct s2n_client_hello *ch);
int s2n_fingerprint_get_hash_size(const struct s2n_fingerprint *fingerprint, uint32_t *size);
int s2n_fingerprint_get_hash(struct s2n_fingerprint *fingerprint,
        uint32_t max_output_size, uint8_t *output, uint32_t *output_size);
"""
