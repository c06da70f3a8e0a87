/* iter_journal.c - an imap's journal (mproc_call_opts.journal on imap, imap_unordered and
 * imap_items): the same file format and rules as a map's (journal.c), read and written for an
 * iterator. Items found in the journal are never submitted; their outcomes wait in a list
 * sorted by index, which the iterator delivers from (iter.c): first of all when unordered, in
 * their turn when ordered. Live results are recorded as their chunks settle.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pool/pool.h"

int mproc__iter_replayed(const mproc_iter *it, size_t i) {
    return it->replayed && i < it->n && (it->replayed[i / 8] >> (i % 8) & 1);
}

typedef struct replay_ctx {
    mproc_iter *it;
    size_t cap, failed;
    int oom;
} replay_ctx;

/* A record of the journal: kept (bytes stay in the journal's copy of the file). */
static void replay_item(void *ud, size_t i, int st, const uint8_t *bytes, size_t len) {
    replay_ctx *rc = ud;
    mproc_iter *it = rc->it;
    if (mproc__iter_replayed(it, i) || rc->oom) return; /* a second record of one item: the first counts */
    if (it->replay_n == rc->cap) {
        size_t cap = rc->cap ? rc->cap * 2 : 1024;
        mproc__replayed_item *r = realloc(it->replay, cap * sizeof *r);
        if (!r) {
            rc->oom = 1;
            return;
        }
        it->replay = r;
        rc->cap = cap;
    }
    it->replay[it->replay_n++] = (mproc__replayed_item){i, st, bytes, len};
    it->replayed[i / 8] |= (uint8_t)(1u << (i % 8));
    rc->failed += st != 0;
}

static int by_index(const void *a, const void *b) {
    size_t x = ((const mproc__replayed_item *)a)->index, y = ((const mproc__replayed_item *)b)->index;
    return x < y ? -1 : x > y;
}

int mproc__iter_journal_open(mproc_iter *it, const mproc_call_opts *o, size_t *done, size_t *failed) {
    *done = *failed = 0;
    if (!o || !o->journal) return 0;
    if (it->gen)
        return mproc__error(MPROC_EINVAL, "mproc_imap_gen: journal %s: an imap over generated input cannot be "
                            "resumed (its input is not known up front); use an array or items", o->journal);
    it->replayed = calloc(it->n / 8 + 1, 1);
    if (!it->replayed) return mproc__error(MPROC_ENOMEM, "journal %s: out of memory", o->journal);
    uint64_t fp = it->items ? mproc__journal_fingerprint_items(it->items, it->n)
                            : mproc__journal_fingerprint(it->in, it->owner.in_size, it->n);
    replay_ctx rc = {it, 0, 0, 0};
    int err = mproc__journal_open(&it->journal, o->journal, o->journal_sync, it->owner.task->name, it->owner.in_size, 0,
                                  it->n, fp, replay_item, &rc, 1);
    if (err == 0 && rc.oom) err = mproc__error(MPROC_ENOMEM, "journal %s: out of memory reading it", o->journal);
    if (err < 0) {
        mproc__journal *j = mproc__iter_journal_take(it);
        if (j) {
            pthread_mutex_lock(&mproc__core_lock);
            mproc__journal_close(j);
            pthread_mutex_unlock(&mproc__core_lock);
        }
        return err;
    }
    if (it->replay_n) qsort(it->replay, it->replay_n, sizeof *it->replay, by_index); /* (NULL when none) */
    *done = it->replay_n;
    *failed = rc.failed;
    return 0;
}

void mproc__iter_journal_results(mproc_iter *it, const mproc__chunk *c, const mproc__results *r) {
    if (!it->journal) return;
    if (r->item_size) {
        mproc__journal_add_run(it->journal, c->first, c->count, r->item_size, r->data);
    } else {
        size_t cur = 0, len;
        int st;
        for (uint32_t i = 0; i < c->count; i++) {
            const uint8_t *blob = mproc__results_next(r, i, &cur, &st, &len);
            if (st == 0) {
                mproc__journal_add(it->journal, c->first + i, 0, blob, len);
                continue;
            }
            char m[1024]; /* a failure is recorded as the sentence the iterator reports */
            size_t k = mproc__item_failure(m, sizeof m, c, blob, len);
            mproc__journal_add(it->journal, c->first + i, st, m, k);
        }
    }
    mproc__journal_flush(it->journal, 0);
}

void mproc__iter_journal_failed(mproc_iter *it, const mproc__chunk *c, int err, const char *msg) {
    if (!it->journal || !c->blamed) return; /* only an item's own outcome (a crash, its time) */
    for (uint32_t i = 0; i < c->count; i++) mproc__journal_add(it->journal, c->first + i, err, msg, strlen(msg));
    mproc__journal_flush(it->journal, 0);
}

void mproc__iter_journal_flush(mproc_iter *it, int final) {
    if (it->journal) mproc__journal_flush(it->journal, final);
}

mproc__journal *mproc__iter_journal_take(mproc_iter *it) {
    mproc__journal *j = it->journal;
    it->journal = NULL;
    free(it->replayed);
    free(it->replay);
    it->replayed = NULL;
    it->replay = NULL;
    it->replay_n = it->replay_cur = 0;
    return j;
}

void mproc__iter_journal_end(mproc__journal *j) {
    if (j && mproc__journal_close(j))
        fprintf(stderr, "mproc: imap journal: writing records failed; the items they held will run again\n");
}
