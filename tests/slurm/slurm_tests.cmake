# slurm_tests.cmake - included from tests/CMakeLists.txt.
# The "slurm" test starts a private single-node Slurm (tests/slurm/slurm_env.sh) and runs
# jobs/*.sbatch through it with MPROC_BUILD_DIR=${CMAKE_BINARY_DIR}. It needs root, Slurm and
# munge (it tries `apt-get install -y slurm-wlm munge`), and Open MPI; without them it prints
# "SKIPPED: <reason>" and exits 77, which ctest reports as skipped.
#   ctest -L slurm --output-on-failure
add_test(NAME slurm
  COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/slurm/run_slurm_tests.sh ${CMAKE_BINARY_DIR})
set_tests_properties(slurm PROPERTIES
  LABELS slurm
  SKIP_RETURN_CODE 77
  TIMEOUT 600
  RUN_SERIAL TRUE)
