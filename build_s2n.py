"""Build the ``s2npy._s2n`` cffi extension (out-of-line API mode).

By default this obtains s2n-tls and aws-lc from the pinned sdist of ``awscrt``
on the package index (pin and sha256 in ``vendor/awscrt-pin.json``), builds
aws-lc and then s2n-tls as static libraries with CMake into ``vendor/cache/``
(git-ignored, reused by later builds), and links both into the extension with
their symbols hidden, so s2npy coexists with ``ssl`` and ``cryptography``.

Environment overrides (see README, "Building against other s2n/libcrypto"):

``S2NPY_S2N_PREFIX=/opt/s2n``
    Use an installed s2n-tls: ``include/s2n.h`` and ``lib/libs2n.{a,so}``.
    A static ``libs2n.a`` is linked with ``lib/libcrypto.a`` from the same
    prefix if present, else with the system ``-lcrypto``.
``S2NPY_S2N_SOURCE=/src/s2n-tls``
    Build s2n-tls from a local source tree instead of the pinned one.
``S2NPY_LIBCRYPTO=system``
    Build s2n-tls against the system OpenSSL (``libssl-dev``) instead of
    aws-lc. Default: ``aws-lc``.
``S2NPY_SANITIZE=address``
    Build s2n-tls and the extension with AddressSanitizer (for leak and
    memory-error hunts; run Python with the ASan runtime preloaded).
``S2NPY_AWS_LC_ENTROPY=jitter``
    Build aws-lc with its CPU Jitter Entropy source. Default: ``os`` (see
    ``AWS_LC_ENTROPY``).

Run ``python build_s2n.py`` to build the libraries and the extension in place.
"""


import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

from cffi import FFI

ROOT = Path(__file__).resolve().parent
PIN_FILE = ROOT / "vendor" / "awscrt-pin.json"
CACHE = ROOT / "vendor" / "cache"
CDEF_DIR = ROOT / "s2npy" / "_cdef"
CDEF_MODULES = ("s2n", "events", "fingerprint")


class BuildError(SystemExit):
    """A build step failed; the message says what to install or set."""

    def __init__(self, message: str) -> None:
        super().__init__(f"\ns2npy build failed: {message}\n")


@dataclass
class NativeLibs:
    """Where the compiler finds s2n.h and what the linker links."""

    description: dict[str, str]
    include_dirs: list[str]
    extra_objects: list[str] = field(default_factory=list)
    libraries: list[str] = field(default_factory=list)
    library_dirs: list[str] = field(default_factory=list)
    runtime_library_dirs: list[str] = field(default_factory=list)


def _log(message: str) -> None:
    print(f"[build_s2n] {message}", file=sys.stderr, flush=True)


def _require_tool(name: str, hint: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise BuildError(f"`{name}` was not found on PATH. {hint}")
    return path


def _run_logged(cmd: list[str], log_path: Path, what: str) -> None:
    """Run a build command, sending its output to a log; on failure show the tail."""
    with log_path.open("ab") as log:
        log.write(("\n$ " + " ".join(cmd) + "\n").encode())
        log.flush()
        result = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT)
    if result.returncode != 0:
        tail = log_path.read_text(errors="replace").splitlines()[-25:]
        raise BuildError(
            f"{what} failed (exit {result.returncode}). Last lines of {log_path}:\n    "
            + "\n    ".join(tail)
        )


def sanitize_flags() -> list[str]:
    """Compiler and linker flags for S2NPY_SANITIZE (both extension modules and libs2n)."""
    mode = os.environ.get("S2NPY_SANITIZE", "")
    if not mode:
        return []
    if mode != "address":
        raise BuildError(f"S2NPY_SANITIZE={mode!r} is not supported; use 'address' or unset it.")
    return ["-fsanitize=address", "-fno-omit-frame-pointer"]


# --- obtaining the pinned source -------------------------------------------------


def load_pin() -> dict[str, str]:
    return json.loads(PIN_FILE.read_text())


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch_pinned_sdist(pin: dict[str, str]) -> Path:
    """Download the pinned awscrt sdist with pip (honours the machine's index config)."""
    downloads = CACHE / "downloads"
    target = downloads / pin["filename"]
    if target.exists() and _sha256(target) == pin["sha256"]:
        return target
    downloads.mkdir(parents=True, exist_ok=True)
    spec = f"{pin['package']}=={pin['version']}"
    _log(f"downloading the {spec} sdist (it carries s2n-tls and aws-lc)")
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
           spec, "-d", str(downloads)]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0 or not target.exists():
        raise BuildError(
            f"could not download {spec} from the package index ({result.stderr.strip()[-400:]}). "
            "Check network/index settings, or point the build at another s2n with "
            "S2NPY_S2N_PREFIX=<installed prefix> or S2NPY_S2N_SOURCE=<s2n-tls source tree>."
        )
    actual = _sha256(target)
    if actual != pin["sha256"]:
        target.unlink()
        raise BuildError(
            f"{target.name} has sha256 {actual}, but vendor/awscrt-pin.json pins {pin['sha256']}. "
            "The download was altered or the pin is wrong; refusing to build from it."
        )
    return target


def extract_pinned_sources(pin: dict[str, str]) -> Path:
    """Extract only crt/s2n and crt/aws-lc from the sdist; return the sdist root."""
    root = CACHE / "src" / f"{pin['package']}-{pin['version']}"
    stamp = root / ".extracted"
    if stamp.exists():
        return root
    sdist = fetch_pinned_sdist(pin)
    _log(f"extracting s2n-tls and aws-lc from {sdist.name}")
    prefix = f"{pin['package']}-{pin['version']}/"
    wanted = (prefix + pin["s2n_dir"] + "/", prefix + pin["aws_lc_dir"] + "/")
    with tarfile.open(sdist) as tar:
        members = [m for m in tar.getmembers() if m.name.startswith(wanted)]
        tar.extractall(CACHE / "src", members=members, filter="data")
    stamp.touch()
    return root


# --- CMake builds ------------------------------------------------------------------


def cmake_build(name: str, source: Path, options: list[str]) -> Path:
    """Configure, build and install one CMake project into the cache; reuse if done."""
    _require_tool("cmake", "Install CMake (Debian: apt-get install cmake).")
    _require_tool("cc", "Install a C compiler (Debian: apt-get install build-essential).")
    generator = ["-GNinja"] if shutil.which("ninja") else []
    key = hashlib.sha256(json.dumps([str(source), options]).encode()).hexdigest()[:12]
    build_dir = CACHE / "build" / f"{name}-{key}"
    prefix = CACHE / "install" / f"{name}-{key}"
    stamp = prefix / ".installed"
    if stamp.exists():
        return prefix
    build_dir.mkdir(parents=True, exist_ok=True)
    log = CACHE / f"{name}-{key}.log"
    log.unlink(missing_ok=True)
    _log(f"building {name} with CMake (log: {log})")
    _run_logged(["cmake", "-S", str(source), "-B", str(build_dir), *generator,
                 "-DCMAKE_BUILD_TYPE=Release", "-DCMAKE_POSITION_INDEPENDENT_CODE=ON",
                 "-DBUILD_SHARED_LIBS=OFF", "-DBUILD_TESTING=OFF",
                 f"-DCMAKE_INSTALL_PREFIX={prefix}", "-DCMAKE_INSTALL_LIBDIR=lib", *options],
                log, f"configuring {name}")
    _run_logged(["cmake", "--build", str(build_dir), "--parallel", str(os.cpu_count() or 2)],
                log, f"compiling {name}")
    _run_logged(["cmake", "--install", str(build_dir)], log, f"installing {name}")
    stamp.touch()
    return prefix


def _c_flags_option() -> list[str]:
    flags = sanitize_flags()
    return [f"-DCMAKE_C_FLAGS={' '.join(flags)}"] if flags else []


#: How aws-lc seeds its random generator, by S2NPY_AWS_LC_ENTROPY. "os" (the default): from
#: the kernel's CSPRNG (getrandom), with the CPU's RDRAND/RNDR as the second source where there
#: is one, as OpenSSL and BoringSSL do; aws-lc supports it for non-FIPS builds and picks it
#: itself in some VMs. "jitter": aws-lc's own default, which first measures CPU timing jitter
#: (an SP 800-90B source): ~30 ms of busy CPU in every process, at the first s2n_init, which was
#: ~60% of `import s2npy`.
AWS_LC_ENTROPY = {"os": ["-DDISABLE_CPU_JITTER_ENTROPY=ON"], "jitter": []}


def _aws_lc_entropy() -> str:
    choice = os.environ.get("S2NPY_AWS_LC_ENTROPY", "os")
    if choice not in AWS_LC_ENTROPY:
        raise BuildError(f"S2NPY_AWS_LC_ENTROPY={choice!r} is not supported; use 'os' (default) or 'jitter'.")
    return choice


def build_aws_lc(source: Path) -> Path:
    return cmake_build("aws-lc", source, [
        "-DBUILD_LIBSSL=OFF", "-DDISABLE_GO=ON", "-DDISABLE_PERL=ON", "-DBUILD_TOOL=OFF",
        *AWS_LC_ENTROPY[_aws_lc_entropy()],
    ])


def build_s2n(source: Path, libcrypto_prefix: Path | None) -> Path:
    options = ["-DUNSAFE_TREAT_WARNINGS_AS_ERRORS=OFF", *_c_flags_option()]
    if libcrypto_prefix is None:
        options.append("-DS2N_USE_CRYPTO_SHARED_LIBS=ON")
    else:
        options.append(f"-DCMAKE_PREFIX_PATH={libcrypto_prefix}")
    return cmake_build("s2n-tls", source, options)


# --- choosing what to link -----------------------------------------------------------


def _static_libs(s2n_prefix: Path, libcrypto_prefix: Path | None, description: dict[str, str]) -> NativeLibs:
    libs = NativeLibs(description=description, include_dirs=[str(s2n_prefix / "include")],
                      extra_objects=[str(s2n_prefix / "lib" / "libs2n.a")], libraries=["pthread", "m"])
    if libcrypto_prefix is not None:
        libs.extra_objects.append(str(libcrypto_prefix / "lib" / "libcrypto.a"))
    else:
        libs.libraries.insert(0, "crypto")
    return libs


def _libcrypto_choice() -> str:
    choice = os.environ.get("S2NPY_LIBCRYPTO", "aws-lc")
    if choice not in ("aws-lc", "system"):
        raise BuildError(f"S2NPY_LIBCRYPTO={choice!r} is not supported; use 'aws-lc' or 'system'.")
    return choice


def _installed_libs(prefix: Path) -> NativeLibs:
    """S2NPY_S2N_PREFIX: link an s2n-tls someone already built and installed."""
    if not (prefix / "include" / "s2n.h").exists():
        raise BuildError(f"S2NPY_S2N_PREFIX={prefix} has no include/s2n.h; point it at an s2n install prefix.")
    description = {"s2n_source": f"installed prefix {prefix}", "libcrypto_build": "as linked by that s2n"}
    static = prefix / "lib" / "libs2n.a"
    if static.exists():
        own_crypto = prefix / "lib" / "libcrypto.a"
        return _static_libs(prefix, prefix if own_crypto.exists() else None, description)
    if not any((prefix / "lib").glob("libs2n.so*")):
        raise BuildError(f"S2NPY_S2N_PREFIX={prefix} has neither lib/libs2n.a nor lib/libs2n.so.")
    lib_dir = str(prefix / "lib")
    return NativeLibs(description=description, include_dirs=[str(prefix / "include")],
                      libraries=["s2n", "crypto"], library_dirs=[lib_dir], runtime_library_dirs=[lib_dir])


def prepare_native_libs() -> NativeLibs:
    """Build (or find) libs2n and libcrypto according to the environment overrides."""
    installed = os.environ.get("S2NPY_S2N_PREFIX")
    if installed:
        return _installed_libs(Path(installed).expanduser().resolve())
    pin = load_pin()
    use_system_crypto = _libcrypto_choice() == "system"
    local_source = os.environ.get("S2NPY_S2N_SOURCE")
    pinned_root = None if (local_source and use_system_crypto) else extract_pinned_sources(pin)
    if local_source:
        s2n_source = Path(local_source).expanduser().resolve()
        if not (s2n_source / "api" / "s2n.h").exists():
            raise BuildError(f"S2NPY_S2N_SOURCE={s2n_source} is not an s2n-tls source tree (no api/s2n.h).")
        source_label = f"local source tree {s2n_source}"
    else:
        s2n_source = pinned_root / pin["s2n_dir"]
        source_label = f"{pin['package']} {pin['version']} sdist ({pin['s2n_dir']}), sha256 {pin['sha256'][:12]}"
    crypto_prefix = None if use_system_crypto else build_aws_lc(pinned_root / pin["aws_lc_dir"])
    s2n_prefix = build_s2n(s2n_source, crypto_prefix)
    description = {
        "s2n_source": source_label,
        "s2n_tls_sys_version": _rust_binding_version(s2n_source),
        "libcrypto_build": "system OpenSSL (shared)" if use_system_crypto
        else f"aws-lc (static, from the pin; entropy: {_aws_lc_entropy()})",
    }
    return _static_libs(s2n_prefix, crypto_prefix, description)


def _rust_binding_version(s2n_source: Path) -> str:
    """s2n-tls has no version call; its Rust binding's crate version identifies the release."""
    cargo = s2n_source / "bindings" / "rust" / "extended" / "s2n-tls-sys" / "Cargo.toml"
    if cargo.exists():
        for line in cargo.read_text().splitlines():
            if line.startswith("version"):
                return line.split("=", 1)[1].strip().strip('"')
    return "unknown"


# --- the cffi module ----------------------------------------------------------------


def _load_cdef_module(name: str):
    spec = importlib.util.spec_from_file_location(f"_s2npy_cdef_{name}", CDEF_DIR / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _header_has(include_dirs: list[str], probe: str, relative: str) -> bool:
    for directory in include_dirs:
        header = Path(directory) / relative
        if header.exists() and probe in header.read_text(errors="replace"):
            return True
    return False


#: What s2npy_read_facts fills: declared to cffi and defined in C from this one text. The
#: strings (cipher, group, signature scheme, ALPN, server name, handshake type, last message,
#: in that order) are copied into `text`, each ended by a NUL; bit i of `present` says the
#: i-th was not NULL. Python decodes and splits them at once: one decode, not seven.
FACTS_STRUCT = """
struct s2npy_facts {
    int mode, handshake_complete, protocol_version, client_protocol_version, server_protocol_version;
    int cipher_iana, client_cert_used, session_resumed, alert;
    uint32_t present, text_length;
    uint64_t wire_bytes_in, wire_bytes_out;
    char text[1024];
};
"""

#: Where a handshake stands, read by a traced negotiate before and after each s2n call.
PROGRESS_STRUCT = """
struct s2npy_progress { const char *last_message, *handshake_type; uint64_t wire_bytes_in, wire_bytes_out; };
"""

#: One chunk recorded by the C trace tap (s2npy.io.NativeTap unpacks them); direction 0 in, 1 out.
TAP_CHUNK_STRUCT = """
struct s2npy_tap_chunk { int64_t t_ns; uint64_t offset; uint32_t length; int32_t direction; };
"""

#: C helpers compiled into the extension. Each replaces a run of Python -> C crossings
#: that every connection pays (measured: a checked call costs ~1-2 us of Python, the
#: GIL round trip of a blocking call far more), so they are about speed, not features.
HELPERS_CDEF = FACTS_STRUCT + PROGRESS_STRUCT + TAP_CHUNK_STRUCT + """
struct s2npy_mem_pipe;
struct s2npy_mem_end { int closed; int io_errno; uint64_t sent; ...; };
struct s2npy_mem_pipe *s2npy_mem_pipe_new(void);
void s2npy_mem_pipe_free(struct s2npy_mem_pipe *pipe);
struct s2npy_mem_end *s2npy_mem_pipe_end(struct s2npy_mem_pipe *pipe, int index);
ssize_t s2npy_mem_read(struct s2npy_mem_end *end, uint8_t *buf, size_t len);
ssize_t s2npy_mem_write(struct s2npy_mem_end *end, const uint8_t *buf, size_t len);
size_t s2npy_mem_buffered(struct s2npy_mem_end *end);
void s2npy_mem_close(struct s2npy_mem_end *end, int reset);
int s2npy_mem_recv(void *io_context, uint8_t *buf, uint32_t len);
int s2npy_mem_send(void *io_context, const uint8_t *buf, uint32_t len);
uint8_t s2npy_accept_any_host(const char *host_name, size_t host_name_len, void *data);
struct s2n_connection *s2npy_connection_create(struct s2n_connection *reuse, s2n_mode mode,
                                               struct s2n_config *config, void *ctx,
                                               s2n_verify_host_fn verify_host, void *verify_data,
                                               s2n_blinding blinding, const char *server_name, int fd,
                                               struct s2npy_mem_end *mem, int prefer, int cert_auth,
                                               const char *policy, const char **alpn, int alpn_count,
                                               const uint8_t *session, uint32_t session_length,
                                               int *failed_step);
void s2npy_read_facts(struct s2n_connection *conn, struct s2npy_facts *out);
int s2npy_negotiate(struct s2n_connection *conn, s2n_blocked_status *blocked, struct s2npy_facts *facts,
                    struct s2npy_progress *progress);
void s2npy_read_progress(struct s2n_connection *conn, struct s2npy_progress *out);
int64_t s2npy_peer_chain_der(struct s2n_connection *conn, uint8_t *out, uint32_t size);
struct s2npy_fd_reader { int fd; int dont_wait; int not_socket; int installed; int large_records; size_t budget;
                         uint8_t *ahead;
                         size_t capacity; size_t start; size_t end; };
ssize_t s2npy_recv(struct s2n_connection *conn, void *buf, ssize_t size, struct s2npy_fd_reader *reader,
                   s2n_blocked_status *blocked, int *failed);
void *__wrap_memmove(void *to, const void *from, size_t size);
struct s2npy_tap { int io_errno; struct s2npy_fd_reader reader; size_t count; size_t used; struct s2npy_tap_chunk *chunks; uint8_t *data; ...; };
struct s2npy_tap *s2npy_tap_new(int fd, struct s2npy_mem_end *mem);
void s2npy_tap_free(struct s2npy_tap *tap);
int s2npy_tap_recv(void *io_context, uint8_t *buf, uint32_t len);
int s2npy_tap_send(void *io_context, const uint8_t *buf, uint32_t len);
int s2npy_set_io(struct s2n_connection *conn, s2n_recv_fn *recv, s2n_send_fn *send, void *context);
void s2npy_tap_lock(struct s2npy_tap *tap);
void s2npy_tap_unlock(struct s2npy_tap *tap);
"""

HELPERS_C = FACTS_STRUCT + PROGRESS_STRUCT + TAP_CHUNK_STRUCT + r"""
/* Servers check a client certificate's chain, not its names: this verify-host
 * callback (pure C, no GIL round trip) accepts any name, like Python's ssl does. */
static uint8_t s2npy_accept_any_host(const char *h, size_t n, void *d) { (void)h; (void)n; (void)d; return 1; }

struct s2npy_mem_end;
static int s2npy_mem_recv(void *io_context, uint8_t *buf, uint32_t len);
static int s2npy_mem_send(void *io_context, const uint8_t *buf, uint32_t len);
static int s2npy_set_io(struct s2n_connection *conn, s2n_recv_fn *recv, s2n_send_fn *send, void *context);

/* A new connection with the setup every Connection does - context, config, verify host,
 * blinding, a client's server name, the I/O when s2n does it itself (an fd >= 0, or a
 * memory pipe end `mem`) - and the constructor's per-connection overrides, each only when
 * given: record preference (`prefer` 1 throughput, 2 low latency, 0 none), client auth type
 * (`cert_auth`, -1 none), security `policy`, ALPN list (`alpn` of `alpn_count` names) and a
 * client's session to resume - in one crossing: each crossing releases and retakes the GIL,
 * and a client sets up right after handing its server thread a socket, which then takes the
 * GIL at every release and runs its own set-up before the client can send its ClientHello.
 * `reuse`: a connection wiped by s2n_connection_wipe (of this
 * mode, see s2npy/pool.py) to set up instead of a new one, or NULL. NULL on failure, with
 * *failed_step the 1-based step that failed (1 is s2n_connection_new) and s2n_errno left for
 * the caller; a connection that failed after its creation (or reuse) is freed (keeping
 * s2n_errno). */
static struct s2n_connection *s2npy_connection_create(struct s2n_connection *reuse, s2n_mode mode,
                                                      struct s2n_config *config, void *ctx,
                                                      s2n_verify_host_fn verify_host, void *verify_data,
                                                      s2n_blinding blinding, const char *server_name, int fd,
                                                      struct s2npy_mem_end *mem, int prefer, int cert_auth,
                                                      const char *policy, const char **alpn, int alpn_count,
                                                      const uint8_t *session, uint32_t session_length,
                                                      int *failed_step)
{
    struct s2n_connection *conn = reuse != NULL ? reuse : s2n_connection_new(mode);
    int step = 1;
    if (conn == NULL) goto failed;
    if (++step, s2n_connection_set_ctx(conn, ctx) < 0) goto failed;
    if (++step, s2n_connection_set_config(conn, config) < 0) goto failed;
    if (++step, verify_host && s2n_connection_set_verify_host_callback(conn, verify_host, verify_data) < 0)
        goto failed;
    if (++step, s2n_connection_set_blinding(conn, blinding) < 0) goto failed;
    if (++step, server_name && s2n_set_server_name(conn, server_name) < 0) goto failed;
    if (++step, fd >= 0 && s2n_connection_set_fd(conn, fd) < 0) goto failed;
    if (++step, mem != NULL && s2npy_set_io(conn, s2npy_mem_recv, s2npy_mem_send, mem) < 0) goto failed;
    if (++step, (prefer == 1 && s2n_connection_prefer_throughput(conn) < 0)
            || (prefer == 2 && s2n_connection_prefer_low_latency(conn) < 0))
        goto failed;
    if (++step, cert_auth >= 0 && s2n_connection_set_client_auth_type(conn, (s2n_cert_auth_type) cert_auth) < 0)
        goto failed;
    if (++step, policy != NULL && s2n_connection_set_cipher_preferences(conn, policy) < 0) goto failed;
    if (++step, alpn != NULL && s2n_connection_set_protocol_preferences(conn, alpn, alpn_count) < 0) goto failed;
    if (++step, session != NULL && s2n_connection_set_session(conn, session, session_length) < 0) goto failed;
    *failed_step = 0;
    return conn;
failed:
    *failed_step = step;
    if (conn != NULL) {
        int saved = s2n_errno;
        s2n_connection_free(conn);
        *s2n_errno_location() = saved;
    }
    return NULL;
}

static const char *s2npy_string_out(int (*getter)(struct s2n_connection *, const char **),
                                    struct s2n_connection *conn)
{
    const char *out = NULL;
    return getter(conn, &out) == S2N_SUCCESS ? out : NULL;
}

/* Append string number `index` of the facts (see FACTS_STRUCT); a NULL leaves an empty
 * string and its `present` bit clear. Longer strings than the room left are cut (s2n's
 * are at most 255 bytes: ALPN and server names; the rest are short constant names). */
static void s2npy_facts_text(struct s2npy_facts *out, int index, const char *value)
{
    if (out->text_length >= sizeof out->text) return;  /* full: Python reads the rest as missing */
    size_t room = sizeof out->text - out->text_length - 1;
    size_t length = value ? strnlen(value, room) : 0;
    if (value) out->present |= 1u << index;
    memcpy(out->text + out->text_length, value ? value : "", length);
    out->text_length += length;
    out->text[out->text_length++] = '\0';
}

/* Every fact of NegotiatedFacts in one crossing instead of ~20. Getters that find
 * nothing (no alert, no group yet) set s2n_errno: it is cleared at the end. */
static void s2npy_read_facts(struct s2n_connection *conn, struct s2npy_facts *out)
{
    uint8_t first = 0, second = 0;
    out->mode = s2n_connection_get_mode(conn);
    out->handshake_complete = s2n_connection_handshake_complete(conn);
    out->protocol_version = s2n_connection_get_actual_protocol_version(conn);
    out->client_protocol_version = s2n_connection_get_client_protocol_version(conn);
    out->server_protocol_version = s2n_connection_get_server_protocol_version(conn);
    out->cipher_iana = out->handshake_complete
        && s2n_connection_get_cipher_iana_value(conn, &first, &second) == S2N_SUCCESS ? (first << 8) | second : 0;
    out->present = out->text_length = 0;
    s2npy_facts_text(out, 0, out->handshake_complete ? s2n_connection_get_cipher(conn) : NULL);
    s2npy_facts_text(out, 1, s2npy_string_out(s2n_connection_get_key_exchange_group, conn));
    s2npy_facts_text(out, 2, s2npy_string_out(s2n_connection_get_signature_scheme, conn));
    s2npy_facts_text(out, 3, s2n_get_application_protocol(conn));
    s2npy_facts_text(out, 4, s2n_get_server_name(conn));
    s2npy_facts_text(out, 5, s2n_connection_get_handshake_type_name(conn));
    s2npy_facts_text(out, 6, s2n_connection_get_last_message_name(conn));
    out->client_cert_used = s2n_connection_client_cert_used(conn) == 1;
    out->session_resumed = s2n_connection_is_session_resumed(conn) == 1;
    out->alert = s2n_connection_get_alert(conn);
    out->wire_bytes_in = s2n_connection_get_wire_bytes_in(conn);
    out->wire_bytes_out = s2n_connection_get_wire_bytes_out(conn);
    *s2n_errno_location() = 0;
}

/* The four getters a traced negotiate reads around every call, in one crossing. The
 * names are s2n's static strings. */
static void s2npy_read_progress(struct s2n_connection *conn, struct s2npy_progress *out)
{
    out->last_message = s2n_connection_get_last_message_name(conn);
    out->handshake_type = s2n_connection_get_handshake_type_name(conn);
    out->wire_bytes_in = s2n_connection_get_wire_bytes_in(conn);
    out->wire_bytes_out = s2n_connection_get_wire_bytes_out(conn);
}

/* The peer's validated chain as DER certificates, each after its 3-byte length (the TLS
 * encoding), in one crossing instead of ~8 (chain object, count, each certificate, free).
 * Returns the bytes the chain needs: written to `out` when they fit in `size`, else call
 * again with that much room. -1 (s2n_errno set) when there is no validated chain. */
static int64_t s2npy_peer_chain_der(struct s2n_connection *conn, uint8_t *out, uint32_t size)
{
    struct s2n_cert_chain_and_key *chain = s2n_cert_chain_and_key_new();
    if (chain == NULL) return -1;
    int64_t needed = -1;
    uint32_t length = 0;
    if (s2n_connection_get_peer_cert_chain(conn, chain) == S2N_SUCCESS
            && s2n_cert_chain_get_length(chain, &length) == S2N_SUCCESS) {
        needed = 0;
        for (uint32_t index = 0; index < length; index++) {
            struct s2n_cert *cert = NULL;
            const uint8_t *der = NULL;
            uint32_t der_length = 0;
            if (s2n_cert_chain_get_cert(chain, &cert, index) != S2N_SUCCESS
                    || s2n_cert_get_der(cert, &der, &der_length) != S2N_SUCCESS) {
                needed = -1;
                break;
            }
            if (needed + 3 + der_length <= size) {
                uint8_t *at = out + needed;
                at[0] = der_length >> 16, at[1] = der_length >> 8, at[2] = der_length;
                memcpy(at + 3, der, der_length);
            }
            needed += 3 + der_length;
        }
    }
    int saved = s2n_errno;
    s2n_cert_chain_and_key_free(chain);
    *s2n_errno_location() = saved;
    return needed;
}

/* After a failed s2n call: if it only blocked (nothing failed), reset s2n_errno and say so;
 * any other error is left for the caller to read. */
static int s2npy_only_blocked(void)
{
    if (s2n_error_get_type(s2n_errno) != S2N_ERR_T_BLOCKED) return 0;
    *s2n_errno_location() = 0;
    return 1;
}

/* s2n_negotiate, and when it completes the facts too: negotiate() wants both, and
 * after a handshake both threads of a client/server pair run Python under one GIL, so
 * every crossing and every Python step saved there shortens the pair's critical path.
 * `progress` (a trace's, or NULL): s2n's state before the call in [0], after it in [1]
 * (three crossings in one; reading it keeps s2n_errno and errno for the caller).
 * Returns 0 (done), 1 (blocked: *blocked says on what; s2n_errno is reset, as nothing
 * failed) or -1 (failed: s2n_errno is left for the caller). */
static int s2npy_negotiate(struct s2n_connection *conn, s2n_blocked_status *blocked, struct s2npy_facts *facts,
                           struct s2npy_progress *progress)
{
    if (progress != NULL) s2npy_read_progress(conn, &progress[0]);
    int result = 0;
    if (s2n_negotiate(conn, blocked) == S2N_SUCCESS) {
        if (facts != NULL) s2npy_read_facts(conn, facts);
    } else {
        result = s2npy_only_blocked() ? 1 : -1;
    }
    if (progress != NULL) {
        int saved_s2n_errno = s2n_errno, saved_errno = errno;
        s2npy_read_progress(conn, &progress[1]);
        *s2n_errno_location() = saved_s2n_errno;
        errno = saved_errno;
    }
    return result;
}

/* glibc's memmove/memcpy switch to `rep movsb` above a few KiB (2 KiB on this AMD EPYC),
 * and on AMD Zen that runs ~25x slower (measured: 2.6 vs 70 GB/s) when the destination
 * is 1-15 bytes ahead of the source modulo 64. s2n copies application data between the
 * caller's buffer and its record buffer, where the data starts after the 5-byte header
 * (and an 8-byte explicit IV for TLS 1.2 AES-GCM): with a 16-byte aligned caller buffer
 * one case in four took the slow copy, and bulk transfers ran at 0.6x native C. s2n-tls
 * makes all its copies with memmove (S2N_CHECKED_MEMCPY), and the extension is linked
 * with `--wrap=memmove` (see make_ffi), so those of the statically linked library come
 * here: a large copy at a slow distance goes in pieces small enough for glibc's vector
 * loop, everything else straight to glibc. No extra copy, no change of meaning
 * (overlapping moves are never split). aws-lc encrypts and decrypts records in place. */
#define S2NPY_COPY_PIECE 2048

void *__real_memmove(void *to, const void *from, size_t size);

/* A copy glibc would do slowly: large, destination 1-15 bytes ahead modulo 64, and the
 * two ranges apart (a piecewise overlapping move could overwrite its own source). */
static int s2npy_slow_copy(void *to, const void *from, size_t size)
{
    uintptr_t ahead = (uintptr_t) to - (uintptr_t) from;
    return size > S2NPY_COPY_PIECE && ahead % 64 - 1 < 15 && ahead >= size && (uintptr_t) from - (uintptr_t) to >= size;
}

static void *s2npy_copy_in_pieces(void *to, const void *from, size_t size)
{
    for (size_t done = 0; done < size; done += S2NPY_COPY_PIECE)
        memcpy((uint8_t *) to + done, (const uint8_t *) from + done,
               size - done < S2NPY_COPY_PIECE ? size - done : S2NPY_COPY_PIECE);
    return to;
}

void *__wrap_memmove(void *to, const void *from, size_t size)
{
    return s2npy_slow_copy(to, from, size) ? s2npy_copy_in_pieces(to, from, size) : __real_memmove(to, from, size);
}

/* Reading a socket for s2n: like s2n's own read(), or, while a recv burst collects the
 * records that have already arrived, without waiting (MSG_DONTWAIT): that tells "nothing
 * more yet" with no extra syscall, where a poll() before each record cost one. A
 * connection's reader is installed as its recv callback at its first s2npy_recv (after
 * the handshake, which keeps s2n's own fd reads and their TCP_QUICKACK); a trace tap
 * reads through its own. Not a socket (recv fails with ENOTSOCK): no bursts.
 *
 * With `ahead` (a Connection gives one to callers of large recv_into buffers), reading a
 * record header also takes whatever follows it, up to `budget`: the room left in the
 * caller's buffer. s2n asks for each record's 5-byte header and then its body, two reads
 * per record; now one read serves several. Never more than the caller can take, so every
 * whole record read ahead fits and the burst consumes it: what can stay behind is part of
 * a record whose rest has not been read, and the socket shows readable when it has. An
 * event loop that waits on the socket therefore never misses a record held here.
 * Only while the peer sends large records (the last burst had one of 4 KiB or more): with
 * small ones the receiver got through the socket sooner, found less each call and made
 * more calls per byte (1 KiB records: 290 -> 210 MB/s in the bulk benchmark). */
#define S2NPY_RECORD_HEADER 5
#define S2NPY_LARGE_RECORD 4096

struct s2npy_fd_reader {
    int fd, dont_wait, not_socket, installed;
    int large_records;                /* the last burst had a record of S2NPY_LARGE_RECORD bytes or more */
    size_t budget;                    /* in a burst: bytes the caller's buffer can still take; else 0 */
    uint8_t *ahead;                   /* read-ahead room of `capacity` bytes (or NULL); [start, end) unread */
    size_t capacity, start, end;
};

static ssize_t s2npy_fd_read_socket(struct s2npy_fd_reader *reader, uint8_t *buf, size_t len)
{
    if (!reader->dont_wait) return read(reader->fd, buf, len);
    ssize_t count = recv(reader->fd, buf, len, MSG_DONTWAIT);
    if (count < 0 && errno == ENOTSOCK) {
        reader->not_socket = 1;
        errno = EAGAIN;  /* ends this burst; nothing was read */
    }
    return count;
}

static ssize_t s2npy_fd_read(struct s2npy_fd_reader *reader, uint8_t *buf, size_t len)
{
    if (reader->start == reader->end) {
        size_t room = reader->budget < reader->capacity ? reader->budget : reader->capacity;
        if (len != S2NPY_RECORD_HEADER || !reader->large_records || room <= len)
            return s2npy_fd_read_socket(reader, buf, len);
        ssize_t count = s2npy_fd_read_socket(reader, reader->ahead, room);
        if (count <= 0) return count;
        reader->start = 0;
        reader->end = (size_t) count;
    }
    size_t count = reader->end - reader->start < len ? reader->end - reader->start : len;
    memcpy(buf, reader->ahead + reader->start, count);
    reader->start += count;
    return (ssize_t) count;
}

static int s2npy_fd_recv(void *io_context, uint8_t *buf, uint32_t len)
{
    return (int) s2npy_fd_read(io_context, buf, len);
}

/* s2n_recv, then with a reader more records that have already arrived, up to `size`: one
 * call (one GIL round trip) per burst instead of per 16 KiB record. It never waits for
 * data that has not arrived, unlike s2n_config_set_recv_multi_record, which on a blocking
 * socket waits until the buffer is full. A record cut short (the rest not there yet) stays
 * with s2n for the next call, whose read then waits for it as usual. A later record that
 * fails sets *failed and leaves s2n_errno for the caller, who returns the bytes already
 * read and reports the error on the next call, so neither is lost. No reader (memory
 * pipes, Python transports): one record. */
static ssize_t s2npy_recv(struct s2n_connection *conn, void *buf, ssize_t size, struct s2npy_fd_reader *reader,
                          s2n_blocked_status *blocked, int *failed)
{
    *failed = 0;
    if (reader == NULL) return s2n_recv(conn, buf, size, blocked);
    if (!reader->installed) {
        if (s2n_connection_set_recv_cb(conn, s2npy_fd_recv) < 0 || s2n_connection_set_recv_ctx(conn, reader) < 0)
            return -1;
        reader->installed = 1;
    }
    reader->budget = (size_t) size;
    ssize_t total = s2n_recv(conn, buf, size, blocked);
    int large = total >= S2NPY_LARGE_RECORD;
    reader->dont_wait = 1;
    while (total > 0 && total < size && !reader->not_socket) {
        reader->budget = (size_t) (size - total);
        ssize_t more = s2n_recv(conn, (uint8_t *) buf + total, size - total, blocked);
        if (more <= 0) {
            *failed = more < 0 && !s2npy_only_blocked();
            *blocked = S2N_NOT_BLOCKED;
            break;
        }
        large |= more >= S2NPY_LARGE_RECORD;
        total += more;
    }
    if (total > 0) reader->large_records = large;
    reader->dont_wait = 0;
    reader->budget = 0;
    return total;
}

/* Make *data (an array of `size`-byte items, *capacity of them) hold at least `needed`
 * items: doubling, starting at `first`. 0, or -1 when out of memory (nothing changed). */
static int s2npy_grow(void **data, size_t *capacity, size_t needed, size_t size, size_t first)
{
    if (needed <= *capacity) return 0;
    size_t wanted = *capacity ? 2 * *capacity : first;
    if (wanted < needed) wanted = needed;
    void *grown = realloc(*data, wanted * size);
    if (grown == NULL) return -1;
    *data = grown;
    *capacity = wanted;
    return 0;
}

/* In-memory pipes (s2npy.memory): two byte streams in C, so that s2n's I/O on a pipe end
 * runs without a Python callback per record read or write (an in-memory handshake does
 * ~30 of them). The semantics are a non-blocking socketpair's: a read of an empty stream
 * is EAGAIN (s2n: blocked), 0 once the writer closed and everything was read; a write
 * never blocks (the stream grows); close() is a FIN, reset() an RST (the peer's reads
 * fail with ECONNRESET, unread bytes are lost). One mutex per pipe: the two ends may be
 * driven from two threads, each inside s2n with the GIL released. A failure other than
 * EAGAIN leaves its errno in the end's io_errno, for the exception's __cause__. */
struct s2npy_mem_stream {
    uint8_t *data;
    size_t start, end, capacity;
    int writer_closed, writer_reset, reader_closed;
};

struct s2npy_mem_end {
    int closed, io_errno;
    uint64_t sent;
    struct s2npy_mem_pipe *pipe;
    struct s2npy_mem_stream *in, *out;
};

struct s2npy_mem_pipe {
    pthread_mutex_t lock;
    struct s2npy_mem_stream streams[2];
    struct s2npy_mem_end ends[2];
};

static struct s2npy_mem_pipe *s2npy_mem_pipe_new(void)
{
    struct s2npy_mem_pipe *pipe = calloc(1, sizeof *pipe);
    if (pipe == NULL) return NULL;
    pthread_mutex_init(&pipe->lock, NULL);
    for (int i = 0; i < 2; i++) {
        pipe->ends[i].pipe = pipe;
        pipe->ends[i].in = &pipe->streams[i];
        pipe->ends[i].out = &pipe->streams[1 - i];
    }
    return pipe;
}

static void s2npy_mem_pipe_free(struct s2npy_mem_pipe *pipe)
{
    if (pipe == NULL) return;
    pthread_mutex_destroy(&pipe->lock);
    free(pipe->streams[0].data);
    free(pipe->streams[1].data);
    free(pipe);
}

static struct s2npy_mem_end *s2npy_mem_pipe_end(struct s2npy_mem_pipe *pipe, int index)
{
    return &pipe->ends[index & 1];
}

/* -1 with errno set (and kept in io_errno unless it is EAGAIN); called with the lock held. */
static ssize_t s2npy_mem_failed(struct s2npy_mem_end *end, int error)
{
    if (error != EAGAIN) end->io_errno = error;
    errno = error;
    return -1;
}

static ssize_t s2npy_mem_read(struct s2npy_mem_end *end, uint8_t *buf, size_t len)
{
    struct s2npy_mem_stream *in = end->in;
    ssize_t result;
    pthread_mutex_lock(&end->pipe->lock);
    if (in->writer_reset) result = s2npy_mem_failed(end, ECONNRESET);
    else if (end->closed) result = s2npy_mem_failed(end, EBADF);
    else if (in->start == in->end) result = in->writer_closed ? 0 : s2npy_mem_failed(end, EAGAIN);
    else {
        size_t count = in->end - in->start < len ? in->end - in->start : len;
        memcpy(buf, in->data + in->start, count);
        in->start += count;
        if (in->start == in->end) in->start = in->end = 0;
        result = (ssize_t) count;
    }
    pthread_mutex_unlock(&end->pipe->lock);
    return result;
}

/* Room for `len` more bytes at the stream's end: compacts, then grows (doubling). */
static int s2npy_mem_reserve(struct s2npy_mem_stream *out, size_t len)
{
    if (out->capacity - out->end >= len) return 0;
    if (out->start > 0) {
        memmove(out->data, out->data + out->start, out->end - out->start);
        out->end -= out->start;
        out->start = 0;
        if (out->capacity - out->end >= len) return 0;
    }
    if (len > SIZE_MAX / 4 - out->end) return -1;
    return s2npy_grow((void **) &out->data, &out->capacity, out->end + len, 1, 16384);
}

static ssize_t s2npy_mem_write(struct s2npy_mem_end *end, const uint8_t *buf, size_t len)
{
    struct s2npy_mem_stream *out = end->out;
    ssize_t result;
    pthread_mutex_lock(&end->pipe->lock);
    if (end->closed || out->reader_closed) result = s2npy_mem_failed(end, EPIPE);
    else if (s2npy_mem_reserve(out, len) < 0) result = s2npy_mem_failed(end, ENOMEM);
    else {
        if (len) memcpy(out->data + out->end, buf, len);
        out->end += len;
        end->sent += len;
        result = (ssize_t) len;
    }
    pthread_mutex_unlock(&end->pipe->lock);
    return result;
}

static size_t s2npy_mem_buffered(struct s2npy_mem_end *end)
{
    pthread_mutex_lock(&end->pipe->lock);
    size_t buffered = end->in->end - end->in->start;
    pthread_mutex_unlock(&end->pipe->lock);
    return buffered;
}

static void s2npy_mem_close(struct s2npy_mem_end *end, int reset)
{
    pthread_mutex_lock(&end->pipe->lock);
    end->closed = 1;
    end->in->reader_closed = 1;
    end->out->writer_closed = 1;
    if (reset) end->out->writer_reset = 1;
    pthread_mutex_unlock(&end->pipe->lock);
}

static int s2npy_mem_recv(void *io_context, uint8_t *buf, uint32_t len)
{
    return (int) s2npy_mem_read(io_context, buf, len < INT_MAX ? len : INT_MAX);
}

static int s2npy_mem_send(void *io_context, const uint8_t *buf, uint32_t len)
{
    return (int) s2npy_mem_write(io_context, buf, len < INT_MAX ? len : INT_MAX);
}

/* Tracing a connection on a socket, fd or memory pipe without Python in its I/O: s2n
 * calls these recv/send callbacks, which read()/write() the fd exactly as s2n's own fd
 * I/O does (same errno: EAGAIN is "blocked", s2n retries EINTR), or read/write the
 * memory pipe end, and append each chunk - the
 * direction, a CLOCK_MONOTONIC timestamp (time.perf_counter's clock on Linux) and the
 * bytes - to buffers that the trace copies out when its chunks are read and when the
 * connection lets go of the tap (no Python per record read or write, nor per s2n call).
 * An empty "in" chunk is the peer's EOF. A failed read/write other than EAGAIN/EINTR
 * leaves its errno in io_errno, for the exception's __cause__. The mutex covers a
 * reader and a writer thread on one connection (s2n allows both at once). */
struct s2npy_tap {
    int io_errno;
    struct s2npy_fd_reader reader;    /* its fd (writes use it too); installed: the tap is the recv callback */
    struct s2npy_mem_end *mem;        /* a memory pipe end instead of the fd, or NULL */
    size_t count, used;               /* chunks and data bytes not taken yet (NativeTap.take) */
    struct s2npy_tap_chunk *chunks;
    uint8_t *data;
    size_t chunk_capacity, capacity;
    pthread_mutex_t lock;
};

static struct s2npy_tap *s2npy_tap_new(int fd, struct s2npy_mem_end *mem)
{
    struct s2npy_tap *tap = calloc(1, sizeof *tap);
    if (tap == NULL) return NULL;
    tap->reader.fd = fd;
    tap->reader.installed = 1;
    tap->mem = mem;
    pthread_mutex_init(&tap->lock, NULL);
    return tap;
}

static void s2npy_tap_free(struct s2npy_tap *tap)
{
    if (tap == NULL) return;
    pthread_mutex_destroy(&tap->lock);
    free(tap->chunks);
    free(tap->data);
    free(tap);
}

static void s2npy_tap_lock(struct s2npy_tap *tap) { pthread_mutex_lock(&tap->lock); }
static void s2npy_tap_unlock(struct s2npy_tap *tap) { pthread_mutex_unlock(&tap->lock); }

/* Room for one more chunk of up to `bytes` (called with the lock held). */
static int s2npy_tap_reserve(struct s2npy_tap *tap, size_t bytes)
{
    if (s2npy_grow((void **) &tap->chunks, &tap->chunk_capacity, tap->count + 1, sizeof *tap->chunks, 32) < 0)
        return -1;
    return s2npy_grow((void **) &tap->data, &tap->capacity, tap->used + bytes, 1, 8192);
}

static void s2npy_tap_append(struct s2npy_tap *tap, int32_t direction, const uint8_t *buf, size_t length)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    struct s2npy_tap_chunk *chunk = &tap->chunks[tap->count++];
    chunk->t_ns = (int64_t) now.tv_sec * 1000000000 + now.tv_nsec;
    chunk->offset = tap->used;
    chunk->length = (uint32_t) length;
    chunk->direction = direction;
    if (length) memcpy(tap->data + tap->used, buf, length);
    tap->used += length;
}

static int s2npy_tap_failed(struct s2npy_tap *tap)
{
    int saved = errno;
    if (saved != EAGAIN && saved != EWOULDBLOCK && saved != EINTR) tap->io_errno = saved;
    errno = saved;
    return -1;
}

/* direction 0: "in" (read, s2n's recv callback), 1: "out" (write, its send callback).
 * Space is reserved before the I/O, so bytes that crossed the fd are recorded; if it
 * cannot be, the call fails with ENOMEM. An empty read (the peer's EOF) is a chunk too. */
static int s2npy_tap_io(struct s2npy_tap *tap, int32_t direction, uint8_t *buf, uint32_t len)
{
    pthread_mutex_lock(&tap->lock);
    int room = s2npy_tap_reserve(tap, len);
    pthread_mutex_unlock(&tap->lock);
    if (room < 0) { errno = ENOMEM; return -1; }
    ssize_t count = tap->mem ? (direction ? s2npy_mem_write(tap->mem, buf, len) : s2npy_mem_read(tap->mem, buf, len))
                             : (direction ? write(tap->reader.fd, buf, len) : s2npy_fd_read(&tap->reader, buf, len));
    if (count < 0) return s2npy_tap_failed(tap);
    if (count > 0 || !direction) {
        pthread_mutex_lock(&tap->lock);
        if (s2npy_tap_reserve(tap, count) == 0) s2npy_tap_append(tap, direction, buf, count);
        pthread_mutex_unlock(&tap->lock);
    }
    return (int) count;
}

static int s2npy_tap_recv(void *io_context, uint8_t *buf, uint32_t len)
{
    return s2npy_tap_io(io_context, 0, buf, len);
}

static int s2npy_tap_send(void *io_context, const uint8_t *buf, uint32_t len)
{
    return s2npy_tap_io(io_context, 1, (uint8_t *) buf, len);
}

/* Custom I/O for a connection - the recv and send callbacks and their shared context (a
 * memory pipe end, a trace tap, or a Python transport's handle) - in one crossing instead of
 * four; 0 or -1 (s2n_errno set). */
static int s2npy_set_io(struct s2n_connection *conn, s2n_recv_fn *recv, s2n_send_fn *send, void *context)
{
    if (s2n_connection_set_recv_cb(conn, recv) < 0) return -1;
    if (s2n_connection_set_send_cb(conn, send) < 0) return -1;
    if (s2n_connection_set_recv_ctx(conn, context) < 0) return -1;
    return s2n_connection_set_send_ctx(conn, context);
}
"""


def make_ffi() -> FFI:
    """Return the FFI builder; called by setuptools through ``cffi_modules``."""
    libs = prepare_native_libs()
    ffi = FFI()
    includes = ""
    features = {}
    for name in CDEF_MODULES:
        module = _load_cdef_module(name)
        probe = getattr(module, "PROBE", None)
        header = module.INCLUDES.split("<", 1)[1].split(">", 1)[0]
        available = probe is None or _header_has(libs.include_dirs, probe, header)
        features[name] = available
        if available:
            ffi.cdef(module.CDEF)
            includes += module.INCLUDES
    build_info = json.dumps({**libs.description, "features": features})
    ffi.cdef("const char *s2npy_build_info(void);\n" + HELPERS_CDEF)
    ffi.set_source(
        "s2npy._s2n",
        includes + "#include <openssl/crypto.h>\n#include <errno.h>\n#include <sys/socket.h>\n#include <pthread.h>\n"
        + "#include <limits.h>\n#include <stdint.h>\n#include <stdlib.h>\n#include <string.h>\n#include <time.h>\n#include <unistd.h>\n"
        + f"static const char *s2npy_build_info(void) {{ return {json.dumps(build_info)}; }}\n"
        + HELPERS_C,
        include_dirs=libs.include_dirs,
        extra_objects=libs.extra_objects,
        libraries=libs.libraries,
        library_dirs=libs.library_dirs,
        runtime_library_dirs=libs.runtime_library_dirs,
        extra_compile_args=sanitize_flags(),
        extra_link_args=["-Wl,--exclude-libs,ALL", "-Wl,--wrap=memmove", *sanitize_flags()],
    )
    return ffi


if __name__ == "__main__":
    make_ffi().compile(tmpdir=str(ROOT), verbose=True)
