/* cluster_shared - the shared objects across nodes do what mproc_shared.h says: a task on the
 * master's node uses a Lock, a Value and a Queue the master made; a task on any other node gets
 * MPROC_EREMOTE from each, with a sentence, and nothing hangs or crashes. Run under mpirun
 * across the simulated hosts (run_cluster_tests.sh); exit 0 when every task's answer is right
 * and at least one task ran on another node.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mproc.h"

struct probe_in {
    mproc_array value;
    mproc_queue queue;
};
struct probe_out {
    char host[64];
    int lock_rc, data_ok, put_rc;
    char why[160];
};

static int probe(mproc_ctx *ctx, const struct probe_in *in, struct probe_out *out) {
    memset(out, 0, sizeof *out);
    gethostname(out->host, sizeof out->host - 1);
    mproc_lock lock;
    out->lock_rc = mproc_array_lock(&in->value, &lock);
    if (out->lock_rc == 0 && (out->lock_rc = mproc_lock_acquire(&lock, 10)) == 0) {
        ++*(long *)mproc_array_data(&in->value);
        mproc_lock_release(&lock);
    }
    snprintf(out->why, sizeof out->why, "%s", mproc_last_error());
    out->data_ok = mproc_array_data(&in->value) != NULL;
    long one = 1;
    out->put_rc = MPROC_QUEUE_PUT(&in->queue, &one, 10);
    usleep(20000); /* so that the tasks spread over every worker */
    return 0;
}
MPROC_TASK_TYPED(probe, struct probe_in, struct probe_out);

int main(int argc, char **argv) {
    MPROC_CHECK(mproc_init(&argc, &argv));
    char me[64] = "";
    gethostname(me, sizeof me - 1);
    struct probe_in in;
    MPROC_CHECK(mproc_value_create(&in.value, sizeof(long)));
    MPROC_CHECK(mproc_queue_create(&in.queue, NULL));
    mproc_pool *pool;
    MPROC_CHECK(mproc_pool_create(&pool, NULL));
    size_t n = (size_t)mproc_pool_size(pool) * 4;
    struct probe_in *ins = calloc(n, sizeof *ins);
    struct probe_out *outs = calloc(n, sizeof *outs);
    for (size_t i = 0; i < n; i++) ins[i] = in;
    MPROC_CHECK(mproc_map(pool, &probe_task, ins, sizeof *ins, outs, sizeof *outs, n, &(mproc_call_opts){.chunksize = 1}));
    int bad = 0, local = 0, remote = 0;
    for (size_t i = 0; i < n; i++) {
        const struct probe_out *o = &outs[i];
        int here = !strcmp(o->host, me);
        if (here) {
            local++;
            if (o->lock_rc != 0 || !o->data_ok || o->put_rc != 0) bad++, printf("task on %s (the master's node): lock %d data %d put %d: %s\n", o->host, o->lock_rc, o->data_ok, o->put_rc, o->why);
        } else {
            remote++;
            if (o->lock_rc != MPROC_EREMOTE || o->data_ok || o->put_rc != MPROC_EREMOTE || !strstr(o->why, "another node"))
                bad++, printf("task on %s: lock %d data %d put %d: %s\n", o->host, o->lock_rc, o->data_ok, o->put_rc, o->why);
        }
    }
    long count = *(long *)mproc_array_data(&in.value), queued = mproc_queue_qsize(&in.queue);
    printf("master on %s: %d tasks on its node, %d on others; counter %ld, %ld items queued\n", me, local, remote, count, queued);
    if (count != local || queued != local) bad++, printf("counter and queue should both be %d\n", local);
    if (remote == 0) bad++, printf("no task ran on another node\n");
    mproc_pool_free(pool);
    free(ins);
    free(outs);
    mproc_finalize();
    return bad ? 1 : 0;
}
