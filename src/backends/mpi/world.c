/* world.c - the MPI backend's communicator, lock and fatal exit (world.h). */
#include <stdarg.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backends/mpi/world.h"

mproc__mpi_world mproc__mpi = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* ---------------------------------------------------------------------------------------------
 * Fatal errors.
 * ------------------------------------------------------------------------------------------- */

_Noreturn void mproc__mpi_fatal(const char *fmt, ...) {
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "mproc: %s\n", msg);
    fflush(NULL);
    /* The whole job goes: a lost frame would otherwise leave some rank waiting forever. */
    MPI_Abort(mproc__mpi.size > 0 ? mproc__mpi.comm : MPI_COMM_WORLD, 1);
    _exit(1);
}

uint64_t mproc__mpi_pid_namespace(void) {
    struct stat st;
    return stat("/proc/self/ns/pid", &st) == 0 ? (uint64_t)st.st_ino : 0;
}

void mproc__mpi_ok(int rc, const char *what) {
    if (rc == MPI_SUCCESS) return;
    char text[MPI_MAX_ERROR_STRING];
    int n = 0;
    if (MPI_Error_string(rc, text, &n) != MPI_SUCCESS) snprintf(text, sizeof text, "code %d", rc);
    mproc__mpi_fatal("rank %d: %s failed: %s", mproc__mpi.rank, what, text);
}

