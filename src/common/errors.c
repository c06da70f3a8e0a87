/* errors.c - the error table's names and messages, and the per-thread detail sentence that
 * mproc_last_error() returns, so every failure can say exactly what went wrong.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/common.h"

static _Thread_local char last_error[512] = "no error";

const char *mproc_strerror(int err) {
    switch (err) {
    case 0:
        return "success";
#define MPROC__ERR_MSG(name, code, msg) \
    case MPROC_##name:                  \
        return msg;
        MPROC_ERRNO_MAP(MPROC__ERR_MSG)
#undef MPROC__ERR_MSG
    default:
        return "unknown error";
    }
}

const char *mproc_err_name(int err) {
    switch (err) {
    case 0:
        return "OK";
#define MPROC__ERR_NAME(name, code, msg) \
    case MPROC_##name:                   \
        return "MPROC_" #name;
        MPROC_ERRNO_MAP(MPROC__ERR_NAME)
#undef MPROC__ERR_NAME
    default:
        return "UNKNOWN";
    }
}

const char *mproc_last_error(void) { return last_error; }

int mproc__error(int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return code;
}

int mproc__error_keep(int code) { return code; }

void mproc_free(void *p) { free(p); }

void mproc__check_failed(const char *expr, int err, const char *file, int line) {
    fflush(stdout);
    fprintf(stderr, "%s:%d: %s: %s: %s\n", file, line, expr, mproc_err_name(err), mproc_last_error());
    exit(1);
}
