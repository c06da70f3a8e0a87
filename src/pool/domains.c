/* domains.c - fault domains: the workers of a pool that are lost together when the process
 * hosting them goes (under MPI the executors of one rank; on fork every worker is its own).
 * A chunk that was with a lost rank (suspect, faults.c) must run with nothing else in its
 * domain, and nothing else may start there while it runs: if that rank is lost too, the chunk
 * is then known to be the one that ran, and no other chunk is lost with it. Each worker's
 * domain is a ring of its domain-mates (dom_next), built once when the workers start, so these
 * questions cost the domain's size (a rank's executors), never a scan of the pool, and nothing
 * at all until a rank has been lost (suspects_seen).
 */
#include <stdlib.h>

#include "pool/pool.h"

void mproc__domains_map(mproc_pool *p) {
    for (int w = 0; w < p->n; w++) {
        int d = mproc__pool_fault_domain(p, w);
        /* The domain is named by its lowest worker, mapped before w; anything else: alone. */
        if (d < 0 || d >= w || mproc__pool_fault_domain(p, d) != d) {
            p->dom_next[w] = w;
            continue;
        }
        p->dom_next[w] = p->dom_next[d];
        p->dom_next[d] = w;
    }
}

int mproc__domain_busy(const mproc_pool *p, int w) {
    int v = w;
    do {
        if (p->ws[v].frames_out) return 1;
        v = p->dom_next[v];
    } while (v != w);
    return 0;
}

int mproc__domain_has(const mproc_pool *p, int d, int w) {
    int v = w;
    do {
        if (v == d) return 1;
        v = p->dom_next[v];
    } while (v != w);
    return 0;
}

int mproc__domain_runs_suspect(const mproc_pool *p, int w) {
    if (!p->suspects_seen) return 0;
    int v = w;
    do {
        const mproc__chunk *h = p->ws[v].head; /* a suspect runs alone: it is its worker's head */
        if (h && h->suspect) return 1;
        v = p->dom_next[v];
    } while (v != w);
    return 0;
}

void mproc__domain_may_take(mproc_pool *p, int w) {
    if (!p->suspects_seen) return;
    int v = w;
    do {
        mproc__pool_worker_may_take(p, v);
        v = p->dom_next[v];
    } while (v != w);
}
