/* executor.c - a worker rank's executor and its supervisor (executor.h).
 *
 * Frames from the master go to the executor in the order they came, across restarts: the main
 * thread writes a frame straight into the executor's socket when nothing is queued ahead of it
 * (the common case, no thread hand-off), else appends it to the inbox that the supervisor works
 * through in order (RESTART entries included). The supervisor sleeps in poll() on the
 * executor's socket and an eventfd, so an idle rank costs nothing.
 *
 * Book-keeping the master relies on (routing.c): every TASK/INIT/BATCH frame the rank took is
 * answered exactly once, by a reply, or inside an EXEC_DIED (given, never answered), or by an
 * EXEC_DROPPED (no executor was alive).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "backend.h"
#include "backends/mpi/executor.h"
#include "backends/mpi/fork_server.h"
#include "backends/mpi/wait.h"
#include "backends/mpi/world.h"
#include "backends/spawn.h"
#include "common/common.h"
#include "wire/stream_reader.h"
#include "wire/wire.h"

#define RETIRE_GRACE 5.0 /* seconds an executor asked to leave may take */
#define REAP_GRACE 2.0   /* seconds from its socket's EOF to its exit status */

typedef struct qitem {
    struct qitem *next;
    uint8_t *frame; /* NULL: a RESTART (len 1: the last one, with no successor) */
    size_t len, off;
} qitem;

static struct {
    pthread_mutex_t mu;
    pthread_t thread;
    int started;
    int efd;                  /* wakes the supervisor */
    mproc__mpi_sink sink;
    /* The executor now. */
    pid_t pid;
    int fd;                   /* the rank's end of its socket (non-blocking); -1: none alive */
    uint32_t gen;
    uint32_t given, answered; /* frames of this generation */
    int retiring;             /* asked to leave: its end is no news to the master */
    int restarting;           /* a RESTART is being carried out: later frames wait their turn */
    qitem *out_head, *out_tail; /* bytes for the executor not yet written */
    qitem *in_head, *in_tail;   /* master's frames and RESTARTs for the supervisor, in order */
    int stop;
    /* Supervisor only. */
    mproc__reader reader;
    char host[64];
} ex = {.mu = PTHREAD_MUTEX_INITIALIZER, .efd = -1, .fd = -1};

static void wake_supervisor(void) {
    uint64_t one = 1;
    while (write(ex.efd, &one, sizeof one) < 0 && errno == EINTR) {
    }
}

static void push(qitem **head, qitem **tail, qitem *q) {
    q->next = NULL;
    if (*tail) (*tail)->next = q;
    else *head = q;
    *tail = q;
}

static qitem *pop(qitem **head, qitem **tail) {
    qitem *q = *head;
    if (q) {
        *head = q->next;
        if (!*head) *tail = NULL;
    }
    return q;
}

/* ---- to the master ---------------------------------------------------------------------- */

static void send_master_hdr(uint16_t kind, uint64_t id, uint32_t arg) {
    pthread_mutex_lock(&mproc__mpi.lock);
    mproc__mpi_send_hdr(0, kind, id, arg, ex.sink);
    pthread_mutex_unlock(&mproc__mpi.lock);
}

static void forward_to_master(uint8_t *frame, size_t len) {
    pthread_mutex_lock(&mproc__mpi.lock);
    int rc = mproc__mpi_send_owned(0, frame, len, ex.sink);
    pthread_mutex_unlock(&mproc__mpi.lock);
    if (rc < 0) mproc__mpi_fatal("worker rank %d: cannot send a result: %s", mproc__mpi.rank, mproc_last_error());
}

/* EXEC_DIED (executor.h). */
static void send_died(uint32_t gen, uint32_t unanswered, int code, pid_t pid, uint64_t taken, const char *why) {
    size_t wl = strlen(why);
    uint8_t f[MPROC__WIRE_HDR_SIZE + MPROC__EXEC_DIED_MIN];
    mproc__hdr_encode(f, MPROC__FRAME_EXEC_DIED, gen, (uint32_t)(MPROC__EXEC_DIED_MIN + wl), unanswered);
    mproc__put_u32(f + MPROC__WIRE_HDR_SIZE, (uint32_t)code);
    mproc__put_u32(f + MPROC__WIRE_HDR_SIZE + 4, (uint32_t)pid);
    mproc__put_u64(f + MPROC__WIRE_HDR_SIZE + 8, taken);
    struct iovec iov[2] = {{f, sizeof f}, {(void *)why, wl}};
    pthread_mutex_lock(&mproc__mpi.lock);
    mproc__mpi_send_frame(0, iov, 2, ex.sink);
    pthread_mutex_unlock(&mproc__mpi.lock);
}

/* ---- spawning and reaping --------------------------------------------------------------- */

/* Starts the next generation; mu held. 0 or an error (then no executor is alive). */
static int spawn_locked(void) {
    char name[48];
    snprintf(name, sizeof name, "Worker-rank-%d", mproc__mpi.rank);
    int fd = -1;
    pid_t pid = 0;
    int rc;
    if (mproc__fserver_running()) {
        rc = mproc__fserver_spawn(0, mproc__mpi.rank - 1, name, &fd, &pid);
    } else {
        /* The program initialized MPI before mproc_init: no fork server could be made before
         * MPI_Init, so the executor is forked from the rank itself (docs/mpi.md). */
        int sv[2];
        rc = mproc__fork_socketpair(sv);
        mproc__taken_slot *slot = mproc__fserver_slot(0);
        if (rc == 0 && slot) {
            atomic_store(&slot->id, MPROC__TAKEN_NONE);
            mproc__fserver_size_socket(sv);
            pid_t me = getpid();
            pid = mproc__fork(sv[1]);
            if (pid == 0) {
                close(sv[0]);
                mproc__socket_worker_main(sv[1], slot, name, mproc__mpi.rank - 1, me);
            }
            mproc__fork_untrack_fd(sv[1]);
            close(sv[1]);
            fd = sv[0];
            if (pid < 0) {
                mproc__fork_untrack_fd(sv[0]);
                close(sv[0]);
                fd = -1;
                rc = MPROC_ESYS;
            }
        } else if (rc == 0) {
            rc = mproc__error(MPROC_ESYS, "no memory shared with the executor");
        }
    }
    if (rc < 0) {
        ex.gen++; /* the generation the master now expects is the one that failed */
        return rc;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    ex.fd = fd;
    ex.pid = pid;
    ex.gen++;
    ex.given = ex.answered = 0;
    ex.retiring = 0;
    mproc__reader_reset(&ex.reader);
    return 0;
}

/* The wait status of an executor whose socket closed: 1 and *status, or 0 if it could not be
 * had (it was killed after the grace). */
static int reap(pid_t pid, int *status) {
    if (!mproc__fserver_running()) {
        if (mproc__wait_child(pid, REAP_GRACE, status) == 0) return 1;
        kill(pid, SIGKILL);
        return mproc__waitpid(pid, status, 0) == pid;
    }
    double deadline = mproc__deadline(REAP_GRACE);
    int killed = 0;
    for (;;) {
        pid_t who;
        int st, rc;
        while ((rc = mproc__fserver_take_exit(&who, &st)) == 1)
            if (who == pid) {
                *status = st;
                return 1;
            }
        if (rc < 0) return 0; /* the server is gone: so is its child */
        double left = mproc__remaining(deadline);
        if (left <= 0) {
            if (killed) return 0;
            kill(pid, SIGKILL);
            killed = 1;
            deadline = mproc__deadline(REAP_GRACE);
            continue;
        }
        struct pollfd p = {mproc__fserver_fd(), POLLIN, 0};
        poll(&p, 1, (int)(left * 1000) + 1);
    }
}

/* The executor's socket ended (cause: NULL for a plain EOF, else why it was not trusted): the
 * master hears of it with everything it needs to blame the right task. Supervisor, mu not held. */
static void executor_ended(const char *cause) {
    pthread_mutex_lock(&ex.mu);
    pid_t pid = ex.pid;
    uint32_t gen = ex.gen, unanswered = ex.given - ex.answered;
    int retiring = ex.retiring;
    mproc__fork_untrack_fd(ex.fd);
    close(ex.fd);
    ex.fd = -1;
    ex.pid = 0;
    qitem *q;
    while ((q = pop(&ex.out_head, &ex.out_tail))) { /* counted in `given`: unanswered */
        free(q->frame);
        free(q);
    }
    pthread_mutex_unlock(&ex.mu);
    if (cause) kill(pid, SIGKILL); /* garbage on the wire: the executor is not to be trusted */
    int status = 0;
    char how[96] = "exit status unknown";
    int code = 255;
    if (reap(pid, &status)) {
        mproc__describe_exit(status, how, sizeof how);
        code = mproc__exitcode(status);
    }
    mproc__reader_reset(&ex.reader);
    if (retiring && unanswered == 0) return;
    char why[400];
    snprintf(why, sizeof why, "%.150s%s%s on rank %d (host %s)", cause ? cause : "", cause ? "; " : "", how,
             mproc__mpi.rank, ex.host);
    mproc__taken_slot *slot = mproc__fserver_slot(0);
    send_died(gen, unanswered, code, pid, slot ? atomic_load(&slot->id) : MPROC__TAKEN_NONE, why);
}

/* ---- writing to the executor ------------------------------------------------------------ */

/* Writes what it can of the out queue; mu held. 0, or -1 when the socket is gone (its EOF
 * follows on the read side). */
static int flush_out_locked(void) {
    while (ex.out_head && ex.fd >= 0) {
        qitem *q = ex.out_head;
        ssize_t w = send(ex.fd, q->frame + q->off, q->len - q->off, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
            return -1;
        }
        q->off += (size_t)w;
        if (q->off < q->len) continue;
        pop(&ex.out_head, &ex.out_tail);
        free(q->frame);
        free(q);
    }
    return 0;
}

/* Gives the live executor a frame (taken over); mu held. */
static void give_locked(qitem *q) {
    ex.given++;
    push(&ex.out_head, &ex.out_tail, q);
    if (flush_out_locked() == 0 && ex.out_head) wake_supervisor(); /* it watches for room */
}

static qitem *new_item(uint8_t *frame, size_t len) {
    qitem *q = malloc(sizeof *q);
    if (!q) mproc__mpi_fatal("worker rank %d: out of memory queueing a frame", mproc__mpi.rank);
    *q = (qitem){NULL, frame, len, 0};
    return q;
}

void mproc__exec_take(uint8_t *frame, size_t len) {
    pthread_mutex_lock(&ex.mu);
    if (ex.in_head || ex.restarting) { /* a RESTART (or frames) ahead: in order, by the supervisor */
        push(&ex.in_head, &ex.in_tail, new_item(frame, len));
        pthread_mutex_unlock(&ex.mu);
        wake_supervisor();
        return;
    }
    if (ex.fd < 0) { /* no executor: the frame is answered as dropped; its task is requeued */
        pthread_mutex_unlock(&ex.mu);
        uint64_t id = mproc__hdr_id(frame);
        free(frame);
        send_master_hdr(MPROC__FRAME_EXEC_DROPPED, id, 1);
        return;
    }
    give_locked(new_item(frame, len));
    pthread_mutex_unlock(&ex.mu);
}

void mproc__exec_kill(void) {
    pthread_mutex_lock(&ex.mu);
    if (ex.fd >= 0 && ex.pid > 0) kill(ex.pid, SIGKILL); /* its EOF tells the supervisor */
    pthread_mutex_unlock(&ex.mu);
}

void mproc__exec_restart(void) {
    pthread_mutex_lock(&ex.mu);
    push(&ex.in_head, &ex.in_tail, new_item(NULL, 0));
    pthread_mutex_unlock(&ex.mu);
    wake_supervisor();
}

long mproc__exec_pid(void) {
    pthread_mutex_lock(&ex.mu);
    long pid = ex.pid;
    pthread_mutex_unlock(&ex.mu);
    return pid;
}

/* ---- the supervisor --------------------------------------------------------------------- */

/* Reads every whole frame the executor has sent and forwards its replies. Returns 0, or -1
 * when the executor ended (reported). */
static int pump_replies(void) {
    for (;;) {
        uint8_t *f;
        size_t len;
        int rc = mproc__reader_next(&ex.reader, ex.fd, &f, &len);
        if (rc == 0) return 0;
        if (rc < 0 && rc != MPROC_EOF) {
            char cause[200];
            snprintf(cause, sizeof cause, "%s", mproc_last_error());
            executor_ended(cause);
            return -1;
        }
        if (rc == MPROC_EOF) {
            executor_ended(NULL);
            return -1;
        }
        uint16_t kind = mproc__hdr_kind(f);
        if (kind == MPROC__FRAME_HELLO) { /* the same program, forked from us: nothing to check */
            free(f);
            continue;
        }
        if (kind != MPROC__FRAME_RESULT && kind != MPROC__FRAME_INIT_RESULT && kind != MPROC__FRAME_BATCH) {
            free(f);
            executor_ended("it sent a frame of an unexpected kind");
            return -1;
        }
        pthread_mutex_lock(&ex.mu);
        ex.answered++;
        pthread_mutex_unlock(&ex.mu);
        forward_to_master(f, len);
    }
}

/* Asks the live executor to leave and waits (bounded) for its end; then starts the next,
 * unless this is the rank's end. */
static void restart(int last) {
    pthread_mutex_lock(&ex.mu);
    int live = ex.fd >= 0;
    if (live) {
        uint8_t *f = malloc(MPROC__WIRE_HDR_SIZE);
        if (f) {
            mproc__hdr_encode(f, MPROC__FRAME_SHUTDOWN, 0, 0, 0);
            push(&ex.out_head, &ex.out_tail, new_item(f, MPROC__WIRE_HDR_SIZE));
        }
        ex.retiring = 1;
        if (!f) kill(ex.pid, SIGKILL);
    }
    pthread_mutex_unlock(&ex.mu);
    double deadline = mproc__deadline(RETIRE_GRACE);
    int killed = 0;
    while (live) {
        pthread_mutex_lock(&ex.mu);
        int want_out = ex.out_head != NULL;
        if (want_out && flush_out_locked() < 0) want_out = 0;
        want_out = want_out && ex.out_head != NULL;
        pthread_mutex_unlock(&ex.mu);
        if (pump_replies() < 0) break;
        double left = mproc__remaining(deadline);
        if (left <= 0) {
            if (killed) { /* a SIGKILLed process whose socket never closes: give up on it */
                executor_ended("it did not end after SIGKILL");
                break;
            }
            kill(ex.pid, SIGKILL);
            killed = 1;
            deadline = mproc__deadline(REAP_GRACE);
            left = REAP_GRACE;
        }
        struct pollfd p = {ex.fd, (short)(POLLIN | (want_out ? POLLOUT : 0)), 0};
        poll(&p, 1, (int)(left * 1000) + 1);
    }
    if (last) return;
    pthread_mutex_lock(&ex.mu);
    int rc = spawn_locked();
    uint32_t gen = ex.gen;
    long pid = ex.pid;
    pthread_mutex_unlock(&ex.mu);
    if (rc < 0) {
        /* A death with pid 0, of the generation the master expects: this rank can no longer
         * run tasks, and the pool stops counting on it (routing.c). */
        char why[400];
        snprintf(why, sizeof why, "no executor could be started on rank %d (host %s): %.200s", mproc__mpi.rank,
                 ex.host, mproc_last_error());
        send_died(gen, 0, 255, 0, MPROC__TAKEN_NONE, why);
        return;
    }
    send_master_hdr(MPROC__FRAME_EXEC_STARTED, gen, (uint32_t)pid);
}

/* Works through the inbox in order: frames go to the executor, RESTARTs restart it. */
static void work_inbox(void) {
    for (;;) {
        pthread_mutex_lock(&ex.mu);
        qitem *q = pop(&ex.in_head, &ex.in_tail);
        if (!q) {
            pthread_mutex_unlock(&ex.mu);
            return;
        }
        if (!q->frame) {
            int last = q->len == 1;
            ex.restarting = 1;
            pthread_mutex_unlock(&ex.mu);
            free(q);
            restart(last);
            pthread_mutex_lock(&ex.mu);
            ex.restarting = 0;
            if (last) ex.stop = 2;
            pthread_mutex_unlock(&ex.mu);
            continue;
        }
        if (ex.fd >= 0) {
            give_locked(q);
            pthread_mutex_unlock(&ex.mu);
            continue;
        }
        pthread_mutex_unlock(&ex.mu);
        uint64_t id = mproc__hdr_id(q->frame);
        free(q->frame);
        free(q);
        send_master_hdr(MPROC__FRAME_EXEC_DROPPED, id, 1);
    }
}

static void *supervise(void *arg) {
    (void)arg;
    for (;;) {
        pthread_mutex_lock(&ex.mu);
        if (ex.stop == 2) {
            pthread_mutex_unlock(&ex.mu);
            break;
        }
        int fd = ex.fd, want_out = ex.out_head != NULL;
        pthread_mutex_unlock(&ex.mu);
        struct pollfd p[2] = {{ex.efd, POLLIN, 0}, {fd, (short)(POLLIN | (want_out ? POLLOUT : 0)), 0}};
        int r = poll(p, fd >= 0 ? 2 : 1, -1);
        if (r < 0 && errno != EINTR) mproc__mpi_fatal("worker rank %d: poll: %s", mproc__mpi.rank, strerror(errno));
        if (r <= 0) continue;
        if (p[0].revents) {
            uint64_t v;
            while (read(ex.efd, &v, sizeof v) < 0 && errno == EINTR) {
            }
        }
        if (fd >= 0 && (p[1].revents & POLLOUT)) {
            pthread_mutex_lock(&ex.mu);
            flush_out_locked();
            pthread_mutex_unlock(&ex.mu);
        }
        if (fd >= 0 && (p[1].revents & (POLLIN | POLLHUP | POLLERR))) pump_replies();
        work_inbox();
    }
    return NULL;
}

int mproc__exec_start(mproc__mpi_sink sink) {
    ex.sink = sink;
    if (gethostname(ex.host, sizeof ex.host) < 0) snprintf(ex.host, sizeof ex.host, "?");
    ex.host[sizeof ex.host - 1] = '\0';
    ex.efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (ex.efd < 0) return mproc__error(MPROC_ESYS, "eventfd: %s", strerror(errno));
    mproc__fork_track_fd(ex.efd);
    pthread_mutex_lock(&ex.mu);
    int rc = spawn_locked();
    pthread_mutex_unlock(&ex.mu);
    if (rc < 0) return rc;
    if (pthread_create(&ex.thread, NULL, supervise, NULL) != 0)
        return mproc__error(MPROC_ESYS, "cannot start the executor supervisor thread");
    ex.started = 1;
    return 0;
}

void mproc__exec_stop(void) {
    if (!ex.started) return;
    /* A last restart without a successor, after whatever is queued: the executor leaves on
     * SHUTDOWN (killed if a task keeps it past the grace), then the supervisor does. */
    pthread_mutex_lock(&ex.mu);
    ex.stop = 1;
    push(&ex.in_head, &ex.in_tail, new_item(NULL, 1));
    pthread_mutex_unlock(&ex.mu);
    wake_supervisor();
    pthread_join(ex.thread, NULL);
    ex.started = 0;
    mproc__fork_untrack_fd(ex.efd);
    close(ex.efd);
    ex.efd = -1;
}
