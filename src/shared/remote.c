/* remote.c - the calling side of a shared object used from another node: the call is sent to
 * the broker of the handle's creator (broker.c; its IPv4 address and port are in the handle)
 * over TCP, which makes the same call there and answers with its code, its sentence and any
 * bytes. Each thread keeps one connection per broker, so a call that blocks there (a get, an
 * acquire) holds up no other thread, and a Lock taken through it is owned, there, by a thread
 * that serves this thread alone - and is handed on with MPROC_EOWNERDEAD when this process
 * dies and the connection closes.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "shared/shared.h"

#define MAX_CONNS 32
#define CONNECT_TIMEOUT_MS 10000
/* A reply may take the call's own timeout; past it by this much the broker is taken as gone. */
#define REPLY_GRACE_S 30.0

typedef struct conn {
    uint32_t ip;
    uint16_t port;
    int fd;
    pid_t pid; /* a fork child inherits the cache: it must not talk on its parent's socket */
} conn;

static _Thread_local conn conns[MAX_CONNS];
static _Thread_local int n_conns;
static pthread_key_t conns_key;
static pthread_once_t key_once = PTHREAD_ONCE_INIT;

/* Every client socket of the process, whatever thread owns it: a fork child closes them all at
 * once (pthread_atfork), or a child alive after its parent died would keep the parent's
 * connections open and the broker would never see the parent go (its Locks never handed on). */
static pthread_mutex_t all_mu = PTHREAD_MUTEX_INITIALIZER;
static int *all_fds;
static size_t n_all, cap_all;

static void track(int fd) {
    pthread_mutex_lock(&all_mu);
    if (n_all == cap_all) {
        size_t c = cap_all ? 2 * cap_all : 64;
        int *p = realloc(all_fds, c * sizeof *p);
        if (p) all_fds = p, cap_all = c;
    }
    if (n_all < cap_all) all_fds[n_all++] = fd;
    pthread_mutex_unlock(&all_mu);
}

static void untrack_and_close(int fd) {
    pthread_mutex_lock(&all_mu);
    for (size_t i = 0; i < n_all; i++)
        if (all_fds[i] == fd) {
            all_fds[i] = all_fds[--n_all];
            break;
        }
    pthread_mutex_unlock(&all_mu);
    close(fd);
}

static void before_fork(void) { pthread_mutex_lock(&all_mu); }
static void parent_after_fork(void) { pthread_mutex_unlock(&all_mu); }
static void child_after_fork(void) { /* the child's copies; the entries in TLS go by pid */
    for (size_t i = 0; i < n_all; i++) close(all_fds[i]);
    n_all = 0;
    pthread_mutex_unlock(&all_mu);
}

static void close_conns(void *unused) {
    (void)unused;
    pid_t me = getpid();
    for (int i = 0; i < n_conns; i++)
        if (conns[i].pid == me) untrack_and_close(conns[i].fd);
    n_conns = 0;
}
static void make_key(void) {
    pthread_key_create(&conns_key, close_conns);
    pthread_atfork(before_fork, parent_after_fork, child_after_fork);
}

static void drop(int i) {
    if (conns[i].pid == getpid()) untrack_and_close(conns[i].fd); /* else closed at the fork already */
    conns[i] = conns[--n_conns];
}

static int dial(uint32_t ip, uint16_t port, const char *fn) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return mproc__error(MPROC_EREMOTE, "%s: socket: %s", fn, strerror(errno));
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = port, .sin_addr.s_addr = ip};
    int rc = connect(fd, (struct sockaddr *)&sa, sizeof sa);
    if (rc < 0 && errno == EINPROGRESS) {
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        int e = 0;
        socklen_t el = sizeof e;
        double until = mproc__now() + CONNECT_TIMEOUT_MS / 1000.0;
        int pr;
        do /* a signal is not a failure: wait the rest */
            pr = poll(&p, 1, (int)(mproc__remaining(until) * 1000) + 1);
        while (pr < 0 && errno == EINTR && mproc__remaining(until) > 0);
        rc = pr == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &el) == 0 && e == 0 ? 0 : -1;
        if (rc < 0) errno = e ? e : ETIMEDOUT;
    }
    if (rc < 0) {
        char a[INET_ADDRSTRLEN];
        int e = errno;
        close(fd);
        return mproc__error(MPROC_EREMOTE, "%s: the object's node (broker %s:%u) cannot be reached: %s", fn,
                            inet_ntop(AF_INET, &ip, a, sizeof a) ? a : "?", ntohs(port), strerror(e));
    }
    int one = 1, idle = 10, intvl = 3, cnt = 3;
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    /* A node that vanishes without a reset is noticed in about 20 s, not never. */
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof intvl);
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof cnt);
    unsigned user_timeout_ms = 30000; /* unacknowledged data for 30 s: the peer is gone */
    setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout_ms, sizeof user_timeout_ms);
    return fd;
}

/* This thread's connection to the broker at ip:port, made on first use. */
static int conn_to(uint32_t ip, uint16_t port, const char *fn, int *slot) {
    pid_t me = getpid();
    for (int i = 0; i < n_conns; i++) {
        if (conns[i].pid != me) { /* inherited: the fork closed our copy */
            drop(i--);
            continue;
        }
        if (conns[i].ip == ip && conns[i].port == port) return *slot = i, conns[i].fd;
    }
    pthread_once(&key_once, make_key);
    if (n_conns == MAX_CONNS) drop(0);
    int fd = dial(ip, port, fn);
    if (fd < 0) return fd;
    track(fd);
    pthread_setspecific(conns_key, conns); /* so the thread's end closes them */
    conns[n_conns] = (conn){ip, port, fd, me};
    *slot = n_conns++;
    return fd;
}

int mproc__sh_send_all(int fd, struct iovec *iov, int n) {
    while (n > 0) {
        struct msghdr m = {.msg_iov = iov, .msg_iovlen = (size_t)n};
        ssize_t w = sendmsg(fd, &m, MSG_NOSIGNAL); /* a closed peer is an error, not a SIGPIPE */
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        while (n > 0 && (size_t)w >= iov->iov_len) w -= (ssize_t)iov->iov_len, iov++, n--;
        if (n > 0) iov->iov_base = (char *)iov->iov_base + w, iov->iov_len -= (size_t)w;
    }
    return 0;
}

int mproc__sh_read_all(int fd, void *buf, size_t n, double deadline) {
    for (size_t got = 0; got < n;) {
        if (deadline >= 0) {
            double left = mproc__remaining(deadline);
            struct pollfd p = {.fd = fd, .events = POLLIN};
            int ms = left > 1e6 ? 1000000000 : (int)(left * 1000) + 1;
            if (left <= 0) return -1;
            int pr = poll(&p, 1, ms);
            if (pr < 0 && errno == EINTR) continue; /* a signal: wait the rest */
            if (pr <= 0) return -1;
        }
        ssize_t r = read(fd, (char *)buf + got, n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        got += (size_t)r;
    }
    return 0;
}

int mproc__sh_discard(int fd, uint64_t n, double deadline) {
    char sink[4096];
    while (n > 0) {
        size_t k = n < sizeof sink ? (size_t)n : sizeof sink;
        if (mproc__sh_read_all(fd, sink, k, deadline) < 0) return -1;
        n -= k;
    }
    return 0;
}

int mproc__sh_remote(mproc__sh_call *c) {
    const mproc_shared_ref *r = c->ref;
    int slot, fd = conn_to(r->broker_ip, r->broker_port, c->fn, &slot);
    if (fd < 0) return fd;
    mproc__sh_req req = {.magic = MPROC__SH_REQ_MAGIC, .op = c->op, .len = c->in_len, .ref = *r,
                         .timeout = c->timeout, .a = c->a, .b = c->b};
    struct iovec iov[2] = {{&req, sizeof req}, {(void *)c->in, c->in_len}};
    /* A Condition wait takes its lock back after the timeout, for as long as that takes: no
     * deadline for its answer (keepalive and TCP_USER_TIMEOUT find a broker that is gone). */
    double deadline = c->timeout < 0 || c->op == MPROC__OP_COND_WAIT ? -1 : mproc__now() + c->timeout + REPLY_GRACE_S;
    void *mine = NULL; /* a buffer made here for the answer: freed if the answer does not come whole */
    mproc__sh_rep rep;
    const char *why = "sending";
    if (mproc__sh_send_all(fd, iov, c->in_len ? 2 : 1) < 0) goto lost;
    why = "waiting for the answer";
    if (mproc__sh_read_all(fd, &rep, sizeof rep, deadline) < 0 || rep.magic != MPROC__SH_REP_MAGIC || rep.len > MPROC__SH_MAX_PAYLOAD)
        goto lost;
    c->value = rep.value;
    c->out_ref = rep.ref;
    c->out_len = (size_t)rep.len;
    if (rep.len) {
        void *dst = c->out;
        if (!dst || rep.len > c->out_cap) { /* no room given: a buffer the caller owns */
            dst = c->owned ? malloc((size_t)rep.len) : NULL;
            if (!dst) {
                if (mproc__sh_discard(fd, rep.len, deadline) < 0) goto lost;
                return mproc__error(MPROC_ENOMEM, "%s: no memory for %llu bytes from the object's node", c->fn,
                                    (unsigned long long)rep.len);
            }
            *c->owned = mine = dst;
        }
        if (mproc__sh_read_all(fd, dst, (size_t)rep.len, deadline) < 0) goto lost;
    }
    if (rep.rc < 0) {
        rep.msg[sizeof rep.msg - 1] = '\0';
        return mproc__error(rep.rc, "%s", rep.msg);
    }
    return rep.rc;
lost:
    if (mine) {
        free(mine);
        *c->owned = NULL;
    }
    drop(slot);
    return mproc__error(MPROC_EREMOTE, "%s: lost the connection to the object's node while %s (its process ended?)", c->fn, why);
}
