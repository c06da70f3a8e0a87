# MPI tests (label mpi), included by tests/CMakeLists.txt when MPI is found.
#
# The same test programs as the fork tests (test_pool, test_process) run under mpirun with 2, 4
# and 3 ranks, the last over TCP only (no shared memory between ranks, as across nodes); plus
# the MPI backend's own checks: its cmocka test, a program that owns MPI, the task-table check
# between ranks built differently, a worker rank that crashes, and efficiency without
# busy-waiting. MPROC_BACKEND is removed from the environment: the launcher decides.
#
# More ranks than cores needs --oversubscribe (always passed: harmless otherwise); a root
# user needs Open MPI's consent, given through the environment.
set(MPROC_MPIEXEC ${MPIEXEC_EXECUTABLE})
if(NOT MPROC_MPIEXEC)
  find_program(MPROC_MPIEXEC NAMES mpirun mpiexec)
endif()
if(NOT MPROC_MPIEXEC)
  message(STATUS "mproc: no mpirun found; MPI tests are not added")
  return()
endif()
# One executor per worker rank unless a test says otherwise, so that pool sizes do not depend on
# the machine's core count (the default shares a node's cores among its ranks).
set(MPROC_MPI_TEST_ENV "OMPI_ALLOW_RUN_AS_ROOT=1" "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1"
    "OMPI_MCA_rmaps_base_oversubscribe=1" "MPROC_MPI_EXECUTORS=1")

# mproc_mpi_test(NAME name TIMEOUT s COMMAND ...): a test labelled mpi, MPROC_BACKEND unset.
function(mproc_mpi_test)
  cmake_parse_arguments(T "" "NAME;TIMEOUT" "COMMAND;LABELS" ${ARGN})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 300)
  endif()
  add_test(NAME ${T_NAME} COMMAND env -u MPROC_BACKEND ${T_COMMAND})
  set(labels mpi ${T_LABELS})
  set_tests_properties(${T_NAME} PROPERTIES LABELS "${labels}" TIMEOUT ${T_TIMEOUT}
    ENVIRONMENT "${MPROC_MPI_TEST_ENV}")
endfunction()

# mproc_mpi_exe(name src...): a plain (non-cmocka) test program linked with mproc.
function(mproc_mpi_exe name)
  add_executable(${name} ${ARGN})
  mproc_link(${name})
  target_compile_definitions(${name} PRIVATE _GNU_SOURCE)
  mproc_warnings(${name})
endfunction()

# The shared pool/process tests, on three launches each.
foreach(exe test_pool test_process)
  mproc_mpi_test(NAME ${exe}_mpi2 COMMAND ${MPROC_MPIEXEC} -np 2 $<TARGET_FILE:${exe}>)
  mproc_mpi_test(NAME ${exe}_mpi4 COMMAND ${MPROC_MPIEXEC} -np 4 --oversubscribe $<TARGET_FILE:${exe}>)
  mproc_mpi_test(NAME ${exe}_mpi3_tcp COMMAND ${MPROC_MPIEXEC} -np 3 --oversubscribe
    --mca btl tcp,self $<TARGET_FILE:${exe}>)
  # One rank only: mproc falls back to local fork workers.
  mproc_mpi_test(NAME ${exe}_mpi1 COMMAND ${MPROC_MPIEXEC} -np 1 $<TARGET_FILE:${exe}>)
endforeach()

# The fault suite: under MPI each worker rank runs its tasks in an executor process, so a crash,
# a time limit or terminate costs a task, never the job or a rank.
mproc_mpi_test(NAME test_faults_mpi4 COMMAND ${MPROC_MPIEXEC} -np 4 --oversubscribe $<TARGET_FILE:test_faults>)
mproc_mpi_test(NAME test_faults_mpi3_tcp COMMAND ${MPROC_MPIEXEC} -np 3 --oversubscribe
  --mca btl tcp,self $<TARGET_FILE:test_faults>)
# The fault table's fine print (sentences, retries counted, per-item limits, life cycle).
mproc_mpi_test(NAME test_fault_rules_mpi4 COMMAND ${MPROC_MPIEXEC} -np 4 --oversubscribe $<TARGET_FILE:test_fault_rules>)
# Cancel, fail_fast, waiting on many and progress: a cancelled running task's executor is killed.
mproc_mpi_test(NAME test_futures_mpi4 COMMAND ${MPROC_MPIEXEC} -np 4 --oversubscribe $<TARGET_FILE:test_futures>)
mproc_mpi_test(NAME test_futures_mpi3_tcp COMMAND ${MPROC_MPIEXEC} -np 3 --oversubscribe
  --mca btl tcp,self $<TARGET_FILE:test_futures>)
# The same with tasks inside the ranks (MPROC_MPI_EXECUTORS=0): a cancelled running task runs on.
mproc_mpi_test(NAME test_futures_mpi4_in_rank COMMAND ${MPROC_MPIEXEC} -np 4 --oversubscribe
  -x MPROC_MPI_EXECUTORS=0 $<TARGET_FILE:test_futures>)
# Queue, Lock, Event, Barrier... between the master and tasks/Processes on worker ranks.
mproc_mpi_test(NAME test_shared_mpi4 COMMAND ${MPROC_MPIEXEC} -np 4 --oversubscribe $<TARGET_FILE:test_shared>)
mproc_mpi_test(NAME test_shared_mpi3_tcp COMMAND ${MPROC_MPIEXEC} -np 3 --oversubscribe
  --mca btl tcp,self $<TARGET_FILE:test_shared>)
mproc_mpi_test(NAME test_items_mpi4 COMMAND ${MPROC_MPIEXEC} -np 4 --oversubscribe $<TARGET_FILE:test_items>)
mproc_mpi_test(NAME test_items_mpi3_tcp COMMAND ${MPROC_MPIEXEC} -np 3 --oversubscribe
  --mca btl tcp,self $<TARGET_FILE:test_items>)
mproc_mpi_test(NAME test_journal_mpi4 COMMAND ${MPROC_MPIEXEC} -np 4 --oversubscribe $<TARGET_FILE:test_journal>)
mproc_mpi_test(NAME journal_kill_mpi TIMEOUT 400 COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/journal/journal_kill.sh
  $<TARGET_FILE:journal_victim> ${MPROC_MPIEXEC} -np 3 --oversubscribe)
mproc_mpi_test(NAME progress_tty_mpi TIMEOUT 120 COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/progress/progress_tty.sh
  $<TARGET_FILE:progress_demo> ${MPROC_MPIEXEC} -np 3 --oversubscribe)
set_tests_properties(progress_tty_mpi PROPERTIES SKIP_RETURN_CODE 77)
# The hybrid layout: 2 executors per worker rank (as one rank per node runs one per core).
foreach(exe test_pool test_process test_faults)
  mproc_mpi_test(NAME ${exe}_mpi2_hybrid COMMAND ${MPROC_MPIEXEC} -np 2 --oversubscribe --bind-to none
    -x MPROC_MPI_EXECUTORS=2 $<TARGET_FILE:${exe}>)
endforeach()
mproc_mpi_test(NAME mpi_backend_hybrid COMMAND ${MPROC_MPIEXEC} -np 3 --oversubscribe
  -x MPROC_MPI_EXECUTORS=2 $<TARGET_FILE:mpi_backend>)
# `auto` (an executor per CPU a rank may use) and unset (the node's CPUs shared among its ranks):
# the pool's size is what docs/mpi.md says, and the backend's checks pass. Unbound, so that every
# rank may use the CPUs the master may.
mproc_mpi_test(NAME mpi_backend_executors_auto COMMAND ${MPROC_MPIEXEC} -np 3 --oversubscribe --bind-to none
  -x MPROC_MPI_EXECUTORS=auto $<TARGET_FILE:mpi_backend>)
mproc_mpi_test(NAME mpi_backend_executors_unset COMMAND env -u MPROC_MPI_EXECUTORS ${MPROC_MPIEXEC} -np 3
  --oversubscribe --bind-to none $<TARGET_FILE:mpi_backend>)
# Frame rings of 64 KiB (MPROC_MPI_EXEC_RING): frames of 32 KiB and up, and any that meet a full
# ring, take the socket, interleaved with ring frames in one order; and with no rings at all.
foreach(exe test_pool test_faults)
  mproc_mpi_test(NAME ${exe}_mpi3_small_rings COMMAND ${MPROC_MPIEXEC} -np 3 --oversubscribe
    -x MPROC_MPI_EXEC_RING=65536 $<TARGET_FILE:${exe}>)
endforeach()
mproc_mpi_test(NAME test_pool_mpi3_no_rings COMMAND ${MPROC_MPIEXEC} -np 3 --oversubscribe
  -x MPROC_MPI_EXEC_RING=0 $<TARGET_FILE:test_pool>)
# A bad value among the MPROC_ variables ends the job at its start (mpi_expect_fail.sh: within
# 60 s, a non-zero exit, and a sentence naming the variable on stderr): every MPI setting is
# checked by mproc_init on every rank before MPI starts, whichever rank uses it, so mproc_init
# fails with it (test_support.h prints the error, which starts "mproc_init: ").
function(mproc_mpi_bad_env name np var value pattern)
  mproc_mpi_test(NAME ${name} TIMEOUT 90 COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/mpi_expect_fail.sh 60 "${pattern}"
    ${MPROC_MPIEXEC} -np ${np} --oversubscribe ${ARGN} -x ${var}=${value} $<TARGET_FILE:test_process>)
endfunction()
mproc_mpi_bad_env(mpi_bad_exec_ring_env 3 MPROC_MPI_EXEC_RING abc
  "^mproc_init: MPROC_MPI_EXEC_RING='abc': want 0 [(]no rings[)] or bytes")
# Read even where no executor uses it (tasks in the ranks): a typo is never silently taken.
mproc_mpi_bad_env(mpi_bad_exec_ring_env_in_rank 3 MPROC_MPI_EXEC_RING abc
  "^mproc_init: MPROC_MPI_EXEC_RING='abc': want 0 [(]no rings[)] or bytes" -x MPROC_MPI_EXECUTORS=0)
mproc_mpi_bad_env(mpi_bad_exec_mailbox_env 3 MPROC_MPI_EXEC_MAILBOX abc
  "^mproc_init: MPROC_MPI_EXEC_MAILBOX='abc': want 0 [(]off[)] or 1")
mproc_mpi_bad_env(mpi_bad_exec_mailbox_env_in_rank 3 MPROC_MPI_EXEC_MAILBOX abc
  "^mproc_init: MPROC_MPI_EXEC_MAILBOX='abc': want 0 [(]off[)] or 1" -x MPROC_MPI_EXECUTORS=0)
mproc_mpi_bad_env(mpi_bad_executors_env 3 MPROC_MPI_EXECUTORS abc
  "^mproc_init: MPROC_MPI_EXECUTORS='abc': want 0 [(]tasks in the rank[)], 1..256 or auto")
mproc_mpi_bad_env(mpi_bad_executors_count_env 3 MPROC_MPI_EXECUTORS 257
  "^mproc_init: MPROC_MPI_EXECUTORS='257': want 0 [(]tasks in the rank[)], 1..256 or auto")
mproc_mpi_bad_env(mpi_bad_start_timeout_env 3 MPROC_MPI_START_TIMEOUT abc "^mproc_init: MPROC_MPI_START_TIMEOUT='abc': want seconds")
mproc_mpi_bad_env(mpi_bad_lost_timeout_nan_env 3 MPROC_MPI_LOST_TIMEOUT nan
  "^mproc_init: MPROC_MPI_LOST_TIMEOUT='nan': want seconds [(]0: never[)]")
mproc_mpi_bad_env(mpi_bad_lost_timeout_env 3 MPROC_MPI_LOST_TIMEOUT abc
  "^mproc_init: MPROC_MPI_LOST_TIMEOUT='abc': want seconds [(]0: never[)]")
mproc_mpi_bad_env(mpi_bad_shared_broker_addr_env 2 MPROC_SHARED_BROKER_ADDR 127.0.0.1
  "^mproc_init: MPROC_SHARED_BROKER_ADDR='127.0.0.1': want an IPv4 address other nodes can reach")
mproc_mpi_bad_env(mpi_bad_shared_broker_env 2 MPROC_SHARED_BROKER yes "^mproc_init: MPROC_SHARED_BROKER='yes': want 0 or 1")
mproc_mpi_bad_env(mpi_bad_fork_each_rank_env 2 MPROC_FORK_EACH_RANK yes "^mproc_init: MPROC_FORK_EACH_RANK='yes': want 0 or 1"
  -x MPROC_BACKEND=fork)
# Refused on MPI too, where it does not matter: a typo is never silently taken.
mproc_mpi_bad_env(mpi_bad_fork_each_rank_env_on_mpi 2 MPROC_FORK_EACH_RANK yes "^mproc_init: MPROC_FORK_EACH_RANK='yes': want 0 or 1")
# The rings' mailboxes off (MPROC_MPI_EXEC_MAILBOX=0): every frame's reference by socket.
mproc_mpi_test(NAME test_pool_mpi3_no_mailboxes COMMAND ${MPROC_MPIEXEC} -np 3 --oversubscribe
  -x MPROC_MPI_EXEC_MAILBOX=0 $<TARGET_FILE:test_pool>)
# Without executors (MPROC_MPI_EXECUTORS=0: tasks run inside the ranks) the pool suite still passes.
mproc_mpi_test(NAME test_pool_mpi4_in_rank COMMAND ${MPROC_MPIEXEC} -np 4 --oversubscribe
  -x MPROC_MPI_EXECUTORS=0 $<TARGET_FILE:test_pool>)

# A worker rank's own process killed mid-map while mpirun keeps the job (--enable-recovery): the
# map finishes with every result right, the pool and Processes go on without it, the job ends 0.
mproc_mpi_exe(mpi_lost_rank mpi_lost_rank.c)
mproc_mpi_test(NAME mpi_lost_rank TIMEOUT 200
  COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/mpi_lost_rank.sh ${MPROC_MPIEXEC} $<TARGET_FILE:mpi_lost_rank>)
mproc_mpi_test(NAME mpi_lost_rank_tcp TIMEOUT 200
  COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/mpi_lost_rank.sh ${MPROC_MPIEXEC} $<TARGET_FILE:mpi_lost_rank> --mca btl tcp,self)
# Four worker ranks lost one after another, down to none: a Process whose rank is lost ends -9, a
# task lost twice fails with MPROC_EWORKER, with no live rank left every task fails at once.
mproc_mpi_exe(mpi_lost_ranks mpi_lost_ranks.c)
mproc_mpi_test(NAME mpi_lost_ranks TIMEOUT 200
  COMMAND env MPROC_TEST_NP=5 MPROC_TEST_LOSSES=4
  ${CMAKE_CURRENT_SOURCE_DIR}/mpi_lost_rank.sh ${MPROC_MPIEXEC} $<TARGET_FILE:mpi_lost_ranks>)
# The hybrid layout (two executors per rank): an item that kills every rank it runs on fails
# alone; the chunks re-run after the first loss never share its rank.
mproc_mpi_exe(mpi_lost_rank_hybrid mpi_lost_rank_hybrid.c)
mproc_mpi_test(NAME mpi_lost_rank_hybrid TIMEOUT 200
  COMMAND env MPROC_TEST_LOSSES=2
  ${CMAKE_CURRENT_SOURCE_DIR}/mpi_lost_rank.sh ${MPROC_MPIEXEC} $<TARGET_FILE:mpi_lost_rank_hybrid> -x MPROC_MPI_EXECUTORS=2)

# Work queued behind a lost rank's re-run chunks goes out while they wait for a rank to drain
# (one rank is kept for them); held back until a rank drained, this map waits on itself.
mproc_mpi_exe(mpi_lost_rank_queue mpi_lost_rank_queue.c)
mproc_mpi_test(NAME mpi_lost_rank_queue TIMEOUT 200
  COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/mpi_lost_rank.sh ${MPROC_MPIEXEC} $<TARGET_FILE:mpi_lost_rank_queue> -x MPROC_MPI_EXECUTORS=2)

# Ranks lost in a pool initializer (the pool goes on with the ranks left; with none left every
# task fails with MPROC_EINITFAIL naming it) and by a task under a time limit (EWORKER, two ranks).
mproc_mpi_exe(mpi_lost_rank_edges mpi_lost_rank_edges.c)
mproc_mpi_test(NAME mpi_lost_rank_edges TIMEOUT 200
  COMMAND env MPROC_TEST_NP=5 MPROC_TEST_LOSSES=4
  ${CMAKE_CURRENT_SOURCE_DIR}/mpi_lost_rank.sh ${MPROC_MPIEXEC} $<TARGET_FILE:mpi_lost_rank_edges>)

# The master SIGKILLed under --enable-recovery: the worker ranks on its node end themselves.
mproc_mpi_exe(mpi_dead_master mpi_dead_master.c)
mproc_mpi_test(NAME mpi_dead_master TIMEOUT 120
  COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/mpi_dead_master.sh ${MPROC_MPIEXEC} $<TARGET_FILE:mpi_dead_master>)

# Scale: 32 and 64 ranks on this machine (oversubscribed), alone so their timing does not
# disturb other tests.
foreach(np 32 64)
  foreach(exe test_pool test_process)
    mproc_mpi_test(NAME ${exe}_mpi${np} TIMEOUT 600 COMMAND ${MPROC_MPIEXEC} -np ${np} --oversubscribe $<TARGET_FILE:${exe}>)
    set_tests_properties(${exe}_mpi${np} PROPERTIES RUN_SERIAL TRUE)
  endforeach()
endforeach()

# The seed jobs through mpirun.sh.
if(TARGET primes)
  mproc_mpi_test(NAME jobs_seeds_mpi TIMEOUT 600
    COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/check_jobs.sh $<TARGET_FILE_DIR:primes> mpi)
  # The test runs what ctest built; mpirun.sh must not go and build something else.
  set_tests_properties(jobs_seeds_mpi PROPERTIES ENVIRONMENT "${MPROC_MPI_TEST_ENV};MPROC_NO_BUILD=1")
endif()

# The MPI backend's own behaviour.
mproc_test_exe(mpi_backend mpi_backend.c)
mproc_mpi_test(NAME mpi_backend COMMAND ${MPROC_MPIEXEC} -np 3 --oversubscribe $<TARGET_FILE:mpi_backend>)
mproc_mpi_test(NAME mpi_backend_tcp COMMAND ${MPROC_MPIEXEC} -np 4 --oversubscribe
  --mca btl tcp,self $<TARGET_FILE:mpi_backend>)

# The Open MPI settings mproc gives a job (TCP eager limit, send size, yield) only where the user
# set none: read back through MPI_T.
mproc_mpi_exe(mpi_mca_defaults mpi_mca_defaults.c)
target_link_libraries(mpi_mca_defaults PRIVATE MPI::MPI_C)
mproc_mpi_test(NAME mpi_mca_defaults TIMEOUT 150
  COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/mpi_mca_defaults.sh ${MPROC_MPIEXEC} $<TARGET_FILE:mpi_mca_defaults>)

# A program that calls MPI_Init itself: mproc uses its MPI and leaves finalizing to it.
mproc_mpi_exe(mpi_user_init mpi_user_init.c)
target_link_libraries(mpi_user_init PRIVATE MPI::MPI_C)
mproc_mpi_test(NAME mpi_user_init COMMAND ${MPROC_MPIEXEC} -np 3 --oversubscribe $<TARGET_FILE:mpi_user_init>)
mproc_mpi_test(NAME mpi_user_init_np1 COMMAND ${MPROC_MPIEXEC} -np 1 $<TARGET_FILE:mpi_user_init>)
mproc_mpi_test(NAME mpi_user_init_no_mproc_finalize TIMEOUT 60
  COMMAND ${MPROC_MPIEXEC} -np 3 --oversubscribe $<TARGET_FILE:mpi_user_init> no-mproc-finalize)

# Ranks built with different task tables: a clear error naming the rank, never a hang.
mproc_mpi_exe(mpi_registry_a mpi_registry_prog.c)
mproc_mpi_exe(mpi_registry_b mpi_registry_prog.c)
target_compile_definitions(mpi_registry_b PRIVATE MPROC_EXTRA_TASK=1)
mproc_mpi_test(NAME mpi_registry_mismatch TIMEOUT 200
  COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/mpi_registry_mismatch.sh ${MPROC_MPIEXEC}
  $<TARGET_FILE:mpi_registry_a> $<TARGET_FILE:mpi_registry_b>)

# Worker ranks in pid namespaces of their own on the master's host name (docs/shared.md: two
# nodes): they must not watch the master's pid, which means another process there.
mproc_mpi_test(NAME mpi_pid_namespace TIMEOUT 300
  COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/mpi_pid_namespace.sh ${MPROC_MPIEXEC} $<TARGET_FILE:test_process>)
set_tests_properties(mpi_pid_namespace PROPERTIES SKIP_RETURN_CODE 77)
# Cancel where ranks run tasks themselves: the call settles at once, the task runs on, its
# result is dropped and never taken for the next call's (README, "Cancel, wait, fail fast").
mproc_mpi_exe(mpi_cancel_in_rank mpi_cancel_in_rank.c)
mproc_mpi_test(NAME mpi_cancel_in_rank COMMAND ${MPROC_MPIEXEC} -np 3 --oversubscribe
  -x MPROC_MPI_EXECUTORS=0 $<TARGET_FILE:mpi_cancel_in_rank>)
set_tests_properties(mpi_cancel_in_rank PROPERTIES PASS_REGULAR_EXPRESSION "mpi_cancel_in_rank: ok")
# Worker ranks with different numbers of executors (as nodes of different sizes, each rank
# reading its own MPROC_MPI_EXECUTORS): every task's index and name agree with the master's
# numbering. Also a rank that runs its tasks itself beside one with executors.
mproc_mpi_exe(mpi_uneven_executors mpi_uneven_executors.c)
mproc_mpi_test(NAME mpi_uneven_executors COMMAND ${MPROC_MPIEXEC} --oversubscribe
  -np 1 $<TARGET_FILE:mpi_uneven_executors> 3 1 : -np 1 -x MPROC_MPI_EXECUTORS=3 $<TARGET_FILE:mpi_uneven_executors> 3 1
  : -np 1 -x MPROC_MPI_EXECUTORS=1 $<TARGET_FILE:mpi_uneven_executors> 3 1)
set_tests_properties(mpi_uneven_executors PROPERTIES PASS_REGULAR_EXPRESSION "mpi_uneven_executors: ok")
mproc_mpi_test(NAME mpi_uneven_executors_in_rank COMMAND ${MPROC_MPIEXEC} --oversubscribe
  -np 1 $<TARGET_FILE:mpi_uneven_executors> 0 2 : -np 1 -x MPROC_MPI_EXECUTORS=0 $<TARGET_FILE:mpi_uneven_executors> 0 2
  : -np 1 -x MPROC_MPI_EXECUTORS=2 $<TARGET_FILE:mpi_uneven_executors> 0 2)
set_tests_properties(mpi_uneven_executors_in_rank PROPERTIES PASS_REGULAR_EXPRESSION "mpi_uneven_executors: ok")
# The pool option workers_per_rank: pools with 1, 2 (and 3 processes), 99 and the default, one
# after another, each get exactly each rank's first few workers, numbered 0..size-1 as tasks see
# them; also beside a rank that runs its tasks itself (told its number in each pool).
mproc_mpi_exe(mpi_workers_per_rank mpi_workers_per_rank.c)
foreach(layout "3;2" "2;0")
  string(REPLACE ";" "_" tag "${layout}")
  list(GET layout 0 k1)
  list(GET layout 1 k2)
  mproc_mpi_test(NAME mpi_workers_per_rank_${tag} COMMAND ${MPROC_MPIEXEC} --oversubscribe
    -np 1 $<TARGET_FILE:mpi_workers_per_rank> ${k1} ${k2}
    : -np 1 -x MPROC_MPI_EXECUTORS=${k1} $<TARGET_FILE:mpi_workers_per_rank> ${k1} ${k2}
    : -np 1 -x MPROC_MPI_EXECUTORS=${k2} $<TARGET_FILE:mpi_workers_per_rank> ${k1} ${k2})
  set_tests_properties(mpi_workers_per_rank_${tag} PROPERTIES PASS_REGULAR_EXPRESSION "mpi_workers_per_rank: ok")
endforeach()
# A rank that never reaches mproc_init (here: sleeps 60 s before it, a worker or the master):
# with MPROC_MPI_START_TIMEOUT=2 the job ends within seconds, non-zero, saying why; MPI_Init
# itself waits for every rank, so the bound must hold there too.
mproc_mpi_exe(mpi_late_rank mpi_late_rank.c)
foreach(late 2 0)
  mproc_mpi_test(NAME mpi_start_timeout_rank${late} TIMEOUT 120
    COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/mpi_expect_fail.sh 30 "MPI_Init did not finish within 2 s: some of the job's 3 ranks never called mproc_init"
    ${MPROC_MPIEXEC} -np 3 --oversubscribe -x MPROC_TEST_LATE_RANK=${late} -x MPROC_MPI_START_TIMEOUT=2
    $<TARGET_FILE:mpi_late_rank>)
endforeach()
mproc_mpi_test(NAME mpi_start_timeout_none_late TIMEOUT 120
  COMMAND ${MPROC_MPIEXEC} -np 3 --oversubscribe -x MPROC_MPI_START_TIMEOUT=2 $<TARGET_FILE:mpi_late_rank>)
set_tests_properties(mpi_start_timeout_none_late PROPERTIES PASS_REGULAR_EXPRESSION "mpi_late_rank: ok")
mproc_mpi_test(NAME finalize_waits_mpi3 TIMEOUT 60 COMMAND ${MPROC_MPIEXEC} -np 3 --oversubscribe $<TARGET_FILE:finalize_waits>)
set_tests_properties(finalize_waits_mpi3 PROPERTIES PASS_REGULAR_EXPRESSION "finalize_waits: ok")
# A job ended from outside (SIGTERM or SIGINT to mpirun, SIGKILL to the master or a worker rank)
# leaves no rank, fork server or executor behind.
mproc_mpi_test(NAME mpi_signal_cleanup TIMEOUT 300
  COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/mpi_signal_cleanup.sh ${MPROC_MPIEXEC} $<TARGET_FILE:fault_master>)
# Without executors (MPROC_MPI_EXECUTORS=0), a worker rank that segfaults mid-map: the job ends
# within 10 s, non-zero, rank and task named.
mproc_mpi_exe(mpi_rank_crash mpi_rank_crash.c)
mproc_mpi_test(NAME mpi_rank_crash TIMEOUT 120
  COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/mpi_rank_crash.sh ${MPROC_MPIEXEC} $<TARGET_FILE:mpi_rank_crash> 1)
mproc_mpi_test(NAME mpi_rank_crash_repeat TIMEOUT 900
  COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/mpi_rank_crash.sh ${MPROC_MPIEXEC} $<TARGET_FILE:mpi_rank_crash> 20)

# A relaying rank polls for its executor's reply only while one is due within microseconds:
# not through a long task after quick ones, nor while the pool is idle (CPU time, not wall time).
mproc_mpi_exe(mpi_relay_idle mpi_relay_idle.c)
mproc_mpi_test(NAME mpi_relay_idle TIMEOUT 120
  COMMAND ${MPROC_MPIEXEC} -np 2 --oversubscribe $<TARGET_FILE:mpi_relay_idle>)
set_tests_properties(mpi_relay_idle PROPERTIES PASS_REGULAR_EXPRESSION "mpi_relay_idle: ok" SKIP_RETURN_CODE 77)

# 1 ms tasks on 2 worker ranks + a master, on however many cores: no busy-waiting. Timing is
# disturbed by other tests, so it runs alone (label perf: `ctest -LE perf` leaves it out on a
# shared, loaded machine).
mproc_mpi_exe(mpi_efficiency mpi_efficiency.c)
mproc_mpi_test(NAME mpi_efficiency TIMEOUT 300 LABELS perf
  COMMAND ${MPROC_MPIEXEC} -np 3 --oversubscribe $<TARGET_FILE:mpi_efficiency>)
set_tests_properties(mpi_efficiency PROPERTIES RUN_SERIAL TRUE)

# A worker rank that sends the master garbage: the master names the rank and aborts the job. The
# garbage is sent through MPI from inside a task, so the task runs in the rank itself
# (MPROC_MPI_EXECUTORS=0): an executor has no MPI to send it with.
mproc_mpi_exe(mpi_bad_frame mpi_bad_frame.c)
target_include_directories(mpi_bad_frame PRIVATE ${PROJECT_SOURCE_DIR}/src)
target_link_libraries(mpi_bad_frame PRIVATE MPI::MPI_C mproc_mpi)
mproc_mpi_test(NAME mpi_bad_frame TIMEOUT 120
  COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/mpi_expect_fail.sh 60 "mproc: .*bad frame header from rank [12]"
  ${MPROC_MPIEXEC} -np 3 --oversubscribe -x MPROC_MPI_EXECUTORS=0 $<TARGET_FILE:mpi_bad_frame>)

# MPROC_BACKEND=fork under an MPI launch of several ranks would run the whole program once per
# rank: refused with a sentence saying what to do, unless MPROC_FORK_EACH_RANK=1 means it.
mproc_mpi_test(NAME mpi_fork_backend_refused TIMEOUT 120
  COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/mpi_expect_fail.sh 60 "MPROC_BACKEND=fork, but an MPI launcher started 2 ranks"
  ${MPROC_MPIEXEC} -np 2 --oversubscribe -x MPROC_BACKEND=fork $<TARGET_FILE:test_process>)
mproc_mpi_test(NAME mpi_fork_each_rank COMMAND ${MPROC_MPIEXEC} -np 2 --oversubscribe
  -x MPROC_BACKEND=fork -x MPROC_FORK_EACH_RANK=1 $<TARGET_FILE:test_process>)

# Across nodes: clusters simulated with network namespaces (label cluster).
include(${CMAKE_CURRENT_SOURCE_DIR}/cluster/cluster_tests.cmake)

# The MPI backend as a module of its own: MPROC_MPI_MODULE loads a copy from elsewhere; a module
# that cannot be loaded is MPROC_ENOTBUILT with the loader's reason (MPROC_BACKEND=mpi), or, chosen
# by itself under mpirun, the job once on rank 0's fork workers after saying why (docs/mpi.md).
mproc_mpi_test(NAME mpi_module TIMEOUT 300
  COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/mpi_module.sh ${MPROC_MPIEXEC} $<TARGET_FILE:primes> $<TARGET_FILE:mproc_mpi>)
set_tests_properties(mpi_module PROPERTIES PASS_REGULAR_EXPRESSION "mpi_module: ok")

# More executors than the CPUs a rank's binding allows (mpirun binds each rank to one core with
# --bind-to core, its default at -np 2 and below): the rank warns, naming the fix, and works on.
cmake_host_system_information(RESULT mproc_cores QUERY NUMBER_OF_LOGICAL_CORES)
if(mproc_cores GREATER_EQUAL 2)
  mproc_mpi_test(NAME mpi_executors_bound_warning COMMAND ${MPROC_MPIEXEC} -np 2 --bind-to core
    -x MPROC_MPI_EXECUTORS=2 $<TARGET_FILE:test_process>)
  set_tests_properties(mpi_executors_bound_warning PROPERTIES
    PASS_REGULAR_EXPRESSION "warning: worker rank 1 [(]host [^)]*[)] runs 2 executors [(]MPROC_MPI_EXECUTORS[)] on the 1 of [0-9]+ CPUs its binding lets it use[^~]*add --bind-to none[^~]*PASSED"
    FAIL_REGULAR_EXPRESSION "FAILED")
endif()

# A worker rank's fork server killed mid-job: the task running there fails, the rank warns and
# forks its executors and Processes itself from then on; every worker keeps working.
mproc_mpi_exe(mpi_fork_server_killed mpi_fork_server_killed.c)
mproc_mpi_test(NAME mpi_fork_server_killed TIMEOUT 120 COMMAND ${MPROC_MPIEXEC} -np 3 --oversubscribe
  $<TARGET_FILE:mpi_fork_server_killed>)
set_tests_properties(mpi_fork_server_killed PROPERTIES
  PASS_REGULAR_EXPRESSION "warning: worker rank [12] [(]host [^)]*[)]: its fork server [(]pid [0-9]+[)] killed by signal 9 [^~]*forked from the rank from now on[^~]*mpi_fork_server_killed: ok")
mproc_mpi_test(NAME mpi_fork_server_killed_process TIMEOUT 120 COMMAND ${MPROC_MPIEXEC} -np 2 --oversubscribe
  $<TARGET_FILE:mpi_fork_server_killed> process)
set_tests_properties(mpi_fork_server_killed_process PROPERTIES PASS_REGULAR_EXPRESSION "mpi_fork_server_killed: ok")

# A task that closes every descriptor from 3 up: with executors only its call fails (the executor
# lost its channel); inside the ranks MPI's connections go too, and the job ends naming the task
# instead of hanging (shared memory and TCP).
mproc_mpi_exe(mpi_closed_fds mpi_closed_fds.c)
mproc_mpi_test(NAME mpi_closed_fds COMMAND ${MPROC_MPIEXEC} -np 3 --oversubscribe $<TARGET_FILE:mpi_closed_fds>)
set_tests_properties(mpi_closed_fds PROPERTIES PASS_REGULAR_EXPRESSION "mpi_closed_fds: ok")
foreach(btl IN ITEMS "vader,self" "tcp,self")
  string(REGEX REPLACE ",self" "" tag "${btl}")
  mproc_mpi_test(NAME mpi_closed_fds_in_rank_${tag} TIMEOUT 90
    COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/mpi_expect_fail.sh 60
      "mproc: worker rank [12] \\(pid [0-9]+\\): a task closed file descriptors it did not open, MPI's among them \\(the last task this rank ran: '(close_all_fds|twice)'"
      ${MPROC_MPIEXEC} -np 3 --oversubscribe --mca btl ${btl} -x MPROC_MPI_EXECUTORS=0 $<TARGET_FILE:mpi_closed_fds>)
endforeach()

# terminate and free wait for every executor they killed, also one the master still counts as
# starting (its EXEC_STARTED on the way while its rank already feeds it): run against a test
# build of the backend whose master never hears EXEC_STARTED and whose ranks act on each SKIP
# 1 ms late (routing.c, rank.c: MPROC_TEST_LAGGING), loaded with MPROC_MPI_MODULE. Never
# installed; the product module is built without it.
mproc_add_mpi_module(mproc_mpi_lagging)
target_compile_definitions(mproc_mpi_lagging PRIVATE MPROC_TEST_LAGGING=1)
mproc_mpi_exe(mpi_terminate_starting mpi_terminate_starting.c)
add_dependencies(mpi_terminate_starting mproc_mpi_lagging)
mproc_mpi_test(NAME mpi_terminate_starting TIMEOUT 180 COMMAND ${MPROC_MPIEXEC} -np 5 --oversubscribe
  -x MPROC_MPI_MODULE=$<TARGET_FILE:mproc_mpi_lagging> $<TARGET_FILE:mpi_terminate_starting>)
set_tests_properties(mpi_terminate_starting PROPERTIES PASS_REGULAR_EXPRESSION "mpi_terminate_starting: ok"
  FAIL_REGULAR_EXPRESSION "was not reported gone")

# ... and that wait is bounded: a rank stopped (SIGSTOP) while its executor runs a task cannot
# report it killed; join returns after 15 s with the master's warning, and the rank, continued,
# serves the next pool. MPROC_MPI_LOST_TIMEOUT keeps the watchdog from declaring it lost first.
mproc_mpi_exe(mpi_terminate_stopped_rank mpi_terminate_stopped_rank.c)
mproc_mpi_test(NAME mpi_terminate_stopped_rank TIMEOUT 120 COMMAND ${MPROC_MPIEXEC} -np 2 --oversubscribe
  -x MPROC_MPI_LOST_TIMEOUT=120 $<TARGET_FILE:mpi_terminate_stopped_rank>)
set_tests_properties(mpi_terminate_stopped_rank PROPERTIES PASS_REGULAR_EXPRESSION
  "mproc: warning: worker rank 1 [(]host [^)]*[)]: executor 0 was not reported gone 15 s after the pool was terminated[^~]*mpi_terminate_stopped_rank: ok")
