! Fortran 2008 interfaces to libansatz (capi/include/ansatz.h) through ISO_C_BINDING.
!
!   use ansatz
!   type(c_ptr) :: pc
!   if (ansatz_precond_open("net.apc" // c_null_char, pc) /= ANSATZ_OK) stop ansatz_error_message()
!
! Vectors are real(c_double) arrays in the cell ordering of `ansatz export-system` (x fastest); sizes and cell
! indices are integer(c_size_t), cells 0-based as in C.
module ansatz
  use, intrinsic :: iso_c_binding
  implicit none
  private
  public :: c_ptr, c_null_ptr, c_null_char, c_size_t, c_double, c_int
  public :: ansatz_precond_open, ansatz_precond_set_grid, ansatz_precond_size, ansatz_precond_grid
  public :: ansatz_precond_is_linear
  public :: ansatz_precond_apply, ansatz_precond_close, ansatz_last_error, ansatz_version, ansatz_error_message

  integer(c_int), parameter, public :: ANSATZ_OK = 0, ANSATZ_ERR_NULL = -1, ANSATZ_ERR_HANDLE = -2, &
                                       ANSATZ_ERR_FILE = -3, ANSATZ_ERR_SIZE = -4, ANSATZ_ERR_VALUE = -5, &
                                       ANSATZ_ERR_ARGUMENT = -6, ANSATZ_ERR_INTERNAL = -7

  interface
    ! Loads an exported preconditioner; `path` must end with c_null_char.
    function ansatz_precond_open(path, out) bind(c, name="ansatz_precond_open") result(code)
      import :: c_char, c_ptr, c_int
      character(kind=c_char), dimension(*), intent(in) :: path
      type(c_ptr), intent(out) :: out
      integer(c_int) :: code
    end function

    ! Places it on an nx × ny × nz grid; `cells` (0-based cell of each unknown) or c_null_ptr for every cell.
    function ansatz_precond_set_grid(pc, nx, ny, nz, cells, ncells) bind(c, name="ansatz_precond_set_grid") &
        result(code)
      import :: c_ptr, c_size_t, c_int
      type(c_ptr), value :: pc
      integer(c_size_t), value :: nx, ny, nz
      type(c_ptr), value :: cells
      integer(c_size_t), value :: ncells
      integer(c_int) :: code
    end function

    function ansatz_precond_size(pc, n) bind(c, name="ansatz_precond_size") result(code)
      import :: c_ptr, c_size_t, c_int
      type(c_ptr), value :: pc
      integer(c_size_t), intent(out) :: n
      integer(c_int) :: code
    end function

    function ansatz_precond_is_linear(pc, linear) bind(c, name="ansatz_precond_is_linear") result(code)
      import :: c_ptr, c_int
      type(c_ptr), value :: pc
      integer(c_int), intent(out) :: linear
      integer(c_int) :: code
    end function

    function ansatz_precond_grid(pc, nx, ny, nz) bind(c, name="ansatz_precond_grid") result(code)
      import :: c_ptr, c_size_t, c_int
      type(c_ptr), value :: pc
      integer(c_size_t), intent(out) :: nx, ny, nz
      integer(c_int) :: code
    end function

    ! z ≈ c A⁻¹ r (nonlinear in general: use a flexible method).
    function ansatz_precond_apply(pc, n, r, z) bind(c, name="ansatz_precond_apply") result(code)
      import :: c_ptr, c_size_t, c_double, c_int
      type(c_ptr), value :: pc
      integer(c_size_t), value :: n
      real(c_double), dimension(*), intent(in) :: r
      real(c_double), dimension(*), intent(inout) :: z
      integer(c_int) :: code
    end function

    subroutine ansatz_precond_close(pc) bind(c, name="ansatz_precond_close")
      import :: c_ptr
      type(c_ptr), value :: pc
    end subroutine

    function ansatz_last_error() bind(c, name="ansatz_last_error") result(msg)
      import :: c_ptr
      type(c_ptr) :: msg
    end function

    function ansatz_version() bind(c, name="ansatz_version") result(v)
      import :: c_ptr
      type(c_ptr) :: v
    end function

    function c_strlen(s) bind(c, name="strlen") result(n)
      import :: c_ptr, c_size_t
      type(c_ptr), value :: s
      integer(c_size_t) :: n
    end function
  end interface

contains

  ! The thread's last error message as a Fortran string.
  function ansatz_error_message() result(text)
    character(len=:), allocatable :: text
    type(c_ptr) :: p
    character(kind=c_char), dimension(:), pointer :: chars
    integer(c_size_t) :: n, i
    p = ansatz_last_error()
    n = c_strlen(p)
    allocate(character(len=n) :: text)
    if (n == 0) return
    call c_f_pointer(p, chars, [n])
    do i = 1, n
      text(i:i) = chars(i)
    end do
  end function

end module ansatz
