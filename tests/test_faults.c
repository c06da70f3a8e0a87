/* test_faults - faults that break Python's pools, on both backends (under MPI every worker rank
 * runs its tasks in an executor process it supervises): a task retried after its worker died,
 * crashes in a map, a worker that writes garbage or a truncated frame (treated as dead, never
 * trusted), time limits and terminate that stop running tasks; and on fork, Ctrl-C / SIGTERM to
 * a master in the middle of a map (no worker survives it).
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "mproc.h"
#include "marked_tasks.h"
#include "test_support.h"

typedef struct once_arg {
    long master;
    long id;
} once_arg;

/* Crashes its worker the first time it runs for a given id, succeeds the second time. */
static long crash_once(once_arg a) {
    char path[96];
    snprintf(path, sizeof path, "/tmp/mproc-retry-%ld-%ld", a.master, a.id);
    int fd = open(path, O_CREAT | O_EXCL | O_WRONLY, 0600);
    if (fd >= 0) {
        close(fd);
        raise(SIGKILL);
    }
    unlink(path);
    return a.id * 10;
}
MPROC_TASK_VALUE(crash_once, once_arg, long);

/* Writes to every socket this worker holds: its channel to the master. */
static void write_to_master(const void *bytes, size_t len) {
    for (int fd = 3; fd < 256; fd++) {
        struct stat st;
        if (fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode)) {
            ssize_t w = write(fd, bytes, len);
            (void)w;
        }
    }
}

static long garbage(long kind) {
    if (kind == 1) { /* bad magic */
        static const char junk[32] = "this is not an mproc frame!!!!!";
        write_to_master(junk, sizeof junk);
        sleep(5);
    } else if (kind == 2) { /* a valid header promising 1000 bytes, then silence and exit */
        uint8_t h[24] = {'M', 'P', 'R', 'C', 1, 0, 2, 0};
        h[16] = 0xe8;
        h[17] = 0x03;
        write_to_master(h, sizeof h);
        _exit(0);
    }
    return kind;
}
MPROC_TASK_VALUE(garbage, long, long);

static int die_in_init(mproc_ctx *ctx, const void *in, size_t len) {
    raise(SIGKILL);
    return 0;
}
MPROC_TASK(die_in_init);

/* Counts its runs in a file named by the master's pid, then crashes its worker. */
static int count_then_crash(mproc_ctx *ctx, const void *in, size_t len) {
    char path[96];
    snprintf(path, sizeof path, "/tmp/mproc-initcount-%ld", *(const long *)in);
    int fd = open(path, O_CREAT | O_WRONLY | O_APPEND, 0600);
    if (fd >= 0) {
        ssize_t w = write(fd, "x", 1);
        (void)w;
        close(fd);
    }
    raise(SIGSEGV);
    return 0;
}
MPROC_TASK(count_then_crash);

static long worker_pid(long unused) { return mproc_current_pid(); }
MPROC_TASK_VALUE(worker_pid, long, long);

static long exit_in_task(long code) { exit((int)code); }
MPROC_TASK_VALUE(exit_in_task, long, long);

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static long sleepy(long ms) {
    usleep((useconds_t)ms * 1000);
    return ms;
}
MPROC_TASK_VALUE(sleepy, long, long);

static void test_initializer_that_kills_its_worker_is_reported_once(void **state) {
    mproc_pool *pool;
    assert_int_equal(mproc_pool_create(&pool, &(mproc_pool_opts){.processes = 2, .initializer = &die_in_init_task}), 0);
    long x = 1, y;
    assert_int_equal(MPROC_APPLY(pool, sleepy, &x, &y), MPROC_EINITFAIL);
    assert_non_null(strstr(mproc_last_error(), "die_in_init"));
    assert_int_equal(MPROC_APPLY(pool, sleepy, &x, &y), MPROC_EINITFAIL); /* no respawn loop, no hang */
    mproc_pool_free(pool);
}

/* The pool must not replace workers whose initializer crashed them: each replacement would
 * crash too, thousands of times a second, for as long as the pool lives. */
static void test_crashing_initializer_is_not_respawned(void **state) {
    long me = (long)getpid();
    char path[96];
    snprintf(path, sizeof path, "/tmp/mproc-initcount-%ld", me);
    unlink(path);
    mproc_pool *pool;
    assert_int_equal(mproc_pool_create(&pool, &(mproc_pool_opts){.processes = 2, .initializer = &count_then_crash_task,
                                                                   .initarg = &me, .initarg_len = sizeof me}), 0);
    long x = 1, y;
    assert_int_equal(MPROC_APPLY(pool, sleepy, &x, &y), MPROC_EINITFAIL);
    assert_non_null(strstr(mproc_last_error(), "count_then_crash"));
    usleep(500000); /* the pool sits idle: a respawn loop would run the initializer meanwhile */
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_true(st.st_size >= 1 && st.st_size <= 2); /* once per worker, at most */
    assert_int_equal(MPROC_APPLY(pool, sleepy, &x, &y), MPROC_EINITFAIL);
    mproc_pool_free(pool);
    unlink(path);
}

/* Submits TASKS zero-time tasks and checks every one succeeds. */
enum { ROUNDS = 40, TASKS = 20 };
static void submit_and_expect_success(mproc_pool *pool, int round, void (*between)(long pid), long pid) {
    static long zeros[TASKS];
    mproc_async *a[TASKS];
    for (long i = 0; i < TASKS; i++)
        assert_int_equal(mproc_apply_async(pool, &sleepy_task, &zeros[i], sizeof zeros[i], NULL, &a[i]), 0);
    if (between) between(pid);
    for (int i = 0; i < TASKS; i++) {
        long out = -1;
        int rc = mproc_async_get_into(a[i], 30, &out, sizeof out);
        if (rc != 0) print_error("round %d task %d: %s: %s\n", round, i, mproc_err_name(rc), mproc_last_error());
        assert_int_equal(rc, 0);
        mproc_async_free(a[i]);
    }
}

static long some_worker(mproc_pool *pool, int round) {
    long pids[TASKS], zeros[TASKS] = {0};
    assert_int_equal(mproc_map(pool, &worker_pid_task, zeros, sizeof zeros[0], pids, sizeof pids[0], TASKS,
                               &(mproc_call_opts){.chunksize = 1}), 0);
    return pids[round % TASKS];
}

static void kill_after_frames_queued(long pid) {
    usleep(20000); /* frames for it are now in its socket, unread */
    kill((pid_t)pid, SIGKILL);
}

/* A worker killed while idle has run nothing it was sent afterwards: every task submitted
 * right after the kill must succeed (on the replacement or the other worker). The second half
 * makes the race certain: the worker is stopped, so the frames sent to it stay unread in its
 * socket, and then killed. */
static void test_idle_worker_killed_fails_no_task(void **state) {
    mproc_pool *pool;
    assert_int_equal(mproc_pool_create(&pool, &(mproc_pool_opts){.processes = 2}), 0);
    for (int round = 0; round < ROUNDS; round++) {
        assert_int_equal(kill((pid_t)some_worker(pool, round), SIGKILL), 0);
        submit_and_expect_success(pool, round, NULL, 0);
    }
    for (int round = 0; round < 10; round++) {
        long pid = some_worker(pool, round);
        assert_int_equal(kill((pid_t)pid, SIGSTOP), 0);
        submit_and_expect_success(pool, round, kill_after_frames_queued, pid);
    }
    mproc_pool_free(pool);
}

/* exit() in a task runs the atexit hooks the worker inherited from the master, mproc's own
 * among them: the worker must still just leave, and only that task fail. */
static void test_exit_in_a_task_fails_only_it(void **state) {
    mproc_pool *pool;
    assert_int_equal(mproc_pool_create(&pool, &(mproc_pool_opts){.processes = 2}), 0);
    mproc_async *a;
    long code = 4, out;
    assert_int_equal(mproc_apply_async(pool, &exit_in_task_task, &code, sizeof code, NULL, &a), 0);
    assert_int_equal(mproc_async_get_into(a, 20, &out, sizeof out), MPROC_EWORKER);
#ifdef __SANITIZE_ADDRESS__ /* LeakSanitizer ends exit() with its own status in the worker */
    assert_non_null(strstr(mproc_last_error(), "exited with status"));
#else
    /* The hint follows the status, before MPI's " on rank R (host H)". */
    assert_non_null(strstr(mproc_last_error(), "exited with status 4 (a task must return, not call exit())"));
#endif
    assert_non_null(strstr(mproc_last_error(), "a task must return, not call exit()"));
    mproc_async_free(a);
    long x = 5;
    assert_int_equal(MPROC_APPLY(pool, sleepy, &x, &out), 0);
    assert_int_equal(out, 5);
    mproc_pool_free(pool);
}

static long kill_self(long x) {
    raise(SIGKILL);
    return x;
}
MPROC_TASK_VALUE(kill_self, long, long);

static int write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    int ok = fputs(text, f) >= 0;
    return fclose(f) == 0 && ok ? 0 : -1;
}

/* Runs a pool of two workers in a child held by a pids cgroup to two processes fewer than it
 * has once the pool runs, so that no worker can be replaced; `recycle` gives the pool
 * maxtasksperchild = 1 (each worker is retired after one task) instead of killing the workers
 * through their tasks. Either way, once both are gone the next apply must fail at once with
 * MPROC_EWORKER and the reason, never wait for a worker that will not come (alarm: 30 s).
 * Returns the child's wait status. */
static int pool_without_replacements(const char *dir, int recycle) {
    pid_t child = fork();
    if (child == 0) {
        alarm(30);
        char path[160], num[32];
        snprintf(path, sizeof path, "%s/pids.max", dir); /* no limit left from an earlier run */
        if (write_file(path, "max") < 0) _exit(9);
        snprintf(path, sizeof path, "%s/cgroup.procs", dir);
        snprintf(num, sizeof num, "%ld", (long)getpid());
        if (write_file(path, num) < 0) _exit(10);
        mproc_pool *pool;
        if (mproc_pool_create(&pool, &(mproc_pool_opts){.processes = 2, .maxtasksperchild = recycle}) < 0) _exit(11);
        snprintf(path, sizeof path, "%s/pids.current", dir);
        FILE *f = fopen(path, "r");
        long now = 0;
        if (!f || fscanf(f, "%ld", &now) != 1) _exit(13);
        fclose(f);
        /* Two fewer than now: a gone worker's pid is freed when it is reaped, and the limit
         * must still leave no room for a replacement. */
        snprintf(path, sizeof path, "%s/pids.max", dir);
        snprintf(num, sizeof num, "%ld", now - 2);
        if (write_file(path, num) < 0) _exit(14);
        long x = 1, y;
        for (int i = 0; i < 2; i++) { /* each takes a worker away */
            int rc = recycle ? MPROC_APPLY(pool, sleepy, &x, &y) : MPROC_APPLY(pool, kill_self, &x, &y);
            if (rc != (recycle ? 0 : MPROC_EWORKER)) _exit(20 + i);
        }
        int rc = MPROC_APPLY(pool, sleepy, &x, &y);
        if (rc != MPROC_EWORKER) _exit(30);
        if (!strstr(mproc_last_error(), "none could be replaced")) _exit(31);
        mproc_pool_free(pool);
        _exit(0);
    }
    int status = 0;
    if (waitpid(child, &status, 0) != child) return -1;
    return status;
}

static void test_no_worker_can_be_replaced(void **state) {
    char dir[96];
    snprintf(dir, sizeof dir, "/sys/fs/cgroup/pids/mproc-test-%ld", (long)getpid());
    if (mkdir(dir, 0755) < 0) {
        print_message("no pids cgroup here (%s): cannot hold the pool to its processes\n", strerror(errno));
        skip();
    }
    int killed = pool_without_replacements(dir, 0);
    int recycled = pool_without_replacements(dir, 1);
    rmdir(dir);
    if (killed != 0 || recycled != 0) /* an exit code names the step; signal 14: it hung */
        print_error("wait status: workers killed 0x%x, workers recycled 0x%x\n", killed, recycled);
    assert_int_equal(killed, 0);
    assert_int_equal(recycled, 0);
}

static void test_per_call_timeout(void **state) {
    mproc_pool *pool;
    assert_int_equal(mproc_pool_create(&pool, &(mproc_pool_opts){.processes = 1}), 0);
    long slow = 5000, fast = 1, out = 0;
    mproc_async *a;
    assert_int_equal(mproc_apply_async(pool, &sleepy_task, &slow, sizeof slow, &(mproc_call_opts){.timeout = 0.2}, &a), 0);
    assert_int_equal(mproc_async_get_into(a, 10.0, &out, sizeof out), MPROC_ETIMEDOUT);
    assert_non_null(strstr(mproc_last_error(), "time limit"));
    mproc_async_free(a);
    assert_int_equal(MPROC_APPLY(pool, sleepy, &fast, &out), 0); /* a fresh worker took over */
    assert_int_equal(out, 1);
    mproc_pool_free(pool);
}

static void test_retries_recover_a_crashed_task(void **state) {
    mproc_pool *pool;
    assert_int_equal(mproc_pool_create(&pool, &(mproc_pool_opts){.processes = 2, .max_retries = 1}), 0);
    once_arg a = {getpid(), 7};
    long out = 0;
    assert_int_equal(MPROC_APPLY(pool, crash_once, &a, &out), 0);
    assert_int_equal(out, 70);
    mproc_pool_free(pool);
    /* Retries used up: the message says how often it ran, or max_retries looks ignored. */
    assert_int_equal(mproc_pool_create(&pool, &(mproc_pool_opts){.processes = 2, .max_retries = 2}), 0);
    long x = 1;
    assert_int_equal(MPROC_APPLY(pool, kill_self, &x, &out), MPROC_EWORKER);
    assert_non_null(strstr(mproc_last_error(), "; run 3 times (max_retries 2)"));
    mproc_pool_free(pool);
    /* Without retries the same task fails, naming the signal. */
    assert_int_equal(mproc_pool_create(&pool, &(mproc_pool_opts){.processes = 2}), 0);
    a.id = 8;
    assert_int_equal(MPROC_APPLY(pool, crash_once, &a, &out), MPROC_EWORKER);
    assert_non_null(strstr(mproc_last_error(), "signal 9"));
    assert_int_equal(MPROC_APPLY(pool, crash_once, &a, &out), 0); /* marker consumed: now fine */
    mproc_pool_free(pool);
}

static void test_garbage_from_a_worker_kills_only_it(void **state) {
    mproc_pool *pool;
    assert_int_equal(mproc_pool_create(&pool, &(mproc_pool_opts){.processes = 2}), 0);
    long kind = 1, out = 0;
    assert_int_equal(MPROC_APPLY(pool, garbage, &kind, &out), MPROC_EWORKER);
    assert_non_null(strstr(mproc_last_error(), "malformed frame"));
    kind = 2;
    assert_int_equal(MPROC_APPLY(pool, garbage, &kind, &out), MPROC_EWORKER);
    assert_non_null(strstr(mproc_last_error(), "mid-frame"));
    kind = 0;
    assert_int_equal(MPROC_APPLY(pool, garbage, &kind, &out), 0); /* the pool goes on */
    mproc_pool_free(pool);
}

/* Runs fault_master, waits for its worker pids, signals it mid-map, checks nothing survives. */
static void signal_master_mid_map(int signo) {
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t master = fork();
    if (master == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        execl(FAULT_MASTER, FAULT_MASTER, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    FILE *in = fdopen(fds[0], "r");
    long pids[2] = {0, 0};
    assert_int_equal(fscanf(in, "workers %ld %ld", &pids[0], &pids[1]), 2);
    usleep(200000); /* let the long map get going */
    kill(master, signo);
    int status;
    assert_int_equal(waitpid(master, &status, 0), master); /* the master itself is reaped */
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == signo);
    fclose(in);
    int all_gone = 0;
    for (int i = 0; i < 200 && !all_gone; i++) {
        all_gone = mproc_test_gone(pids[0]) && mproc_test_gone(pids[1]);
        if (!all_gone) usleep(10000);
    }
    assert_true(all_gone);
}

static void test_ctrl_c_on_master_leaves_no_worker(void **state) { signal_master_mid_map(SIGINT); }
static void test_sigterm_on_master_leaves_no_worker(void **state) { signal_master_mid_map(SIGTERM); }

/* Segfaults on every 100th item. */
static long crash_every_100th(long i) {
    if (i % 100 == 0) raise(SIGSEGV);
    return i * 3;
}
MPROC_TASK_VALUE(crash_every_100th, long, long);

/* A 10,000-item map where every 100th item crashes its process: those 100 items fail with
 * EWORKER naming the signal (under MPI also the rank and host), every other item is right, and
 * the pool goes on. Under MPI this used to end the whole job. */
static void test_map_with_crashing_items_fails_only_them(void **state) {
    enum { N = 10000 };
    mproc_pool *pool;
    assert_int_equal(mproc_pool_create(&pool, NULL), 0);
    long *in = malloc(N * sizeof *in), *out = calloc(N, sizeof *out);
    int *status = calloc(N, sizeof *status);
    assert_non_null(in);
    assert_non_null(out);
    assert_non_null(status);
    for (long i = 0; i < N; i++) in[i] = i;
    int rc = mproc_map(pool, &crash_every_100th_task, in, sizeof *in, out, sizeof *out, N,
                       &(mproc_call_opts){.item_status = status});
    assert_int_equal(rc, MPROC_EWORKER);
    assert_non_null(strstr(mproc_last_error(), "signal 11"));
    if (mproc_backend() == MPROC_BACKEND_MPI) {
        assert_non_null(strstr(mproc_last_error(), "on rank "));
        assert_non_null(strstr(mproc_last_error(), "(host "));
    }
    int failed = 0;
    for (long i = 0; i < N; i++) {
        if (i % 100 == 0) {
            assert_int_equal(status[i], MPROC_EWORKER);
            failed++;
        } else {
            assert_int_equal(status[i], 0);
            assert_int_equal(out[i], i * 3);
        }
    }
    assert_int_equal(failed, N / 100);
    long x = 7, y = 0;
    assert_int_equal(MPROC_APPLY(pool, crash_every_100th, &x, &y), 0);
    assert_int_equal(y, 21);
    free(in);
    free(out);
    free(status);
    mproc_pool_free(pool);
}

/* Segfaults on items 30,000 apart. */
static long crash_every_30000th(long i) {
    if (i % 30000 == 29999) raise(SIGSEGV);
    return i * 3;
}
MPROC_TASK_VALUE(crash_every_30000th, long, long);

/* The same with chunks of 32 KB, which the MPI ranks receive straight into their executors'
 * rings (src/backends/mpi/exec_give.c): the crashes restart executors while chunks stream into
 * them, and every other item is still right. */
static void test_map_of_big_chunks_with_crashing_items(void **state) {
    enum { N = 120000 };
    mproc_pool *pool;
    assert_int_equal(mproc_pool_create(&pool, NULL), 0);
    long *in = malloc(N * sizeof *in), *out = calloc(N, sizeof *out);
    int *status = calloc(N, sizeof *status);
    assert_non_null(in);
    assert_non_null(out);
    assert_non_null(status);
    for (long i = 0; i < N; i++) in[i] = i;
    for (int round = 0; round < 2; round++) {
        memset(out, 0, N * sizeof *out);
        int rc = mproc_map(pool, &crash_every_30000th_task, in, sizeof *in, out, sizeof *out, N,
                           &(mproc_call_opts){.chunksize = 4000, .item_status = status});
        assert_int_equal(rc, MPROC_EWORKER);
        for (long i = 0; i < N; i++) {
            if (i % 30000 == 29999) {
                assert_int_equal(status[i], MPROC_EWORKER);
            } else {
                assert_int_equal(status[i], 0);
                assert_int_equal(out[i], i * 3);
            }
        }
    }
    free(in);
    free(out);
    free(status);
    mproc_pool_free(pool);
}

/* A task past its time limit is stopped, not left running: its worker takes the next tasks at
 * once. (Under MPI before executors, the rank went on with the 30 s task and the next ones
 * waited behind it.) The bound is 15 s against 30 s of sleep: a hang, not a speed, is tested. */
static void test_time_limit_frees_the_worker(void **state) {
    mproc_pool *pool;
    assert_int_equal(mproc_pool_create(&pool, &(mproc_pool_opts){.processes = 1, .task_timeout = 0.3}), 0);
    long slow = 30000, out = 0;
    double t0 = now_s();
    assert_int_equal(MPROC_APPLY(pool, sleepy, &slow, &out), MPROC_ETIMEDOUT);
    assert_non_null(strstr(mproc_last_error(), "time limit; worker 0 (pid "));
    if (mproc_backend() == MPROC_BACKEND_MPI) /* and where */
        assert_non_null(strstr(mproc_last_error(), ") was killed on rank "));
    long quick[3] = {100, 100, 100}, res[3] = {0};
    assert_int_equal(mproc_map(pool, &sleepy_task, quick, sizeof quick[0], res, sizeof res[0], 3,
                               &(mproc_call_opts){.chunksize = 1}), 0);
    assert_int_equal(res[2], 100);
    assert_true(now_s() - t0 < 15.0);
    mproc_pool_free(pool);
}

/* A task that forks a helper and returns: the helper (pid returned) lives on for `secs`. */
static long fork_helper(long secs) {
    pid_t pid = fork();
    if (pid == 0) {
        sleep((unsigned)secs);
        _exit(0);
    }
    return (long)pid;
}
MPROC_TASK_VALUE(fork_helper, long, long);

/* The same through a shell: system() execs it, so the close-on-exec socket is not inherited. */
static long shell_helper(long secs) {
    char cmd[64];
    snprintf(cmd, sizeof cmd, "sleep %ld >/dev/null 2>&1 &", secs);
    return system(cmd);
}
MPROC_TASK_VALUE(shell_helper, long, long);

/* A helper a task forked and left running must not hide its worker's death: the master learns
 * of a crash, and of the kill at a time limit, from the end of the worker's socket, which the
 * helper held open (found by a new-user trial: a crash came back 15 s late, when the helper
 * ended, and a time limit of 2 s took 15 s). The helpers live 20 s; each fault must come back
 * well before (10 s: a hang, not a speed, is tested). Helpers by fork() and by system("... &").
 * Both backends (MPI: in an executor). */
static void test_a_forked_helper_does_not_hide_a_death(void **state) {
    mproc_pool *pool;
    assert_int_equal(mproc_pool_create(&pool, &(mproc_pool_opts){.processes = 1, .task_timeout = 0.5}), 0);
    long secs = 20, helper[2] = {0, 0}, x = 1, out = 0;
    assert_int_equal(MPROC_APPLY(pool, fork_helper, &secs, &helper[0]), 0);
    double t0 = now_s();
    assert_int_equal(MPROC_APPLY(pool, kill_self, &x, &out), MPROC_EWORKER);
    assert_true(now_s() - t0 < 10.0);
    assert_int_equal(MPROC_APPLY(pool, fork_helper, &secs, &helper[1]), 0);
    long slow = 30000;
    t0 = now_s();
    assert_int_equal(MPROC_APPLY(pool, sleepy, &slow, &out), MPROC_ETIMEDOUT);
    assert_true(now_s() - t0 < 10.0);
    assert_int_equal(MPROC_APPLY(pool, shell_helper, &secs, &out), 0);
    assert_int_equal(out, 0);
    x = 1;
    t0 = now_s();
    assert_int_equal(MPROC_APPLY(pool, kill_self, &x, &out), MPROC_EWORKER);
    assert_true(now_s() - t0 < 10.0);
    x = 7;
    assert_int_equal(MPROC_APPLY(pool, fork_helper, &x, &out), 0); /* the pool goes on */
    assert_true(out > 0);
    mproc_pool_free(pool);
    for (int i = 0; i < 2; i++)
        if (helper[i] > 0) kill((pid_t)helper[i], SIGKILL);
    if (out > 0) kill((pid_t)out, SIGKILL);
}

/* terminate stops the tasks that are running: a new pool gets its workers at once. */
static void test_terminate_stops_running_tasks(void **state) {
    mproc_pool *pool;
    assert_int_equal(mproc_pool_create(&pool, NULL), 0);
    int n = mproc_pool_size(pool);
    long *slow = malloc((size_t)n * sizeof *slow), *out = malloc((size_t)n * sizeof *out);
    assert_non_null(slow);
    assert_non_null(out);
    for (int i = 0; i < n; i++) slow[i] = 30000;
    mproc_async *m;
    double t0 = now_s();
    assert_int_equal(mproc_map_async(pool, &sleepy_task, slow, sizeof *slow, out, sizeof *out, (size_t)n,
                                     &(mproc_call_opts){.chunksize = 1}, &m), 0);
    usleep(200000); /* they are running */
    assert_int_equal(mproc_pool_terminate(pool), 0);
    assert_int_equal(mproc_async_get(m, 10.0, NULL, NULL), MPROC_ECLOSED);
    mproc_async_free(m);
    mproc_pool_free(pool);
    assert_int_equal(mproc_pool_create(&pool, NULL), 0);
    for (int i = 0; i < n; i++) slow[i] = 100;
    assert_int_equal(mproc_map(pool, &sleepy_task, slow, sizeof *slow, out, sizeof *out, (size_t)n,
                               &(mproc_call_opts){.chunksize = 1}), 0);
    assert_true(now_s() - t0 < 15.0);
    mproc_pool_free(pool);
    free(slow);
    free(out);
}

/* As Python's terminate(): once terminate and free have returned, no task of the pool runs or
 * starts - not even one already queued for a worker as it was killed. Short tasks, queued deep,
 * end and start every few ms, so a worker killed only after free returned may start one more
 * (under MPI, before the pool waited for its executors' deaths, this test failed about 1 run
 * in 3 or 4). */
static void test_no_task_starts_after_terminate_and_free(void **state) {
    (void)state;
    char dir[] = "/tmp/mproc-test-marks-XXXXXX";
    assert_non_null(mkdtemp(dir));
    enum { N = 400, KILL_ROUNDS = 8 };
    for (int round = 0; round < KILL_ROUNDS; round++) {
        mproc_pool *pool;
        assert_int_equal(mproc_pool_create(&pool, NULL), 0);
        mproc_async *h[N];
        for (int i = 0; i < N; i++) {
            marked_job job = {"", i, 2};
            snprintf(job.dir, sizeof job.dir, "%s", dir);
            assert_int_equal(mproc_apply_async(pool, &mark_then_sleep_task, &job, sizeof job, NULL, &h[i]), 0);
        }
        usleep(30000); /* some have run, some run now, more are queued for each worker */
        assert_int_equal(mproc_pool_terminate(pool), 0);
        assert_int_equal(mproc_pool_join(pool), 0);
        for (int i = 0; i < N; i++) mproc_async_free(h[i]);
        assert_int_equal(mproc_pool_free(pool), 0);
        int started = files_in(dir, N);
        usleep(300000);
        assert_int_equal(files_in(dir, N), started); /* nothing started since */
        assert_true(started < N);
        for (int i = 0; i < N; i++) {
            char path[96];
            snprintf(path, sizeof path, "%s/%d", dir, i);
            unlink(path);
        }
    }
    rmdir(dir);
}

/* terminate of a pool smaller than what exists, then a pool of everything: under MPI with
 * several executors per rank, terminate kills all of a busy rank's executors, also those the
 * small pool did not use; the next pool must replace them, not send them work that is dropped. */
static void test_small_pool_terminated_then_a_full_one(void **state) {
    mproc_pool *pool;
    assert_int_equal(mproc_pool_create(&pool, &(mproc_pool_opts){.processes = 1}), 0);
    long slow = 30000, out = 0;
    mproc_async *a;
    assert_int_equal(mproc_apply_async(pool, &sleepy_task, &slow, sizeof slow, NULL, &a), 0);
    usleep(200000);
    assert_int_equal(mproc_pool_terminate(pool), 0);
    assert_int_equal(mproc_async_get_into(a, 10.0, &out, sizeof out), MPROC_ECLOSED);
    mproc_async_free(a);
    mproc_pool_free(pool);
    assert_int_equal(mproc_pool_create(&pool, NULL), 0);
    int n = 4 * mproc_pool_size(pool);
    long *ms = calloc((size_t)n, sizeof *ms), *res = calloc((size_t)n, sizeof *res);
    assert_non_null(ms);
    assert_non_null(res);
    for (int i = 0; i < n; i++) ms[i] = 20;
    assert_int_equal(mproc_map(pool, &sleepy_task, ms, sizeof *ms, res, sizeof *res, (size_t)n,
                               &(mproc_call_opts){.chunksize = 1, .timeout = 20}), 0);
    for (int i = 0; i < n; i++) assert_int_equal(res[i], 20);
    free(ms);
    free(res);
    mproc_pool_free(pool);
}

/* maxtasksperchild replaces the process after its tasks: every task here ran in a process of
 * its own. */
static void test_maxtasksperchild_recycles_the_process(void **state) {
    enum { N = 12 };
    mproc_pool *pool;
    assert_int_equal(mproc_pool_create(&pool, &(mproc_pool_opts){.maxtasksperchild = 1}), 0);
    long zeros[N] = {0}, pids[N] = {0};
    assert_int_equal(mproc_map(pool, &worker_pid_task, zeros, sizeof zeros[0], pids, sizeof pids[0], N,
                               &(mproc_call_opts){.chunksize = 1}), 0);
    for (int i = 0; i < N; i++)
        for (int j = 0; j < i; j++) assert_true(pids[i] != pids[j]);
    mproc_pool_free(pool);
}

/* A blocking call on an idle pool runs the pool's loop in the caller's thread (scheduler.c, "who
 * drives"); the worker its crash costs must still be replaced from the pool's own thread: a
 * worker dies with the thread that forked it (PR_SET_PDEATHSIG), and this thread ends. */
typedef struct thread_call {
    mproc_pool *pool;
    int rc;
    long pid; /* the worker that answered the thread's second call */
} thread_call;

static void *crash_from_a_thread(void *arg) {
    thread_call *t = arg;
    long x = 1, out;
    t->rc = MPROC_APPLY(t->pool, kill_self, &x, &out);
    usleep(300000); /* idle again: this call drives too */
    x = 0;
    if (MPROC_APPLY(t->pool, worker_pid, &x, &t->pid) < 0) t->pid = -1;
    return NULL;
}

static void test_blocking_call_from_a_thread_that_ends(void **state) {
    mproc_pool *pool;
    assert_int_equal(mproc_pool_create(&pool, &(mproc_pool_opts){.processes = 1}), 0);
    long x = 0, pid0 = 0, pid1 = 0;
    assert_int_equal(MPROC_APPLY(pool, worker_pid, &x, &pid0), 0);
    usleep(300000); /* idle: the thread's calls drive */
    thread_call t = {pool, 0, 0};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, crash_from_a_thread, &t), 0);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(t.rc, MPROC_EWORKER);
    assert_true(t.pid > 0 && t.pid != pid0);
    usleep(300000); /* a replacement forked by the thread would be dead by now */
    assert_int_equal(MPROC_APPLY(pool, worker_pid, &x, &pid1), 0);
    assert_int_equal(pid1, t.pid); /* the same worker: it outlived the thread */
    mproc_pool_free(pool);
}

/* On both backends (under MPI each worker rank runs its tasks in an executor process). */
static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_retries_recover_a_crashed_task),
    cmocka_unit_test(test_initializer_that_kills_its_worker_is_reported_once),
    cmocka_unit_test(test_crashing_initializer_is_not_respawned),
    cmocka_unit_test(test_idle_worker_killed_fails_no_task),
    cmocka_unit_test(test_exit_in_a_task_fails_only_it),
    cmocka_unit_test(test_per_call_timeout),
    cmocka_unit_test(test_garbage_from_a_worker_kills_only_it),
    cmocka_unit_test(test_map_with_crashing_items_fails_only_them),
    cmocka_unit_test(test_map_of_big_chunks_with_crashing_items),
    cmocka_unit_test(test_time_limit_frees_the_worker),
    cmocka_unit_test(test_a_forked_helper_does_not_hide_a_death),
    cmocka_unit_test(test_terminate_stops_running_tasks),
    cmocka_unit_test(test_no_task_starts_after_terminate_and_free),
    cmocka_unit_test(test_maxtasksperchild_recycles_the_process),
    cmocka_unit_test(test_small_pool_terminated_then_a_full_one),
    cmocka_unit_test(test_blocking_call_from_a_thread_that_ends),
};

/* Fork only: they fork or exec a second master of their own, which under mpirun would be an
 * MPI process forked from rank 0 (Ctrl-C and SIGTERM under MPI are mpirun's to deliver). */
static const struct CMUnitTest fork_tests[] = {
    cmocka_unit_test(test_no_worker_can_be_replaced),
    cmocka_unit_test(test_ctrl_c_on_master_leaves_no_worker),
    cmocka_unit_test(test_sigterm_on_master_leaves_no_worker),
};

int main(int argc, char **argv) {
    int rc = mproc_init(&argc, &argv);
    if (rc < 0) {
        fprintf(stderr, "%s\n", mproc_last_error());
        return 1;
    }
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    if (mproc_backend() == MPROC_BACKEND_FORK) rc |= cmocka_run_group_tests(fork_tests, NULL, NULL);
    mproc_finalize();
    return rc;
}
