/*
 * Every error path of the C ABI from C, run under valgrind by `make test` (capi/tests/c/check.sh): each call
 * returns its code and a message, nothing crashes, a closed or foreign handle is refused without being read,
 * and threads with their own handles agree with a single thread and keep their own messages.
 *
 *   abi_errors GOOD.apc DAMAGED.apc TRUNCATED.apc
 */
#include <ansatz.h>

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures = 0;

#define EXPECT(cond, ...)                                             \
    do {                                                              \
        if (!(cond)) {                                                \
            fprintf(stderr, "%s:%d: FAILED: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                             \
            fprintf(stderr, "\n");                                    \
            failures++;                                               \
        }                                                             \
    } while (0)

/* the call returned `want` and the message mentions `words` */
static void expect_code(int got, int want, const char *words, int line) {
    const char *msg = ansatz_last_error();
    if (got != want || strstr(msg, words) == NULL) {
        fprintf(stderr, "line %d: FAILED: code %d (want %d), message '%s' (want '%s')\n", line, got, want, msg, words);
        failures++;
    }
}
#define CODE(call, want, words) expect_code((call), (want), (words), __LINE__)

static const char *good_path;
static double reference[48];

static void field(double *v, size_t n, double k) {
    for (size_t i = 0; i < n; i++) v[i] = sin(((double)i + 0.5) * k) + 0.2;
}

static void *worker(void *arg) {
    long id = (long)arg;
    ansatz_precond *pc = NULL;
    if (ansatz_precond_open(good_path, &pc) != ANSATZ_OK) {
        fprintf(stderr, "thread %ld: open failed: %s\n", id, ansatz_last_error());
        return (void *)1;
    }
    size_t n = 48;
    if (ansatz_precond_set_grid(pc, 8, 6, 1, NULL, n) != ANSATZ_OK) return (void *)1;
    double r[48], z[48];
    field(r, 48, 0.77);
    long bad = 0;
    for (int round = 0; round < 10; round++) {
        if (ansatz_precond_apply(pc, n, r, z) != ANSATZ_OK || memcmp(z, reference, sizeof z) != 0) bad++;
        /* an error on this thread: its message is this thread's */
        if (ansatz_precond_apply(pc, n - 1 - (size_t)id, r, z) != ANSATZ_ERR_SIZE) bad++;
        char want[32];
        snprintf(want, sizeof want, "%zu", n - 1 - (size_t)id);
        if (strstr(ansatz_last_error(), want) == NULL) bad++;
    }
    ansatz_precond_close(pc);
    return (void *)bad;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s GOOD.apc DAMAGED.apc TRUNCATED.apc\n", argv[0]);
        return 2;
    }
    good_path = argv[1];
    EXPECT(strlen(ansatz_version()) > 0, "empty version");
    EXPECT(ansatz_file_version() >= 1, "file version %u", ansatz_file_version());

    /* open */
    ansatz_precond *pc = (ansatz_precond *)0x1;
    CODE(ansatz_precond_open(NULL, &pc), ANSATZ_ERR_NULL, "path");
    EXPECT(pc == NULL, "*out is set to NULL on failure");
    CODE(ansatz_precond_open(good_path, NULL), ANSATZ_ERR_NULL, "out");
    CODE(ansatz_precond_open("/nonexistent/net.apc", &pc), ANSATZ_ERR_FILE, "/nonexistent/net.apc");
    CODE(ansatz_precond_open(argv[2], &pc), ANSATZ_ERR_FILE, "checksum");
    CODE(ansatz_precond_open(argv[3], &pc), ANSATZ_ERR_FILE, argv[3]);
    CODE(ansatz_precond_open("\xe9t\xe9", &pc), ANSATZ_ERR_ARGUMENT, "UTF-8");
    EXPECT(pc == NULL, "no handle after failures");
    CODE(ansatz_precond_open(good_path, &pc), ANSATZ_OK, "");
    EXPECT(pc != NULL, "a handle");

    /* size and grid */
    size_t n = 0, nx = 0, ny = 0, nz = 0;
    CODE(ansatz_precond_size(NULL, &n), ANSATZ_ERR_NULL, "handle");
    CODE(ansatz_precond_size(pc, NULL), ANSATZ_ERR_NULL, "`n`");
    CODE(ansatz_precond_size(pc, &n), ANSATZ_OK, "");
    CODE(ansatz_precond_grid(pc, &nx, &ny, &nz), ANSATZ_OK, "");
    EXPECT(n == nx * ny * nz && n > 0, "n %zu, grid %zu %zu %zu", n, nx, ny, nz);
    int linear = -1;
    CODE(ansatz_precond_is_linear(NULL, &linear), ANSATZ_ERR_NULL, "handle");
    CODE(ansatz_precond_is_linear(pc, NULL), ANSATZ_ERR_NULL, "`linear`");
    CODE(ansatz_precond_is_linear(pc, &linear), ANSATZ_OK, "");
    EXPECT(linear == 0 || linear == 1, "linear %d", linear);

    /* a foreign pointer is refused without being read */
    int junk = 42;
    CODE(ansatz_precond_size((ansatz_precond *)&junk, &n), ANSATZ_ERR_HANDLE, "not an open preconditioner");

    /* set_grid */
    size_t outside[3] = {0, 1, 99}, twice[3] = {0, 5, 5};
    CODE(ansatz_precond_set_grid(NULL, 4, 4, 1, NULL, 16), ANSATZ_ERR_NULL, "handle");
    CODE(ansatz_precond_set_grid(pc, 0, 4, 1, NULL, 0), ANSATZ_ERR_SIZE, "zero side");
    CODE(ansatz_precond_set_grid(pc, 4, 4, 1, outside, 3), ANSATZ_ERR_SIZE, "outside");
    CODE(ansatz_precond_set_grid(pc, 4, 4, 1, twice, 3), ANSATZ_ERR_SIZE, "two unknowns");
    CODE(ansatz_precond_set_grid(pc, 4, 4, 1, NULL, 15), ANSATZ_ERR_SIZE, "16");
    CODE(ansatz_precond_set_grid(pc, 4, 4, 2, NULL, 32), ANSATZ_ERR_SIZE, "nz = 1");
    CODE(ansatz_precond_set_grid(pc, 8, 6, 1, NULL, 48), ANSATZ_OK, "");
    CODE(ansatz_precond_size(pc, &n), ANSATZ_OK, "");
    EXPECT(n == 48, "n %zu after set_grid", n);

    /* apply */
    double r[48], z[48], bad[48];
    field(r, 48, 0.77);
    for (int i = 0; i < 48; i++) z[i] = 7.0;
    CODE(ansatz_precond_apply(pc, 47, r, z), ANSATZ_ERR_SIZE, "48 unknowns");
    CODE(ansatz_precond_apply(pc, 48, NULL, z), ANSATZ_ERR_NULL, "`r`");
    CODE(ansatz_precond_apply(pc, 48, r, NULL), ANSATZ_ERR_NULL, "`z`");
    memcpy(bad, r, sizeof r);
    bad[17] = NAN;
    CODE(ansatz_precond_apply(pc, 48, bad, z), ANSATZ_ERR_VALUE, "r[17]");
    bad[17] = INFINITY;
    CODE(ansatz_precond_apply(pc, 48, bad, z), ANSATZ_ERR_VALUE, "r[17]");
    for (int i = 0; i < 48; i++) EXPECT(z[i] == 7.0, "z[%d] changed by a failed call", i);
    CODE(ansatz_precond_apply(pc, 48, r, reference), ANSATZ_OK, "");
    EXPECT(strcmp(ansatz_last_error(), "") == 0, "a successful call clears the message");
    double norm = 0.0;
    for (int i = 0; i < 48; i++) norm += reference[i] * reference[i];
    EXPECT(norm > 0.0 && isfinite(norm), "|z|^2 = %g", norm);
    /* in place */
    double inplace[48];
    memcpy(inplace, r, sizeof r);
    CODE(ansatz_precond_apply(pc, 48, inplace, inplace), ANSATZ_OK, "");
    EXPECT(memcmp(inplace, reference, sizeof inplace) == 0, "in-place application differs");

    /* close, then the closed handle is refused; a second close is recorded, not a crash */
    ansatz_precond_close(pc);
    CODE(ansatz_precond_size(pc, &n), ANSATZ_ERR_HANDLE, "closed");
    CODE(ansatz_precond_apply(pc, 48, r, z), ANSATZ_ERR_HANDLE, "closed");
    ansatz_precond_close(pc);
    EXPECT(strstr(ansatz_last_error(), "closed twice") != NULL, "'%s'", ansatz_last_error());
    ansatz_precond_close(NULL);

    /* four threads, four handles, at once */
    pthread_t threads[4];
    for (long t = 0; t < 4; t++) pthread_create(&threads[t], NULL, worker, (void *)t);
    for (long t = 0; t < 4; t++) {
        void *bad_rounds = NULL;
        pthread_join(threads[t], &bad_rounds);
        EXPECT(bad_rounds == NULL, "thread %ld: %ld bad rounds", t, (long)bad_rounds);
    }

    if (failures) {
        fprintf(stderr, "%d failures\n", failures);
        return 1;
    }
    printf("abi_errors: every error path behaved\n");
    return 0;
}
