/* cluster_nodes - plain MPI, no mproc: proves the simulated cluster is one to Open MPI. Rank 0
 * prints, for every rank, its hostname and how many ranks share its node
 * (MPI_COMM_TYPE_SHARED), as "rank R host H node_ranks N". */
#include <mpi.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rank, size, shared;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    MPI_Comm node;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &node);
    MPI_Comm_size(node, &shared);
    char me[72] = {0};
    gethostname(me, 63);
    snprintf(me + 64, 8, "%d", shared);
    char all[64][72];
    MPI_Gather(me, 72, MPI_CHAR, size <= 64 ? all : NULL, 72, MPI_CHAR, 0, MPI_COMM_WORLD);
    if (rank == 0)
        for (int r = 0; r < size && r < 64; r++) printf("rank %d host %s node_ranks %s\n", r, all[r], all[r] + 64);
    MPI_Comm_free(&node);
    MPI_Finalize();
    return 0;
}
