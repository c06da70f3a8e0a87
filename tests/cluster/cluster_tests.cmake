# Multi-node tests (label cluster), included from tests/mpi_tests.cmake: clusters of 3 and 4
# hosts simulated with network namespaces on this machine (cluster.sh; needs root and
# iproute2). Skipped (exit 77, reason printed) where namespaces cannot be made.
mproc_mpi_exe(cluster_hosts ${CMAKE_CURRENT_LIST_DIR}/cluster_hosts.c)
mproc_mpi_exe(cluster_shared ${CMAKE_CURRENT_LIST_DIR}/cluster_shared.c)
add_executable(cluster_nodes ${CMAKE_CURRENT_LIST_DIR}/cluster_nodes.c)
target_link_libraries(cluster_nodes PRIVATE MPI::MPI_C)
target_compile_definitions(cluster_nodes PRIVATE _GNU_SOURCE)
mproc_warnings(cluster_nodes)
add_test(NAME cluster COMMAND env -u MPROC_BACKEND ${CMAKE_CURRENT_LIST_DIR}/run_cluster_tests.sh ${CMAKE_BINARY_DIR})
set_tests_properties(cluster PROPERTIES LABELS cluster TIMEOUT 1500 SKIP_RETURN_CODE 77 RUN_SERIAL TRUE
  ENVIRONMENT "${MPROC_MPI_TEST_ENV}")
