/* worker.h - what runs inside a worker: decode a task frame, run the task, encode the result.
 *
 * Backend-independent: a backend hands mproc__worker_serve() a channel (how to receive and
 * send one whole frame) and the loop does the rest, until SHUTDOWN or the channel closes.
 * mproc__process_main() is the body of a Process child.
 */
#ifndef MPROC_WORKER_H
#define MPROC_WORKER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "mproc.h"

typedef struct mproc__wchan {
    void *impl;
    /* Blocks for the next whole frame: 0 with *frame (malloc'd unless release is set) and *len;
     * MPROC_EOF when the master is gone; another error on failure. */
    int (*recv)(void *impl, uint8_t **frame, size_t *len);
    /* Sends one whole frame. */
    int (*send)(void *impl, const struct iovec *iov, int iovcnt);
    /* Optional: a frame of a kind the loop does not serve (PROC_* under MPI). Header already
     * validated; frame is borrowed. Returns 0 to go on, an error to stop serving. */
    int (*on_frame)(void *impl, uint16_t kind, uint64_t id, const uint8_t *frame, size_t len);
    /* Optional: sends a whole frame the channel takes over (malloc'd; it frees it, also on
     * error), so a transport that would copy it can send it as it is. NULL: send, then free. */
    int (*send_owned)(void *impl, uint8_t *frame, size_t len);
    /* Optional: gives back a frame recv returned once it is served (the loop frees it when
     * NULL): a channel may hand out frames that are not malloc'd (backends/frame_ring.h). */
    void (*release)(void *impl, uint8_t *frame);
    /* Optional, with send_placed: room for a result frame of len bytes where send_placed sends
     * it without a copy (a frame ring), or NULL (the loop mallocs it). The tasks write their
     * results straight into it. Room asked for and never sent is abandoned (the channel frees it
     * with the next frame it sends). */
    uint8_t *(*place)(void *impl, size_t len);
    /* Sends the frame built in the room place gave (frame is that room, len at most its size). */
    int (*send_placed)(void *impl, uint8_t *frame, size_t len);
    /* Optional: whether the TASK or BATCH frame id holds only cancelled calls' tasks
     * (backend.h's skip): each of its tasks is then answered with an empty RESULT (payload
     * length 0) instead of run. */
    int (*skipped)(void *impl, uint64_t id);
} mproc__wchan;

/* The task this worker is running now (for crash reports from a signal handler): its name, or
 * NULL when idle, and the request id. Plain globals, safe to read from a signal handler. */
const char *mproc__running_task(uint64_t *id);
/* The task this worker ran last (NULL before the first) and its request id: which one to name
 * for harm found after it returned. */
const char *mproc__last_task(uint64_t *id);

/* Sets who this process is, for mproc_current_*(). */
void mproc__set_identity(const char *name, int index);

/* Big frames' heap (worker.c): keep_big_blocks has freed blocks of megabytes kept for the next
 * big frame instead of being mapped and page-faulted afresh each time (serve calls it; so does
 * a relaying rank); give_back_heap, called once a process has been idle a while, returns them:
 * every arena's free pages and the calling thread's arena's top. */
void mproc__worker_keep_big_blocks(void);
void mproc__worker_give_back_heap(void);

/* Sends HELLO (arg = index), then serves frames until SHUTDOWN (returns 0) or the channel
 * closes (returns MPROC_EOF) or a malformed frame arrives (MPROC_EPROTO). The caller exits
 * afterwards with _exit()/MPI_Finalize. */
int mproc__worker_serve(const mproc__wchan *ch, int index);

/* Executes one TASK or INIT frame (header already decoded and validated; payload of
 * payload_len bytes) and builds the whole RESULT / INIT_RESULT frame (header included) into
 * frame and frame_len (malloc'd; caller frees). Used by the serve loop and by in-process tests. */
int mproc__execute(uint16_t kind, uint64_t id, uint32_t task_id, const uint8_t *payload,
                   size_t payload_len, uint8_t **frame, size_t *frame_len);

/* Body of a Process child: runs target(arg) and returns the exit code (0 ok, 1 failed, the
 * message printed to stderr as "Process <name>: ..."). The caller flushes stdio and _exits. */
int mproc__process_main(const mproc_task *target, const void *arg, size_t len,
                        const char *name);

#endif /* MPROC_WORKER_H */
