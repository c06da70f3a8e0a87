/* journal.c - a map's journal: every finished item's index, status and result appended to a
 * file as a checksummed record, so that the same call made again after the program was killed
 * takes those items from the file instead of running them (mproc_call_opts.journal).
 *
 * File: a header naming the call (task name, item sizes, item count and a fingerprint of the
 * whole input), then records, each padded to a multiple of 8 bytes: an item {tag JREC, length, index, status, bytes, check} or a run
 * of successful fixed-size items {tag JRUN, count, first index, item size, results, check}, so
 * a chunk of a map costs one record, not one per item. A record counts only
 * if it is whole and its check matches; the first one that is not (a write torn by a kill, a
 * corrupt tail) is cut off with everything after it, and the call goes on appending there. A
 * journal whose header names another call is refused, never mixed.
 *
 * Writes are batched: records collect in memory and a writer thread puts them in the file in
 * one write() 0.1 s after the first of them arrived (or as soon as 1 MiB has collected), and
 * when the call ends; the pool's loop never waits for the disk. What
 * was written survives the process being killed (it is in the kernel's page cache); surviving
 * the machine itself needs fdatasync, which the sync policy decides: at most once a second by
 * default (so a machine crash loses at most about a second of records, which then run again),
 * after every write and at the end with MPROC_JOURNAL_ALWAYS, never with MPROC_JOURNAL_NEVER.
 *
 * One run per journal at a time: two runs appending to one file would interleave their records.
 * Another program is kept out by a POSIX record lock on the whole file (not an flock or an OFD
 * lock: those belong to the open file, which every worker forked while the call runs would
 * share and keep after the call), another call of this program by a list of the journals open
 * here, looked at before the file is opened at all: closing any descriptor of a file drops this
 * process's POSIX locks on it, so a refused call must not open it.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pool/pool.h"

#define MAGIC "MPROCJ1\n"
#define REC_TAG 0x4345524au /* "JREC" */
#define RUN_TAG 0x4e55524au /* "JRUN" */
#define REC_HEAD 24         /* JREC: tag, length, index, status, pad; JRUN: tag, count, first, size, pad */
#define REC_MAX_BYTES (64u << 20)
#define FLUSH_BYTES (1u << 20)
#define FLUSH_S 0.1
#define SYNC_S 1.0
/* Every record (and the header) is a multiple of 8 bytes, so results replayed from the file
 * (in a malloc'd copy) are as aligned as those from a worker: a caller may read a long. */
#define PAD8(x) (((size_t)(x) + 7) & ~(size_t)7)

/* A journal open in this process (see the top: one run per journal at a time). */
typedef struct open_journal {
    struct open_journal *next;
    dev_t dev;
    ino_t ino;
} open_journal;

static pthread_mutex_t open_mu = PTHREAD_MUTEX_INITIALIZER;
static open_journal *open_list;

struct mproc__journal {
    open_journal *claim; /* its place in open_list */
    int fd;
    char path[256];
    int sync;           /* MPROC_JOURNAL_* */
    uint8_t *kept;      /* the file as read at open, kept for its reader (keep_data) */
    uint8_t *buf;
    size_t len, cap;
    double last_write, last_sync;
    int unsynced;
    /* A JRUN still growing at the end of buf (from run_at): results of chunks that follow each
     * other join it, so a map of one-item chunks costs 8 bytes an item, not a record each. */
    int run_open;
    size_t run_at, run_first, run_count, run_size;
    int err;            /* the first write error (sticky), with its message */
    char errmsg[300];
    /* The writer thread: writes (and syncs) with the core lock dropped, so the pool's loop
     * never waits for the disk, and within FLUSH_S of a record's arrival however long the
     * next one takes. Without it (no thread could be made) flush() makes the same writes itself. */
    pthread_t writer;
    int threaded, stop, flush_now;
    pthread_cond_t wake;
    double pending_since; /* when buf last went from empty to not */
    uint8_t *spare;       /* the buffer being written, swapped with buf */
    size_t spare_cap;
};

/* ---- checks ------------------------------------------------------------------------------ */

/* A 64-bit hash, 32 bytes a step in four independent lanes (not cryptographic: it tells a
 * torn or other file apart, at several GB/s, since it reads every result). */
static uint64_t mix(uint64_t h, uint64_t w) {
    h = (h ^ w) * 0x9E3779B97F4A7C15ull;
    return h ^ (h >> 29);
}

static uint64_t hash_more(uint64_t seed, const void *data, size_t len) {
    const uint8_t *p = data;
    uint64_t l0 = seed, l1 = seed + 1, l2 = seed + 2, l3 = seed + 3;
    size_t total = len;
    while (len >= 32) {
        uint64_t w[4];
        memcpy(w, p, 32);
        l0 = mix(l0, w[0]);
        l1 = mix(l1, w[1]);
        l2 = mix(l2, w[2]);
        l3 = mix(l3, w[3]);
        p += 32;
        len -= 32;
    }
    uint64_t h = mix(mix(mix(l0, l1), l2), l3);
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = mix(h, w);
        p += 8;
        len -= 8;
    }
    uint64_t w = 0;
    if (len) memcpy(&w, p, len); /* p may be NULL when len is 0 */
    return mix(h, w ^ ((uint64_t)total << 40));
}

static void put64(uint8_t *b, uint64_t v) {
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)(v >> (8 * i));
}
static uint64_t get64(const uint8_t *b) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v |= (uint64_t)b[i] << (8 * i);
    return v;
}

/* The header that names a call: magic, u32 length of what follows, name, sizes, count,
 * input fingerprint, check. */
static size_t make_header(uint8_t *b, size_t cap, const char *task, size_t in_size, size_t out_size, size_t n,
                          uint64_t fp) {
    size_t nl = strlen(task);
    if (nl > 200) nl = 200;
    size_t fields = PAD8(14 + nl); /* the name padded with zeros: what follows is 8-aligned */
    size_t len = fields + 8 * 5;
    if (len > cap) return 0;
    memset(b, 0, fields);
    memcpy(b, MAGIC, 8);
    b[8] = (uint8_t)(len - 12), b[9] = (uint8_t)((len - 12) >> 8);
    b[12] = (uint8_t)nl, b[13] = 0;
    memcpy(b + 14, task, nl);
    uint8_t *q = b + fields;
    put64(q, in_size);
    put64(q + 8, out_size);
    put64(q + 16, n);
    put64(q + 24, fp);
    put64(q + 32, hash_more(1, b, (size_t)(q + 32 - b)));
    return len;
}

/* What differs between a journal's header d (len bytes, its magic checked) and this call's,
 * in words for the EJOURNAL message: the first of task, item count, item sizes, input. A map's
 * journal and an imap's or map_items' differ in their item sizes (0: of the items' own lengths).
 * 1, or 0 when the header does not check out or differs in nothing of these (damaged). */
static int header_difference(char *why, size_t cap, const uint8_t *d, size_t len, const char *task, size_t in_size,
                             size_t out_size, size_t n, uint64_t fp) {
    size_t nl = len >= 14 ? d[12] : 0, fields = PAD8(14 + nl);
    if (len < fields + 8 * 5 || nl > 200 || get64(d + fields + 32) != hash_more(1, d, fields + 32)) return 0;
    const uint8_t *q = d + fields;
    uint64_t j_in = get64(q), j_out = get64(q + 8), j_n = get64(q + 16), j_fp = get64(q + 24);
    char name[201]; /* the file's task name, printable: the file is not trusted */
    for (size_t i = 0; i < nl; i++) name[i] = d[14 + i] >= 0x20 && d[14 + i] < 0x7f ? (char)d[14 + i] : '?';
    name[nl] = 0;
    if (strlen(task) != nl || memcmp(d + 14, task, nl) != 0)
        snprintf(why, cap, "it was made for task '%s', this call runs task '%.200s'", name, task);
    else if (j_n != n)
        snprintf(why, cap, "it was made for %" PRIu64 " items, this call has %zu", j_n, n);
    else if (j_in != in_size || j_out != out_size)
        snprintf(why, cap, "its items are %" PRIu64 " bytes in and %" PRIu64 " out, this call's %zu and %zu "
                 "(0: items of their own lengths, or an imap's results)", j_in, j_out, in_size, out_size);
    else if (j_fp != fp)
        snprintf(why, cap, "the same task over %zu items of the same sizes, but other input", n);
    else
        return 0;
    return 1;
}

/* ---- writing ----------------------------------------------------------------------------- */

static void fail_write(mproc__journal *j, const char *what) {
    if (j->err) return;
    j->err = MPROC_ESYS;
    snprintf(j->errmsg, sizeof j->errmsg, "journal %.200s: %s: %s", j->path, what, strerror(errno));
}

/* Room for a record of `body` bytes after its head; NULL (error recorded) if out of memory. */
static uint8_t *room(mproc__journal *j, size_t body) {
    size_t need = REC_HEAD + PAD8(body) + 8;
    if (j->len == 0) { /* the first record since the last write: the writer's clock starts */
        j->pending_since = mproc__now();
        if (j->threaded) pthread_cond_signal(&j->wake);
    } else if (j->threaded && j->len + need >= FLUSH_BYTES && j->len < FLUSH_BYTES) {
        pthread_cond_signal(&j->wake);
    }
    if (j->len + need > j->cap) {
        size_t cap = j->cap ? j->cap : 64u << 10;
        while (cap < j->len + need) cap *= 2;
        uint8_t *nb = realloc(j->buf, cap);
        if (!nb) {
            errno = ENOMEM;
            fail_write(j, "out of memory for records");
            return NULL;
        }
        j->buf = nb;
        j->cap = cap;
    }
    return j->buf + j->len;
}

static void seal(mproc__journal *j, uint8_t *r, uint32_t tag, uint32_t a, uint64_t b, uint32_t c, const void *bytes,
                 size_t len) {
    uint32_t pad = 0;
    memcpy(r, &tag, 4);
    memcpy(r + 4, &a, 4);
    put64(r + 8, b);
    memcpy(r + 16, &c, 4);
    memcpy(r + 20, &pad, 4);
    if (len && bytes != r + REC_HEAD) memcpy(r + REC_HEAD, bytes, len); /* a run is in place */
    size_t padded = PAD8(len);
    memset(r + REC_HEAD + len, 0, padded - len);
    put64(r + REC_HEAD + padded, hash_more(2, r, REC_HEAD + padded));
    j->len += REC_HEAD + padded + 8;
}

/* Seals the growing JRUN, if any: its head and check. */
static void close_run(mproc__journal *j) {
    if (!j->run_open) return;
    j->run_open = 0;
    size_t body = j->run_count * j->run_size;
    j->len = j->run_at; /* seal() appends the record it writes: head, body (in place), check */
    uint8_t *r = j->buf + j->run_at;
    seal(j, r, RUN_TAG, (uint32_t)j->run_count, j->run_first, (uint32_t)j->run_size, r + REC_HEAD, body);
}

void mproc__journal_add(mproc__journal *j, size_t index, int status, const void *bytes, size_t len) {
    if (j->err) return;
    close_run(j);
    /* A result this big is not kept (the item runs again on resume): recording it empty would
     * replay a success with no result. Frames carry up to 2 GiB; a record, 64 MiB. */
    if (len > REC_MAX_BYTES) return;
    uint8_t *r = room(j, len);
    if (r) seal(j, r, REC_TAG, (uint32_t)len, index, (uint32_t)status, bytes, len);
}

void mproc__journal_add_run(mproc__journal *j, size_t first, size_t count, size_t item_size, const void *results) {
    if (j->err || !count) return;
    size_t len = count * item_size;
    if (count > UINT32_MAX || item_size > UINT32_MAX || len > REC_MAX_BYTES) { /* never: a chunk is smaller */
        for (size_t i = 0; i < count; i++) mproc__journal_add(j, first + i, 0, (const uint8_t *)results + i * item_size, item_size);
        return;
    }
    int joins = j->run_open && item_size == j->run_size && first == j->run_first + j->run_count &&
                (j->run_count + count) * item_size <= REC_MAX_BYTES && j->run_count + count <= UINT32_MAX;
    if (!joins) close_run(j);
    uint8_t *r = room(j, len); /* room for the record's head and check too: enough either way */
    if (!r) return;
    if (!joins) {
        j->run_open = 1;
        j->run_at = j->len;
        j->run_first = first;
        j->run_count = 0;
        j->run_size = item_size;
        j->len += REC_HEAD;
    }
    memcpy(j->buf + j->len, results, len);
    j->len += len;
    j->run_count += count;
}

/* Writes buf out with the core lock dropped (the writer thread): buf is swapped for the spare
 * first, so records keep collecting meanwhile. Lock held on entry and exit. */
static void write_unlocked(mproc__journal *j, int and_sync) {
    close_run(j);
    uint8_t *out = j->buf;
    size_t len = j->len, cap = j->cap;
    j->buf = j->spare;
    j->cap = j->spare_cap;
    j->len = 0;
    j->flush_now = 0;
    pthread_mutex_unlock(&mproc__core_lock);
    const char *failed = NULL;
    int saved = 0;
    for (size_t off = 0; off < len;) {
        ssize_t w = write(j->fd, out + off, len - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            failed = "write failed", saved = errno;
            break;
        }
        off += (size_t)w;
    }
    if (!failed && and_sync && fdatasync(j->fd) < 0) failed = "fdatasync failed", saved = errno;
    pthread_mutex_lock(&mproc__core_lock);
    j->spare = out;
    j->spare_cap = cap;
    if (failed) {
        errno = saved;
        fail_write(j, failed);
    }
    j->last_write = mproc__now();
    if (and_sync) j->last_sync = j->last_write;
    j->unsynced = !and_sync;
}

static void sync_unlocked(mproc__journal *j) {
    j->unsynced = 0;
    pthread_mutex_unlock(&mproc__core_lock);
    int bad = fdatasync(j->fd) < 0, saved = errno;
    pthread_mutex_lock(&mproc__core_lock);
    if (bad) {
        errno = saved;
        fail_write(j, "fdatasync failed");
    }
    j->last_sync = mproc__now();
}

static void *writer_main(void *arg) {
    mproc__journal *j = arg;
    pthread_mutex_lock(&mproc__core_lock);
    for (;;) {
        double now = mproc__now(), deadline = -1;
        if (j->len && (j->stop || j->flush_now || j->len >= FLUSH_BYTES || now - j->pending_since >= FLUSH_S)) {
            write_unlocked(j, j->sync == MPROC_JOURNAL_ALWAYS);
            continue;
        }
        if (j->unsynced && j->sync == MPROC_JOURNAL_INTERVAL && !j->stop) {
            if (now - j->last_sync >= SYNC_S) {
                sync_unlocked(j);
                continue;
            }
            deadline = j->last_sync + SYNC_S;
        }
        if (j->stop) break;
        if (j->len && (deadline < 0 || j->pending_since + FLUSH_S < deadline)) deadline = j->pending_since + FLUSH_S;
        mproc__cond_wait(&j->wake, deadline);
    }
    pthread_mutex_unlock(&mproc__core_lock);
    return NULL;
}

int mproc__journal_flush(mproc__journal *j, int final) {
    if (j->threaded) { /* the writer keeps time; a final flush is wanted now */
        if (final && j->len) {
            j->flush_now = 1;
            pthread_cond_signal(&j->wake);
        }
        return j->err;
    }
    /* No writer thread could be made: the same writes, made here (lock dropped during them). */
    double now = mproc__now();
    if (j->len && (final || j->len >= FLUSH_BYTES || now - j->last_write >= FLUSH_S))
        write_unlocked(j, j->sync == MPROC_JOURNAL_ALWAYS);
    else if (j->unsynced && j->sync == MPROC_JOURNAL_INTERVAL && now - j->last_sync >= SYNC_S)
        sync_unlocked(j);
    return j->err;
}

const char *mproc__journal_error(const mproc__journal *j) { return j->err ? j->errmsg : NULL; }

/* The journal at path for this call: opened (into *fd), listed as open here and locked against
 * other programs, all under open_mu, so that no two calls of ours race between the look and the
 * listing. MPROC_EBUSY, with nothing opened, when another call of this program has it (looked
 * at before opening: see the top); MPROC_EBUSY when another program holds it; where the file
 * system has no record locks (ENOLCK, EINVAL) the call goes on without one. */
static int claim_path(const char *path, int *fd, open_journal **claim) {
    struct stat st;
    int exists = stat(path, &st) == 0, rc = 0;
    pthread_mutex_lock(&open_mu);
    for (open_journal *o = open_list; exists && o; o = o->next)
        if (o->dev == st.st_dev && o->ino == st.st_ino) {
            pthread_mutex_unlock(&open_mu);
            return mproc__error(MPROC_EBUSY, "journal %s is in use by another call of this program (one run per "
                                "journal at a time); refused, the file is left as it is", path);
        }
    open_journal *o = malloc(sizeof *o);
    *fd = o ? open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644) : -1;
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
    if (!o) {
        rc = mproc__error(MPROC_ENOMEM, "journal %s: out of memory", path);
    } else if (*fd < 0) {
        rc = mproc__error(MPROC_ESYS, "journal %s: cannot open: %s", path, strerror(errno));
    } else if (fstat(*fd, &st) < 0) {
        rc = mproc__error(MPROC_ESYS, "journal %s: fstat: %s", path, strerror(errno));
    } else if (fcntl(*fd, F_SETLK, &fl) < 0 && (errno == EACCES || errno == EAGAIN)) {
        struct flock who = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
        long pid = fcntl(*fd, F_GETLK, &who) == 0 && who.l_type != F_UNLCK ? (long)who.l_pid : 0;
        rc = mproc__error(MPROC_EBUSY, "journal %s is in use by another program (pid %ld) (one run per journal at "
                          "a time); refused, the file is left as it is", path, pid);
    }
    if (rc < 0) {
        if (*fd >= 0) close(*fd); /* holds no lock of ours: nothing of this path is listed */
        *fd = -1;
        free(o);
    } else {
        o->dev = st.st_dev;
        o->ino = st.st_ino;
        o->next = open_list;
        open_list = o;
        *claim = o;
    }
    pthread_mutex_unlock(&open_mu);
    return rc;
}

/* The journal's descriptor closed (dropping its lock) and then taken off the list, in that
 * order: listed until closed, so no call of ours opens (and, closing, unlocks) it meanwhile. */
static void close_and_release(int fd, open_journal *claim) {
    close(fd);
    pthread_mutex_lock(&open_mu);
    for (open_journal **p = &open_list; *p; p = &(*p)->next)
        if (*p == claim) {
            *p = claim->next;
            break;
        }
    pthread_mutex_unlock(&open_mu);
    free(claim);
}

int mproc__journal_close(mproc__journal *j) {
    if (!j) return 0;
    if (j->threaded) { /* the writer writes what is left (and syncs if ALWAYS), then ends */
        j->stop = 1;
        pthread_cond_signal(&j->wake);
        pthread_mutex_unlock(&mproc__core_lock);
        pthread_join(j->writer, NULL);
        pthread_mutex_lock(&mproc__core_lock);
        pthread_cond_destroy(&j->wake);
    } else {
        mproc__journal_flush(j, 1);
    }
    int err = j->err;
    if (err) mproc__error(err, "%s", j->errmsg); /* a failure of the last writes too names the file */
    close_and_release(j->fd, j->claim);
    free(j->buf);
    free(j->spare);
    free(j->kept);
    free(j);
    return err;
}

/* ---- opening and replaying --------------------------------------------------------------- */

/* Reads the whole file (journals are read once, at the start of a call). */
static int slurp(int fd, uint8_t **data, size_t *len) {
    struct stat st;
    *data = NULL;
    *len = 0;
    if (fstat(fd, &st) < 0) return -1;
    size_t size = (size_t)st.st_size;
    uint8_t *b = malloc(size ? size : 1);
    if (!b) return -1;
    size_t got = 0;
    while (got < size) {
        ssize_t r = pread(fd, b + got, size - got, (off_t)got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        got += (size_t)r;
    }
    *data = b;
    *len = got;
    return 0;
}

/* Replays the records after the header; returns the offset where the valid records end. */
static size_t replay(const uint8_t *d, size_t len, size_t at, size_t n, mproc__journal_item_fn fn, void *ud) {
    while (at + REC_HEAD + 8 <= len) {
        const uint8_t *r = d + at;
        uint32_t tag, a, c;
        memcpy(&tag, r, 4);
        memcpy(&a, r + 4, 4);
        uint64_t b = get64(r + 8);
        memcpy(&c, r + 16, 4);
        /* JREC: a = length, b = index, c = status; JRUN: a = count, b = first, c = item size. */
        uint64_t body = tag == REC_TAG ? a : tag == RUN_TAG ? (uint64_t)a * c : UINT64_MAX;
        if (body > REC_MAX_BYTES || at + REC_HEAD + PAD8(body) + 8 > len) break;
        if (get64(r + REC_HEAD + PAD8(body)) != hash_more(2, r, REC_HEAD + PAD8(body))) break;
        /* A checked record that makes no sense (beyond the call's items, a positive status): cut. */
        if (tag == REC_TAG && (b >= n || (int32_t)c > 0)) break;
        if (tag == RUN_TAG && (a == 0 || b >= n || a > n - b)) break;
        if (tag == REC_TAG) fn(ud, (size_t)b, (int32_t)c, r + REC_HEAD, a);
        for (uint32_t i = 0; tag == RUN_TAG && i < a; i++) fn(ud, (size_t)(b + i), 0, r + REC_HEAD + (size_t)i * c, c);
        at += REC_HEAD + PAD8(body) + 8;
    }
    return at;
}

uint64_t mproc__journal_fingerprint(const void *in, size_t in_size, size_t n) {
    return hash_more(hash_more(3, &in_size, sizeof in_size), in, n * in_size);
}

uint64_t mproc__journal_fingerprint_items(const mproc_item *items, size_t n) {
    uint64_t h = 4;
    for (size_t i = 0; i < n; i++) {
        uint64_t len = items[i].len;
        h = hash_more(hash_more(h, &len, sizeof len), items[i].data, items[i].len);
    }
    return h;
}

int mproc__journal_open(mproc__journal **out, const char *path, int sync, const char *task, size_t in_size,
                        size_t out_size, size_t n, uint64_t fp, mproc__journal_item_fn fn, void *ud, int keep_data) {
    *out = NULL;
    if (!path[0]) return mproc__error(MPROC_EINVAL, "journal path is empty: want a file's path, or NULL for none");
    if (strlen(path) >= sizeof((mproc__journal *)0)->path)
        return mproc__error(MPROC_EINVAL, "journal path of %zu characters is too long", strlen(path));
    if (sync < MPROC_JOURNAL_NEVER || sync > MPROC_JOURNAL_ALWAYS)
        return mproc__error(MPROC_EINVAL, "journal_sync is %d: want MPROC_JOURNAL_INTERVAL, _ALWAYS or _NEVER", sync);
    open_journal *claim = NULL;
    int fd = -1, rc = claim_path(path, &fd, &claim);
    if (rc < 0) return rc;
    uint8_t head[300];
    size_t hl = make_header(head, sizeof head, task, in_size, out_size, n, fp);
    uint8_t *d;
    size_t len;
    if (slurp(fd, &d, &len) < 0) {
        rc = mproc__error(MPROC_ESYS, "journal %s: cannot read: %s", path, strerror(errno));
        close_and_release(fd, claim);
        return rc;
    }
    size_t end = hl;
    if (len == 0) { /* new */
        if (pwrite(fd, head, hl, 0) != (ssize_t)hl)
            rc = mproc__error(MPROC_ESYS, "journal %s: cannot write its header: %s", path, strerror(errno));
    } else if (len < 8 || memcmp(d, MAGIC, 8) != 0) {
        rc = mproc__error(MPROC_EJOURNAL, "journal %s: not an mproc journal (refused: it is left as it is)", path);
    } else if (len < hl || memcmp(d, head, hl) != 0) {
        char why[400];
        if (header_difference(why, sizeof why, d, len, task, in_size, out_size, n, fp))
            rc = mproc__error(MPROC_EJOURNAL, "journal %s was made by another call and is refused, left as it is "
                              "(delete it to start over): %s", path, why);
        else
            rc = mproc__error(MPROC_EJOURNAL, "journal %s: its header is cut short, damaged or from another version "
                              "of mproc; refused, left as it is (delete it to start over)", path);
    } else {
        end = replay(d, len, hl, n, fn, ud);
        if (end < len && ftruncate(fd, (off_t)end) < 0) /* cut a torn or corrupt tail */
            rc = mproc__error(MPROC_ESYS, "journal %s: cannot cut its torn tail: %s", path, strerror(errno));
    }
    mproc__journal *j = rc == 0 ? calloc(1, sizeof *j) : NULL;
    if (rc == 0 && !j) rc = mproc__error(MPROC_ENOMEM, "journal %s: out of memory", path);
    if (j && keep_data) j->kept = d; /* the bytes fn was shown stay valid until close */
    else free(d);
    if (rc == 0 && lseek(fd, (off_t)end, SEEK_SET) < 0) rc = mproc__error(MPROC_ESYS, "journal %s: lseek: %s", path, strerror(errno));
    if (rc < 0) {
        if (j) free(j->kept);
        free(j);
        close_and_release(fd, claim);
        return rc;
    }
    j->claim = claim;
    j->fd = fd;
    snprintf(j->path, sizeof j->path, "%s", path);
    j->sync = sync;
    j->last_write = j->last_sync = mproc__now();
    mproc__cond_init(&j->wake);
    j->threaded = pthread_create(&j->writer, NULL, writer_main, j) == 0; /* else: writes in flush() */
    *out = j;
    return 0;
}
