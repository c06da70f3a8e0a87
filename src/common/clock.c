/* clock.c - monotonic time and timeout arithmetic shared by every blocking call, so that
 * "timeout < 0 waits forever, 0 polls" means the same thing everywhere.
 */
#include <math.h>
#include <time.h>

#include "common/common.h"

double mproc__now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Longer than this waits forever, as a negative timeout does: a deadline past what a timespec
 * holds (INFINITY, 1e300) made every timed wait fail at once, so a wait spun for ever even
 * after its result came. */
#define FOREVER_AFTER_S 1e9

double mproc__deadline(double timeout) {
    if (timeout < 0 || !(timeout < FOREVER_AFTER_S)) return -1.0; /* NaN too: see mproc__timeout_check */
    return mproc__now() + timeout;
}

int mproc__timeout_check(double timeout, const char *fn) {
    if (isnan(timeout))
        return mproc__error(MPROC_EINVAL, "%s: the timeout is NaN: want seconds (0 polls, < 0 or INFINITY waits for ever)", fn);
    return 0;
}

double mproc__remaining(double deadline) {
    if (deadline < 0) return -1.0;
    double left = deadline - mproc__now();
    return left > 0 ? left : 0.0;
}
