! Flexible CG in Fortran 2008 with a learned preconditioner from libansatz (through the `ansatz` module of
! ansatz.f90): the Fortran twin of examples/c/fcg.c. Reads a system written by `ansatz export-system` (the
! matrix, <stem>.rhs.mtx, <stem>.cells.mtx if the system has solid cells, the grid from the matrix's
! "% ansatz-grid: NX NY [NZ]" comment), solves from x = 0 with truncation 2 and prints the iterations.
!
!   gfortran ansatz.f90 fcg.f90 $(pkg-config --libs ansatz) -o fcg
!   ./fcg net.apc A.mtx [TOL]
program fcg
  use ansatz
  use, intrinsic :: iso_c_binding, only: c_loc
  implicit none
  integer, parameter :: dp = c_double, trunc = 2, max_iter = 1000
  character(len=4096) :: model, matrix, arg
  integer(c_size_t) :: n, nnz, grid(3), j, it, stored, next, pc_n
  integer(c_size_t), allocatable :: rows(:), cols(:)
  integer(c_size_t), allocatable, target :: cells(:)
  real(dp), allocatable :: vals(:), b(:), x(:), r(:), z(:), p(:), q(:), ps(:, :), aps(:, :), paps(:), cells_f(:)
  real(dp) :: tol, bnorm, rnorm, pap, alpha, c
  type(c_ptr) :: pc
  logical :: converged, have_cells
  integer :: stem

  if (command_argument_count() < 2) then
    print '(a)', 'usage: fcg MODEL.apc A.mtx [TOL]'
    stop 2
  end if
  call get_command_argument(1, model)
  call get_command_argument(2, matrix)
  tol = 1.0e-6_dp
  if (command_argument_count() >= 3) then
    call get_command_argument(3, arg)
    read (arg, *) tol
  end if

  call read_matrix(trim(matrix), n, nnz, rows, cols, vals, grid)
  stem = len_trim(matrix)
  if (stem > 4) then
    if (matrix(stem - 3:stem) == '.mtx') stem = stem - 4
  end if
  call read_vector(matrix(1:stem) // '.rhs.mtx', n, b, .true.)
  call read_vector(matrix(1:stem) // '.cells.mtx', n, cells_f, .false.)
  have_cells = allocated(cells_f)

  call check(ansatz_precond_open(trim(model) // c_null_char, pc))
  if (have_cells) then
    allocate(cells(n))
    cells = nint(cells_f, kind=c_size_t)
    call check(ansatz_precond_set_grid(pc, grid(1), grid(2), grid(3), c_loc_cells(), n))
  else
    call check(ansatz_precond_set_grid(pc, grid(1), grid(2), grid(3), c_null_ptr, n))
  end if
  call check(ansatz_precond_size(pc, pc_n))
  if (pc_n /= n) stop 'the preconditioner does not fit the matrix'

  allocate(x(n), r(n), z(n), p(n), q(n), ps(n, trunc), aps(n, trunc), paps(trunc))
  x = 0
  r = b
  bnorm = sqrt(dot(b, b))
  rnorm = sqrt(dot(r, r))
  converged = bnorm == 0 .or. rnorm <= tol * bnorm
  it = 0
  stored = 0
  next = 1
  do while (.not. converged .and. it < max_iter)
    call check(ansatz_precond_apply(pc, n, r, z))
    p = z
    do j = 1, stored
      c = dot(z, aps(:, j)) / paps(j)
      p = p - c * ps(:, j)
    end do
    call spmv(p, q)
    pap = dot(p, q)
    if (.not. (pap > 0)) stop 'breakdown: p.Ap <= 0'
    alpha = dot(p, r) / pap
    x = x + alpha * p
    r = r - alpha * q
    it = it + 1
    rnorm = sqrt(dot(r, r))
    if (rnorm <= tol * bnorm) then
      converged = .true.
      exit
    end if
    ps(:, next) = p
    aps(:, next) = q
    paps(next) = pap
    next = mod(next, int(trunc, c_size_t)) + 1
    stored = min(stored + 1, int(trunc, c_size_t))
  end do
  print '(a, i0)', 'iterations ', it
  print '(a, es13.6)', 'relative residual ', rnorm / bnorm
  if (converged) then
    print '(a)', 'converged'
  else
    print '(a)', 'not converged'
  end if
  call ansatz_precond_close(pc)
  deallocate(rows, cols, vals, b, x, r, z, p, q, ps, aps, paps)
  if (have_cells) deallocate(cells, cells_f)
  if (.not. converged) stop 1

contains

  function c_loc_cells() result(ptr)
    type(c_ptr) :: ptr
    ptr = c_loc(cells)
  end function

  subroutine check(code)
    integer(c_int), intent(in) :: code
    if (code /= ANSATZ_OK) then
      print '(a, i0, a, a)', 'libansatz error ', code, ': ', ansatz_error_message()
      stop 2
    end if
  end subroutine

  ! Four running sums over the indices = 0, 1, 2, 3 (mod 4) of the leading multiple of 4, then the tail: the
  ! summation order of the Rust solvers.
  function dot(u, v) result(t)
    real(dp), intent(in) :: u(:), v(:)
    real(dp) :: t, s(0:3)
    integer(c_size_t) :: m, split, l
    m = size(u)
    split = m - mod(m, 4_c_size_t)
    s = 0
    do l = 1, split
      s(mod(l - 1, 4_c_size_t)) = s(mod(l - 1, 4_c_size_t)) + u(l) * v(l)
    end do
    t = (s(0) + s(1)) + (s(2) + s(3))
    do l = split + 1, m
      t = t + u(l) * v(l)
    end do
  end function

  ! y = A v from the symmetric coordinate entries (both triangles)
  subroutine spmv(v, y)
    real(dp), intent(in) :: v(:)
    real(dp), intent(out) :: y(:)
    integer(c_size_t) :: e
    y = 0
    do e = 1, nnz
      y(rows(e)) = y(rows(e)) + vals(e) * v(cols(e))
      if (rows(e) /= cols(e)) y(cols(e)) = y(cols(e)) + vals(e) * v(rows(e))
    end do
  end subroutine

  ! A "coordinate real symmetric" MatrixMarket matrix and the grid of its "ansatz-grid:" comment.
  subroutine read_matrix(path, n, nnz, rows, cols, vals, grid)
    character(len=*), intent(in) :: path
    integer(c_size_t), intent(out) :: n, nnz, grid(3)
    integer(c_size_t), allocatable, intent(out) :: rows(:), cols(:)
    real(dp), allocatable, intent(out) :: vals(:)
    character(len=4096) :: line
    integer :: unit, ios, at
    integer(c_size_t) :: m, e
    open(newunit=unit, file=path, status='old', action='read', iostat=ios)
    if (ios /= 0) stop 'cannot open the matrix'
    grid = [0_c_size_t, 0_c_size_t, 1_c_size_t]
    do
      read (unit, '(a)', iostat=ios) line
      if (ios /= 0) stop 'the matrix has no size line'
      if (line(1:1) /= '%') exit
      at = index(line, 'ansatz-grid:')
      if (at > 0) then
        read (line(at + 12:), *, iostat=ios) grid(1), grid(2), grid(3)
        if (ios /= 0) then
          read (line(at + 12:), *) grid(1), grid(2)
          grid(3) = 1
        end if
      end if
    end do
    if (grid(1) == 0) stop 'the matrix has no ansatz-grid comment'
    read (line, *) n, m, nnz
    allocate(rows(nnz), cols(nnz), vals(nnz))
    do e = 1, nnz
      read (unit, *) rows(e), cols(e), vals(e)
    end do
    close(unit)
  end subroutine

  ! An "array real" n × 1 MatrixMarket vector; a missing optional file leaves `v` unallocated.
  subroutine read_vector(path, n, v, required)
    character(len=*), intent(in) :: path
    integer(c_size_t), intent(in) :: n
    real(dp), allocatable, intent(out) :: v(:)
    logical, intent(in) :: required
    character(len=4096) :: line
    integer :: unit, ios
    integer(c_size_t) :: m, one, e
    open(newunit=unit, file=path, status='old', action='read', iostat=ios)
    if (ios /= 0) then
      if (required) stop 'cannot open the right-hand side'
      return
    end if
    do
      read (unit, '(a)') line
      if (line(1:1) /= '%') exit
    end do
    read (line, *) m, one
    if (m /= n .or. one /= 1) stop 'a vector does not match the matrix'
    allocate(v(n))
    do e = 1, n
      read (unit, *) v(e)
    end do
    close(unit)
  end subroutine

end program fcg
