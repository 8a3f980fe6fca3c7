/*
 * The cost of one ansatz_precond_apply called from C (the C side of `make bench-capi`; the Rust side is
 * benches/examples/precond_apply.rs, with the same statistic). On an NX x NY grid (or NX x NY x NZ for a 3D
 * network), every cell an unknown, r a smooth field: BATCHES batches of CALLS applications after a warm-up;
 * prints the median and the minimum over the batches of the time per application, in microseconds.
 *
 *   apply MODEL.apc NX NY [NZ] [BATCHES] [CALLS]
 */
#define _POSIX_C_SOURCE 200809L
#include <ansatz.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s MODEL.apc NX NY [NZ] [BATCHES] [CALLS]\n", argv[0]);
        return 2;
    }
    size_t nx = strtoul(argv[2], NULL, 10), ny = strtoul(argv[3], NULL, 10);
    size_t nz = argc > 4 ? strtoul(argv[4], NULL, 10) : 1;
    int batches = argc > 5 ? atoi(argv[5]) : 15, calls = argc > 6 ? atoi(argv[6]) : 20;
    ansatz_precond *pc = NULL;
    size_t n = nx * ny * nz;
    if (ansatz_precond_open(argv[1], &pc) != ANSATZ_OK || ansatz_precond_set_grid(pc, nx, ny, nz, NULL, n) != ANSATZ_OK) {
        fprintf(stderr, "apply: %s\n", ansatz_last_error());
        return 2;
    }
    double *r = malloc(sizeof(double) * n), *z = malloc(sizeof(double) * n), *per = malloc(sizeof(double) * batches);
    for (size_t i = 0; i < n; i++) r[i] = sin(0.37 * (double)i) + 0.2;
    for (int w = 0; w < 5; w++) ansatz_precond_apply(pc, n, r, z);
    for (int b = 0; b < batches; b++) {
        double t0 = now();
        for (int c = 0; c < calls; c++)
            if (ansatz_precond_apply(pc, n, r, z) != ANSATZ_OK) {
                fprintf(stderr, "apply: %s\n", ansatz_last_error());
                return 2;
            }
        per[b] = (now() - t0) / calls * 1e6;
    }
    qsort(per, batches, sizeof(double), cmp);
    printf("C    %zux%zux%zu: median %.1f us, min %.1f us per apply (%d x %d calls)\n", nx, ny, nz, per[batches / 2],
           per[0], batches, calls);
    ansatz_precond_close(pc);
    free(r), free(z), free(per);
    return 0;
}
