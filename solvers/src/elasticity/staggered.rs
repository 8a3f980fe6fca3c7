//! Static 2D linear elasticity `−∇·σ(u) = b`, `σ = λ tr(ε) I + 2μ ε`, on a staggered (MAC) grid.
//!
//! The x displacement lives at the centres of the vertical cell faces, the y displacement at the centres of the
//! horizontal faces; normal strains are then centred in the cells and the shear strain at the cell corners, so
//! every difference is compact and centred (no odd–even decoupling, no interpolation of displacements). The
//! system is assembled from the discrete strain energy
//! `E = Σ_cells h² [½ λ (ε_xx + ε_yy)² + μ (ε_xx² + ε_yy²)] + Σ_corners w h² ½ μ γ²` (trapezoid weights w at the
//! boundary) minus the work of body forces and tractions, so the matrix is symmetric positive definite by
//! construction and its interior rows are the finite-volume momentum balances of the staggered control volumes.

use crate::ConfigError;
use crate::linalg::CsrMatrix;

/// Plane strain (thick bodies: ε_zz = 0) or plane stress (thin plates: σ_zz = 0, λ replaced by 2λμ/(λ + 2μ)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Model {
    PlaneStrain,
    PlaneStress,
}

/// A side of the box.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Left,
    Right,
    Bottom,
    Top,
}

/// What is prescribed on a side (the values come with the right-hand side).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ElasticSide {
    /// Displacement (Dirichlet).
    Displacement,
    /// Traction `σ·n` (Neumann).
    Traction,
}

/// Static 2D elasticity on `nx × ny` cells of a `lx × ly` box with piecewise-constant Lamé fields per cell.
///
/// Unknowns: the x displacement at vertical faces `(i h_x, (j + ½) h_y)` not on a displacement side, then the y
/// displacement at horizontal faces `((i + ½) h_x, j h_y)` not on a displacement side.
#[derive(Clone, Debug)]
pub struct Elasticity2d {
    nx: usize,
    ny: usize,
    hx: f64,
    hy: f64,
    /// effective λ (λ* in plane stress) and the λ, μ given
    lambda: Vec<f64>,
    lambda0: Vec<f64>,
    mu: Vec<f64>,
    model: Model,
    sides: [ElasticSide; 4],
    /// unknown index of U(i, j) (`usize::MAX` if prescribed), then of V(i, j)
    uidx: Vec<usize>,
    vidx: Vec<usize>,
    unknowns: usize,
}

const FIXED: usize = usize::MAX;

/// What the stiffness of an energy term is.
#[derive(Clone, Copy, Debug)]
enum Stiffness {
    /// λ of a cell (λ* in plane stress)
    Lambda(usize),
    /// 2μ of a cell
    TwoMu(usize),
    /// μ at a corner: the mean over its cells
    CornerMu(usize, usize),
}

/// A linear form `Σ c_k x_k + d` over the unknowns.
#[derive(Clone, Debug, Default)]
struct Form {
    terms: Vec<(usize, f64)>,
    constant: f64,
}

impl Form {
    fn add(&mut self, other: &Form, s: f64) {
        for &(k, c) in &other.terms {
            self.terms.push((k, c * s));
        }
        self.constant += other.constant * s;
    }
}

impl Elasticity2d {
    /// A problem on `nx × ny` cells (each ≥ 3) of a `length = [lx, ly]` box; `lambda` and `mu` per cell (x
    /// fastest; μ > 0, λ ≥ 0); `sides` as `[left, right, bottom, top]`. At least one side must prescribe the
    /// displacement (otherwise rigid motions make the problem singular).
    pub fn new(
        nx: usize,
        ny: usize,
        length: [f64; 2],
        lambda: Vec<f64>,
        mu: Vec<f64>,
        model: Model,
        sides: [ElasticSide; 4],
    ) -> Result<Self, ConfigError> {
        for (axis, n) in [("x", nx), ("y", ny)] {
            if n < 3 {
                return Err(ConfigError::GridTooSmall { axis, n, min: 3 });
            }
        }
        crate::check_positive("length x", length[0])?;
        crate::check_positive("length y", length[1])?;
        let cells = nx * ny;
        for (name, f) in [("lambda", &lambda), ("mu", &mu)] {
            if f.len() != cells {
                return Err(ConfigError::Shape {
                    what: if name == "mu" { "Lamé field mu" } else { "Lamé field lambda" },
                    expected: vec![cells],
                    got: vec![f.len()],
                });
            }
        }
        if let Some(&v) = mu.iter().find(|v| !(v.is_finite() && **v > 0.0)) {
            return Err(ConfigError::NotPositive { name: "shear modulus mu", value: v });
        }
        if let Some(&v) = lambda.iter().find(|v| !(v.is_finite() && **v >= 0.0)) {
            return Err(ConfigError::Negative { name: "Lamé parameter lambda", value: v });
        }
        if !sides.contains(&ElasticSide::Displacement) {
            return Err(ConfigError::Shape {
                what: "sides: at least one displacement side is needed",
                expected: vec![1],
                got: vec![0],
            });
        }
        let lambda0 = lambda.clone();
        let lambda = match model {
            Model::PlaneStrain => lambda,
            Model::PlaneStress => lambda.iter().zip(&mu).map(|(l, m)| 2.0 * l * m / (l + 2.0 * m)).collect(),
        };
        let mut p = Self {
            nx,
            ny,
            hx: length[0] / nx as f64,
            hy: length[1] / ny as f64,
            lambda,
            lambda0,
            mu,
            model,
            sides,
            uidx: vec![FIXED; (nx + 1) * ny],
            vidx: vec![FIXED; nx * (ny + 1)],
            unknowns: 0,
        };
        let mut k = 0;
        for j in 0..ny {
            for i in 0..=nx {
                let fixed = (i == 0 && p.side(Side::Left) == ElasticSide::Displacement)
                    || (i == nx && p.side(Side::Right) == ElasticSide::Displacement);
                if !fixed {
                    p.uidx[j * (nx + 1) + i] = k;
                    k += 1;
                }
            }
        }
        for j in 0..=ny {
            for i in 0..nx {
                let fixed = (j == 0 && p.side(Side::Bottom) == ElasticSide::Displacement)
                    || (j == ny && p.side(Side::Top) == ElasticSide::Displacement);
                if !fixed {
                    p.vidx[j * nx + i] = k;
                    k += 1;
                }
            }
        }
        p.unknowns = k;
        Ok(p)
    }

    fn side(&self, s: Side) -> ElasticSide {
        self.sides[s as usize]
    }

    /// Number of unknowns.
    pub fn unknowns(&self) -> usize {
        self.unknowns
    }

    /// Grid shape `(nx, ny)` and cell widths `(hx, hy)`.
    pub fn grid(&self) -> ((usize, usize), (f64, f64)) {
        ((self.nx, self.ny), (self.hx, self.hy))
    }

    /// Position of U(i, j) and V(i, j).
    pub fn u_position(&self, i: usize, j: usize) -> (f64, f64) {
        (i as f64 * self.hx, (j as f64 + 0.5) * self.hy)
    }

    /// Position of V(i, j).
    pub fn v_position(&self, i: usize, j: usize) -> (f64, f64) {
        ((i as f64 + 0.5) * self.hx, j as f64 * self.hy)
    }

    /// The x displacement U(i, j) as a form (`disp` gives prescribed values).
    fn u(&self, i: usize, j: usize, disp: &dyn Fn(Side, f64, f64) -> [f64; 2]) -> Form {
        let k = self.uidx[j * (self.nx + 1) + i];
        if k != FIXED {
            return Form { terms: vec![(k, 1.0)], constant: 0.0 };
        }
        let (x, y) = self.u_position(i, j);
        let side = if i == 0 { Side::Left } else { Side::Right };
        Form { terms: vec![], constant: disp(side, x, y)[0] }
    }

    fn v(&self, i: usize, j: usize, disp: &dyn Fn(Side, f64, f64) -> [f64; 2]) -> Form {
        let k = self.vidx[j * self.nx + i];
        if k != FIXED {
            return Form { terms: vec![(k, 1.0)], constant: 0.0 };
        }
        let (x, y) = self.v_position(i, j);
        let side = if j == 0 { Side::Bottom } else { Side::Top };
        Form { terms: vec![], constant: disp(side, x, y)[1] }
    }

    /// Visits every quadratic term `½ k w form²` of the strain energy with its weight `w` and what `k` depends
    /// on.
    fn energy_terms(
        &self,
        boundary: &dyn Fn(Side, f64, f64) -> [f64; 2],
        visit: &mut dyn FnMut(&Form, Stiffness, f64),
    ) {
        let (nx, ny, hx, hy) = (self.nx, self.ny, self.hx, self.hy);
        let area = hx * hy;
        // cells: normal strains
        for j in 0..ny {
            for i in 0..nx {
                let c = j * nx + i;
                let mut exx = Form::default();
                exx.add(&self.u(i + 1, j, boundary), 1.0 / hx);
                exx.add(&self.u(i, j, boundary), -1.0 / hx);
                let mut eyy = Form::default();
                eyy.add(&self.v(i, j + 1, boundary), 1.0 / hy);
                eyy.add(&self.v(i, j, boundary), -1.0 / hy);
                let mut tr = exx.clone();
                tr.add(&eyy, 1.0);
                visit(&tr, Stiffness::Lambda(c), area);
                visit(&exx, Stiffness::TwoMu(c), area);
                visit(&eyy, Stiffness::TwoMu(c), area);
            }
        }
        // corners: shear strain γ = ∂U/∂y + ∂V/∂x
        for j in 0..=ny {
            for i in 0..=nx {
                let mut g = Form::default();
                // ∂U/∂y at (i hx, j hy)
                if j > 0 && j < ny {
                    g.add(&self.u(i, j, boundary), 1.0 / hy);
                    g.add(&self.u(i, j - 1, boundary), -1.0 / hy);
                } else {
                    let (inner, outer, s, side) =
                        if j == 0 { (0, 1, 1.0, Side::Bottom) } else { (ny - 1, ny - 2, -1.0, Side::Top) };
                    if self.side(side) == ElasticSide::Displacement {
                        // the prescribed value on the side, half a cell away
                        let (x, y) = (i as f64 * hx, j as f64 * hy);
                        let ub = Form { terms: vec![], constant: boundary(side, x, y)[0] };
                        g.add(&self.u(i, inner, boundary), s * 2.0 / hy);
                        g.add(&ub, -s * 2.0 / hy);
                    } else {
                        g.add(&self.u(i, outer, boundary), s / hy);
                        g.add(&self.u(i, inner, boundary), -s / hy);
                    }
                }
                // ∂V/∂x at (i hx, j hy)
                if i > 0 && i < nx {
                    g.add(&self.v(i, j, boundary), 1.0 / hx);
                    g.add(&self.v(i - 1, j, boundary), -1.0 / hx);
                } else {
                    let (inner, outer, s, side) =
                        if i == 0 { (0, 1, 1.0, Side::Left) } else { (nx - 1, nx - 2, -1.0, Side::Right) };
                    if self.side(side) == ElasticSide::Displacement {
                        let (x, y) = (i as f64 * hx, j as f64 * hy);
                        let vb = Form { terms: vec![], constant: boundary(side, x, y)[1] };
                        g.add(&self.v(inner, j, boundary), s * 2.0 / hx);
                        g.add(&vb, -s * 2.0 / hx);
                    } else {
                        g.add(&self.v(outer, j, boundary), s / hx);
                        g.add(&self.v(inner, j, boundary), -s / hx);
                    }
                }
                let w = if i == 0 || i == nx { 0.5 } else { 1.0 } * if j == 0 || j == ny { 0.5 } else { 1.0 };
                visit(&g, Stiffness::CornerMu(i, j), w * area);
            }
        }
    }

    /// The cells around corner (i, j).
    fn corner_cells(&self, i: usize, j: usize) -> impl Iterator<Item = usize> + '_ {
        [(i.wrapping_sub(1), j.wrapping_sub(1)), (i, j.wrapping_sub(1)), (i.wrapping_sub(1), j), (i, j)]
            .into_iter()
            .filter(|&(ci, cj)| ci < self.nx && cj < self.ny)
            .map(|(ci, cj)| cj * self.nx + ci)
    }

    /// The value of a stiffness.
    fn stiffness(&self, s: Stiffness) -> f64 {
        match s {
            Stiffness::Lambda(c) => self.lambda[c],
            Stiffness::TwoMu(c) => 2.0 * self.mu[c],
            Stiffness::CornerMu(i, j) => {
                let (sum, cnt) = self.corner_cells(i, j).fold((0.0, 0.0), |(s, n), c| (s + self.mu[c], n + 1.0));
                sum / cnt
            }
        }
    }

    /// Partial derivatives of a stiffness with respect to the given λ and μ of cells: `(cell, ∂/∂λ, ∂/∂μ)`.
    fn stiffness_derivatives(&self, s: Stiffness, out: &mut Vec<(usize, f64, f64)>) {
        out.clear();
        match s {
            Stiffness::Lambda(c) => match self.model {
                Model::PlaneStrain => out.push((c, 1.0, 0.0)),
                Model::PlaneStress => {
                    let (l, m) = (self.lambda0[c], self.mu[c]);
                    let d = (l + 2.0 * m) * (l + 2.0 * m);
                    out.push((c, 4.0 * m * m / d, 2.0 * l * l / d));
                }
            },
            Stiffness::TwoMu(c) => out.push((c, 0.0, 2.0)),
            Stiffness::CornerMu(i, j) => {
                let cnt = self.corner_cells(i, j).count() as f64;
                out.extend(self.corner_cells(i, j).map(|c| (c, 0.0, 1.0 / cnt)));
            }
        }
    }

    /// Builds the system for body force `body(x, y)` and boundary data `boundary(side, x, y)` (the displacement on
    /// displacement sides, the traction σ·n on traction sides). Returns triplets of A and the right-hand side.
    #[allow(clippy::type_complexity)]
    fn build(
        &self,
        body: &dyn Fn(f64, f64) -> [f64; 2],
        boundary: &dyn Fn(Side, f64, f64) -> [f64; 2],
    ) -> (Vec<(usize, usize, f64)>, Vec<f64>) {
        let (nx, ny, hx, hy) = (self.nx, self.ny, self.hx, self.hy);
        let area = hx * hy;
        let mut t = Vec::new();
        let mut rhs = vec![0.0; self.unknowns];
        // E += ½ k w form²  →  A += k w c cᵀ, rhs −= k w d c
        self.energy_terms(boundary, &mut |f: &Form, s: Stiffness, w: f64| {
            let kw = self.stiffness(s) * w;
            for &(a, ca) in &f.terms {
                for &(b, cb) in &f.terms {
                    t.push((a, b, kw * ca * cb));
                }
                rhs[a] -= kw * f.constant * ca;
            }
        });
        // body forces on the control volumes of the unknowns
        for j in 0..ny {
            for i in 0..=nx {
                let k = self.uidx[j * (nx + 1) + i];
                if k != FIXED {
                    let (x, y) = self.u_position(i, j);
                    rhs[k] += body(x, y)[0] * area * if i == 0 || i == nx { 0.5 } else { 1.0 };
                }
            }
        }
        for j in 0..=ny {
            for i in 0..nx {
                let k = self.vidx[j * nx + i];
                if k != FIXED {
                    let (x, y) = self.v_position(i, j);
                    rhs[k] += body(x, y)[1] * area * if j == 0 || j == ny { 0.5 } else { 1.0 };
                }
            }
        }
        // tractions: the work t·u along traction sides
        let work = |f: &Form, tv: f64, len: f64, rhs: &mut Vec<f64>| {
            for &(k, c) in &f.terms {
                rhs[k] += tv * len * c;
            }
        };
        for side in [Side::Left, Side::Right] {
            if self.side(side) != ElasticSide::Traction {
                continue;
            }
            let (i, inner, outer) = if side == Side::Left { (0, 0, 1) } else { (nx, nx - 1, nx - 2) };
            let x = i as f64 * hx;
            for j in 0..ny {
                let y = (j as f64 + 0.5) * hy;
                work(&self.u(i, j, boundary), boundary(side, x, y)[0], hy, &mut rhs);
            }
            for j in 0..=ny {
                // V on the side, extrapolated from the two nearest columns
                let mut vb = Form::default();
                vb.add(&self.v(inner, j, boundary), 1.5);
                vb.add(&self.v(outer, j, boundary), -0.5);
                let len = hy * if j == 0 || j == ny { 0.5 } else { 1.0 };
                work(&vb, boundary(side, x, j as f64 * hy)[1], len, &mut rhs);
            }
        }
        for side in [Side::Bottom, Side::Top] {
            if self.side(side) != ElasticSide::Traction {
                continue;
            }
            let (j, inner, outer) = if side == Side::Bottom { (0, 0, 1) } else { (ny, ny - 1, ny - 2) };
            let y = j as f64 * hy;
            for i in 0..nx {
                let x = (i as f64 + 0.5) * hx;
                work(&self.v(i, j, boundary), boundary(side, x, y)[1], hx, &mut rhs);
            }
            for i in 0..=nx {
                let mut ub = Form::default();
                ub.add(&self.u(i, inner, boundary), 1.5);
                ub.add(&self.u(i, outer, boundary), -0.5);
                let len = hx * if i == 0 || i == nx { 0.5 } else { 1.0 };
                work(&ub, boundary(side, i as f64 * hx, y)[0], len, &mut rhs);
            }
        }
        (t, rhs)
    }

    /// Lumped mass of every unknown for a uniform density `rho`: ρ times the area of its control volume (half a
    /// cell on the box boundary).
    pub fn lumped_mass(&self, rho: f64) -> Vec<f64> {
        let (nx, ny, area) = (self.nx, self.ny, self.hx * self.hy);
        let mut m = vec![0.0; self.unknowns];
        for j in 0..ny {
            for i in 0..=nx {
                let k = self.uidx[j * (nx + 1) + i];
                if k != FIXED {
                    m[k] = rho * area * if i == 0 || i == nx { 0.5 } else { 1.0 };
                }
            }
        }
        for j in 0..=ny {
            for i in 0..nx {
                let k = self.vidx[j * nx + i];
                if k != FIXED {
                    m[k] = rho * area * if j == 0 || j == ny { 0.5 } else { 1.0 };
                }
            }
        }
        m
    }

    /// The stiffness matrix (symmetric positive definite).
    pub fn assemble(&self) -> CsrMatrix {
        let (t, _) = self.build(&|_, _| [0.0; 2], &|_, _, _| [0.0; 2]);
        CsrMatrix::from_triplets(self.unknowns, self.unknowns, &t).expect("indices are in range")
    }

    /// The right-hand side for body force `body(x, y)` and boundary data `boundary(side, x, y)`: the
    /// displacement on displacement sides, the traction `σ·n` (outward normal) on traction sides.
    pub fn rhs(&self, body: &dyn Fn(f64, f64) -> [f64; 2], boundary: &dyn Fn(Side, f64, f64) -> [f64; 2]) -> Vec<f64> {
        self.build(body, boundary).1
    }

    /// The displacement fields from the unknowns and the prescribed values: `U` on `(ny) × (nx + 1)` faces and
    /// `V` on `(ny + 1) × nx` faces, x fastest.
    pub fn fields(&self, x: &[f64], boundary: &dyn Fn(Side, f64, f64) -> [f64; 2]) -> (Vec<f64>, Vec<f64>) {
        let (nx, ny) = (self.nx, self.ny);
        let eval = |f: Form| f.constant + f.terms.iter().map(|&(k, c)| c * x[k]).sum::<f64>();
        let u =
            (0..ny).flat_map(|j| (0..=nx).map(move |i| (i, j))).map(|(i, j)| eval(self.u(i, j, boundary))).collect();
        let v =
            (0..=ny).flat_map(|j| (0..nx).map(move |i| (i, j))).map(|(i, j)| eval(self.v(i, j, boundary))).collect();
        (u, v)
    }
}

/// Inputs of an elasticity solve that can be differentiated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ElasticParameter {
    /// Body force at the unknowns' positions (the right-hand side is its control-volume integral).
    Body,
    /// λ of every cell.
    Lambda,
    /// μ of every cell.
    Mu,
}

/// The equilibrium `F(u; b, λ, μ) = K(λ, μ) u − f(b, λ, μ) = 0` of a static solve at its solution `u` (unknowns),
/// for [`implicit_vjp`](crate::implicit::implicit_vjp) and [`implicit_jvp`](crate::implicit::implicit_jvp)
/// (K symmetric positive definite: use CG). `k` is the assembled stiffness and `boundary` the boundary data of
/// the solve (prescribed displacements enter F through the energy terms).
pub struct ElasticityRoot<'a> {
    pub problem: &'a Elasticity2d,
    pub k: &'a CsrMatrix,
    pub u: &'a [f64],
    pub boundary: &'a (dyn Fn(Side, f64, f64) -> [f64; 2] + Sync),
    pub wrt: ElasticParameter,
}

impl ElasticityRoot<'_> {
    /// `Σ_terms (∂k/∂θ) w (c·u + d) · [c·ω]` per parameter (transpose) or the forward product.
    fn lame(&self, lambda: bool, forward: Option<(&[f64], &mut [f64])>, transpose: Option<(&[f64], &mut [f64])>) {
        let p = self.problem;
        let mut ds = Vec::new();
        let eval = |f: &Form, x: &[f64]| f.terms.iter().map(|&(k, c)| c * x[k]).sum::<f64>();
        let (mut fwd, mut tr) = (forward, transpose);
        p.energy_terms(self.boundary, &mut |f: &Form, s: Stiffness, w: f64| {
            p.stiffness_derivatives(s, &mut ds);
            let value = eval(f, self.u) + f.constant;
            for &(c, dl, dm) in &ds {
                let d = if lambda { dl } else { dm };
                if d == 0.0 {
                    continue;
                }
                if let Some((t, out)) = fwd.as_mut() {
                    let scale = d * t[c] * w * value;
                    for &(k, ck) in &f.terms {
                        out[k] += scale * ck;
                    }
                }
                if let Some((om, out)) = tr.as_mut() {
                    out[c] += d * w * value * eval(f, om);
                }
            }
        });
    }
}

impl crate::implicit::RootProblem for ElasticityRoot<'_> {
    fn n(&self) -> usize {
        self.problem.unknowns()
    }
    fn p(&self) -> usize {
        match self.wrt {
            ElasticParameter::Body => self.problem.unknowns(),
            _ => self.problem.nx * self.problem.ny,
        }
    }
    fn jac_x(&self, v: &[f64], out: &mut [f64]) {
        self.k.matvec(v, out);
    }
    fn jac_x_t(&self, v: &[f64], out: &mut [f64]) {
        self.k.matvec(v, out);
    }
    fn jac_theta(&self, t: &[f64], out: &mut [f64]) {
        match self.wrt {
            ElasticParameter::Body => {
                for ((o, ti), m) in out.iter_mut().zip(t).zip(self.problem.lumped_mass(1.0)) {
                    *o = -m * ti;
                }
            }
            ElasticParameter::Lambda | ElasticParameter::Mu => {
                out.fill(0.0);
                self.lame(self.wrt == ElasticParameter::Lambda, Some((t, out)), None);
            }
        }
    }
    fn jac_theta_t(&self, w: &[f64], out: &mut [f64]) {
        match self.wrt {
            ElasticParameter::Body => {
                for ((o, wi), m) in out.iter_mut().zip(w).zip(self.problem.lumped_mass(1.0)) {
                    *o = -m * wi;
                }
            }
            ElasticParameter::Lambda | ElasticParameter::Mu => {
                out.fill(0.0);
                self.lame(self.wrt == ElasticParameter::Lambda, None, Some((w, out)));
            }
        }
    }
}
