/* arena.c - the memory every shared object lives in. The first object a process makes (when it
 * has no arena yet) creates an arena: a memfd of MPROC_SHARED_BYTES (default 256 MiB; sparse,
 * pages are used as they are touched) mapped shared, with a robust mutex, size-class free lists
 * and a bump pointer in its header. Children forked afterwards inherit the mapping; any other
 * process on the node (an MPI rank, an executor forked before the arena existed) maps it the
 * first time a handle names it, by opening /proc/<creator>/fd/<fd> - no name in /dev/shm that a
 * kill -9 could leave behind: the memory goes when the last process that maps it ends.
 *
 * Blocks are powers of two from 64 bytes and are never split or merged, so a block's header
 * stays at its offset for good: a freed object's handle meets another generation there (or a
 * free block) and is refused, never misread. Generations are the arena's, not the block's: no
 * two objects ever had the same, so a handle pointing at the wrong block is refused too.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shared/shared.h"



#define ARENA_MAGIC 0x6d70726f63617265ULL /* "mprocare" */
#define MIN_BLOCK 64u
#define CLASSES 40
#define MAX_ARENAS 16
#define DEFAULT_BYTES (256ull << 20)

typedef struct arena_header {
    uint64_t magic, tag, size;
    uint32_t host, pid;
    int32_t fd;
    uint32_t gens;                /* generations handed out: each block's gen is the arena's next,
                                   * so no two live objects share one and a handle whose offset
                                   * was corrupted onto another object is refused, not taken */
    pthread_mutex_t mu;
    uint64_t bump;                /* next never-used byte */
    uint64_t free_head[CLASSES];  /* per class, offset of the first free block, 0 = none */
} arena_header;

typedef struct block_header {
    uint32_t kind; /* 0 while free */
    uint32_t gen;
    uint32_t cls;
    uint32_t pad;
    uint64_t next_free;
    char line[40];
} block_header; /* 64 bytes (mproc__sh_get knows): a cache line of its own: every call reads it, and were it on the object's line
                 * (a lock's), each read would be a miss while another core takes the lock */

_Static_assert(sizeof(block_header) == 64, "mproc__sh_get finds an object 64 bytes after its block");

/* Where the first block starts: past the arena's header, on a block boundary. */
#define FIRST_BLOCK ((sizeof(arena_header) + MIN_BLOCK - 1) / MIN_BLOCK * MIN_BLOCK)

typedef struct mapped {
    uint64_t tag;
    char *base;
    uint64_t size;
} mapped;

/* This process's view of arenas: [0] is where its own objects go. Read without a lock (entries
 * are complete before the count that publishes them); grown under map_mu. */
static mapped arenas[MAX_ARENAS];
mproc__sh_view mproc__sh_first;
static _Atomic int n_arenas;
static pthread_mutex_t map_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;
static uint32_t my_host;
/* The broker of this process (broker.c), named in every handle it makes from now on. */
static uint32_t broker_ip;
static uint16_t broker_port;

void mproc__sh_set_broker(uint32_t ip, uint16_t port) {
    broker_ip = ip;
    broker_port = port;
}

static void before_fork(void) { pthread_mutex_lock(&map_mu); }
static void after_fork(void) { pthread_mutex_unlock(&map_mu); }
/* Which "node" this is, for handles: processes that can map each other's memory share the host
 * name, the kernel (its boot id) and the pid namespace (/proc/<pid> names the same process).
 * Two containers of one name on two machines, or two pid namespaces on one, differ. */
static void setup_once(void) {
    pthread_atfork(before_fork, after_fork, after_fork);
    char name[512] = "";
    gethostname(name, 255);
    size_t n = strlen(name);
    FILE *f = fopen("/proc/sys/kernel/random/boot_id", "r");
    if (f) {
        name[n++] = '/';
        if (!fgets(name + n, 64, f)) name[n] = '\0';
        fclose(f);
        n = strlen(name);
    }
    char ns[64];
    ssize_t k = readlink("/proc/self/ns/pid", ns, sizeof ns - 1);
    if (k > 0 && n + (size_t)k + 2 < sizeof name) {
        name[n++] = '/';
        memcpy(name + n, ns, (size_t)k);
        name[n + (size_t)k] = '\0';
    }
    uint32_t h = 2166136261u;
    for (const char *p = name; *p; p++) h = (h ^ (uint8_t)*p) * 16777619u;
    my_host = h ? h : 1;
}

int mproc__sh_is_remote(const mproc_shared_ref *r) {
    if (__builtin_expect(!my_host, 0)) pthread_once(&atfork_once, setup_once);
    return r && r->arena && r->host != my_host && r->broker_port != 0;
}

static const mapped *find(uint64_t tag) {
    int n = atomic_load_explicit(&n_arenas, memory_order_acquire);
    for (int i = 0; i < n; i++)
        if (arenas[i].tag == tag) return &arenas[i];
    return NULL;
}

static int publish(uint64_t tag, char *base, uint64_t size) { /* under map_mu */
    int n = atomic_load_explicit(&n_arenas, memory_order_relaxed);
    if (n == MAX_ARENAS) return mproc__error(MPROC_ENOMEM, "shared objects: this process maps %d arenas already", MAX_ARENAS);
    arenas[n] = (mapped){tag, base, size};
    atomic_store_explicit(&n_arenas, n + 1, memory_order_release);
    if (n == 0) {
        mproc__sh_first.base = base;
        mproc__sh_first.size = size;
        atomic_store_explicit(&mproc__sh_first.tag, tag, memory_order_release);
    }
    return 0;
}

static int arena_bytes(uint64_t *out, const char *fn) {
    const char *s = mproc__env("MPROC_SHARED_BYTES");
    *out = DEFAULT_BYTES;
    if (!s || !*s) return 0;
    uint64_t v;
    if (mproc__parse_count(s, &v) < 0 || v < (1ull << 20) || v > (1ull << 40))
        return mproc__error(MPROC_EINVAL, "%s: MPROC_SHARED_BYTES='%s': want bytes, 1048576..1099511627776", fn, s);
    *out = v;
    return 0;
}

static int create_arena(const char *fn) { /* under map_mu, with no arena mapped */
    uint64_t size, tag;
    int rc = arena_bytes(&size, fn);
    if (rc < 0) return rc;
    if (getrandom(&tag, sizeof tag, 0) != (ssize_t)sizeof tag) tag = ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)&tag;
    int fd = memfd_create("mproc-shared", MFD_CLOEXEC);
    if (fd < 0) return mproc__error(MPROC_ESYS, "%s: memfd_create for the shared objects: %s", fn, strerror(errno));
    if (ftruncate(fd, (off_t)size) < 0) {
        int e = errno;
        close(fd);
        return mproc__error(MPROC_ESYS, "%s: sizing the arena of shared objects to %" PRIu64 " bytes: %s", fn, size, strerror(e));
    }
    char *base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (base == MAP_FAILED) {
        int e = errno;
        close(fd);
        return mproc__error(MPROC_ESYS, "%s: mapping the arena of shared objects: %s", fn, strerror(e));
    }
    arena_header *h = (arena_header *)base;
    h->tag = tag;
    h->size = size;
    h->host = my_host;
    h->pid = (uint32_t)getpid();
    h->fd = fd; /* kept open for good: other processes open it through /proc */
    h->bump = FIRST_BLOCK;
    if ((rc = mproc__sh_mutex_init(&h->mu, PTHREAD_MUTEX_NORMAL)) < 0) {
        munmap(base, size);
        close(fd);
        return rc;
    }
    h->magic = ARENA_MAGIC;
    return publish(tag, base, size);
}

static const mapped *open_arena(const mproc_shared_ref *r, const char *fn, int *err) {
    pthread_mutex_lock(&map_mu);
    const mapped *m = find(r->arena);
    if (m) goto out;
    char path[64], target[64] = "";
    snprintf(path, sizeof path, "/proc/%" PRIu32 "/fd/%" PRId32, r->pid, r->fd);
    /* Only ever an arena's memfd: a corrupt handle must not make us open some other file of
     * some other process (a device, a FIFO). */
    ssize_t tl = readlink(path, target, sizeof target - 1);
    if (tl >= 0) target[tl] = '\0';
    int fd = tl >= 0 && !strncmp(target, "/memfd:mproc-shared", 19) ? open(path, O_RDWR | O_CLOEXEC) : -1;
    if (fd < 0) {
        *err = mproc__error(MPROC_EBADHANDLE,
                            "%s: the object's memory belongs to process %" PRIu32 ", which has ended or cannot be "
                            "reached (%s: %s)", fn, r->pid, path, tl < 0 || target[0] == '/' ? strerror(errno) : "not an arena");
        goto out;
    }
    struct stat st;
    char *base = MAP_FAILED;
    if (fstat(fd, &st) == 0 && st.st_size >= (off_t)sizeof(arena_header))
        base = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (base == MAP_FAILED) {
        *err = mproc__error(MPROC_EBADHANDLE, "%s: the handle names no shared-object arena (process %" PRIu32 ")", fn, r->pid);
        goto out;
    }
    const arena_header *h = (const arena_header *)base;
    if (h->magic != ARENA_MAGIC || h->tag != r->arena || h->size != (uint64_t)st.st_size) {
        munmap(base, (size_t)st.st_size);
        *err = mproc__error(MPROC_EBADHANDLE, "%s: the handle names no shared-object arena (process %" PRIu32 ")", fn, r->pid);
        goto out;
    }
    if ((*err = publish(h->tag, base, h->size)) < 0) munmap(base, (size_t)st.st_size);
    else m = find(r->arena);
out:
    pthread_mutex_unlock(&map_mu);
    return m;
}

static uint32_t class_for(size_t bytes) {
    uint32_t c = 0;
    while (((uint64_t)MIN_BLOCK << c) < bytes) c++;
    return c;
}

static void make_ref(const mapped *m, uint64_t off, const block_header *b, mproc_shared_ref *ref) {
    const arena_header *h = (const arena_header *)m->base;
    *ref = (mproc_shared_ref){.arena = h->tag, .offset = off, .pid = h->pid, .fd = h->fd, .gen = b->gen,
                              .host = h->host, .kind = b->kind, .aux = 0, .broker_ip = broker_ip,
                              .broker_port = broker_port};
}

int mproc__sh_alloc(uint32_t kind, size_t size, mproc_shared_ref *ref, void **obj, const char *fn) {
    pthread_once(&atfork_once, setup_once);
    memset(ref, 0, sizeof *ref);
    *obj = NULL;
    if (atomic_load_explicit(&n_arenas, memory_order_acquire) == 0) {
        pthread_mutex_lock(&map_mu);
        int rc = atomic_load(&n_arenas) == 0 ? create_arena(fn) : 0;
        pthread_mutex_unlock(&map_mu);
        if (rc < 0) return rc;
    }
    const mapped *m = &arenas[0];
    arena_header *h = (arena_header *)m->base;
    /* Objects take blocks of a power of two bytes (never split or merged, see the top). */
    const uint64_t first = FIRST_BLOCK;
    uint32_t c = size > h->size ? CLASSES : class_for(size + sizeof(block_header));
    if (c >= CLASSES || ((uint64_t)MIN_BLOCK << c) > h->size - first)
        return mproc__error(MPROC_ENOMEM, "%s: a %zu-byte object needs a block of %" PRIu64 " bytes (the next power of two "
                            "of its size and a 64-byte header); the arena of shared objects (%" PRIu64 " bytes, %" PRIu64
                            " of them its own header) cannot hold it (MPROC_SHARED_BYTES sets its size)", fn, size,
                            c < CLASSES ? (uint64_t)MIN_BLOCK << c : 0, h->size, first);
    uint64_t bytes = (uint64_t)MIN_BLOCK << c, off = 0, never_used = 0;
    mproc__sh_enter(&h->mu);
    if (c < CLASSES && h->free_head[c]) {
        off = h->free_head[c];
        h->free_head[c] = ((block_header *)(m->base + off))->next_free;
    } else if (c < CLASSES && h->bump + bytes <= h->size) {
        off = h->bump; /* a multiple of 64, as every class is */
        h->bump += bytes;
    }
    block_header *b = off ? (block_header *)(m->base + off) : NULL;
    if (!b) never_used = h->size - h->bump;
    if (b) {
        b->cls = c;
        b->next_free = 0;
        b->gen = ++h->gens;
    }
    mproc__sh_leave(&h->mu);
    if (!b)
        return mproc__error(MPROC_ENOMEM, "%s: no free block of %" PRIu64 " bytes for a %zu-byte object: the arena of shared "
                            "objects (%" PRIu64 " bytes) has %" PRIu64 " never used and none of that size freed (raise "
                            "MPROC_SHARED_BYTES)", fn, bytes, size, h->size, never_used);
    memset(b + 1, 0, size); /* only what was asked: a queue's ring is touched as it fills */
    b->kind = kind; /* last: until now a stale handle sees the block as not of its kind */
    make_ref(m, off, b, ref);
    *obj = b + 1;
    return 0;
}

/* The block at offset in m, or NULL where no block can start. */
static block_header *block_at(const mapped *m, uint64_t offset) {
    if (offset < sizeof(arena_header) || offset % MIN_BLOCK || offset > m->size - MIN_BLOCK) return NULL;
    return (block_header *)(m->base + offset);
}

static block_header *block_of(const mproc_shared_ref *r, uint32_t kind, const char *fn, int *err, const mapped **mp) {
    if (__builtin_expect(!my_host, 0)) pthread_once(&atfork_once, setup_once); /* set once, never 0 after */
    if (!r) {
        *err = mproc__error(MPROC_EBADHANDLE, "%s: the handle is NULL", fn);
        return NULL;
    }
    if (r->kind != kind || r->arena == 0) {
        *err = mproc__error(MPROC_EBADHANDLE, "%s: not a handle of this kind of object (zeroed, freed or of another kind)", fn);
        return NULL;
    }
    if (r->host != my_host) {
        *err = r->broker_port ? MPROC__SH_REMOTE /* the caller forwards it to the broker */
                              : mproc__error(MPROC_EREMOTE, "%s: the object was made on another node (by pid %" PRIu32
                                                            " there) by a process that serves no broker (only the MPI master "
                                                            "serves one, unless MPROC_SHARED_BROKER=0; objects made in tasks or "
                                                            "Processes on other nodes are theirs): only processes of that node "
                                                            "reach it", fn, r->pid);
        return NULL;
    }
    const mapped *m = find(r->arena);
    if (!m && !(m = open_arena(r, fn, err))) return NULL;
    block_header *b = block_at(m, r->offset);
    if (!b) {
        *err = mproc__error(MPROC_EBADHANDLE, "%s: the handle is corrupt (offset outside its arena)", fn);
        return NULL;
    }
    if (b->kind != kind || b->gen != r->gen) {
        *err = mproc__error(MPROC_EBADHANDLE, "%s: the object was freed", fn);
        return NULL;
    }
    if (mp) *mp = m;
    return b;
}

int mproc__sh_was_freed(const mproc_shared_ref *r, uint32_t kind) {
    if (!r || r->kind != kind || r->arena == 0 || r->host != my_host) return 0;
    const mapped *m = find(r->arena);
    const block_header *b = m ? block_at(m, r->offset) : NULL;
    if (!b) return 0;
    /* Generations only grow: a freed object's block has a newer one (free, or reused). A handle
     * pointing at an older block is not one of a freed object but a bad one. */
    return b->gen > r->gen;
}

void *mproc__sh_resolve(const mproc_shared_ref *ref, uint32_t kind, const char *fn, int *err) {
    block_header *b = block_of(ref, kind, fn, err, NULL);
    return b ? b + 1 : NULL;
}

int mproc__sh_free(mproc_shared_ref *ref, uint32_t kind, const char *fn) { return mproc__sh_free_ex(ref, kind, fn, 1); }

int mproc__sh_free_ex(mproc_shared_ref *ref, uint32_t kind, const char *fn, int reuse) {
    int err = 0;
    const mapped *m;
    block_header *b = block_of(ref, kind, fn, &err, &m);
    if (!b) return err != MPROC__SH_REMOTE ? err : mproc__error(MPROC_EREMOTE, "%s: the object was made on another node", fn);
    arena_header *h = (arena_header *)m->base;
    mproc__sh_enter(&h->mu);
    if (b->kind == kind && b->gen == ref->gen) { /* not freed by another process meanwhile */
        b->kind = 0;
        b->gen = ++h->gens;
        if (reuse && b->cls < CLASSES) { /* else kept out of use: a waiter may still be inside */
            b->next_free = h->free_head[b->cls];
            h->free_head[b->cls] = ref->offset;
        }
    } else {
        err = mproc__error(MPROC_EBADHANDLE, "%s: the object was freed", fn);
    }
    mproc__sh_leave(&h->mu);
    if (err == 0) memset(ref, 0, sizeof *ref);
    return err;
}
