/*
 * Flexible conjugate gradients (Notay 2000) in plain C with a learned preconditioner from libansatz.
 *
 * Reads a MatrixMarket system written by `ansatz export-system` (the matrix, <stem>.rhs.mtx and, for systems
 * with solid cells, <stem>.cells.mtx; the grid from the matrix's "% ansatz-grid: NX NY [NZ]" comment), solves
 * it from x = 0 with each new direction A-orthogonalised against the last `--truncation` ones, and prints the
 * iterations and the relative residual. The algorithm and its summation order are those of
 * `ansatz precond solve --method fcg`, so both report the same iterations on the same system.
 *
 *   cc fcg.c $(pkg-config --cflags --libs ansatz) -o fcg
 *   ./fcg net.apc A.mtx [--tol 1e-6] [--max-iter 1000] [--truncation 2] [--solution x.mtx]
 *
 * Exit status: 0 converged, 1 not converged, 2 bad input or a library error (the message says which).
 */
#include <ansatz.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    size_t n;
    size_t *ptr; /* n + 1 */
    size_t *col;
    double *val;
} csr;

static void die(const char *what, const char *detail) {
    fprintf(stderr, "fcg: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    exit(2);
}

/* Four running sums over the indices = 0, 1, 2, 3 (mod 4) of the leading multiple of 4, then the tail. */
static double dot(const double *a, const double *b, size_t n) {
    double s[4] = {0.0, 0.0, 0.0, 0.0};
    size_t split = n & ~(size_t)3;
    for (size_t i = 0; i < split; i += 4)
        for (size_t k = 0; k < 4; k++) s[k] += a[i + k] * b[i + k];
    double t = (s[0] + s[1]) + (s[2] + s[3]);
    for (size_t i = split; i < n; i++) t += a[i] * b[i];
    return t;
}

static void spmv(const csr *a, const double *x, double *y) {
    for (size_t i = 0; i < a->n; i++) {
        double s = 0.0;
        for (size_t k = a->ptr[i]; k < a->ptr[i + 1]; k++) s += a->val[k] * x[a->col[k]];
        y[i] = s;
    }
}

/* The next line that is not a comment; copies "ansatz-grid:" comments into `grid` (nx, ny, nz). */
static char *data_line(FILE *f, char *buf, int size, size_t grid[3]) {
    while (fgets(buf, size, f)) {
        if (buf[0] != '%') return buf;
        const char *g = strstr(buf, "ansatz-grid:");
        if (g && grid) {
            unsigned long nx = 0, ny = 0, nz = 1;
            int got = sscanf(g + strlen("ansatz-grid:"), "%lu %lu %lu", &nx, &ny, &nz);
            if (got >= 2) {
                grid[0] = nx;
                grid[1] = ny;
                grid[2] = got == 3 ? nz : 1;
            }
        }
    }
    return NULL;
}

typedef struct {
    size_t row, col;
    double val;
} entry;

static int by_row_col(const void *p, const void *q) {
    const entry *a = p, *b = q;
    if (a->row != b->row) return a->row < b->row ? -1 : 1;
    if (a->col != b->col) return a->col < b->col ? -1 : 1;
    return 0;
}

/* A "coordinate real symmetric|general" matrix as CSR with sorted columns (both triangles stored). */
static csr read_matrix(const char *path, size_t grid[3]) {
    FILE *f = fopen(path, "r");
    if (!f) die("cannot open the matrix", path);
    char buf[4096];
    if (!fgets(buf, sizeof buf, f) || strncmp(buf, "%%MatrixMarket matrix coordinate real", 37) != 0)
        die("not a MatrixMarket 'coordinate real' matrix", path);
    int symmetric = strstr(buf, "symmetric") != NULL;
    unsigned long rows, cols, nnz;
    if (!data_line(f, buf, sizeof buf, grid) || sscanf(buf, "%lu %lu %lu", &rows, &cols, &nnz) != 3 || rows != cols)
        die("bad size line (a square matrix is needed)", path);
    entry *e = malloc(sizeof(entry) * (symmetric ? 2 * nnz : nnz) + 1);
    if (!e) die("out of memory", NULL);
    size_t m = 0;
    for (unsigned long k = 0; k < nnz; k++) {
        unsigned long i, j;
        double v;
        if (!data_line(f, buf, sizeof buf, NULL) || sscanf(buf, "%lu %lu %lf", &i, &j, &v) != 3 || i < 1 ||
            j < 1 || i > rows || j > cols)
            die("bad or missing entry", path);
        e[m++] = (entry){i - 1, j - 1, v};
        if (symmetric && i != j) e[m++] = (entry){j - 1, i - 1, v};
    }
    fclose(f);
    qsort(e, m, sizeof(entry), by_row_col);
    csr a = {rows, calloc(rows + 1, sizeof(size_t)), malloc(sizeof(size_t) * m + 1), malloc(sizeof(double) * m + 1)};
    if (!a.ptr || !a.col || !a.val) die("out of memory", NULL);
    size_t out = 0;
    for (size_t k = 0; k < m; k++) {
        if (out > 0 && e[k].row == e[k - 1].row && e[k].col == a.col[out - 1]) {
            a.val[out - 1] += e[k].val; /* duplicates are summed */
            continue;
        }
        a.col[out] = e[k].col;
        a.val[out] = e[k].val;
        a.ptr[e[k].row + 1]++;
        out++;
    }
    for (size_t i = 0; i < rows; i++) a.ptr[i + 1] += a.ptr[i];
    free(e);
    return a;
}

/* An "array real general" n x 1 vector; returns NULL if the file does not exist and `optional` is set. */
static double *read_vector(const char *path, size_t n, int optional) {
    FILE *f = fopen(path, "r");
    if (!f) {
        if (optional) return NULL;
        die("cannot open", path);
    }
    char buf[4096];
    if (!fgets(buf, sizeof buf, f) || strncmp(buf, "%%MatrixMarket matrix array real", 32) != 0)
        die("not a MatrixMarket 'array real' vector", path);
    unsigned long rows, cols;
    if (!data_line(f, buf, sizeof buf, NULL) || sscanf(buf, "%lu %lu", &rows, &cols) != 2 || cols != 1 ||
        rows != n)
        die("the vector's length does not match the matrix", path);
    double *v = malloc(sizeof(double) * n + 1);
    if (!v) die("out of memory", NULL);
    for (size_t i = 0; i < n; i++)
        if (!data_line(f, buf, sizeof buf, NULL) || sscanf(buf, "%lf", &v[i]) != 1) die("bad or missing value", path);
    fclose(f);
    return v;
}

/* `<stem><suffix>` for a path ending in ".mtx". */
static char *sibling(const char *path, const char *suffix) {
    size_t len = strlen(path);
    size_t stem = len >= 4 && strcmp(path + len - 4, ".mtx") == 0 ? len - 4 : len;
    char *s = malloc(stem + strlen(suffix) + 1);
    if (!s) die("out of memory", NULL);
    memcpy(s, path, stem);
    strcpy(s + stem, suffix);
    return s;
}

static void check(int code) {
    if (code != ANSATZ_OK) {
        fprintf(stderr, "fcg: libansatz error %d: %s\n", code, ansatz_last_error());
        exit(2);
    }
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr,
                "usage: %s MODEL.apc A.mtx [--tol T] [--max-iter N] [--truncation K] [--solution x.mtx]\n"
                "libansatz %s\n",
                argv[0], ansatz_version());
        return 2;
    }
    const char *model = argv[1], *matrix = argv[2], *solution = NULL;
    double tol = 1e-6;
    size_t max_iter = 1000, trunc = 2;
    for (int i = 3; i < argc; i++) {
        if (i + 1 >= argc) die("a value is missing after", argv[i]);
        if (strcmp(argv[i], "--tol") == 0) tol = atof(argv[++i]);
        else if (strcmp(argv[i], "--max-iter") == 0) max_iter = (size_t)strtoul(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--truncation") == 0) trunc = (size_t)strtoul(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--solution") == 0) solution = argv[++i];
        else die("unknown option", argv[i]);
    }
    if (!(tol > 0.0) || trunc < 1) die("--tol must be positive and --truncation at least 1", NULL);

    size_t grid[3] = {0, 0, 1};
    csr a = read_matrix(matrix, grid);
    size_t n = a.n;
    if (grid[0] == 0) die("the matrix has no '% ansatz-grid: NX NY [NZ]' comment", matrix);
    char *rhs_path = sibling(matrix, ".rhs.mtx"), *cells_path = sibling(matrix, ".cells.mtx");
    double *b = read_vector(rhs_path, n, 0);
    double *cells_f = read_vector(cells_path, n, 1);
    size_t *cells = NULL;
    if (cells_f) {
        cells = malloc(sizeof(size_t) * n + 1);
        if (!cells) die("out of memory", NULL);
        for (size_t i = 0; i < n; i++) cells[i] = (size_t)cells_f[i];
    }

    ansatz_precond *pc = NULL;
    check(ansatz_precond_open(model, &pc));
    check(ansatz_precond_set_grid(pc, grid[0], grid[1], grid[2], cells, n));
    size_t size = 0;
    check(ansatz_precond_size(pc, &size));
    if (size != n) die("the preconditioner's unknowns do not match the matrix", NULL);

    /* flexible CG from x = 0: r = b */
    double *x = calloc(n, sizeof(double)), *r = malloc(sizeof(double) * n + 1), *z = malloc(sizeof(double) * n + 1);
    double *p = malloc(sizeof(double) * n + 1), *q = malloc(sizeof(double) * n + 1);
    double *ps = malloc(sizeof(double) * n * trunc + 1), *aps = malloc(sizeof(double) * n * trunc + 1);
    double *paps = malloc(sizeof(double) * trunc + 1);
    if (!x || !r || !z || !p || !q || !ps || !aps || !paps) die("out of memory", NULL);
    memcpy(r, b, sizeof(double) * n);
    double bnorm = sqrt(dot(b, b, n)), rnorm = sqrt(dot(r, r, n));
    size_t stored = 0, next = 0, it = 0;
    int converged = bnorm == 0.0 || rnorm <= tol * bnorm;
    while (!converged && it < max_iter) {
        check(ansatz_precond_apply(pc, n, r, z));
        /* p = z - sum_j (z . A p_j / p_j . A p_j) p_j, every coefficient from the unmodified z */
        memcpy(p, z, sizeof(double) * n);
        for (size_t j = 0; j < stored; j++) {
            double c = dot(z, aps + j * n, n) / paps[j];
            for (size_t i = 0; i < n; i++) p[i] -= c * ps[j * n + i];
        }
        spmv(&a, p, q);
        double pap = dot(p, q, n);
        if (!(pap > 0.0) || !isfinite(pap)) {
            fprintf(stderr, "fcg: breakdown at iteration %zu: p.Ap = %g\n", it, pap);
            return 1;
        }
        double alpha = dot(p, r, n) / pap;
        for (size_t i = 0; i < n; i++) {
            x[i] += alpha * p[i];
            r[i] -= alpha * q[i];
        }
        it++;
        rnorm = sqrt(dot(r, r, n));
        if (rnorm <= tol * bnorm) {
            converged = 1;
            break;
        }
        memcpy(ps + next * n, p, sizeof(double) * n);
        memcpy(aps + next * n, q, sizeof(double) * n);
        paps[next] = pap;
        next = (next + 1) % trunc;
        if (stored < trunc) stored++;
    }
    printf("iterations %zu\nrelative residual %.6e\n%s\n", it, bnorm > 0.0 ? rnorm / bnorm : 0.0,
           converged ? "converged" : "not converged");
    if (solution) {
        FILE *f = fopen(solution, "w");
        if (!f) die("cannot write", solution);
        fprintf(f, "%%%%MatrixMarket matrix array real general\n%zu 1\n", n);
        for (size_t i = 0; i < n; i++) fprintf(f, "%.17e\n", x[i]);
        fclose(f);
    }
    ansatz_precond_close(pc);
    free(a.ptr), free(a.col), free(a.val), free(b), free(cells_f), free(cells), free(rhs_path), free(cells_path);
    free(x), free(r), free(z), free(p), free(q), free(ps), free(aps), free(paps);
    return converged ? 0 : 1;
}
