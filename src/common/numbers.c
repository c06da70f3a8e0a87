/* numbers.c - the MPROC_ environment variables' numbers, read strictly.
 *
 * strtoull and strtod accept more than a user means: leading spaces, a sign ("-5" becomes a huge
 * count), hexadecimal, "nan" and "inf". A setting mistyped that way must be refused with its
 * name, not taken as something else, so every numeric MPROC_ variable goes through here. Every
 * MPROC_ variable is read through mproc__env, so that an empty one means unset everywhere.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* strtod_l */
#endif
#include <errno.h>
#include <locale.h>
#include <math.h>
#include <stdlib.h>

#include "common/common.h"

int mproc__parse_count(const char *s, uint64_t *out) {
    if (!s || *s < '0' || *s > '9') return -1;
    for (const char *p = s; *p; p++)
        if (*p < '0' || *p > '9') return -1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end) return -1;
    *out = (uint64_t)v;
    return 0;
}

int mproc__parse_seconds(const char *s, double *out) {
    /* A plain decimal: digits, at most one point, an optional exponent ("1e3", "2.5E-1"). */
    if (!s || !((*s >= '0' && *s <= '9') || *s == '.')) return -1;
    int digits = 0, points = 0;
    const char *p = s;
    for (; *p && *p != 'e' && *p != 'E'; p++) {
        if (*p == '.') points++;
        else if (*p >= '0' && *p <= '9') digits++;
        else return -1;
    }
    if (!digits || points > 1) return -1;
    if (*p) { /* the exponent */
        p++;
        if (*p == '+' || *p == '-') p++;
        if (!*p) return -1;
        for (; *p; p++)
            if (*p < '0' || *p > '9') return -1;
    }
    /* Read in the C locale: a program that called setlocale() for a language whose decimal
     * point is a comma must still get "0.5" as a half. */
    locale_t c = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
    if (c == (locale_t)0) return -1;
    char *end;
    errno = 0;
    double v = strtod_l(s, &end, c);
    int range = errno == ERANGE;
    freelocale(c);
    if (*end || range || !isfinite(v)) return -1;
    *out = v;
    return 0;
}

const char *mproc__env(const char *name) {
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}
