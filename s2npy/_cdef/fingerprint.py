"""Declarations from ``s2n/unstable/fingerprint.h``: JA3/JA4 of a ClientHello."""

INCLUDES = "#include <s2n/unstable/fingerprint.h>\n"
PROBE = "s2n_client_hello_get_fingerprint_string"

CDEF = r"""
typedef enum { S2N_FINGERPRINT_JA3, S2N_FINGERPRINT_JA4, ... } s2n_fingerprint_type;
int s2n_client_hello_get_fingerprint_hash(struct s2n_client_hello *ch,
        s2n_fingerprint_type type, uint32_t max_hash_size,
        uint8_t *hash, uint32_t *hash_size, uint32_t *str_size);
int s2n_client_hello_get_fingerprint_string(struct s2n_client_hello *ch,
        s2n_fingerprint_type type, uint32_t max_size,
        uint8_t *output, uint32_t *output_size);
"""
