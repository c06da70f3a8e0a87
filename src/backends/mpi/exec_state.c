/* exec_state.c - a worker rank's executors (exec_state.h): their state, starting an executor's
 * next generation, reaping one whose socket ended, and what the master hears of their lives
 * (EXEC_DIED and header-only frames). Whoever notices an end calls mproc__exec_ended; nothing
 * here calls the files that give frames or read replies.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend.h"
#include "backends/frame_mailbox.h"
#include "backends/mpi/exec_rings.h"
#include "backends/mpi/exec_spawn.h"
#include "backends/mpi/exec_state.h"
#include "backends/mpi/executor.h"
#include "backends/mpi/fork_server.h"
#include "backends/mpi/world.h"
#include "backends/spawn.h"
#include "wire/stream_reader.h"
#include "wire/wire.h"

mproc__exec_set mproc__execs = {.mu = PTHREAD_MUTEX_INITIALIZER, .efd = -1};

void mproc__exec_wake_supervisor(void) {
    uint64_t one = 1;
    while (write(mproc__execs.efd, &one, sizeof one) < 0 && errno == EINTR) {
    }
}

void mproc__exec_push(mproc__exec_item **head, mproc__exec_item **tail, mproc__exec_item *q) {
    q->next = NULL;
    if (*tail) (*tail)->next = q;
    else *head = q;
    *tail = q;
}

mproc__exec_item *mproc__exec_pop(mproc__exec_item **head, mproc__exec_item **tail) {
    mproc__exec_item *q = *head;
    if (q) {
        *head = q->next;
        if (!*head) *tail = NULL;
    }
    return q;
}

mproc__exec_item *mproc__exec_item_new(uint8_t *frame, size_t len) {
    mproc__exec_item *q = malloc(sizeof *q);
    if (!q) mproc__mpi_fatal("worker rank %d: out of memory queueing a frame", mproc__mpi.rank);
    *q = (mproc__exec_item){NULL, frame, len, 0, 0, {0}};
    return q;
}

void mproc__exec_item_free(mproc__exec_item *q) {
    if (q->frame != q->ref) free(q->frame);
    free(q);
}

/* ---- to the master ---------------------------------------------------------------------- */

void mproc__exec_send_master_hdr(uint16_t kind, uint64_t id, uint32_t arg) {
    pthread_mutex_lock(&mproc__mpi.lock);
    mproc__mpi_send_hdr(0, kind, id, arg, mproc__execs.sink);
    pthread_mutex_unlock(&mproc__mpi.lock);
}

/* EXEC_DIED (executor.h). */
void mproc__exec_send_died(const mproc__executor *x, uint32_t gen, uint32_t unanswered, int code, pid_t pid,
                           uint64_t taken, const char *why) {
    size_t wl = strlen(why);
    uint8_t f[MPROC__WIRE_HDR_SIZE + MPROC__EXEC_DIED_MIN];
    mproc__hdr_encode(f, MPROC__FRAME_EXEC_DIED, gen, (uint32_t)(MPROC__EXEC_DIED_MIN + wl), unanswered);
    mproc__put_u32(f + MPROC__WIRE_HDR_SIZE, (uint32_t)code);
    mproc__put_u32(f + MPROC__WIRE_HDR_SIZE + 4, (uint32_t)pid);
    mproc__put_u64(f + MPROC__WIRE_HDR_SIZE + 8, taken);
    mproc__put_u32(f + MPROC__WIRE_HDR_SIZE + 16, (uint32_t)x->index);
    struct iovec iov[2] = {{f, sizeof f}, {(void *)why, wl}};
    pthread_mutex_lock(&mproc__mpi.lock);
    mproc__mpi_send_frame(0, iov, 2, mproc__execs.sink);
    pthread_mutex_unlock(&mproc__mpi.lock);
}

/* ---- spawning and reaping --------------------------------------------------------------- */

/* Starts x's next generation; mu held. 0 or an error (then it has no executor alive). */
int mproc__exec_spawn_next_locked(mproc__executor *x) {
    char name[48];
    snprintf(name, sizeof name, "Worker-rank-%d", mproc__mpi.rank);
    if (mproc__execs.k > 1) snprintf(name, sizeof name, "Worker-rank-%d.%d", mproc__mpi.rank, x->index);
    int fd = -1;
    pid_t pid = 0;
    mproc__exec_rings *rings = NULL;
    int rc = mproc__exec_spawn(x->index, x->ident, name, mproc__execs.ring_size, &fd, &pid,
                               &rings);
    x->gen++; /* a failed start too: the generation the master now expects is the one that failed */
    if (rc < 0) return rc;
    x->rings = rings;
    x->down_sent = x->up_taken = 0;
    atomic_store(&x->watch_mail, rings && mproc__mail_on(rings->p.up.mail) ? rings->p.up.mail : NULL);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    x->fd = fd;
    x->pid = pid;
    x->given = x->answered = 0;
    atomic_store(&x->due, 0);
    atomic_store(&x->reply_by, 0); /* the mean frame time is kept: the same tasks follow */
    x->retiring = 0;
    mproc__reader_reset(&x->reader);
    return 0;
}

/* x's socket ended (cause: NULL for a plain EOF, else why it was not trusted): the master hears
 * of it with everything it needs to blame the right task. Supervisor, mu not held. */
void mproc__exec_ended(mproc__executor *x, const char *cause) {
    pthread_mutex_lock(&mproc__execs.mu);
    pid_t pid = x->pid;
    uint32_t gen = x->gen, unanswered = x->given - x->answered;
    int retiring = x->retiring;
    mproc__fork_untrack_fd(x->fd);
    close(x->fd);
    x->fd = -1;
    x->pid = 0;
    mproc__exec_rings *rings = x->rings;
    x->rings = NULL;
    atomic_store(&x->watch_mail, NULL);
    atomic_store(&x->reply_by, 0); /* no reply comes now */
    mproc__exec_item *q;
    while ((q = mproc__exec_pop(&x->out_head, &x->out_tail)))
        mproc__exec_item_free(q); /* counted in `given`: unanswered */
    pthread_mutex_unlock(&mproc__execs.mu);
    mproc__exec_rings_retire(rings);
    if (cause) kill(pid, SIGKILL); /* garbage on the wire: the executor is not to be trusted */
    int status = 0;
    char how[96] = "exit status unknown";
    int code = 255;
    int reaped = mproc__exec_reap(pid, MPROC__EXEC_REAP_GRACE, &status);
    mproc__taken_slot *slot = mproc__fserver_slot(x->index);
    if (reaped) {
        mproc__describe_worker_exit(status, slot ? (int)atomic_load(&slot->channel_lost) : 0, how, sizeof how);
        code = mproc__exitcode(status);
    }
    if (reaped == 2) /* its fork server was killed: say so, not a bare signal 9 */
        snprintf(how, sizeof how, "killed by signal 9 with its fork server, which was killed");
    mproc__reader_reset(&x->reader);
    free(x->held); /* a reply of the ended executor: its task is unanswered */
    x->held = NULL;
    if (retiring && unanswered == 0) return;
    char why[400];
    snprintf(why, sizeof why, "%.150s%s%s on rank %d (host %s)", cause ? cause : "", cause ? "; " : "", how,
             mproc__mpi.rank, mproc__execs.host);
    mproc__exec_send_died(x, gen, unanswered, code, pid, slot ? atomic_load(&slot->id) : MPROC__TAKEN_NONE, why);
}

