"""Names of TLS code points, so traces say ``handshake_failure`` rather than ``40``.

Only the trace package knows the TLS wire format; this module is its dictionary.
Names follow the IANA TLS registries (RFC 8446 spelling: ``client_hello``,
``certificate_required``, ``TLS_AES_128_GCM_SHA256``, ``X25519MLKEM768``), protocol
versions follow the ``TLSv1.2`` spelling that Python's ``ssl`` and s2n print.
Every lookup function returns ``'unknown(0x....)'`` for a code point it does not know,
and ``'GREASE(0x....)'`` for the reserved RFC 8701 values browsers sprinkle in, so a
trace never fails on, nor hides, an unexpected value.
"""

from __future__ import annotations

from collections.abc import Mapping

CONTENT_TYPES: Mapping[int, str] = {
    20: "change_cipher_spec",
    21: "alert",
    22: "handshake",
    23: "application_data",
    24: "heartbeat",
}

HANDSHAKE_TYPES: Mapping[int, str] = {
    0: "hello_request",
    1: "client_hello",
    2: "server_hello",
    3: "hello_verify_request",
    4: "new_session_ticket",
    5: "end_of_early_data",
    8: "encrypted_extensions",
    11: "certificate",
    12: "server_key_exchange",
    13: "certificate_request",
    14: "server_hello_done",
    15: "certificate_verify",
    16: "client_key_exchange",
    20: "finished",
    21: "certificate_url",
    22: "certificate_status",
    23: "supplemental_data",
    24: "key_update",
    25: "compressed_certificate",
    254: "message_hash",
}

#: Not a code point: a ServerHello whose random is the RFC 8446 magic value.
HELLO_RETRY_REQUEST = "hello_retry_request"

ALERT_LEVELS: Mapping[int, str] = {1: "warning", 2: "fatal"}

ALERT_DESCRIPTIONS: Mapping[int, str] = {
    0: "close_notify",
    10: "unexpected_message",
    20: "bad_record_mac",
    21: "decryption_failed",
    22: "record_overflow",
    30: "decompression_failure",
    40: "handshake_failure",
    41: "no_certificate",
    42: "bad_certificate",
    43: "unsupported_certificate",
    44: "certificate_revoked",
    45: "certificate_expired",
    46: "certificate_unknown",
    47: "illegal_parameter",
    48: "unknown_ca",
    49: "access_denied",
    50: "decode_error",
    51: "decrypt_error",
    60: "export_restriction",
    70: "protocol_version",
    71: "insufficient_security",
    80: "internal_error",
    86: "inappropriate_fallback",
    90: "user_canceled",
    100: "no_renegotiation",
    109: "missing_extension",
    110: "unsupported_extension",
    111: "certificate_unobtainable",
    112: "unrecognized_name",
    113: "bad_certificate_status_response",
    114: "bad_certificate_hash_value",
    115: "unknown_psk_identity",
    116: "certificate_required",
    120: "no_application_protocol",
    121: "ech_required",
}

CIPHER_SUITES: Mapping[int, str] = {
    0x0000: "TLS_NULL_WITH_NULL_NULL",
    # TLS 1.3
    0x1301: "TLS_AES_128_GCM_SHA256",
    0x1302: "TLS_AES_256_GCM_SHA384",
    0x1303: "TLS_CHACHA20_POLY1305_SHA256",
    0x1304: "TLS_AES_128_CCM_SHA256",
    0x1305: "TLS_AES_128_CCM_8_SHA256",
    # TLS 1.2 and earlier: ECDHE
    0xC02B: "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    0xC02C: "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    0xC02F: "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    0xC030: "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    0xCCA8: "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
    0xCCA9: "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    0xC009: "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
    0xC00A: "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
    0xC013: "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
    0xC014: "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
    0xC023: "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256",
    0xC024: "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384",
    0xC027: "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256",
    0xC028: "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384",
    0xC008: "TLS_ECDHE_ECDSA_WITH_3DES_EDE_CBC_SHA",
    0xC012: "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA",
    0xC011: "TLS_ECDHE_RSA_WITH_RC4_128_SHA",
    # DHE
    0xCCAA: "TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
    0x009E: "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256",
    0x009F: "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384",
    0x0033: "TLS_DHE_RSA_WITH_AES_128_CBC_SHA",
    0x0039: "TLS_DHE_RSA_WITH_AES_256_CBC_SHA",
    0x0067: "TLS_DHE_RSA_WITH_AES_128_CBC_SHA256",
    0x006B: "TLS_DHE_RSA_WITH_AES_256_CBC_SHA256",
    0x0016: "TLS_DHE_RSA_WITH_3DES_EDE_CBC_SHA",
    # static RSA key exchange
    0x009C: "TLS_RSA_WITH_AES_128_GCM_SHA256",
    0x009D: "TLS_RSA_WITH_AES_256_GCM_SHA384",
    0x002F: "TLS_RSA_WITH_AES_128_CBC_SHA",
    0x0035: "TLS_RSA_WITH_AES_256_CBC_SHA",
    0x003C: "TLS_RSA_WITH_AES_128_CBC_SHA256",
    0x003D: "TLS_RSA_WITH_AES_256_CBC_SHA256",
    0x000A: "TLS_RSA_WITH_3DES_EDE_CBC_SHA",
    0x0005: "TLS_RSA_WITH_RC4_128_SHA",
    0x0004: "TLS_RSA_WITH_RC4_128_MD5",
    # signalling values
    0x00FF: "TLS_EMPTY_RENEGOTIATION_INFO_SCSV",
    0x5600: "TLS_FALLBACK_SCSV",
}

NAMED_GROUPS: Mapping[int, str] = {
    21: "secp224r1",
    22: "secp256k1",
    23: "secp256r1",
    24: "secp384r1",
    25: "secp521r1",
    26: "brainpoolP256r1",
    27: "brainpoolP384r1",
    28: "brainpoolP512r1",
    29: "x25519",
    30: "x448",
    31: "brainpoolP256r1tls13",
    32: "brainpoolP384r1tls13",
    33: "brainpoolP512r1tls13",
    0x0100: "ffdhe2048",
    0x0101: "ffdhe3072",
    0x0102: "ffdhe4096",
    0x0103: "ffdhe6144",
    0x0104: "ffdhe8192",
    0x0200: "MLKEM512",
    0x0201: "MLKEM768",
    0x0202: "MLKEM1024",
    0x11EB: "SecP256r1MLKEM768",
    0x11EC: "X25519MLKEM768",
    0x11ED: "SecP384r1MLKEM1024",
    0x6399: "X25519Kyber768Draft00",
    0x639A: "SecP256r1Kyber768Draft00",
}

SIGNATURE_SCHEMES: Mapping[int, str] = {
    0x0201: "rsa_pkcs1_sha1",
    0x0202: "dsa_sha1",
    0x0203: "ecdsa_sha1",
    0x0301: "rsa_pkcs1_sha224",
    0x0302: "dsa_sha224",
    0x0303: "ecdsa_sha224",
    0x0401: "rsa_pkcs1_sha256",
    0x0402: "dsa_sha256",
    0x0403: "ecdsa_secp256r1_sha256",
    0x0501: "rsa_pkcs1_sha384",
    0x0502: "dsa_sha384",
    0x0503: "ecdsa_secp384r1_sha384",
    0x0601: "rsa_pkcs1_sha512",
    0x0602: "dsa_sha512",
    0x0603: "ecdsa_secp521r1_sha512",
    0x0804: "rsa_pss_rsae_sha256",
    0x0805: "rsa_pss_rsae_sha384",
    0x0806: "rsa_pss_rsae_sha512",
    0x0807: "ed25519",
    0x0808: "ed448",
    0x0809: "rsa_pss_pss_sha256",
    0x080A: "rsa_pss_pss_sha384",
    0x080B: "rsa_pss_pss_sha512",
    0x081A: "ecdsa_brainpoolP256r1tls13_sha256",
    0x081B: "ecdsa_brainpoolP384r1tls13_sha384",
    0x081C: "ecdsa_brainpoolP512r1tls13_sha512",
    0x0904: "mldsa44",
    0x0905: "mldsa65",
    0x0906: "mldsa87",
}

EXTENSION_TYPES: Mapping[int, str] = {
    0: "server_name",
    1: "max_fragment_length",
    2: "client_certificate_url",
    3: "trusted_ca_keys",
    4: "truncated_hmac",
    5: "status_request",
    10: "supported_groups",
    11: "ec_point_formats",
    13: "signature_algorithms",
    14: "use_srtp",
    15: "heartbeat",
    16: "application_layer_protocol_negotiation",
    17: "status_request_v2",
    18: "signed_certificate_timestamp",
    19: "client_certificate_type",
    20: "server_certificate_type",
    21: "padding",
    22: "encrypt_then_mac",
    23: "extended_master_secret",
    27: "compress_certificate",
    28: "record_size_limit",
    34: "delegated_credentials",
    35: "session_ticket",
    41: "pre_shared_key",
    42: "early_data",
    43: "supported_versions",
    44: "cookie",
    45: "psk_key_exchange_modes",
    47: "certificate_authorities",
    48: "oid_filters",
    49: "post_handshake_auth",
    50: "signature_algorithms_cert",
    51: "key_share",
    57: "quic_transport_parameters",
    13172: "next_protocol_negotiation",
    17513: "application_settings_old",
    17613: "application_settings",
    0xFE0D: "encrypted_client_hello",
    0xFF01: "renegotiation_info",
}

PROTOCOL_VERSIONS: Mapping[int, str] = {
    0x0002: "SSLv2",
    0x0300: "SSLv3",
    0x0301: "TLSv1.0",
    0x0302: "TLSv1.1",
    0x0303: "TLSv1.2",
    0x0304: "TLSv1.3",
}

#: ``ClientCertificateType`` of a TLS 1.2 CertificateRequest.
CERTIFICATE_TYPES: Mapping[int, str] = {
    1: "rsa_sign",
    2: "dss_sign",
    3: "rsa_fixed_dh",
    4: "dss_fixed_dh",
    64: "ecdsa_sign",
    65: "rsa_fixed_ecdh",
    66: "ecdsa_fixed_ecdh",
}

TLS1_3 = 0x0304


def is_grease(code: int) -> bool:
    """Tell whether ``code`` is an RFC 8701 GREASE value (0x0a0a, 0x1a1a, ... 0xfafa).

    Browsers offer these on purpose to keep servers tolerant; naming them keeps a
    Chromium ClientHello from reading as a list of unknown values.
    """
    return code & 0x0F0F == 0x0A0A and code >> 8 == code & 0xFF


def _lookup(table: Mapping[int, str], code: int, digits: int) -> str:
    """Name ``code`` from ``table``; GREASE and unknown codes get a hex fallback."""
    if code in table:
        return table[code]
    label = "GREASE" if digits == 4 and is_grease(code) else "unknown"
    return f"{label}(0x{code:0{digits}x})"


def content_type_name(code: int) -> str:
    """Name a record content type, e.g. 22 -> ``'handshake'``."""
    return _lookup(CONTENT_TYPES, code, 2)


def handshake_type_name(code: int) -> str:
    """Name a handshake message type, e.g. 13 -> ``'certificate_request'``."""
    return _lookup(HANDSHAKE_TYPES, code, 2)


def alert_level_name(code: int) -> str:
    """Name an alert level: 1 -> ``'warning'``, 2 -> ``'fatal'``."""
    return _lookup(ALERT_LEVELS, code, 2)


def alert_name(code: int) -> str:
    """Name an alert description, e.g. 116 -> ``'certificate_required'``."""
    return _lookup(ALERT_DESCRIPTIONS, code, 2)


def cipher_suite_name(code: int) -> str:
    """Name a cipher suite by its IANA name, e.g. 0x1301 -> ``'TLS_AES_128_GCM_SHA256'``."""
    return _lookup(CIPHER_SUITES, code, 4)


def group_name(code: int) -> str:
    """Name a supported group / key share group, e.g. 0x11EC -> ``'X25519MLKEM768'``."""
    return _lookup(NAMED_GROUPS, code, 4)


def signature_scheme_name(code: int) -> str:
    """Name a signature scheme, e.g. 0x0804 -> ``'rsa_pss_rsae_sha256'``."""
    return _lookup(SIGNATURE_SCHEMES, code, 4)


def extension_name(code: int) -> str:
    """Name a hello extension, e.g. 16 -> ``'application_layer_protocol_negotiation'``."""
    return _lookup(EXTENSION_TYPES, code, 4)


def version_name(code: int) -> str:
    """Name a protocol version, e.g. 0x0303 -> ``'TLSv1.2'``."""
    return _lookup(PROTOCOL_VERSIONS, code, 4)


def certificate_type_name(code: int) -> str:
    """Name a TLS 1.2 CertificateRequest certificate type, e.g. 64 -> ``'ecdsa_sign'``."""
    return _lookup(CERTIFICATE_TYPES, code, 2)
