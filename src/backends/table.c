/* table.c - the backends mproc knows, by the name MPROC_BACKEND gives them. mproc_init looks a
 * backend up here; adding one is one line below, its folder and its CMake entry.
 */
#include <string.h>

#include "backend.h"

static const mproc__backend_ops *fork_ops(void) { return &mproc__backend_fork; }

static const mproc__backend_entry backends[] = {
    {.name = "fork", .kind = MPROC_BACKEND_FORK, .ops = fork_ops},
    {.name = "mpi", .kind = MPROC_BACKEND_MPI, .ops = mproc__backend_mpi_load},
};

const mproc__backend_entry *mproc__backend_find(const char *name) {
    for (size_t i = 0; name && i < sizeof backends / sizeof *backends; i++)
        if (strcmp(backends[i].name, name) == 0) return &backends[i];
    return NULL;
}

const char *mproc__backend_names(void) { return "fork, mpi"; }
