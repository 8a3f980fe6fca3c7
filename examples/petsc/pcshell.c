/*
 * A learned preconditioner inside PETSc: a PCSHELL whose apply calls libansatz, used by the flexible Krylov
 * methods KSPFCG and KSPGCR and, for a linear network, by plain KSPCG, against PETSc's own KSPCG with PCICC (zero
 * fill), PCGAMG and no preconditioner, on
 * one system written by `ansatz export-system` (the matrix, <stem>.rhs.mtx, <stem>.cells.mtx if the system has
 * solid cells; the grid from the matrix's "% ansatz-grid: NX NY [NZ]" comment). Every solve starts from x = 0
 * and stops at a relative residual of RTOL in the unpreconditioned norm. One line per solver:
 *
 *   result <solver> <iterations> <setup seconds> <solve seconds> <true relative residual>
 *
 * Build: mpicc pcshell.c $(pkg-config --cflags --libs PETSc ansatz) -o pcshell
 * Run:   ./pcshell net.apc A.mtx [RTOL] [MMAX]     (defaults 1e-8 and 2: the directions KSPFCG keeps, as
 *                                                 `ansatz precond solve --method fcg`; KSPGCR restarts after 30)
 *
 * The preconditioner is nonlinear in general, so it belongs in a flexible method; PETSc's KSPCG assumes a fixed
 * linear one. A multilevel network is linear, symmetric and positive definite (`ansatz_precond_is_linear`), and
 * then KSPCG runs with it too; for a residual CNN that line says "skipped". The example runs on one process (the
 * network sees the whole grid).
 */
#include <ansatz.h>
#include <petscksp.h>
#include <petsctime.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The first line that is not a comment; records the "ansatz-grid:" comment in `grid` (nx, ny, nz). */
static int data_line(FILE *f, char *line, int len, size_t grid[3]) {
  while (fgets(line, len, f)) {
    if (line[0] != '%') return 0;
    const char *g = strstr(line, "ansatz-grid:");
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
  return 1;
}

/* A symmetric coordinate MatrixMarket matrix as a SeqAIJ matrix marked SPD. */
static PetscErrorCode read_matrix(const char *path, Mat *A, size_t grid[3]) {
  char line[4096];
  long nr, nc, ne;
  PetscFunctionBeginUser;
  FILE *f = fopen(path, "r");
  PetscCheck(f, PETSC_COMM_SELF, PETSC_ERR_FILE_OPEN, "cannot open %s", path);
  PetscCheck(fgets(line, sizeof line, f) && strncmp(line, "%%MatrixMarket matrix coordinate real", 37) == 0,
             PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED, "%s: not a MatrixMarket coordinate real matrix", path);
  int symmetric = strstr(line, "symmetric") != NULL;
  PetscCheck(!data_line(f, line, sizeof line, grid) && sscanf(line, "%ld %ld %ld", &nr, &nc, &ne) == 3 &&
                 nr == nc && nr > 0,
             PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED, "%s: bad size line", path);
  long *ri = malloc(sizeof(long) * ne + 1), *ci = malloc(sizeof(long) * ne + 1);
  double *v = malloc(sizeof(double) * ne + 1);
  PetscInt *nnz = calloc(nr, sizeof(PetscInt));
  PetscCheck(ri && ci && v && nnz, PETSC_COMM_SELF, PETSC_ERR_MEM, "out of memory");
  for (long k = 0; k < ne; k++) {
    PetscCheck(fscanf(f, "%ld %ld %lf", &ri[k], &ci[k], &v[k]) == 3 && ri[k] >= 1 && ci[k] >= 1 && ri[k] <= nr &&
                   ci[k] <= nr,
               PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED, "%s: entry %ld unreadable", path, k + 1);
    ri[k]--, ci[k]--;
    nnz[ri[k]]++;
    if (symmetric && ri[k] != ci[k]) nnz[ci[k]]++;
  }
  fclose(f);
  PetscCall(MatCreateSeqAIJ(PETSC_COMM_SELF, (PetscInt)nr, (PetscInt)nr, 0, nnz, A));
  for (long k = 0; k < ne; k++) {
    PetscCall(MatSetValue(*A, (PetscInt)ri[k], (PetscInt)ci[k], v[k], ADD_VALUES));
    if (symmetric && ri[k] != ci[k]) PetscCall(MatSetValue(*A, (PetscInt)ci[k], (PetscInt)ri[k], v[k], ADD_VALUES));
  }
  PetscCall(MatAssemblyBegin(*A, MAT_FINAL_ASSEMBLY));
  PetscCall(MatAssemblyEnd(*A, MAT_FINAL_ASSEMBLY));
  PetscCall(MatSetOption(*A, MAT_SPD, PETSC_TRUE));
  free(ri), free(ci), free(v), free(nnz);
  PetscFunctionReturn(0);
}

/* An n x 1 MatrixMarket array; `*out` stays NULL when the file is missing and `optional` is set. */
static PetscErrorCode read_array(const char *path, PetscInt n, double **out, int optional) {
  char line[4096];
  long nr, nc;
  PetscFunctionBeginUser;
  *out = NULL;
  FILE *f = fopen(path, "r");
  if (!f && optional) PetscFunctionReturn(0);
  PetscCheck(f, PETSC_COMM_SELF, PETSC_ERR_FILE_OPEN, "cannot open %s", path);
  PetscCheck(fgets(line, sizeof line, f) && !data_line(f, line, sizeof line, NULL) &&
                 sscanf(line, "%ld %ld", &nr, &nc) == 2 && nr == n && nc == 1,
             PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED, "%s: expected a %ld x 1 array", path, (long)n);
  double *a = malloc(sizeof(double) * n + 1);
  PetscCheck(a, PETSC_COMM_SELF, PETSC_ERR_MEM, "out of memory");
  for (PetscInt i = 0; i < n; i++)
    PetscCheck(fscanf(f, "%lf", &a[i]) == 1, PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED, "%s: entry %ld unreadable",
               path, (long)i + 1);
  fclose(f);
  *out = a;
  PetscFunctionReturn(0);
}

/* The shell preconditioner: z = M(r) through libansatz. */
static PetscErrorCode ansatz_apply(PC pc, Vec r, Vec z) {
  ansatz_precond *h;
  const PetscScalar *ra;
  PetscScalar *za;
  PetscInt n;
  PetscFunctionBeginUser;
  PetscCall(PCShellGetContext(pc, &h));
  PetscCall(VecGetLocalSize(r, &n));
  PetscCall(VecGetArrayRead(r, &ra));
  PetscCall(VecGetArrayWrite(z, &za));
  int code = ansatz_precond_apply(h, (size_t)n, ra, za);
  PetscCall(VecRestoreArrayWrite(z, &za));
  PetscCall(VecRestoreArrayRead(r, &ra));
  PetscCheck(code == ANSATZ_OK, PETSC_COMM_SELF, PETSC_ERR_LIB, "libansatz: %s", ansatz_last_error());
  PetscFunctionReturn(0);
}

typedef enum { FCG_NET, GCR_NET, CG_NET, CG_ICC, CG_GAMG, CG_NONE } solver;
static const char *names[] = {"KSPFCG+ansatz", "KSPGCR+ansatz", "KSPCG+ansatz",
                              "KSPCG+PCICC",   "KSPCG+PCGAMG",  "KSPCG+PCNONE"};

int main(int argc, char **argv) {
  Mat A;
  Vec b, x, r;
  PetscInt n;
  size_t grid[3] = {0, 0, 1};
  PetscCall(PetscInitialize(&argc, &argv, NULL, NULL));
  PetscCheck(argc >= 3, PETSC_COMM_SELF, PETSC_ERR_ARG_WRONG, "usage: %s MODEL.apc A.mtx [RTOL] [MMAX]", argv[0]);
  double rtol = argc > 3 ? atof(argv[3]) : 1e-8;
  PetscInt mmax = argc > 4 ? atoi(argv[4]) : 2;
  PetscCall(read_matrix(argv[2], &A, grid));
  PetscCall(MatGetSize(A, &n, NULL));
  PetscCheck(grid[0] > 0, PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED, "%s: no ansatz-grid comment", argv[2]);
  char *stem = strdup(argv[2]), rhs[4096], cells_path[4096];
  size_t len = strlen(stem);
  if (len > 4 && !strcmp(stem + len - 4, ".mtx")) stem[len - 4] = '\0';
  snprintf(rhs, sizeof rhs, "%s.rhs.mtx", stem);
  snprintf(cells_path, sizeof cells_path, "%s.cells.mtx", stem);
  double *bv, *cv;
  PetscCall(read_array(rhs, n, &bv, 0));
  PetscCall(read_array(cells_path, n, &cv, 1));
  PetscCall(VecCreateSeq(PETSC_COMM_SELF, n, &b));
  PetscScalar *ba;
  PetscCall(VecGetArray(b, &ba));
  memcpy(ba, bv, sizeof(double) * n);
  PetscCall(VecRestoreArray(b, &ba));
  PetscCall(VecDuplicate(b, &x));
  PetscCall(VecDuplicate(b, &r));
  PetscReal bnorm;
  PetscCall(VecNorm(b, NORM_2, &bnorm));

  PetscLogDouble t0, t1, t2;
  PetscCall(PetscTime(&t0));
  ansatz_precond *h = NULL;
  PetscCheck(ansatz_precond_open(argv[1], &h) == ANSATZ_OK, PETSC_COMM_SELF, PETSC_ERR_LIB, "libansatz: %s",
             ansatz_last_error());
  size_t *cells = NULL;
  if (cv) {
    cells = malloc(sizeof(size_t) * n + 1);
    for (PetscInt i = 0; i < n; i++) cells[i] = (size_t)cv[i];
  }
  PetscCheck(ansatz_precond_set_grid(h, grid[0], grid[1], grid[2], cells, (size_t)n) == ANSATZ_OK, PETSC_COMM_SELF,
             PETSC_ERR_LIB, "libansatz: %s", ansatz_last_error());
  PetscCall(PetscTime(&t1));
  double load = t1 - t0;

  PetscCall(PetscPrintf(PETSC_COMM_SELF, "%ld unknowns on a %zu x %zu x %zu grid, rtol %g, libansatz %s\n", (long)n,
                        grid[0], grid[1], grid[2], rtol, ansatz_version()));
  int linear = 0;
  PetscCheck(ansatz_precond_is_linear(h, &linear) == ANSATZ_OK, PETSC_COMM_SELF, PETSC_ERR_LIB, "libansatz: %s",
             ansatz_last_error());
  for (solver s = FCG_NET; s <= CG_NONE; s++) {
    if (s == CG_NET && !linear) {
      PetscCall(PetscPrintf(PETSC_COMM_SELF, "skipped %s: the network is nonlinear\n", names[s]));
      continue;
    }
    KSP ksp;
    PC pc;
    PetscCall(KSPCreate(PETSC_COMM_SELF, &ksp));
    PetscCall(KSPSetOperators(ksp, A, A));
    PetscCall(KSPGetPC(ksp, &pc));
    PetscCall(KSPSetTolerances(ksp, rtol, 0.0, PETSC_DEFAULT, 20000));
    switch (s) {
      case FCG_NET:
      case GCR_NET:
      case CG_NET:
        PetscCall(KSPSetType(ksp, s == FCG_NET ? KSPFCG : s == GCR_NET ? KSPGCR : KSPCG));
        if (s == FCG_NET) PetscCall(KSPFCGSetMmax(ksp, mmax));
        PetscCall(PCSetType(pc, PCSHELL));
        PetscCall(PCShellSetContext(pc, h));
        PetscCall(PCShellSetApply(pc, ansatz_apply));
        PetscCall(PCShellSetName(pc, "ansatz learned preconditioner"));
        if (s == GCR_NET) PetscCall(KSPSetPCSide(ksp, PC_RIGHT));
        break;
      case CG_ICC:
        PetscCall(KSPSetType(ksp, KSPCG));
        PetscCall(PCSetType(pc, PCICC));
        PetscCall(PCFactorSetLevels(pc, 0));
        break;
      case CG_GAMG:
        PetscCall(KSPSetType(ksp, KSPCG));
        PetscCall(PCSetType(pc, PCGAMG));
        break;
      case CG_NONE:
        PetscCall(KSPSetType(ksp, KSPCG));
        PetscCall(PCSetType(pc, PCNONE));
        break;
    }
    PetscCall(KSPSetNormType(ksp, KSP_NORM_UNPRECONDITIONED));
    PetscCall(VecSet(x, 0.0));
    PetscCall(PetscTime(&t0));
    PetscCall(KSPSetUp(ksp));
    PetscCall(PetscTime(&t1));
    PetscCall(KSPSolve(ksp, b, x));
    PetscCall(PetscTime(&t2));
    KSPConvergedReason reason;
    PetscInt its;
    PetscCall(KSPGetConvergedReason(ksp, &reason));
    PetscCall(KSPGetIterationNumber(ksp, &its));
    PetscCall(MatMult(A, x, r));
    PetscCall(VecAYPX(r, -1.0, b));
    PetscReal rnorm;
    PetscCall(VecNorm(r, NORM_2, &rnorm));
    double setup = (t1 - t0) + (s <= GCR_NET ? load : 0.0);
    PetscCall(PetscPrintf(PETSC_COMM_SELF, "result %s %ld %.6f %.6f %.3e%s\n", names[s], (long)its, setup, t2 - t1,
                          (double)(rnorm / bnorm), reason > 0 ? "" : " (not converged)"));
    PetscCall(KSPDestroy(&ksp));
  }
  ansatz_precond_close(h);
  free(cells), free(cv), free(bv), free(stem);
  PetscCall(VecDestroy(&b));
  PetscCall(VecDestroy(&x));
  PetscCall(VecDestroy(&r));
  PetscCall(MatDestroy(&A));
  PetscCall(PetscFinalize());
  return 0;
}
