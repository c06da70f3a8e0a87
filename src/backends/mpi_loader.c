/* mpi_loader.c - finds the MPI backend at run time. It lives in libmproc_mpi.so next to
 * libmproc.so and is loaded only when mproc_init chooses MPI: a program on fork workers never
 * maps libmpi and its dependencies, whose page tables would otherwise be copied by every
 * fork() (bench/README.md: spawn about 1.6-2x slower with libmpi mapped). RTLD_GLOBAL because
 * Open MPI's own plugins expect libmpi's symbols to be global.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "common/common.h"

#ifdef MPROC_HAVE_MPI
/* MPROC_MPI_MODULE, else libmproc_mpi.so in the directory libmproc.so was loaded from. */
static void module_path(char *path, size_t len) {
    const char *env = mproc__env("MPROC_MPI_MODULE");
    if (env && *env) {
        snprintf(path, len, "%s", env);
        return;
    }
    Dl_info info;
    if (dladdr((void *)&mproc__backend_mpi_load, &info) && info.dli_fname) {
        const char *slash = strrchr(info.dli_fname, '/');
        if (slash) {
            snprintf(path, len, "%.*s/libmproc_mpi.so", (int)(slash - info.dli_fname), info.dli_fname);
            return;
        }
    }
    snprintf(path, len, "libmproc_mpi.so"); /* the loader's search path */
}
#endif

const mproc__backend_ops *mproc__backend_mpi_load(void) {
#ifdef MPROC_HAVE_MPI
    static const mproc__backend_ops *loaded;
    if (loaded) return loaded;
    char path[1024];
    module_path(path, sizeof path);
    void *h = dlopen(path, RTLD_NOW | RTLD_GLOBAL);
    const mproc__backend_ops *ops = h ? (const mproc__backend_ops *)dlsym(h, "mproc__backend_mpi") : NULL;
    if (!ops) {
        char why[512];
        snprintf(why, sizeof why, "cannot load the MPI backend %.200s: %.250s", path, dlerror());
        return mproc__backend_unavailable(why);
    }
    loaded = ops;
    return ops;
#else
    return mproc__backend_unavailable("mproc was built without MPI; install libopenmpi-dev and rebuild");
#endif
}
