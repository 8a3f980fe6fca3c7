/* PETSc side of the Krylov comparison (benches/examples/petsc_compare.rs).
 *
 * Reads a MatrixMarket system as `ansatz export-system` writes it (a symmetric coordinate matrix and an n x 1
 * array right-hand side) and solves it with KSPCG to relative residual RTOL in the unpreconditioned norm, on one
 * process, with each preconditioner named on the command line: none, icc (PCICC, zero fill), sor (PCSOR,
 * symmetric sweeps, omega 1.5) and gamg (PCGAMG with its defaults). Each solve runs REPS times from x = 0; the
 * fastest setup and solve are printed, one line per preconditioner:
 *
 *   result <pc> <iterations> <setup seconds> <solve seconds> <final relative residual>
 *
 * Build: cc krylov.c $(pkg-config --cflags --libs PETSc) -o krylov
 * Run:   ./krylov A.mtx A.rhs.mtx 1e-8 3 none icc sor gamg
 */
#include <petscksp.h>
#include <petsctime.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Skips the banner and comment lines; returns the first data line in `line`. */
static int first_data_line(FILE *f, char *line, size_t len, int *symmetric) {
  if (!fgets(line, (int)len, f)) return 1;
  if (strncmp(line, "%%MatrixMarket", 14) != 0) return 1;
  if (symmetric) *symmetric = strstr(line, "symmetric") != NULL;
  while (fgets(line, (int)len, f)) {
    if (line[0] != '%') return 0;
  }
  return 1;
}

static PetscErrorCode read_matrix(const char *path, Mat *A) {
  FILE *f = fopen(path, "r");
  char line[512];
  int symmetric = 0;
  long nr, nc, ne;
  PetscFunctionBeginUser;
  PetscCheck(f, PETSC_COMM_SELF, PETSC_ERR_FILE_OPEN, "cannot open %s", path);
  PetscCheck(!first_data_line(f, line, sizeof line, &symmetric), PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED,
             "%s: not a MatrixMarket file", path);
  PetscCheck(sscanf(line, "%ld %ld %ld", &nr, &nc, &ne) == 3 && nr == nc && nr > 0, PETSC_COMM_SELF,
             PETSC_ERR_FILE_UNEXPECTED, "%s: bad size line", path);
  long *ri = malloc(sizeof(long) * ne), *ci = malloc(sizeof(long) * ne);
  double *v = malloc(sizeof(double) * ne);
  PetscInt *nnz = calloc(nr, sizeof(PetscInt));
  for (long k = 0; k < ne; k++) {
    PetscCheck(fscanf(f, "%ld %ld %lf", &ri[k], &ci[k], &v[k]) == 3, PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED,
               "%s: entry %ld unreadable", path, k + 1);
    ri[k]--;
    ci[k]--;
    nnz[ri[k]]++;
    if (symmetric && ri[k] != ci[k]) nnz[ci[k]]++;
  }
  fclose(f);
  PetscCall(MatCreateSeqAIJ(PETSC_COMM_SELF, (PetscInt)nr, (PetscInt)nr, 0, nnz, A));
  for (long k = 0; k < ne; k++) {
    PetscCall(MatSetValue(*A, (PetscInt)ri[k], (PetscInt)ci[k], v[k], INSERT_VALUES));
    if (symmetric && ri[k] != ci[k]) PetscCall(MatSetValue(*A, (PetscInt)ci[k], (PetscInt)ri[k], v[k], INSERT_VALUES));
  }
  PetscCall(MatAssemblyBegin(*A, MAT_FINAL_ASSEMBLY));
  PetscCall(MatAssemblyEnd(*A, MAT_FINAL_ASSEMBLY));
  if (symmetric) PetscCall(MatSetOption(*A, MAT_SYMMETRIC, PETSC_TRUE));
  PetscCall(MatSetOption(*A, MAT_SPD, PETSC_TRUE));
  free(ri);
  free(ci);
  free(v);
  free(nnz);
  PetscFunctionReturn(0);
}

static PetscErrorCode read_vector(const char *path, PetscInt n, Vec *b) {
  FILE *f = fopen(path, "r");
  char line[512];
  long nr, nc;
  PetscScalar *a;
  PetscFunctionBeginUser;
  PetscCheck(f, PETSC_COMM_SELF, PETSC_ERR_FILE_OPEN, "cannot open %s", path);
  PetscCheck(!first_data_line(f, line, sizeof line, NULL), PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED,
             "%s: not a MatrixMarket file", path);
  PetscCheck(sscanf(line, "%ld %ld", &nr, &nc) == 2 && nr == n && nc == 1, PETSC_COMM_SELF,
             PETSC_ERR_FILE_UNEXPECTED, "%s: expected a %ld x 1 array", path, (long)n);
  PetscCall(VecCreateSeq(PETSC_COMM_SELF, n, b));
  PetscCall(VecGetArray(*b, &a));
  for (PetscInt i = 0; i < n; i++)
    PetscCheck(fscanf(f, "%lf", &a[i]) == 1, PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED, "%s: entry %ld unreadable",
               path, (long)i + 1);
  PetscCall(VecRestoreArray(*b, &a));
  fclose(f);
  PetscFunctionReturn(0);
}

int main(int argc, char **argv) {
  Mat A;
  Vec b, x, r;
  PetscInt n;
  PetscCall(PetscInitialize(&argc, &argv, NULL, NULL));
  PetscCheck(argc >= 6, PETSC_COMM_SELF, PETSC_ERR_ARG_WRONG,
             "usage: %s A.mtx b.mtx rtol reps pc [pc ...] (pc: none icc sor gamg)", argv[0]);
  double rtol = atof(argv[3]);
  int reps = atoi(argv[4]);
  PetscCall(read_matrix(argv[1], &A));
  PetscCall(MatGetSize(A, &n, NULL));
  PetscCall(read_vector(argv[2], n, &b));
  PetscCall(VecDuplicate(b, &x));
  PetscCall(VecDuplicate(b, &r));
  PetscReal bnorm;
  PetscCall(VecNorm(b, NORM_2, &bnorm));
  for (int k = 5; k < argc; k++) {
    const char *pc = argv[k];
    double best_setup = 1e300, best_solve = 1e300, rel = 0.0;
    PetscInt its = 0;
    for (int rep = 0; rep < reps; rep++) {
      KSP ksp;
      PC p;
      PetscLogDouble t0, t1, t2;
      PetscCall(KSPCreate(PETSC_COMM_SELF, &ksp));
      PetscCall(KSPSetOperators(ksp, A, A));
      PetscCall(KSPSetType(ksp, KSPCG));
      PetscCall(KSPSetNormType(ksp, KSP_NORM_UNPRECONDITIONED));
      PetscCall(KSPSetTolerances(ksp, rtol, 0.0, PETSC_DEFAULT, 100000));
      PetscCall(KSPGetPC(ksp, &p));
      if (!strcmp(pc, "none")) {
        PetscCall(PCSetType(p, PCNONE));
      } else if (!strcmp(pc, "icc")) {
        PetscCall(PCSetType(p, PCICC));
        PetscCall(PCFactorSetLevels(p, 0));
      } else if (!strcmp(pc, "sor")) {
        PetscCall(PCSetType(p, PCSOR));
        PetscCall(PCSORSetSymmetric(p, SOR_SYMMETRIC_SWEEP));
        PetscCall(PCSORSetOmega(p, 1.5));
      } else if (!strcmp(pc, "gamg")) {
        PetscCall(PCSetType(p, PCGAMG));
      } else {
        SETERRQ(PETSC_COMM_SELF, PETSC_ERR_ARG_WRONG, "unknown preconditioner %s (none icc sor gamg)", pc);
      }
      PetscCall(VecSet(x, 0.0));
      PetscCall(PetscTime(&t0));
      PetscCall(KSPSetUp(ksp));
      PetscCall(KSPSetUpOnBlocks(ksp));
      PetscCall(PetscTime(&t1));
      PetscCall(KSPSolve(ksp, b, x));
      PetscCall(PetscTime(&t2));
      KSPConvergedReason reason;
      PetscCall(KSPGetConvergedReason(ksp, &reason));
      PetscCheck(reason > 0, PETSC_COMM_SELF, PETSC_ERR_NOT_CONVERGED, "%s: KSP did not converge (reason %d)", pc,
                 (int)reason);
      PetscCall(KSPGetIterationNumber(ksp, &its));
      PetscCall(MatMult(A, x, r));
      PetscCall(VecAYPX(r, -1.0, b));
      PetscReal rnorm;
      PetscCall(VecNorm(r, NORM_2, &rnorm));
      rel = rnorm / bnorm;
      if (t1 - t0 < best_setup) best_setup = t1 - t0;
      if (t2 - t1 < best_solve) best_solve = t2 - t1;
      PetscCall(KSPDestroy(&ksp));
    }
    PetscCall(PetscPrintf(PETSC_COMM_SELF, "result %s %ld %.6e %.6e %.3e\n", pc, (long)its, best_setup, best_solve,
                          rel));
  }
  PetscCall(VecDestroy(&b));
  PetscCall(VecDestroy(&x));
  PetscCall(VecDestroy(&r));
  PetscCall(MatDestroy(&A));
  PetscCall(PetscFinalize());
  return 0;
}
