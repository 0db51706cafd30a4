"""NumPy/SciPy reference solvers: the test oracle and the benchmark baseline.

Written from the authors' MATLAB (``solvers/sor.m``, ``ssor_pcg.m`` and MATLAB's ``pcg``)
with SciPy sparse matrices and triangular solves, independently of :mod:`.solvers`' line-by-line
grid formulation: the matrix is assembled with Kronecker products and vectors are flat
(natural ordering).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import spsolve_triangular

from accelrl.envs.relax.solvers import MAX_ITERATIONS, TOLERANCE


def shifted_laplacian(n: int, alpha: float, beta: float) -> sp.csr_matrix:
    """``alpha * delsq(numgrid('S', n + 2)) + beta * I`` as a SciPy CSR matrix [n^2, n^2]."""
    one_d = sp.diags([-np.ones(n - 1), 2.0 * np.ones(n), -np.ones(n - 1)], [-1, 0, 1])
    eye = sp.identity(n)
    lap = sp.kron(eye, one_d) + sp.kron(one_d, eye)
    return sp.csr_matrix(alpha * lap + beta * sp.identity(n * n))


def sor_iterations(
    A: sp.spmatrix,
    b: np.ndarray,
    x0: np.ndarray,
    omega: float,
    tol: float = TOLERANCE,
    max_iterations: int = MAX_ITERATIONS,
) -> tuple[int, np.ndarray]:
    """The authors' ``sor.m``: iterations to ``||r_k|| / ||r_0|| < tol`` (capped) and ``x``.

    ``b``, ``x0`` flat [N]; returns ``(k, x)``.
    """
    A = sp.csr_matrix(A)
    M = sp.csr_matrix(sp.diags(A.diagonal() / omega) + sp.tril(A, -1))
    x = np.array(x0, np.float64)
    r = b - A @ x
    norm0 = np.linalg.norm(r)
    for k in range(1, max_iterations + 1):
        x = x + spsolve_triangular(M, r, lower=True)
        r = b - A @ x
        if np.linalg.norm(r) / norm0 < tol:
            return k, x
    return max_iterations, x


def ssor_pcg_iterations(
    A: sp.spmatrix,
    b: np.ndarray,
    x0: np.ndarray,
    omega: float,
    tol: float = TOLERANCE,
    max_iterations: int = MAX_ITERATIONS,
) -> tuple[int, np.ndarray]:
    """The authors' ``ssor_pcg.m``: MATLAB ``pcg(A, b, tol, maxit, X' D^-1, X / (w (2 - w)), x0)``
    with ``X = D + omega tril(A, -1)``; returns ``(iterations, x)`` (0 if ``x0`` suffices)."""
    A = sp.csr_matrix(A)
    D = sp.diags(A.diagonal())
    X = sp.csr_matrix(D + omega * sp.tril(A, -1))
    Xt = sp.csr_matrix(X.T)
    tolb = tol * np.linalg.norm(b)
    x = np.array(x0, np.float64)
    r = b - A @ x
    if np.linalg.norm(r) <= tolb:
        return 0, x
    p = np.zeros_like(b)
    rho_prev = 1.0
    for k in range(1, max_iterations + 1):
        y = A.diagonal() * spsolve_triangular(Xt, r, lower=False)
        z = omega * (2.0 - omega) * spsolve_triangular(X, y, lower=True)
        rho = float(r @ z)
        p = z if k == 1 else z + (rho / rho_prev) * p
        rho_prev = rho
        q = A @ p
        step = rho / float(p @ q)
        x = x + step * p
        r = r - step * q
        if np.linalg.norm(r) <= tolb:
            r = b - A @ x
            if np.linalg.norm(r) <= tolb:
                return k, x
    return max_iterations, x
