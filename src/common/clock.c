/* clock.c - monotonic time and timeout arithmetic shared by every blocking call, so that
 * "timeout < 0 waits forever, 0 polls" means the same thing everywhere.
 */
#include <time.h>

#include "common/common.h"

double mproc__now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

double mproc__deadline(double timeout) { return timeout < 0 ? -1.0 : mproc__now() + timeout; }

double mproc__remaining(double deadline) {
    if (deadline < 0) return -1.0;
    double left = deadline - mproc__now();
    return left > 0 ? left : 0.0;
}
