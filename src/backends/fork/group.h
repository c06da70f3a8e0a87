/* group.h - the fork backend's state for one pool of workers, shared by its three files:
 * workers.c (a worker's process: spawn, death, retirement), receive.c (frames coming back:
 * socket, mailbox, ring, the wait) and backend.c (the ops: start, send, stop). backend.c calls
 * the other two, receive.c calls workers.c, workers.c calls neither.
 */
#ifndef MPROC_FORK_GROUP_H
#define MPROC_FORK_GROUP_H

#include <poll.h>
#include <stdint.h>
#include <sys/types.h>

#include "backend.h"
#include "backends/frame_ring.h"
#include "backends/socket_worker.h"
#include "wire/stream_reader.h"

/* Where a frame's reply data may go (mproc__send_hint.reply_to), until its reply arrives. */
typedef struct reply_home {
    uint64_t id;
    uint8_t *to;
    size_t len;
} reply_home;

typedef struct fworker {
    pid_t pid;
    int fd;                /* master end; -1 once dead */
    mproc__reader in;      /* frames arriving from it */
    mproc__ring_pair rings; /* shared with it (frame_ring.h); base NULL: none */
    uint64_t up_next;      /* where its next reply in the up ring may start */
    reply_home *homes;     /* frames in flight whose replies have a home */
    int nhomes, cap_homes;
    int owed;              /* frames sent to it that a reply will answer */
    /* The rings' mailboxes (frame_mailbox.h): frames pass without a system call while the
     * reader looks for them. Its frames go by mailbox only while it spins for its next one, ours
     * only while the master spins for a lone reply (receive.c). */
    int mail;
    uint64_t down_sent;    /* frames sent to it, by socket or mailbox */
    uint64_t up_taken;     /* frames taken from it, by socket or mailbox */
    uint8_t *held;         /* a socket frame that came after the mailbox's next one */
    size_t held_len;
} fworker;

typedef struct queued {
    struct queued *next;
    mproc__event ev;
} queued;

struct mproc__group {
    int n;
    fworker *w;
    int wake_fd;
    struct pollfd *pfds;
    int next_start;        /* round-robin start so no worker starves */
    queued *head, *tail;   /* events found while sending */
    unsigned long spawned;
    mproc__taken_slot *taken;     /* n slots, MAP_SHARED with the workers */
    size_t ring_size;             /* bytes of each frame ring; 0: none */
    /* One frame in flight at a time (blocking calls in a loop): the wait spins briefly for its
     * reply rather than sleeping, when replies have come that fast (receive.c). */
    int owed;                     /* frames owed a reply, all workers */
    double sent_at;               /* when the only frame owed was sent */
    int lone;                     /* the worker that owes it */
    /* Where frames may wait that poll() would not show: the worker whose up mailbox the master
     * last looked at while awake (-1: none left there), and how many workers hold a frame back. */
    int spun;
    int nheld;
    double reply_s;               /* how long such a reply took (moving average) */
    /* Frames sent so far, and as of the last wait that returned at once (a parked pool's look):
     * none sent between two such looks, the down rings are trimmed (receive.c). */
    unsigned long sends, sends_at_look;
};

/* ---- workers.c ---------------------------------------------------------------------------- */

/* Forks worker i's next process (with fresh rings when the group has them). 0 or MPROC_ESYS. */
int mproc__fork_worker_spawn(mproc__group *g, int i);
/* Worker i is gone or not to be trusted (cause non-NULL: it is killed): *ev is its DIED event,
 * with its exit described. */
void mproc__fork_worker_died(mproc__group *g, int i, mproc__event *ev, const char *cause);
/* Ends worker i: asks it to leave (SHUTDOWN) when graceful and its socket is open, else kills it;
 * waits for it (5 s when graceful) and kills it if it lingers. Its rings are unmapped. */
void mproc__fork_worker_retire(mproc__group *g, int i, int graceful);

/* ---- receive.c ---------------------------------------------------------------------------- */

/* The backend's wait op (backend.h). */
int mproc__fork_receive_wait(mproc__group *g, double timeout, mproc__event *ev);
/* An event found while sending, queued for the next wait: 1 with *ev, 0 when none. */
int mproc__fork_receive_dequeue(mproc__group *g, mproc__event *ev);
/* The drain callback of mproc__sock_write_frame while a send to worker `worker` (socket fd)
 * would block: reads and queues what the workers say meanwhile. */
typedef struct mproc__fork_send_wait {
    mproc__group *g;
    int fd;
    int worker;
} mproc__fork_send_wait;
int mproc__fork_receive_while_sending(void *send_wait);

#endif /* MPROC_FORK_GROUP_H */
