/* test_frame_mailbox.c - unit tests of the mailbox beside each frame ring
 * (src/backends/frame_mailbox.c): a writer may post only while the mailboxes are on, the reader
 * awake and the frame's slot free (up to MPROC__MAIL_SLOTS frames waiting); the reader takes
 * exactly the frame whose number is next and no other; a post made while the reader says it sleeps tells the writer to wake it; and, across
 * two processes sharing the rings and a socketpair, 200,000 frames sent by mailbox or socket
 * at random, with the reader going to sleep now and then, arrive whole and in order with no
 * lost wake-up (an alarm fails the test rather than letting it hang). No workers.
 */
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "backends/frame_ring.h"
#include "common/common.h"
#include "wire/stream_reader.h"
#include "wire/wire.h"

#define RING (64u * 1024u)

static void make_pair(mproc__ring_pair *p, int *fd) {
    *fd = memfd_create("test-mailbox", MFD_CLOEXEC);
    assert_true(*fd >= 0);
    assert_int_equal(mproc__ring_pair_create(*fd, RING, p), 0);
}

static void posts_only_when_ready(void **state) {
    (void)state;
    mproc__ring_pair p;
    int fd;
    make_pair(&p, &fd);
    mproc__mailbox *m = p.down.mail;
    assert_false(mproc__mail_on(m)); /* fresh rings: off (the fork backend never turns them on) */
    assert_false(mproc__mail_ready(m, 0));
    mproc__mail_enable(m);
    assert_false(mproc__mail_ready(m, 0)); /* the reader has not said it is awake */
    mproc__mail_awake(m, 1);
    assert_true(mproc__mail_ready(m, 0));
    assert_int_equal(mproc__mail_post(m, 0, 128, 40), 1); /* reader awake: no wake needed */
    assert_true(mproc__mail_more(m, 0));
    assert_false(mproc__mail_more(m, 1));
    /* Frame 0 untaken: the next frames have slots of their own, frame SLOTS (0's slot) has not. */
    assert_true(mproc__mail_ready(m, 1));
    assert_false(mproc__mail_ready(m, MPROC__MAIL_SLOTS));
    uint64_t pos = 0;
    uint32_t len = 0;
    assert_int_equal(mproc__mail_take(m, 1, &pos, &len), 0); /* not frame 1 */
    assert_int_equal(mproc__mail_take(m, 0, &pos, &len), 1);
    assert_int_equal(pos, 128);
    assert_int_equal(len, 40);
    assert_int_equal(mproc__mail_take(m, 1, &pos, &len), 0); /* frame 1 not posted yet */
    /* Frames 1 .. SLOTS - 1 posted before the reader takes any; frame SLOTS waits for 0's slot,
     * which is free now. */
    for (uint64_t i = 1; i < MPROC__MAIL_SLOTS; i++) {
        assert_true(mproc__mail_ready(m, i));
        assert_int_equal(mproc__mail_post(m, i, 1000 + i, 24), 1);
    }
    assert_true(mproc__mail_ready(m, MPROC__MAIL_SLOTS));
    assert_int_equal(mproc__mail_post(m, MPROC__MAIL_SLOTS, 5000, 24), 1);
    assert_false(mproc__mail_ready(m, MPROC__MAIL_SLOTS + 1)); /* frame 1's slot: not taken yet */
    assert_int_equal(mproc__mail_take(m, MPROC__MAIL_SLOTS + 1, &pos, &len), 0); /* its slot holds frame 1 */
    for (uint64_t i = 1; i < MPROC__MAIL_SLOTS; i++) {
        assert_int_equal(mproc__mail_take(m, i, &pos, &len), 1);
        assert_int_equal(pos, 1000 + i);
    }
    assert_int_equal(mproc__mail_take(m, MPROC__MAIL_SLOTS, &pos, &len), 1);
    assert_int_equal(pos, 5000);
    uint64_t n = MPROC__MAIL_SLOTS + 1; /* frames sent so far */
    assert_true(mproc__mail_ready(m, n));
    /* Frame n went by socket: counted, so the reader knows to look there. */
    mproc__mail_count(m, n + 1);
    assert_true(mproc__mail_more(m, n));
    assert_int_equal(mproc__mail_take(m, n, &pos, &len), 0);
    /* The reader says it sleeps: no post, and a post racing with that asks for a wake. */
    mproc__mail_awake(m, 0);
    assert_false(mproc__mail_ready(m, n + 1));
    assert_int_equal(mproc__mail_post(m, n + 1, 256, 24), 0);
    assert_int_equal(mproc__mail_take(m, n + 1, &pos, &len), 1);
    assert_int_equal(pos, 256);
    /* The up mailbox is another one. */
    assert_true(p.up.mail != p.down.mail);
    assert_false(mproc__mail_on(p.up.mail));
    mproc__ring_pair_unmap(&p);
    close(fd);
}

/* The reader's side of the protocol, as socket_worker.c and exec_give.c / exec_replies.c follow it: the next frame
 * is the mailbox's if its number is next, else the socket's (a WAKE skipped, not counted); with
 * nothing announced, look a while, then say "asleep", look once more, and sleep in poll(). */
static void read_in_order(mproc__ring *r, int sock, long n, int ack) {
    mproc__mailbox *m = r->mail;
    mproc__reader in = {0};
    uint64_t taken = 0, released = 0;
    unsigned spins = 0;
    int readable = 0;
    mproc__mail_awake(m, 1);
    while ((long)taken < n) {
        uint64_t pos;
        uint32_t len;
        int more = readable || mproc__reader_pending(&in) || mproc__mail_more(m, taken);
        uint8_t *f = NULL;
        uint8_t *got = NULL;
        if (mproc__mail_take(m, taken, &pos, &len)) {
            got = mproc__ring_at(r, pos, len);
        } else if (more) {
            readable = 0;
            size_t flen;
            int rc = mproc__reader_next(&in, sock, &f, &flen);
            if (rc != 1) _exit(10);
            if (mproc__hdr_kind(f) == MPROC__FRAME_WAKE) {
                free(f);
                continue;
            }
            got = f;
        } else if (++spins % 64 != 0) { /* now and then a sleep: the wake path */
            sched_yield();
            continue;
        } else {
            mproc__mail_awake(m, 0);
            if (!mproc__mail_more(m, taken)) {
                struct pollfd pf = {sock, POLLIN, 0};
                while (poll(&pf, 1, -1) < 0 && errno == EINTR) {
                }
                readable = 1;
            }
            mproc__mail_awake(m, 1);
            continue;
        }
        if (!got || mproc__hdr_kind(got) != MPROC__FRAME_TASK || mproc__hdr_id(got) != taken) _exit(11);
        if (!f) { /* a ring frame: release it (frames come in ring order) */
            released = mproc__ring_end(pos, len);
            mproc__ring_release_to(r, released);
        }
        free(f);
        taken++;
        if (ack && write(sock, &taken, sizeof taken) != (ssize_t)sizeof taken) _exit(14);
    }
    free(in.buf);
}

/* The rank's side, as exec_replies.c reads replies: it reads the socket whenever it is readable,
 * not only when the writer announced a frame there. So the writer may post frame i (and more)
 * and send a later one by socket between the reader's look at the mailbox and its read: after a
 * socket frame the reader looks at the mailbox again, and if frame i is there, the socket's
 * frame is later (held, and handed out only when the mailbox does not hold the next number).
 * Without those looks this reader takes a later frame as i. */
static void read_whenever_readable(mproc__ring *r, int sock, long n) {
    mproc__mailbox *m = r->mail;
    mproc__reader in = {0};
    uint64_t taken = 0;
    uint8_t *held = NULL;
    unsigned misses = 0;
    mproc__mail_awake(m, 1);
    while ((long)taken < n) {
        uint64_t pos;
        uint32_t len;
        uint8_t *f = NULL, *got = NULL;
        if (mproc__mail_take(m, taken, &pos, &len)) {
            got = mproc__ring_at(r, pos, len);
        } else if (held) {
            got = f = held;
            held = NULL;
        } else {
            /* Now and then a pause between the look and the read (a thread woken late): the
             * window in which a post and a later socket frame can both come. */
            if (++misses % 4 == 0) usleep(5);
            struct pollfd pf = {sock, POLLIN, 0};
            if (!mproc__reader_pending(&in) && poll(&pf, 1, 0) == 0) {
                sched_yield();
                continue;
            }
            size_t flen;
            if (mproc__reader_next(&in, sock, &f, &flen) != 1) _exit(10);
            if (mproc__hdr_kind(f) == MPROC__FRAME_WAKE) {
                free(f);
                continue;
            }
            got = f;
            if (mproc__mail_take(m, taken, &pos, &len)) { /* posted before f was sent */
                held = f;
                f = NULL;
                got = mproc__ring_at(r, pos, len);
            }
        }
        if (!got || mproc__hdr_kind(got) != MPROC__FRAME_TASK || mproc__hdr_id(got) != taken) _exit(11);
        if (!f) mproc__ring_release_to(r, mproc__ring_end(pos, len));
        free(f);
        taken++;
    }
    free(in.buf);
}

/* The writer's side: frame i is a TASK with id i; it goes by mailbox when the mailbox is ready
 * and a coin says so, else by socket (counted), with a WAKE when a post may have gone unseen.
 * paced: a pause after every other frame, so that the reader is mostly caught up and looking
 * (where a post and the next frame by socket can fall between its look and its read). */
static void write_frames(mproc__ring *r, int sock, long n, int ack, int paced, pid_t reader) {
    mproc__mailbox *m = r->mail;
    unsigned coin = 12345;
    for (long i = 0; i < n; i++) {
        uint8_t f[MPROC__WIRE_HDR_SIZE + 8] = {0};
        mproc__hdr_encode(f, MPROC__FRAME_TASK, (uint64_t)i, 8, 0);
        coin = coin * 1103515245u + 12345u;
        struct iovec v = {f, sizeof f};
        uint64_t pos;
        if ((coin >> 16) % 4 != 0 && mproc__mail_ready(m, (uint64_t)i)) {
            while (!mproc__ring_put(r, &v, 1, sizeof f, &pos)) { /* the reader releases */
                int st;
                if (waitpid(reader, &st, WNOHANG) == reader) /* ...unless it failed */
                    fail_msg("the reader ended (status %#x) at frame %ld", (unsigned)st, i);
                sched_yield();
            }
            if (!mproc__mail_post(m, (uint64_t)i, pos, sizeof f)) {
                uint8_t wake[MPROC__WIRE_HDR_SIZE];
                mproc__hdr_encode(wake, MPROC__FRAME_WAKE, 0, 0, 0);
                if (write(sock, wake, sizeof wake) != (ssize_t)sizeof wake) fail_msg("the reader is gone at frame %ld", i);
            }
        } else {
            mproc__mail_count(m, (uint64_t)i + 1);
            if (write(sock, f, sizeof f) != (ssize_t)sizeof f) fail_msg("the reader is gone at frame %ld", i);
        }
        if (ack) { /* one at a time; now and then a pause long enough for the reader to sleep */
            uint64_t got = 0;
            if (read(sock, &got, sizeof got) != (ssize_t)sizeof got || got != (uint64_t)i + 1) _exit(15);
            if (i % 8 == 7) usleep(300);
        }
        if (paced && i % 2 == 1) usleep(1); /* the reader mostly caught up, looking */
    }
}

/* n frames from a writer to a reader in another process; ack: the writer waits for each;
 * greedy: the reader reads the socket whenever it is readable (read_whenever_readable). */
static void send_between_two_processes(long n, int ack, int greedy) {
    mproc__ring_pair p;
    int fd, sv[2];
    make_pair(&p, &fd);
    mproc__mail_enable(p.down.mail);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    fflush(NULL);
    pid_t reader = fork();
    assert_true(reader >= 0);
    if (reader == 0) { /* the worker's side, with its own mapping */
        alarm(60);
        close(sv[0]);
        mproc__ring_pair q;
        if (mproc__ring_pair_map(fd, &q) < 0) _exit(9);
        if (greedy) read_whenever_readable(&q.down, sv[1], n);
        else read_in_order(&q.down, sv[1], n, ack);
        _exit(0);
    }
    close(sv[1]);
    alarm(60);
    write_frames(&p.down, sv[0], n, ack, greedy, reader);
    int status = 0;
    assert_int_equal(waitpid(reader, &status, 0), reader);
    alarm(0);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0); /* every frame whole and in order, none lost */
    close(sv[0]);
    close(fd);
    mproc__ring_pair_unmap(&p);
}

static void frames_keep_their_order_across_two_processes(void **state) {
    (void)state;
    send_between_two_processes(200000, 0, 0);
}

/* One frame at a time, the reader often asleep when the next is posted: a post it did not see
 * and no WAKE for it would leave both waiting (the alarm ends the test). */
static void a_sleeping_reader_is_always_woken(void **state) {
    (void)state;
    send_between_two_processes(20000, 1, 0);
}

/* A reader that reads the socket whenever it can (as the rank does) still takes every frame in
 * order: a frame posted just before a later one went by socket is not skipped. */
static void a_greedy_socket_reader_keeps_the_order(void **state) {
    (void)state;
    send_between_two_processes(20000, 0, 1);
}

int main(void) {
    signal(SIGPIPE, SIG_IGN); /* a reader that failed shows as a failed write */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(posts_only_when_ready),
        cmocka_unit_test(frames_keep_their_order_across_two_processes),
        cmocka_unit_test(a_sleeping_reader_is_always_woken),
        cmocka_unit_test(a_greedy_socket_reader_keeps_the_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
