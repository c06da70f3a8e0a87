/* shared_limits - the arena's limits, which need a fresh process each (the arena is made once,
 * by a process's first object, from MPROC_SHARED_BYTES):
 *   shared_limits bad BYTES   the value is refused: MPROC_EINVAL naming the variable
 *   shared_limits full        a 1 MiB arena fills with 64 KiB queues until MPROC_ENOMEM (saying
 *                             so), an object larger than the arena is refused, and a freed
 *                             block is reused
 * Exit 0 when all of that holds.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mproc.h"

#define EXPECT(cond)                                                                          \
    do {                                                                                      \
        if (!(cond)) {                                                                        \
            fprintf(stderr, "%s:%d: failed: %s (last error: %s)\n", __FILE__, __LINE__, #cond, \
                    mproc_last_error());                                                      \
            return 1;                                                                         \
        }                                                                                     \
    } while (0)

int main(int argc, char **argv) {
    if (argc == 3 && !strcmp(argv[1], "bad")) {
        setenv("MPROC_SHARED_BYTES", argv[2], 1);
        mproc_lock l;
        EXPECT(mproc_lock_create(&l) == MPROC_EINVAL);
        EXPECT(strncmp(mproc_last_error(), "mproc_lock_create: MPROC_SHARED_BYTES='", 39) == 0); /* the call named */
        EXPECT(mproc_lock_acquire(&l, 0) == MPROC_EBADHANDLE); /* cleared on failure */
        return 0;
    }
    if (argc == 2 && !strcmp(argv[1], "full")) {
        setenv("MPROC_SHARED_BYTES", "1048576", 1);
        mproc_queue big, q[64];
        EXPECT(mproc_queue_create(&big, &(mproc_queue_opts){.capacity = 2 << 20}) == MPROC_ENOMEM);
        EXPECT(strncmp(mproc_last_error(), "mproc_queue_create: ", 20) == 0); /* the call named */
        EXPECT(strstr(mproc_last_error(), "MPROC_SHARED_BYTES") != NULL);
        mproc_array a;
        EXPECT(mproc_value_create(&a, 2 << 20) == MPROC_ENOMEM);
        EXPECT(strncmp(mproc_last_error(), "mproc_value_create: ", 20) == 0);
        int n = 0, rc;
        while (n < 64 && (rc = mproc_queue_create(&q[n], &(mproc_queue_opts){.capacity = 60000})) == 0) n++;
        EXPECT(n > 4 && n < 64);
        EXPECT(rc == MPROC_ENOMEM && strstr(mproc_last_error(), "no free block of 65536 bytes") != NULL);
        EXPECT(strncmp(mproc_last_error(), "mproc_queue_create: ", 20) == 0);
        EXPECT(mproc_queue_put(&q[0], "x", 1, 0) == 0); /* what was made still works */
        EXPECT(mproc_queue_free(&q[n / 2]) == 0);
        EXPECT(mproc_queue_create(&q[n / 2], &(mproc_queue_opts){.capacity = 60000}) == 0); /* reused */
        EXPECT(mproc_queue_create(&big, &(mproc_queue_opts){.capacity = 60000}) == MPROC_ENOMEM);
        for (int i = 0; i < n; i++) EXPECT(mproc_queue_free(&q[i]) == 0);
        /* Half the arena and more: its block (the next power of two) cannot fit beside the
         * arena's header, even empty; the message says why, not "full". */
        EXPECT(mproc_queue_create(&big, &(mproc_queue_opts){.capacity = 600 << 10}) == MPROC_ENOMEM);
        EXPECT(strstr(mproc_last_error(), "needs a block of 1048576 bytes") != NULL);
        EXPECT(strstr(mproc_last_error(), "cannot hold it") != NULL);
        return 0;
    }
    fprintf(stderr, "usage: shared_limits bad BYTES | full\n");
    return 2;
}
