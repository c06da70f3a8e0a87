/* cluster_shared - the shared objects across nodes do what mproc_shared.h says: a task on any
 * node uses a Lock, a Value and a Queue the master made (on the master's node through the
 * shared memory, elsewhere through the master's broker), the count under the lock is exact,
 * mproc_array_data is NULL with MPROC_EREMOTE off the master's node, with the broker off
 * (MPROC_SHARED_BROKER=0, argument "nobroker") every call there is MPROC_EREMOTE at once, and a
 * bad MPROC_SHARED_BROKER_ADDR ("badaddr") fails mproc_init on every rank. Run
 * under mpirun across the simulated hosts (run_cluster_tests.sh); exit 0 when every task's
 * answer is right and at least one task ran on another node.
 */
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mproc.h"

struct probe_in {
    mproc_array value;
    mproc_queue queue, empty;
    int times;
};
struct probe_out {
    char host[64];
    int lock_rc, data_ok, put_rc, get_rc;
    char why[160], get_why[160];
};

static int probe(mproc_ctx *ctx, const struct probe_in *in, struct probe_out *out) {
    memset(out, 0, sizeof *out);
    gethostname(out->host, sizeof out->host - 1);
    mproc_lock lock;
    out->lock_rc = mproc_array_lock(&in->value, &lock);
    for (int i = 0; i < in->times && out->lock_rc == 0; i++) {
        if ((out->lock_rc = mproc_lock_acquire(&lock, 10)) < 0) break;
        long v;
        mproc_array_read(&in->value, 0, &v, sizeof v);
        v++;
        mproc_array_write(&in->value, 0, &v, sizeof v);
        out->lock_rc = mproc_lock_release(&lock);
    }
    snprintf(out->why, sizeof out->why, "%s", mproc_last_error());
    out->data_ok = mproc_array_data(&in->value) != NULL;
    if (!out->data_ok) snprintf(out->why, sizeof out->why, "%s", mproc_last_error());
    long one = 1, none;
    out->put_rc = MPROC_QUEUE_PUT(&in->queue, &one, 10);
    /* A timeout longer than the broker's slices of 0.1 s: its sentence must come back whole and
     * name the caller's 0.25 s, not the last slice's. */
    out->get_rc = MPROC_QUEUE_GET(&in->empty, &none, 0.25);
    snprintf(out->get_why, sizeof out->get_why, "%s", mproc_last_error());
    usleep(20000); /* so that the tasks spread over every worker */
    return 0;
}
MPROC_TASK_TYPED(probe, struct probe_in, struct probe_out);

int main(int argc, char **argv) {
    /* nobroker: MPROC_SHARED_BROKER=0; badaddr: an address that is none (mproc_init refuses
     * it on every rank); addr: the master's own address given explicitly. */
    const char *mode = argc > 1 ? argv[1] : "";
    int nobroker = !strcmp(mode, "nobroker");
    if (!strcmp(mode, "nobroker")) setenv("MPROC_SHARED_BROKER", "0", 1);
    if (!strcmp(mode, "badaddr")) setenv("MPROC_SHARED_BROKER_ADDR", "not-an-address", 1);
    if (!strcmp(mode, "addr")) {
        char host[64] = "";
        struct addrinfo hints = {.ai_family = AF_INET}, *res = NULL;
        gethostname(host, sizeof host - 1);
        if (getaddrinfo(host, NULL, &hints, &res) == 0) {
            char ip[INET_ADDRSTRLEN];
            inet_ntop(AF_INET, &((struct sockaddr_in *)res->ai_addr)->sin_addr, ip, sizeof ip);
            setenv("MPROC_SHARED_BROKER_ADDR", ip, 1);
            freeaddrinfo(res);
        }
    }
    if (!strcmp(mode, "badaddr")) { /* refused by mproc_init on every rank, named */
        int rc = mproc_init(&argc, &argv);
        int ok = rc == MPROC_EINVAL && strstr(mproc_last_error(), "mproc_init: MPROC_SHARED_BROKER_ADDR='not-an-address'");
        printf("badaddr: mproc_init %s: %s\n", ok ? "refused it" : "did not refuse it", mproc_last_error());
        return ok ? 0 : 1;
    }
    MPROC_CHECK(mproc_init(&argc, &argv));
    char me[64] = "";
    gethostname(me, sizeof me - 1);
    struct probe_in in = {.times = 25};
    MPROC_CHECK(mproc_value_create(&in.value, sizeof(long)));
    MPROC_CHECK(mproc_queue_create(&in.queue, NULL));
    MPROC_CHECK(mproc_queue_create(&in.empty, NULL));
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
        here ? local++ : remote++;
        int want = here || !nobroker ? 0 : MPROC_EREMOTE;
        int want_get = want ? want : MPROC_EEMPTY;
        if (o->get_rc != want_get || (want_get == MPROC_EEMPTY && !strstr(o->get_why, "stayed empty for 0.25 s")))
            bad++, printf("task on %s: get %d: %s\n", o->host, o->get_rc, o->get_why);
        if (o->lock_rc != want || o->put_rc != want || o->data_ok != here ||
            (!here && !strstr(o->why, "another node")))
            bad++, printf("task on %s (%s): lock %d put %d data %d: %s\n", o->host, here ? "the master's node" : "another node",
                          o->lock_rc, o->put_rc, o->data_ok, o->why);
    }
    long count = *(long *)mproc_array_data(&in.value), queued = mproc_queue_qsize(&in.queue);
    long want = nobroker ? (long)local : (long)n;
    printf("master on %s: %d tasks on its node, %d on others; counter %ld, %ld items queued (want %ld, %ld)\n", me, local,
           remote, count, queued, want * in.times, want);
    if (count != want * in.times || queued != want) bad++;
    if (remote == 0) bad++, printf("no task ran on another node\n");
    mproc_pool_free(pool);
    free(ins);
    free(outs);
    mproc_finalize();
    return bad ? 1 : 0;
}
