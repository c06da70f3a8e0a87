/* mpi_mca_defaults.c - the Open MPI settings mproc gives a job (README "Across nodes",
 * transport.h): the TCP eager limit and maximum send size raised to a packed frame's size, and
 * mpi_yield_when_idle 0, each only where the user has not set it. The master reads what Open
 * MPI actually uses, through MPI_T, and prints "name=value" lines; mpi_mca_defaults.sh runs it
 * with and without the user's own values. Usage: mpi_mca_defaults (under mpirun).
 */
#include <mpi.h>
#include <stdio.h>
#include <string.h>

#include "mproc.h"

/* Prints the value of the integer control variable `name`, or "name=?" if there is none. */
static void print_cvar(const char *name) {
    int index = -1, count = 0;
    long long value = -1;
    MPI_T_cvar_handle h;
    if (MPI_T_cvar_get_index(name, &index) != MPI_SUCCESS ||
        MPI_T_cvar_handle_alloc(index, NULL, &h, &count) != MPI_SUCCESS) {
        printf("%s=?\n", name);
        return;
    }
    char buf[64] = {0};
    if (count == 1 && MPI_T_cvar_read(h, buf) == MPI_SUCCESS) {
        MPI_Datatype type;
        int name_len = 0, desc_len = 0, verbosity, bind, scope;
        MPI_T_cvar_get_info(index, NULL, &name_len, &verbosity, &type, NULL, NULL, &desc_len, &bind, &scope);
        if (type == MPI_INT || type == MPI_UNSIGNED) value = *(int *)buf;
        else if (type == MPI_UNSIGNED_LONG || type == MPI_LONG) value = *(long *)buf;
        else if (type == MPI_UNSIGNED_LONG_LONG || type == MPI_LONG_LONG) value = *(long long *)buf;
        else if (type == MPI_C_BOOL) value = *(_Bool *)buf;
        else if (type == MPI_SIGNED_CHAR || type == MPI_CHAR) value = *(signed char *)buf;
        else if (type == MPI_UINT64_T || type == MPI_INT64_T) value = *(long long *)buf;
        else if (type == MPI_INT32_T || type == MPI_UINT32_T) value = *(int *)buf;
    }
    printf("%s=%lld\n", name, value);
    MPI_T_cvar_handle_free(&h);
}

int main(int argc, char **argv) {
    if (mproc_init(&argc, &argv) < 0) {
        fprintf(stderr, "%s\n", mproc_last_error());
        return 2;
    }
    int provided;
    if (MPI_T_init_thread(MPI_THREAD_SINGLE, &provided) != MPI_SUCCESS) {
        fprintf(stderr, "MPI_T_init_thread failed\n");
        return 2;
    }
    print_cvar("btl_tcp_eager_limit");
    print_cvar("btl_tcp_max_send_size");
    print_cvar("mpi_yield_when_idle");
    MPI_T_finalize();
    fflush(stdout);
    return mproc_finalize() < 0;
}
