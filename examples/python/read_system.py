"""Read a system written by `ansatz export-system` with scipy and solve it.

Usage: python read_system.py A.mtx A.rhs.mtx

Needs scipy. Exits non-zero with a message if anything is off.
"""

import sys

import numpy as np
import scipy.io
import scipy.sparse.linalg


def check(matrix, rhs):
    a = scipy.io.mmread(matrix).tocsr()
    b = np.asarray(scipy.io.mmread(rhs)).ravel()
    n = a.shape[0]
    assert a.shape == (n, n) and b.shape == (n,), (a.shape, b.shape)
    assert abs(a - a.T).max() < 1e-12 * abs(a).max(), "matrix is not symmetric"
    x = scipy.sparse.linalg.spsolve(a.tocsc(), b)
    rel = np.linalg.norm(a @ x - b) / np.linalg.norm(b)
    assert rel < 1e-10, f"relative residual {rel}"
    # SPD: a few smallest eigenvalues are positive
    lam = scipy.sparse.linalg.eigsh(a, k=1, sigma=0, which="LM", return_eigenvectors=False)
    assert lam.min() > 0, lam
    print(f"{matrix}: {n} x {n}, {a.nnz} nonzeros, symmetric positive definite, spsolve residual {rel:.1e}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    check(sys.argv[1], sys.argv[2])
