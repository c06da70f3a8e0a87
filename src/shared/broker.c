/* broker.c - serves shared objects to processes on other nodes. Under MPI the master starts it
 * (mproc_init): a TCP socket on the master's address, whose address and port go into every
 * handle the master makes, and a thread per connection that makes each forwarded call
 * (remote.c) here, on the real object, and answers. One thread per calling thread there: a
 * call that blocks blocks only its own caller, and a Lock taken for a caller is held by the
 * thread that serves it alone, so when that caller's process dies and its connection closes,
 * the thread ends and the robust mutex hands the lock on with MPROC_EOWNERDEAD, as for a local
 * holder. Long waits are made in slices of 0.1 s between which the thread looks whether its
 * caller is still there (a dead caller's get must not take an item nobody will read).
 *
 * The handle is the capability: a request must name an arena and a block generation that
 * exist, which only a process given the handle knows (the arena tag is 64 random bits).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "shared/shared.h"

#define SLICE_S 0.1
#define MAX_ITEM MPROC__SH_MAX_PAYLOAD
/* A connection's buffer above this is given back after the call that needed it. */
#define KEEP_BUFFER ((size_t)1 << 20)

static int listen_fd = -1;

/* ---- the address other nodes reach us at ---------------------------------------------------- */

static int usable(uint32_t ip) { return ip && (ntohl(ip) >> 24) != 127; }

int mproc__sh_broker_addr_setting(void) {
    const char *env = mproc__env("MPROC_SHARED_BROKER_ADDR");
    struct in_addr a;
    if (env && (inet_pton(AF_INET, env, &a) != 1 || !usable(a.s_addr)))
        return mproc__error(MPROC_EINVAL, "MPROC_SHARED_BROKER_ADDR='%s': want an IPv4 address other nodes can reach "
                            "(a.b.c.d, not 0.0.0.0 nor 127.x)", env);
    return 0;
}

/* MPROC_SHARED_BROKER_ADDR, else what our host name resolves to, else the first IPv4 address
 * of an interface that is up and not loopback. */
static uint32_t advertised_ip(void) {
    const char *env = mproc__env("MPROC_SHARED_BROKER_ADDR");
    struct in_addr a;
    if (env && *env) {
        if (inet_pton(AF_INET, env, &a) == 1 && usable(a.s_addr)) return a.s_addr;
        fprintf(stderr, "mproc: MPROC_SHARED_BROKER_ADDR='%s' is not an IPv4 address other nodes can reach; shared "
                        "objects will not reach other nodes (MPROC_EREMOTE there)\n", env);
        return 0;
    }
    char host[256] = "";
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *res = NULL;
    if (gethostname(host, sizeof host - 1) == 0 && getaddrinfo(host, NULL, &hints, &res) == 0) {
        for (struct addrinfo *p = res; p; p = p->ai_next) {
            uint32_t ip = ((struct sockaddr_in *)p->ai_addr)->sin_addr.s_addr;
            if (usable(ip)) {
                freeaddrinfo(res);
                return ip;
            }
        }
        freeaddrinfo(res);
    }
    struct ifaddrs *ifs = NULL;
    uint32_t found = 0;
    if (getifaddrs(&ifs) == 0) {
        for (struct ifaddrs *i = ifs; i && !found; i = i->ifa_next)
            if (i->ifa_addr && i->ifa_addr->sa_family == AF_INET && (i->ifa_flags & IFF_UP) && !(i->ifa_flags & IFF_LOOPBACK) &&
                usable(((struct sockaddr_in *)i->ifa_addr)->sin_addr.s_addr))
                found = ((struct sockaddr_in *)i->ifa_addr)->sin_addr.s_addr;
        freeifaddrs(ifs);
    }
    return found;
}

/* ---- one connection ---------------------------------------------------------------------------- */

typedef struct served {
    int fd;
    uint8_t *buf; /* the request's payload, or a get's room */
    size_t cap;   /* buf's size */
    size_t len;   /* the request's payload bytes */
} served;

static int alive(int fd) {
    char c;
    ssize_t r = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    return r > 0 || (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR));
}

static int reply(served *s, int rc, int64_t value, const void *data, size_t len, const mproc_shared_ref *ref) {
    mproc__sh_rep rep = {.magic = MPROC__SH_REP_MAGIC, .rc = rc, .len = rc >= 0 ? len : 0, .value = value};
    if (ref) rep.ref = *ref;
    if (rc < 0) snprintf(rep.msg, sizeof rep.msg, "%s", mproc_last_error());
    struct iovec iov[2] = {{&rep, sizeof rep}, {(void *)data, rep.len}};
    return mproc__sh_send_all(s->fd, iov, rep.len ? 2 : 1);
}

static int room(served *s, size_t n) {
    if (n <= s->cap) return 0;
    uint8_t *b = realloc(s->buf, n ? n : 1);
    if (!b) return -1;
    s->buf = b;
    s->cap = n;
    return 0;
}

/* A wait made in slices, so that a caller who is gone is noticed: calls wait(obj, t) with t at
 * most SLICE_S until it returns anything but its "not yet" code, the caller's timeout passes,
 * or the caller is gone (then "not yet" is answered to nobody). */
typedef int (*waiter)(const void *obj, double t, void *ctx);

/* The sentence of a wait that timed out in its last slice of t seconds, made to name the whole
 * timeout: every waiter's sentence says its time as "<t> s" ("not set within 0.05 s"), so the
 * last such number becomes the caller's timeout ("...within 5 s"). */
static int timed_out_in_all(int code, double t, double timeout) {
    char said[400], slice[48], whole[48];
    snprintf(said, sizeof said, "%s", mproc_last_error()); /* a copy: the sentence is rewritten into the buffer it is read from */
    snprintf(slice, sizeof slice, "%g s", t);
    snprintf(whole, sizeof whole, "%g s", timeout);
    char *at = NULL;
    for (char *p = strstr(said, slice); p; p = strstr(p + 1, slice)) at = p;
    if (!at) return mproc__error(code, "%s (a wait made from another node, %s in all)", said, whole);
    *at = '\0';
    return mproc__error(code, "%s%s%s (a wait made from another node)", said, whole, at + strlen(slice));
}

static int sliced(served *s, double timeout, int not_yet, waiter w, const void *obj, void *ctx) {
    double deadline = mproc__deadline(timeout);
    for (;;) {
        double left = mproc__remaining(deadline);
        double t = deadline < 0 || left > SLICE_S ? SLICE_S : left;
        int rc = w(obj, t, ctx);
        if (rc != not_yet || !alive(s->fd)) return rc;
        if (deadline >= 0 && mproc__remaining(deadline) <= 0) /* the sentence named the slice: name the wait */
            return not_yet >= 0 ? not_yet : timed_out_in_all(not_yet, t, timeout);
    }
}

static int still_there(void *s) { return alive(((served *)s)->fd); }

static int w_lock(const void *o, double t, void *c) { (void)c; return mproc_lock_acquire(o, t); }
static int w_rlock(const void *o, double t, void *c) { (void)c; return mproc_rlock_acquire(o, t); }
static int w_sem(const void *o, double t, void *c) { (void)c; return mproc_semaphore_acquire(o, t); }
static int w_event(const void *o, double t, void *c) { (void)c; return mproc_event_wait(o, t); }
static int w_join(const void *o, double t, void *c) { (void)c; return mproc_queue_join(o, t); }
static int w_poll(const void *o, double t, void *c) { (void)c; return mproc_conn_poll(o, t); }
static int w_put(const void *o, double t, void *c) {
    served *s = c;
    return mproc_queue_put(o, s->buf, s->len, t);
}
static int w_send(const void *o, double t, void *c) {
    served *s = c;
    return mproc_conn_send(o, s->buf, s->len, t);
}

typedef struct get_ctx {
    served *s;
    size_t cap, len;
    int exact;
} get_ctx;
/* Into the connection's buffer, grown to the item's own length (never to the caller's whole
 * room, which may be far larger): an item too long for the buffer but within the caller's room
 * stays in the queue (ESIZE with its length), the buffer grows, and the get is made again. */
static int grown_get(get_ctx *g, const void *o, double t, int queue) {
    if (g->exact) {
        g->len = g->cap;
        return queue ? mproc_queue_get_exact(o, g->s->buf, g->cap, t) : mproc_conn_recv_exact(o, g->s->buf, g->cap, t);
    }
    for (;;) {
        size_t have = g->s->cap < g->cap ? g->s->cap : g->cap;
        int rc = queue ? mproc_queue_get(o, g->s->buf, have, &g->len, t) : mproc_conn_recv_into(o, g->s->buf, have, &g->len, t);
        if (rc != MPROC_ESIZE || g->len > g->cap || have == g->cap) return rc;
        if (room(g->s, g->len) < 0)
            return mproc__error(MPROC_ENOMEM, "%s: no room for %zu bytes on the object's node",
                                queue ? "mproc_queue_get" : "mproc_conn_recv", g->len);
    }
}
static int w_get(const void *o, double t, void *c) { return grown_get(c, o, t, 1); }
static int w_recv(const void *o, double t, void *c) { return grown_get(c, o, t, 0); }

static int w_cond(const void *o, double t, void *c) { (void)c; return mproc_condition_acquire(o, t); }

typedef struct any_ctx {
    mproc_buf b;
} any_ctx;
static int w_get_any(const void *o, double t, void *c) { return mproc_queue_get_buf(o, &((any_ctx *)c)->b, t); }
static int w_recv_any(const void *o, double t, void *c) { return mproc_conn_recv(o, &((any_ctx *)c)->b, t); }

/* A get or recv of any length (mproc_queue_get_buf, mproc_conn_recv): into a buffer of the
 * item's own size, which becomes the connection's. */
static int take_any(served *s, const mproc__sh_req *q, get_ctx *g) {
    any_ctx a = {{0}};
    int rc = q->op == MPROC__OP_QUEUE_GET ? sliced(s, q->timeout, MPROC_EEMPTY, w_get_any, &q->ref, &a)
                                          : sliced(s, q->timeout, MPROC_ETIMEDOUT, w_recv_any, &q->ref, &a);
    if (rc == 0) {
        free(s->buf);
        s->buf = a.b.data;
        s->cap = a.b.len ? a.b.len : 1;
        g->len = a.b.len;
    }
    return rc;
}

static int take(served *s, const mproc__sh_req *q, get_ctx *g) {
    const char *fn = q->op == MPROC__OP_QUEUE_GET ? "mproc_queue_get" : q->op == MPROC__OP_CONN_RECV ? "mproc_conn_recv" : "mproc_array_read";
    if (q->op != MPROC__OP_ARRAY_READ && q->a < 0) return take_any(s, q, g);
    g->s = s;
    g->cap = q->op == MPROC__OP_ARRAY_READ ? (size_t)q->b : (size_t)q->a;
    g->exact = q->op != MPROC__OP_ARRAY_READ && q->b;
    /* An exact get and an array read need all of it; a get of up to cap starts with 64 KiB. */
    size_t first = g->exact || q->op == MPROC__OP_ARRAY_READ || g->cap < 65536 ? g->cap : 65536;
    if ((q->op == MPROC__OP_ARRAY_READ ? q->b : q->a) < 0 || g->cap > MAX_ITEM || room(s, first) < 0)
        return mproc__error(MPROC_ENOMEM, "%s: no room for %zu bytes on the object's node", fn, g->cap);
    switch (q->op) {
    case MPROC__OP_QUEUE_GET: return sliced(s, q->timeout, MPROC_EEMPTY, w_get, &q->ref, g);
    case MPROC__OP_CONN_RECV: return sliced(s, q->timeout, MPROC_ETIMEDOUT, w_recv, &q->ref, g);
    default: g->len = g->cap; return mproc_array_read((const mproc_array *)&q->ref, (size_t)q->a, s->buf, g->cap);
    }
}

/* Makes one forwarded call here and answers it: 0, or -1 when the caller is gone. */
static int serve_one(served *s, const mproc__sh_req *q) {
    const void *h = &q->ref; /* every handle type is a struct of one mproc_shared_ref */
    mproc_shared_ref ref = q->ref, lock_ref = {0};
    double t = q->timeout;
    int64_t value = 0;
    get_ctx g = {0};
    int rc, with_data = 0, with_ref = 0;
    if (mproc__sh_is_remote(&q->ref)) /* never passed on: a corrupt handle must not make brokers call each other */
        return reply(s, mproc__error(MPROC_EBADHANDLE, "shared objects: the handle was not made on this node"), 0, NULL, 0, NULL);
    switch (q->op) {
    case MPROC__OP_LOCK_ACQUIRE: rc = sliced(s, t, MPROC_ETIMEDOUT, w_lock, h, NULL); break;
    case MPROC__OP_LOCK_RELEASE: rc = mproc_lock_release(h); break;
    case MPROC__OP_LOCK_FREE: rc = mproc_lock_free((mproc_lock *)&ref); break;
    case MPROC__OP_RLOCK_ACQUIRE: rc = sliced(s, t, MPROC_ETIMEDOUT, w_rlock, h, NULL); break;
    case MPROC__OP_RLOCK_RELEASE: rc = mproc_rlock_release(h); break;
    case MPROC__OP_RLOCK_FREE: rc = mproc_rlock_free((mproc_rlock *)&ref); break;
    case MPROC__OP_SEM_ACQUIRE: rc = sliced(s, t, MPROC_ETIMEDOUT, w_sem, h, NULL); break;
    case MPROC__OP_SEM_RELEASE: rc = mproc_semaphore_release(h); break;
    case MPROC__OP_SEM_VALUE: rc = mproc_semaphore_value(h); break;
    case MPROC__OP_SEM_FREE: rc = mproc_semaphore_free((mproc_semaphore *)&ref); break;
    case MPROC__OP_EVENT_SET: rc = mproc_event_set(h); break;
    case MPROC__OP_EVENT_CLEAR: rc = mproc_event_clear(h); break;
    case MPROC__OP_EVENT_IS_SET: rc = mproc_event_is_set(h); break;
    case MPROC__OP_EVENT_WAIT: rc = sliced(s, t, MPROC_ETIMEDOUT, w_event, h, NULL); break;
    case MPROC__OP_EVENT_FREE: rc = mproc_event_free((mproc_event *)&ref); break;
    case MPROC__OP_COND_ACQUIRE: rc = sliced(s, t, MPROC_ETIMEDOUT, w_cond, h, NULL); break;
    case MPROC__OP_COND_RELEASE: rc = mproc_condition_release(h); break;
    case MPROC__OP_COND_WAIT:
        rc = mproc__sh_condition_wait_watched(h, t, SLICE_S, still_there, s);
        if (rc == MPROC__SH_GONE) return -1; /* nobody to answer; the lock is not held */
        break;
    case MPROC__OP_COND_NOTIFY: rc = mproc_condition_notify(h, (int)q->a); break;
    case MPROC__OP_COND_NOTIFY_ALL: rc = mproc_condition_notify_all(h); break;
    case MPROC__OP_COND_FREE: rc = mproc_condition_free((mproc_condition *)&ref); break;
    case MPROC__OP_BARRIER_WAIT: rc = mproc_barrier_wait(h, t); break; /* whole: a slice's timeout would break it */
    case MPROC__OP_BARRIER_ABORT: rc = mproc_barrier_abort(h); break;
    case MPROC__OP_BARRIER_RESET: rc = mproc_barrier_reset(h); break;
    case MPROC__OP_BARRIER_WAITING: rc = mproc_barrier_waiting(h); break;
    case MPROC__OP_BARRIER_PARTIES: rc = mproc_barrier_parties(h); break;
    case MPROC__OP_BARRIER_BROKEN: rc = mproc_barrier_broken(h); break;
    case MPROC__OP_BARRIER_FREE: rc = mproc_barrier_free((mproc_barrier *)&ref); break;
    case MPROC__OP_QUEUE_PUT: rc = sliced(s, t, MPROC_EFULL, w_put, h, s); break;
    case MPROC__OP_QUEUE_QSIZE: value = mproc_queue_qsize(h); rc = value < 0 ? (int)value : 0; break;
    case MPROC__OP_QUEUE_CLOSE: rc = mproc_queue_close(h); break;
    case MPROC__OP_QUEUE_TASK_DONE: rc = mproc_queue_task_done(h); break;
    case MPROC__OP_QUEUE_JOIN: rc = sliced(s, t, MPROC_ETIMEDOUT, w_join, h, NULL); break;
    case MPROC__OP_QUEUE_FREE: rc = mproc_queue_free((mproc_queue *)&ref); break;
    case MPROC__OP_CONN_SEND: rc = sliced(s, t, MPROC_ETIMEDOUT, w_send, h, s); break;
    case MPROC__OP_CONN_POLL: rc = sliced(s, t, 0, w_poll, h, NULL); break;
    case MPROC__OP_CONN_CLOSE: rc = mproc_conn_close((mproc_conn *)&ref); break;
    case MPROC__OP_QUEUE_GET:
    case MPROC__OP_CONN_RECV:
    case MPROC__OP_ARRAY_READ:
        rc = take(s, q, &g);
        value = (int64_t)g.len;
        with_data = rc == 0;
        break;
    case MPROC__OP_ARRAY_WRITE: rc = mproc_array_write(h, (size_t)q->a, s->buf, (size_t)q->len); break;
    case MPROC__OP_ARRAY_ADD: rc = mproc_array_add_i64(h, (size_t)q->a, q->b, &value); break;
    case MPROC__OP_ARRAY_COUNT: value = mproc_array_count(h); rc = value < 0 ? (int)value : 0; break;
    case MPROC__OP_ARRAY_LOCK: rc = mproc_array_lock(h, (mproc_lock *)&lock_ref); with_ref = rc == 0; break;
    case MPROC__OP_ARRAY_FREE: rc = mproc_array_free((mproc_array *)&ref); break;
    default: rc = mproc__error(MPROC_EPROTO, "shared objects: a request for operation %u, which this build does not know", q->op);
    }
    return reply(s, rc, value, with_data ? s->buf : NULL, with_data ? g.len : 0, with_ref ? &lock_ref : NULL);
}

static void *serve(void *arg) {
    served s = {.fd = (int)(intptr_t)arg};
    mproc__sh_req q;
    while (mproc__sh_read_all(s.fd, &q, sizeof q, -1) == 0 && q.magic == MPROC__SH_REQ_MAGIC && q.len <= MAX_ITEM) {
        /* The handle first: memory for a payload only on behalf of an object of this node. */
        int rc = 0;
        if (q.ref.kind < MPROC__SH_LOCK || q.ref.kind > MPROC__SH_ARRAY || mproc__sh_is_remote(&q.ref) ||
            !mproc__sh_get(&q.ref, q.ref.kind, "shared objects", &rc)) {
            if (q.len > s.cap) { /* read and dropped: the stream stays in step */
                if (mproc__sh_discard(s.fd, q.len, -1) < 0) break;
                q.len = 0;
            }
        } else if (room(&s, (size_t)q.len) < 0) {
            if (mproc__sh_discard(s.fd, q.len, -1) < 0 ||
                reply(&s, mproc__error(MPROC_ENOMEM, "shared objects: no memory for %llu bytes on the object's node",
                                       (unsigned long long)q.len), 0, NULL, 0, NULL) < 0)
                break;
            continue;
        }
        if (mproc__sh_read_all(s.fd, s.buf, (size_t)q.len, -1) < 0) break;
        s.len = (size_t)q.len;
        if (serve_one(&s, &q) < 0) break;
        if (s.cap > KEEP_BUFFER) { /* one big item does not keep its memory for the connection's life */
            free(s.buf);
            s.buf = NULL;
            s.cap = 0;
        }
    }
    close(s.fd);
    free(s.buf);
    return NULL; /* a lock this thread still holds for its caller is handed on: EOWNERDEAD */
}

static void *accept_loop(void *unused) {
    (void)unused;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 256 * 1024); /* a thread per caller: keep them small */
    for (;;) {
        int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED || errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                if (errno != EINTR && errno != ECONNABORTED) usleep(10000);
                continue;
            }
            return NULL;
        }
        int one = 1, idle = 10, intvl = 3, cnt = 3;
        unsigned user_timeout_ms = 30000;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        /* A caller whose node vanished is noticed in about 20 s (its thread ends, its Locks are
         * handed on), and an answer nobody acknowledges for 30 s fails. */
        setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof intvl);
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof cnt);
        setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout_ms, sizeof user_timeout_ms);
        pthread_t t;
        if (pthread_create(&t, &attr, serve, (void *)(intptr_t)fd) != 0) close(fd);
    }
}

int mproc__sh_broker_start(void) {
    if (listen_fd >= 0) return 0;
    uint32_t ip = advertised_ip();
    if (!ip) return mproc__error(MPROC_ESYS, "shared objects: no IPv4 address for other nodes to reach this one (set MPROC_SHARED_BROKER_ADDR)");
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_ANY)};
    socklen_t sl = sizeof sa;
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, 128) < 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &sl) < 0) {
        int e = errno;
        if (fd >= 0) close(fd);
        return mproc__error(MPROC_ESYS, "shared objects: the broker's socket: %s", strerror(e));
    }
    listen_fd = fd;
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int rc = pthread_create(&t, &attr, accept_loop, NULL);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        close(fd);
        listen_fd = -1;
        return mproc__error(MPROC_ESYS, "shared objects: the broker's thread: %s", strerror(rc));
    }
    mproc__sh_set_broker(ip, sa.sin_port);
    return 0;
}
