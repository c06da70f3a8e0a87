/* frame_mailbox.c - the mailbox beside a frame ring (frame_mailbox.h). The orders on
 * `awake` and `posted` are sequentially consistent on both sides: that is what makes "say you
 * sleep, then look once more" and "post, then look whether the reader sleeps" never both miss.
 */
#include "backends/frame_mailbox.h"

void mproc__mail_enable(mproc__mailbox *m) { atomic_store(&m->on, 1u); }

int mproc__mail_on(const mproc__mailbox *m) { return atomic_load_explicit(&m->on, memory_order_acquire) == 1u; }

int mproc__mail_ready(const mproc__mailbox *m, uint64_t n) {
    const mproc__mail_slot *s = &m->slot[n % MPROC__MAIL_SLOTS];
    return mproc__mail_on(m) && atomic_load_explicit(&m->awake, memory_order_relaxed) &&
           atomic_load_explicit(&m->taken[n % MPROC__MAIL_SLOTS], memory_order_acquire) ==
               atomic_load_explicit(&s->seq, memory_order_relaxed);
}

int mproc__mail_post(mproc__mailbox *m, uint64_t n, uint64_t pos, uint32_t len) {
    mproc__mail_slot *s = &m->slot[n % MPROC__MAIL_SLOTS];
    s->pos = pos;
    s->len = len;
    atomic_store_explicit(&s->seq, n + 1, memory_order_release);
    atomic_store(&m->posted, n + 1);
    return atomic_load(&m->awake) != 0;
}

void mproc__mail_count(mproc__mailbox *m, uint64_t sent) { atomic_store(&m->posted, sent); }

int mproc__mail_take(mproc__mailbox *m, uint64_t n, uint64_t *pos, uint32_t *len) {
    mproc__mail_slot *s = &m->slot[n % MPROC__MAIL_SLOTS];
    if (atomic_load_explicit(&s->seq, memory_order_acquire) != n + 1) return 0;
    *pos = s->pos;
    *len = s->len;
    atomic_store_explicit(&m->taken[n % MPROC__MAIL_SLOTS], n + 1, memory_order_release);
    return 1;
}

int mproc__mail_more(const mproc__mailbox *m, uint64_t n) { return atomic_load(&m->posted) > n; }

void mproc__mail_awake(mproc__mailbox *m, int awake) { atomic_store(&m->awake, awake ? 1u : 0u); }
