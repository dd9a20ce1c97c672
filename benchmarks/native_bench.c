/*
 * native_bench: the native ceiling for s2npy's benchmarks.
 *
 * The same workloads as benchmarks/py_bench.py, written directly against the
 * libs2n.a / libcrypto.a that build_s2n.py built. benchmarks/run.py compiles and
 * runs it; it prints one JSON object on stdout.
 *
 *   native_bench WORKLOAD key=value...
 *
 * WORKLOAD: handshake | memory_handshake | bulk | idle_rss | rss_growth | handshake_phases
 * keys: cert, key, ca (PEM files), policy, seconds, pairs, resume (0/1),
 *       chunk, total (bytes), count, reuse (0/1, default 1).
 *
 * handshake_phases (a diagnostic for benchmarks/handshake_phases.py): `count` socket
 * handshakes of one pair, each step time-stamped; prints the mean of each phase in us.
 *
 * A socket handshake uses a fresh socketpair: a server pthread per pair takes
 * the server end through a pipe, negotiates, and acknowledges through another
 * pipe; the client thread negotiates its end and waits for the ack. Python's
 * contestants do exactly the same with threads and queues.
 *
 * Closed connections are reused as s2npy reuses them (s2npy/pool.py): wiped with
 * s2n_connection_wipe and set up again for the next handshake instead of freed and
 * allocated anew; here one per mode and thread. reuse=0 frees every connection.
 *
 * Built with -DNATIVE_BENCH_LIBRARY (benchmarks/run.py's build_native(library=True)) it is
 * a shared library for benchmarks/binding_floor.py's one-call and py-class variants instead:
 * no main, native_bench_setup() and the calls after it below.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <s2n.h>

#define MAX_PAIRS 8

/* handshake_phases' time stamps of one handshake, in order (see PHASES). */
enum { C_START, C_SOCKETPAIR, C_HANDED_OVER, C_SET_UP, C_NEGOTIATED, C_ACKED, C_CLOSED,
       S_WOKEN, S_SET_UP, S_NEGOTIATED, S_CLOSED, STAMPS };
#define MEM_CAPACITY (1 << 17)

static const char *opt_cert, *opt_key, *opt_ca, *opt_policy = "default_tls13";
static double opt_seconds = 1.0;
static long opt_reuse = 1;
static long opt_pairs = 1, opt_resume = 0, opt_chunk = 65536, opt_total = 1 << 24, opt_count = 1000;

static struct s2n_config *server_config, *client_config;
static uint8_t session[8192];
static int session_length;

static void die(const char *what)
{
    fprintf(stderr, "native_bench: %s failed: %s (%s)\n", what, s2n_strerror(s2n_errno, "EN"),
            s2n_strerror_debug(s2n_errno, "EN"));
    exit(1);
}

#define CHECK(call, what) \
    do { \
        if ((call) < 0) die(what); \
    } while (0)

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* CPU seconds used by the whole process (all threads) so far. */
static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static long rss_kib(void)
{
    long pages = 0, resident = 0;
    FILE *statm = fopen("/proc/self/statm", "r");
    if (statm == NULL || fscanf(statm, "%ld %ld", &pages, &resident) != 2) {
        perror("reading /proc/self/statm");
        exit(1);
    }
    fclose(statm);
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

static char *read_file(const char *path)
{
    FILE *file = fopen(path, "rb");
    if (file == NULL) {
        perror(path);
        exit(1);
    }
    char *data = calloc(1, 1 << 16);
    size_t length = fread(data, 1, (1 << 16) - 1, file);
    data[length] = 0;
    fclose(file);
    return data;
}

static void make_configs(void)
{
    char *cert = read_file(opt_cert), *key = read_file(opt_key), *ca = read_file(opt_ca);
    struct s2n_cert_chain_and_key *chain = s2n_cert_chain_and_key_new();
    CHECK(s2n_cert_chain_and_key_load_pem(chain, cert, key), "loading certificate");
    server_config = s2n_config_new();
    client_config = s2n_config_new();
    CHECK(s2n_config_add_cert_chain_and_key_to_store(server_config, chain), "adding certificate");
    CHECK(s2n_config_wipe_trust_store(client_config), "wiping trust store");
    CHECK(s2n_config_add_pem_to_trust_store(client_config, ca), "adding trust");
    struct s2n_config *both[] = { server_config, client_config };
    for (int i = 0; i < 2; i++) {
        CHECK(s2n_config_set_cipher_preferences(both[i], opt_policy), "setting policy");
        if (opt_resume) {
            CHECK(s2n_config_set_session_tickets_onoff(both[i], 1), "enabling tickets");
        }
    }
    if (opt_resume) {
        uint8_t name[] = "native-bench", ticket_key[32] = { 1, 2, 3, 4, 5, 6, 7, 8 };
        CHECK(s2n_config_add_ticket_crypto_key(server_config, name, sizeof(name) - 1, ticket_key,
                      sizeof(ticket_key), 0),
                "adding ticket key");
    }
}

/* This thread's wiped connections, by mode (S2N_SERVER, S2N_CLIENT), for the next new_connection. */
static __thread struct s2n_connection *idle[2];

static void release_connection(struct s2n_connection *conn)
{
    s2n_mode mode = s2n_connection_get_mode(conn);
    if (opt_reuse && idle[mode] == NULL && s2n_connection_wipe(conn) == S2N_SUCCESS) {
        idle[mode] = conn;
        return;
    }
    s2n_connection_free(conn);
}

static struct s2n_connection *new_connection(s2n_mode mode, int fd)
{
    struct s2n_connection *conn = idle[mode] != NULL ? idle[mode] : s2n_connection_new(mode);
    idle[mode] = NULL;
    if (conn == NULL) die("s2n_connection_new");
    CHECK(s2n_connection_set_config(conn, mode == S2N_SERVER ? server_config : client_config), "set config");
    CHECK(s2n_connection_set_blinding(conn, S2N_SELF_SERVICE_BLINDING), "set blinding");
    if (mode == S2N_CLIENT) {
        CHECK(s2n_set_server_name(conn, "localhost"), "set server name");
        if (opt_resume && session_length > 0) {
            CHECK(s2n_connection_set_session(conn, session, session_length), "set session");
        }
    }
    if (fd >= 0) CHECK(s2n_connection_set_fd(conn, fd), "set fd");
    return conn;
}

static void negotiate(struct s2n_connection *conn)
{
    s2n_blocked_status blocked;
    CHECK(s2n_negotiate(conn, &blocked), "s2n_negotiate");
}

static void *negotiate_thread(void *conn)
{
    negotiate(conn);
    return NULL;
}

/* --- one client/server pair over fresh socketpairs -------------------------- */

struct pair {
    int to_server[2], from_server[2];
    pthread_t server;
    long count;
    struct s2n_connection **kept; /* idle_rss: keep both ends established */
    double (*stamps)[STAMPS];     /* handshake_phases: each handshake's time stamps, else NULL */
};

/* Record time stamp `which` of handshake `index` (handshake_phases only). */
static void stamp(struct pair *pair, long index, int which)
{
    if (pair->stamps != NULL) pair->stamps[index][which] = now();
}

static void server_loop_body(struct pair *pair, int fd, long index)
{
    stamp(pair, index, S_WOKEN);
    struct s2n_connection *conn = new_connection(S2N_SERVER, fd);
    stamp(pair, index, S_SET_UP);
    negotiate(conn);
    stamp(pair, index, S_NEGOTIATED);
    if (pair->kept != NULL) {
        pair->kept[2 * index] = conn;
    } else {
        release_connection(conn);
        close(fd);
    }
    stamp(pair, index, S_CLOSED);
}

static void *server_thread(void *arg)
{
    struct pair *pair = arg;
    int fd;
    for (long index = 0; read(pair->to_server[0], &fd, sizeof(fd)) == sizeof(fd) && fd >= 0; index++) {
        server_loop_body(pair, fd, index);
        char ack = 1;
        if (write(pair->from_server[1], &ack, 1) != 1) die("ack");
    }
    return NULL;
}

static void start_pair(struct pair *pair)
{
    if (pipe(pair->to_server) || pipe(pair->from_server)) die("pipe");
    pthread_create(&pair->server, NULL, server_thread, pair);
}

static void stop_pair(struct pair *pair)
{
    int stop = -1;
    if (write(pair->to_server[1], &stop, sizeof(stop)) != sizeof(stop)) die("stop");
    pthread_join(pair->server, NULL);
}

/* One handshake; returns the established client connection (fd in *client_fd). */
static struct s2n_connection *pair_handshake(struct pair *pair, int *client_fd)
{
    int fds[2];
    char ack;
    stamp(pair, pair->count, C_START);
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds)) die("socketpair");
    stamp(pair, pair->count, C_SOCKETPAIR);
    if (write(pair->to_server[1], &fds[0], sizeof(fds[0])) != sizeof(fds[0])) die("handing over");
    stamp(pair, pair->count, C_HANDED_OVER);
    struct s2n_connection *conn = new_connection(S2N_CLIENT, fds[1]);
    stamp(pair, pair->count, C_SET_UP);
    negotiate(conn);
    stamp(pair, pair->count, C_NEGOTIATED);
    if (read(pair->from_server[0], &ack, 1) != 1) die("waiting for the server");
    stamp(pair, pair->count, C_ACKED);
    *client_fd = fds[1];
    return conn;
}

static void client_handshake_and_close(struct pair *pair)
{
    int fd;
    struct s2n_connection *conn = pair_handshake(pair, &fd);
    if (opt_resume && !s2n_connection_is_session_resumed(conn)) die("resumption (not resumed)");
    release_connection(conn);
    close(fd);
    stamp(pair, pair->count, C_CLOSED);
    pair->count++;
}

static void *client_thread(void *arg)
{
    struct pair *pair = arg;
    double deadline = now() + opt_seconds;
    start_pair(pair);
    while (now() < deadline) client_handshake_and_close(pair);
    stop_pair(pair);
    return NULL;
}

/* A first full handshake whose client reads the TLS 1.3 ticket (sent after the handshake). */
static void prime_session(void)
{
    int fds[2];
    uint8_t byte = 0;
    s2n_blocked_status blocked;
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds)) die("socketpair");
    struct s2n_connection *server = new_connection(S2N_SERVER, fds[0]);
    struct s2n_connection *client = new_connection(S2N_CLIENT, fds[1]);
    pthread_t thread;
    pthread_create(&thread, NULL, negotiate_thread, server);
    negotiate(client);
    pthread_join(thread, NULL);
    CHECK(s2n_send(server, &byte, 1, &blocked), "sending a byte");
    CHECK(s2n_recv(client, &byte, 1, &blocked), "receiving the ticket");
    session_length = s2n_connection_get_session_length(client);
    CHECK(s2n_connection_get_session(client, session, sizeof(session)), "reading session");
    release_connection(server);
    release_connection(client);
    close(fds[0]);
    close(fds[1]);
}

static void run_handshakes(void)
{
    struct pair pairs[MAX_PAIRS] = { 0 };
    pthread_t clients[MAX_PAIRS];
    if (opt_resume) prime_session();
    double start = now(), cpu = cpu_now();
    for (long i = 0; i < opt_pairs; i++) pthread_create(&clients[i], NULL, client_thread, &pairs[i]);
    long total = 0;
    for (long i = 0; i < opt_pairs; i++) {
        pthread_join(clients[i], NULL);
        total += pairs[i].count;
    }
    printf("{\"value\": %.3f, \"count\": %ld, \"per_cpu\": %.3f}\n", total / (now() - start), total,
           total / (cpu_now() - cpu));
}

/* The phases handshake_phases reports: each the mean time from one stamp to another, in us
 * (benchmarks/handshake_phases.py names the same phases for the Python contestants). */
static const struct { const char *name; int from, to; } PHASES[] = {
    { "client socketpair", C_START, C_SOCKETPAIR },
    { "client hands over the server end", C_SOCKETPAIR, C_HANDED_OVER },
    { "client set-up", C_HANDED_OVER, C_SET_UP },
    { "client negotiate", C_SET_UP, C_NEGOTIATED },
    { "client waits for the server", C_NEGOTIATED, C_ACKED },
    { "client close", C_ACKED, C_CLOSED },
    { "server wakes (from the hand-over)", C_HANDED_OVER, S_WOKEN },
    { "server set-up", S_WOKEN, S_SET_UP },
    { "server negotiate", S_SET_UP, S_NEGOTIATED },
    { "server done after the client", C_NEGOTIATED, S_NEGOTIATED },
    { "server close", S_NEGOTIATED, S_CLOSED },
    { "client wakes (from the server's close)", S_CLOSED, C_ACKED },
};

static void run_handshake_phases(void)
{
    struct pair pair = { 0 };
    if (opt_count < 20) {
        fprintf(stderr, "native_bench: handshake_phases: count=%ld: want at least 20 (a tenth warms up)\n", opt_count);
        exit(2);
    }
    long warm_up = opt_count / 10;
    pair.stamps = calloc(opt_count, sizeof *pair.stamps);
    if (pair.stamps == NULL) die("allocating time stamps");
    start_pair(&pair);
    while (pair.count < opt_count) client_handshake_and_close(&pair);
    stop_pair(&pair);
    double measured = opt_count - warm_up;
    printf("{\"value\": %.3f, \"phases\": {",
           (pair.stamps[opt_count - 1][C_CLOSED] - pair.stamps[warm_up][C_START]) * 1e6 / measured);
    for (size_t phase = 0; phase < sizeof PHASES / sizeof PHASES[0]; phase++) {
        double sum = 0;
        for (long index = warm_up; index < opt_count; index++)
            sum += pair.stamps[index][PHASES[phase].to] - pair.stamps[index][PHASES[phase].from];
        printf("%s\"%s\": %.3f", phase ? ", " : "", PHASES[phase].name, sum * 1e6 / measured);
    }
    printf("}}\n");
    free(pair.stamps);
}

/* --- in memory ------------------------------------------------------------------ */

struct mem_pipe {
    uint8_t data[MEM_CAPACITY];
    size_t start, end;
};

static int mem_recv(void *ctx, uint8_t *buf, uint32_t len)
{
    struct mem_pipe *pipe = ctx;
    if (pipe->start == pipe->end) {
        errno = EAGAIN;
        return -1;
    }
    size_t count = pipe->end - pipe->start < len ? pipe->end - pipe->start : len;
    memcpy(buf, pipe->data + pipe->start, count);
    pipe->start += count;
    if (pipe->start == pipe->end) pipe->start = pipe->end = 0;
    return (int)count;
}

static int mem_send(void *ctx, const uint8_t *buf, uint32_t len)
{
    struct mem_pipe *pipe = ctx;
    if (pipe->end + len > MEM_CAPACITY) die("memory pipe overflow");
    memcpy(pipe->data + pipe->end, buf, len);
    pipe->end += len;
    return (int)len;
}

static int step(struct s2n_connection *conn)
{
    s2n_blocked_status blocked;
    if (s2n_negotiate(conn, &blocked) == S2N_SUCCESS) return 1;
    if (s2n_error_get_type(s2n_errno) != S2N_ERR_T_BLOCKED) die("s2n_negotiate (memory)");
    return 0;
}

struct memory_worker {
    pthread_t thread;
    long count;
};

static void *memory_handshakes(void *arg)
{
    struct memory_worker *worker = arg;
    struct mem_pipe *to_client = calloc(1, sizeof(*to_client)), *to_server = calloc(1, sizeof(*to_server));
    double deadline = now() + opt_seconds;
    while (now() < deadline) {
        struct s2n_connection *server = new_connection(S2N_SERVER, -1);
        struct s2n_connection *client = new_connection(S2N_CLIENT, -1);
        s2n_connection_set_recv_cb(server, mem_recv);
        s2n_connection_set_send_cb(server, mem_send);
        s2n_connection_set_recv_ctx(server, to_server);
        s2n_connection_set_send_ctx(server, to_client);
        s2n_connection_set_recv_cb(client, mem_recv);
        s2n_connection_set_send_cb(client, mem_send);
        s2n_connection_set_recv_ctx(client, to_client);
        s2n_connection_set_send_ctx(client, to_server);
        int client_done = 0, server_done = 0;
        while (!(client_done && server_done)) {
            client_done = client_done || step(client);
            server_done = server_done || step(server);
        }
        release_connection(server);
        release_connection(client);
        worker->count++;
    }
    free(to_client);
    free(to_server);
    return NULL;
}

/* In-memory handshakes, both ends driven by one thread; `pairs` such threads at once. */
static void run_memory_handshakes(void)
{
    struct memory_worker workers[MAX_PAIRS] = { 0 };
    double start = now(), cpu = cpu_now();
    for (long i = 0; i < opt_pairs; i++) pthread_create(&workers[i].thread, NULL, memory_handshakes, &workers[i]);
    long count = 0;
    for (long i = 0; i < opt_pairs; i++) {
        pthread_join(workers[i].thread, NULL);
        count += workers[i].count;
    }
    printf("{\"value\": %.3f, \"count\": %ld, \"per_cpu\": %.3f}\n", count / (now() - start), count,
           count / (cpu_now() - cpu));
}

/* --- bulk ------------------------------------------------------------------------- */

static void *bulk_receiver(void *arg)
{
    struct s2n_connection *conn = arg;
    static uint8_t buffer[1 << 16];
    s2n_blocked_status blocked;
    for (long received = 0; received < opt_total;) {
        ssize_t count = s2n_recv(conn, buffer, sizeof(buffer), &blocked);
        if (count <= 0) die("s2n_recv");
        received += count;
    }
    return NULL;
}

static void run_bulk(void)
{
    int fds[2];
    pthread_t thread;
    s2n_blocked_status blocked;
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds)) die("socketpair");
    struct s2n_connection *server = new_connection(S2N_SERVER, fds[0]);
    struct s2n_connection *client = new_connection(S2N_CLIENT, fds[1]);
    CHECK(s2n_connection_prefer_throughput(server), "prefer throughput");
    CHECK(s2n_connection_prefer_throughput(client), "prefer throughput");
    pthread_create(&thread, NULL, negotiate_thread, server);
    negotiate(client);
    pthread_join(thread, NULL);
    uint8_t *chunk = calloc(1, opt_chunk);
    double start = now(), cpu = cpu_now();
    pthread_create(&thread, NULL, bulk_receiver, server);
    for (long sent = 0; sent < opt_total;) {
        for (long offset = 0; offset < opt_chunk;) {
            ssize_t count = s2n_send(client, chunk + offset, opt_chunk - offset, &blocked);
            if (count < 0) die("s2n_send");
            offset += count;
        }
        sent += opt_chunk;
    }
    pthread_join(thread, NULL);
    double elapsed = now() - start;
    printf("{\"value\": %.3f, \"per_cpu\": %.3f}\n", opt_total / elapsed / 1e6,
           opt_total / (cpu_now() - cpu) / 1e6);
}

/* --- memory -------------------------------------------------------------------------- */

static void raise_fd_limit(void)
{
    struct rlimit limit;
    getrlimit(RLIMIT_NOFILE, &limit);
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
}

static void run_idle_rss(void)
{
    struct pair pair = { 0 };
    int fd;
    raise_fd_limit();
    pair.kept = calloc(2 * (opt_count + 8), sizeof(*pair.kept));
    start_pair(&pair);
    for (int i = 0; i < 8; i++) pair.kept[2 * i + 1] = pair_handshake(&pair, &fd); /* warm-up */
    long before = rss_kib();
    for (long i = 8; i < opt_count + 8; i++) pair.kept[2 * i + 1] = pair_handshake(&pair, &fd);
    long after = rss_kib();
    stop_pair(&pair);
    printf("{\"value\": %.3f, \"connections\": %ld}\n", (after - before) / (2.0 * opt_count), 2 * opt_count);
}

static void run_rss_growth(void)
{
    struct pair pair = { 0 };
    long first = 0;
    start_pair(&pair);
    for (long i = 1; i <= opt_count; i++) {
        int fd;
        struct s2n_connection *conn = pair_handshake(&pair, &fd);
        release_connection(conn);
        close(fd);
        if (i == opt_count / 10) first = rss_kib();
    }
    long last = rss_kib();
    stop_pair(&pair);
    printf("{\"value\": %ld, \"rss_kib\": %ld}\n", last - first, last);
}

/* `value` of `key` as a number, or NAN when it is not one. */
static double parsed_number(const char *value)
{
    char *end = NULL;
    double parsed = strtod(value, &end);
    return end == value || *end != '\0' ? NAN : parsed;
}

static void bad_value(const char *key, const char *value, const char *wanted)
{
    fprintf(stderr, "native_bench: %s=%s: want %s\n", key, value, wanted);
    exit(2);
}

/* A duration: a number of seconds above 0. */
static double seconds_value(const char *key, const char *value)
{
    double parsed = parsed_number(value);
    if (!(parsed > 0 && parsed <= 1e6)) bad_value(key, value, "a number of seconds above 0");
    return parsed;
}

/* A whole number from `low` to `high`. */
static long whole_value(const char *key, const char *value, long low, long high)
{
    double parsed = parsed_number(value);
    if (!(parsed >= low && parsed <= high && parsed == (long)parsed)) {
        char wanted[80];
        snprintf(wanted, sizeof wanted, "a whole number from %ld to %ld", low, high);
        bad_value(key, value, wanted);
    }
    return (long)parsed;
}

static void parse(int argc, char **argv)
{
    for (int i = 2; i < argc; i++) {
        char *value = strchr(argv[i], '=');
        if (value == NULL) {
            fprintf(stderr, "native_bench: %s: want key=value\n", argv[i]);
            exit(2);
        }
        *value++ = 0;
        const char *key = argv[i];
        if (!strcmp(key, "cert")) opt_cert = value;
        else if (!strcmp(key, "key")) opt_key = value;
        else if (!strcmp(key, "ca")) opt_ca = value;
        else if (!strcmp(key, "policy")) opt_policy = value;
        else if (!strcmp(key, "seconds")) opt_seconds = seconds_value(key, value);
        else if (!strcmp(key, "pairs")) opt_pairs = whole_value(key, value, 1, MAX_PAIRS);
        else if (!strcmp(key, "resume")) opt_resume = whole_value(key, value, 0, 1);
        else if (!strcmp(key, "chunk")) opt_chunk = whole_value(key, value, 1, 1L << 30);
        else if (!strcmp(key, "total")) opt_total = whole_value(key, value, 1, 1L << 50);
        else if (!strcmp(key, "count")) opt_count = whole_value(key, value, 1, 10000000);
        else if (!strcmp(key, "reuse")) opt_reuse = whole_value(key, value, 0, 1);
        else if (strcmp(key, "trace"))
            bad_value(key, value, "a key of cert, key, ca, policy, seconds, pairs, resume, chunk, total, count, reuse, trace");
    }
    if (opt_cert == NULL || opt_key == NULL || opt_ca == NULL) {
        fprintf(stderr, "native_bench: cert=, key= and ca= (PEM files) are required\n");
        exit(2);
    }
}

#ifdef NATIVE_BENCH_LIBRARY
/* Python threads run py_bench's socketpair harness and make one call per side and handshake:
 * what is left between that and native_bench is the harness's own Python, not a binding's. */

/* The configs for argv (as native_bench's: argv[1] is ignored, then key=value...), and the
 * ticket session when resume=1. 0, or the process exits as native_bench would. */
int native_bench_setup(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    parse(argc, argv);
    CHECK(s2n_init(), "s2n_init");
    make_configs();
    if (opt_resume) prime_session();
    return 0;
}

/* The three steps of a side, one call each (binding_floor.py's py-class variant): a connection
 * set up on `fd` (a reused one), its handshake (with resume=1 a client that did not resume
 * exits, as native_bench does), and its give-back. */
struct s2n_connection *native_bench_start(int server, int fd)
{
    return new_connection(server ? S2N_SERVER : S2N_CLIENT, fd);
}

int native_bench_negotiate(struct s2n_connection *conn)
{
    negotiate(conn);
    if (s2n_connection_get_mode(conn) == S2N_CLIENT && opt_resume && !s2n_connection_is_session_resumed(conn))
        die("resumption (not resumed)");
    return 0;
}

int native_bench_release(struct s2n_connection *conn)
{
    release_connection(conn);
    return 0;
}

/* One whole side of a handshake on `fd` in one call (the one-call variant). */
int native_bench_side(int server, int fd)
{
    struct s2n_connection *conn = native_bench_start(server, fd);
    native_bench_negotiate(conn);
    return native_bench_release(conn);
}
#else
int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: native_bench WORKLOAD key=value...\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    parse(argc, argv);
    CHECK(s2n_init(), "s2n_init");
    make_configs();
    const char *workload = argv[1];
    if (!strcmp(workload, "handshake")) run_handshakes();
    else if (!strcmp(workload, "memory_handshake")) run_memory_handshakes();
    else if (!strcmp(workload, "bulk")) run_bulk();
    else if (!strcmp(workload, "idle_rss")) run_idle_rss();
    else if (!strcmp(workload, "rss_growth")) run_rss_growth();
    else if (!strcmp(workload, "handshake_phases")) run_handshake_phases();
    else {
        fprintf(stderr, "native_bench: unknown workload %s\n", workload);
        return 2;
    }
    return 0;
}
#endif
