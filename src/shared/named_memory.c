/* named_memory.c - SharedMemory: a block with a name in /dev/shm (shm_open) that any process
 * on the node can attach by that name, as Python's shared_memory.SharedMemory. Unlike the
 * arena's objects it outlives its creator until unlinked, which is what a name is for.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shared/shared.h"

#define SHM_MAGIC 0x73686d31u
#define NAME_MAX_LEN 200

struct mproc_shm {
    uint32_t magic;
    char name[NAME_MAX_LEN + 2]; /* with the leading '/' */
    void *data;
    size_t size;
};

static _Atomic unsigned fresh_names;

static int check_name(const char *name, const char *fn) {
    size_t n = name ? strlen(name) : 0;
    if (!name || n == 0 || n > NAME_MAX_LEN)
        return mproc__error(MPROC_EINVAL, "%s: the name must have 1..%d characters", fn, NAME_MAX_LEN);
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '.' || *p == '_' || *p == '-') ||
            (p == name && *p == '.'))
            return mproc__error(MPROC_EINVAL, "%s: name \"%s\": use only A-Z a-z 0-9 . _ - (not first a '.')", fn, name);
    return 0;
}

static int map_block(mproc_shm **out, int fd, const char *name, size_t size, const char *fn) {
    mproc_shm *s = calloc(1, sizeof *s);
    void *data = s ? mmap(NULL, size ? size : 1, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) : MAP_FAILED;
    int e = errno;
    close(fd);
    if (data == MAP_FAILED) {
        free(s);
        return s ? mproc__error(MPROC_ESYS, "%s: mapping \"%s\": %s", fn, name, strerror(e)) : mproc__error(MPROC_ENOMEM, "%s: no memory", fn);
    }
    s->magic = SHM_MAGIC;
    snprintf(s->name, sizeof s->name, "/%s", name);
    s->data = data;
    s->size = size;
    *out = s;
    return 0;
}

int mproc_shm_create(mproc_shm **out, const char *name, size_t size) {
    if (!out) return mproc__error(MPROC_EINVAL, "mproc_shm_create: out is NULL");
    *out = NULL;
    char fresh[64];
    if (!name) {
        snprintf(fresh, sizeof fresh, "mproc-%ld-%u", (long)getpid(), atomic_fetch_add(&fresh_names, 1));
        name = fresh;
    }
    int rc = check_name(name, "mproc_shm_create");
    if (rc < 0) return rc;
    if (size == 0) return mproc__error(MPROC_EINVAL, "mproc_shm_create: size is 0");
    char path[NAME_MAX_LEN + 2];
    snprintf(path, sizeof path, "/%s", name);
    int fd = shm_open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return errno == EEXIST ? mproc__error(MPROC_EBUSY, "mproc_shm_create: a block named \"%s\" exists already", name)
                               : mproc__error(MPROC_ESYS, "mproc_shm_create: shm_open(\"%s\"): %s", name, strerror(errno));
    if (ftruncate(fd, (off_t)size) < 0) {
        int e = errno;
        close(fd);
        shm_unlink(path);
        return mproc__error(MPROC_ESYS, "mproc_shm_create: sizing \"%s\" to %zu bytes: %s", name, size, strerror(e));
    }
    if ((rc = map_block(out, fd, name, size, "mproc_shm_create")) < 0) shm_unlink(path);
    return rc;
}

int mproc_shm_attach(mproc_shm **out, const char *name) {
    if (!out) return mproc__error(MPROC_EINVAL, "mproc_shm_attach: out is NULL");
    *out = NULL;
    int rc = check_name(name, "mproc_shm_attach");
    if (rc < 0) return rc;
    char path[NAME_MAX_LEN + 2];
    snprintf(path, sizeof path, "/%s", name);
    int fd = shm_open(path, O_RDWR | O_CLOEXEC, 0);
    if (fd < 0)
        return errno == ENOENT ? mproc__error(MPROC_EINVAL, "mproc_shm_attach: there is no block named \"%s\"", name)
                               : mproc__error(MPROC_ESYS, "mproc_shm_attach: shm_open(\"%s\"): %s", name, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) < 0) {
        int e = errno;
        close(fd);
        return mproc__error(MPROC_ESYS, "mproc_shm_attach: fstat(\"%s\"): %s", name, strerror(e));
    }
    return map_block(out, fd, name, (size_t)st.st_size, "mproc_shm_attach");
}

static const mproc_shm *valid(const mproc_shm *s) { return s && s->magic == SHM_MAGIC ? s : NULL; }

void *mproc_shm_data(const mproc_shm *shm) { return valid(shm) ? shm->data : NULL; }
size_t mproc_shm_size(const mproc_shm *shm) { return valid(shm) ? shm->size : 0; }
const char *mproc_shm_name(const mproc_shm *shm) { return valid(shm) ? shm->name + 1 : NULL; }

int mproc_shm_close(mproc_shm *shm) {
    if (!shm) return 0;
    if (!valid(shm)) return mproc__error(MPROC_EBADHANDLE, "mproc_shm_close: not a SharedMemory handle (or closed)");
    munmap(shm->data, shm->size ? shm->size : 1);
    mproc__mark_dead(&shm->magic, 0);
    free(shm);
    return 0;
}

int mproc_shm_unlink(const char *name) {
    int rc = check_name(name, "mproc_shm_unlink");
    if (rc < 0) return rc;
    char path[NAME_MAX_LEN + 2];
    snprintf(path, sizeof path, "/%s", name);
    if (shm_unlink(path) < 0)
        return errno == ENOENT ? mproc__error(MPROC_EINVAL, "mproc_shm_unlink: there is no block named \"%s\"", name)
                               : mproc__error(MPROC_ESYS, "mproc_shm_unlink: \"%s\": %s", name, strerror(errno));
    return 0;
}
