//! Datasets of static linear problems: Poisson in 2D and 3D (random log-normal coefficient, random source,
//! random solid rectangles or boxes) and plane-strain elasticity in 2D (random Lamé fields and body force). Every
//! sample is solved to a relative residual `rtol` and stored with its inputs on the cell grid (no time dimension).

use std::path::Path;

use ansatz_solvers::elasticity::{ElasticSide, Elasticity2d, Model, Side};
use ansatz_solvers::krylov::{SolveInfo, Tolerance, pcg};
use ansatz_solvers::poisson::{PoissonBc, PoissonFv};
use ansatz_solvers::precond::{Ic0, Multigrid, Preconditioner};
use serde::{Deserialize, Serialize};

use crate::error::{DatasetError, Result};
use crate::generate::{GenerateOptions, GenerateReport, write_dataset};
use crate::problems::SmoothField;
use crate::rng::SampleRng;
use crate::schema::{Field, GridType, Layout, ParameterInfo, Precision};

/// The static problems `generate` knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StaticPde {
    Poisson2d,
    Poisson3d,
    Elasticity2d,
}

impl StaticPde {
    /// Parses a name; `None` for other PDEs.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "poisson2d" => Some(StaticPde::Poisson2d),
            "poisson3d" => Some(StaticPde::Poisson3d),
            "elasticity2d" => Some(StaticPde::Elasticity2d),
            _ => None,
        }
    }

    /// The name `ansatz generate` takes.
    pub fn name(self) -> &'static str {
        match self {
            StaticPde::Poisson2d => "poisson2d",
            StaticPde::Poisson3d => "poisson3d",
            StaticPde::Elasticity2d => "elasticity2d",
        }
    }

    /// Space dimensions.
    pub fn dims(self) -> usize {
        if self == StaticPde::Poisson3d { 3 } else { 2 }
    }

    fn default_config(self) -> &'static str {
        match self {
            StaticPde::Poisson2d => include_str!("../../configs/poisson2d.toml"),
            StaticPde::Poisson3d => include_str!("../../configs/poisson3d.toml"),
            StaticPde::Elasticity2d => include_str!("../../configs/elasticity2d.toml"),
        }
    }

    /// Field variables, in storage order.
    pub fn fields(self) -> Vec<(&'static str, &'static str)> {
        match self {
            StaticPde::Elasticity2d => vec![
                ("lambda", "first Lamé parameter"),
                ("mu", "shear modulus"),
                ("body_x", "body force, x component"),
                ("body_y", "body force, y component"),
                ("displacement_x", "displacement, x component (mean of the two cell faces)"),
                ("displacement_y", "displacement, y component (mean of the two cell faces)"),
            ],
            _ => vec![
                ("k", "diffusion coefficient"),
                ("f", "source"),
                ("fluid", "cell indicator: 1 fluid, 0 solid"),
                ("u", "solution (0 in solid cells)"),
            ],
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct Raw {
    pde: String,
    samples: usize,
    seed: u64,
    grid: RawGrid,
    coefficient: RawCoefficient,
    source: RawSource,
    mask: RawMask,
    solver: RawSolver,
    output: RawOutput,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct RawGrid {
    n: usize,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct RawCoefficient {
    log_contrast: f64,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct RawSource {
    amplitude: f64,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct RawMask {
    max_solids: usize,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct RawSolver {
    rtol: f64,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct RawOutput {
    precision: String,
    compression: i32,
}

/// A validated static-problem generation spec.
#[derive(Clone, Debug, PartialEq)]
pub struct StaticSpec {
    pub pde: StaticPde,
    pub samples: usize,
    pub seed: u64,
    pub n: usize,
    pub log_contrast: f64,
    pub amplitude: f64,
    pub max_solids: usize,
    pub rtol: f64,
    pub precision: Precision,
    pub compression: i32,
    pub config_text: String,
}

/// Loads the config of a static PDE (embedded default or `file`), then `sets`, `samples` and `seed`.
pub fn load(
    pde: StaticPde,
    file: Option<(&str, &str)>,
    sets: &[String],
    samples: Option<usize>,
    seed: Option<u64>,
) -> Result<StaticSpec> {
    let (origin, table) = crate::config::config_table(pde.name(), pde.default_config(), file, sets, samples, seed)?;
    let err = |key: &str, m: String| DatasetError::Config { origin: format!("{origin}: {key}"), message: m };
    let raw: Raw = toml::Value::Table(table).try_into().map_err(|e: toml::de::Error| DatasetError::Config {
        origin: origin.clone(),
        message: e.to_string().trim().replace('\n', " "),
    })?;
    let precision = crate::config::common_checks(
        (&raw.pde, pde.name()),
        raw.samples,
        raw.grid.n,
        (&raw.output.precision, raw.output.compression),
        &err,
    )?;
    for (key, v) in
        [("coefficient.log_contrast", raw.coefficient.log_contrast), ("source.amplitude", raw.source.amplitude)]
    {
        if !(v.is_finite() && v >= 0.0) {
            return Err(err(key, format!("must be non-negative, got {v}")));
        }
    }
    if !(raw.solver.rtol > 0.0 && raw.solver.rtol < 1.0) {
        return Err(err("solver.rtol", format!("must be in (0, 1), got {}", raw.solver.rtol)));
    }
    if pde == StaticPde::Elasticity2d && raw.mask.max_solids > 0 {
        return Err(err("mask.max_solids", "solid regions are not supported for elasticity".into()));
    }
    let config_text =
        toml::to_string(&raw).map_err(|e| DatasetError::Config { origin: origin.clone(), message: e.to_string() })?;
    Ok(StaticSpec {
        pde,
        samples: raw.samples,
        seed: raw.seed,
        n: raw.grid.n,
        log_contrast: raw.coefficient.log_contrast,
        amplitude: raw.source.amplitude,
        max_solids: raw.mask.max_solids,
        rtol: raw.solver.rtol,
        precision,
        compression: raw.output.compression,
        config_text,
    })
}

pub(crate) fn centres(n: usize, dims: usize) -> Vec<[f64; 3]> {
    let h = 1.0 / n as f64;
    let cells = n.pow(dims as u32);
    (0..cells)
        .map(|c| {
            let (i, j, k) = (c % n, (c / n) % n, c / (n * n));
            [(i as f64 + 0.5) * h, (j as f64 + 0.5) * h, if dims == 3 { (k as f64 + 0.5) * h } else { 0.0 }]
        })
        .collect()
}

/// The Poisson problem of the static datasets on an `n`-cell-per-axis grid with coefficient `k`: u = 0 on every
/// side and up to `max_solids` random solid rectangles or boxes, redrawn from `rng` until every fluid region
/// touches the boundary (so that the matrix is not singular).
pub(crate) fn draw_poisson(
    n: usize,
    dims: usize,
    k: &[f64],
    max_solids: usize,
    rng: &mut SampleRng,
) -> std::result::Result<PoissonFv, ansatz_solvers::ConfigError> {
    let pts = centres(n, dims);
    let zero = PoissonBc::Dirichlet(0.0);
    loop {
        let count = if max_solids > 0 { rng.int(0, max_solids) } else { 0 };
        let boxes: Vec<([f64; 3], [f64; 3])> = (0..count)
            .map(|_| {
                let lo: [f64; 3] = std::array::from_fn(|d| if d < dims { rng.range(0.1, 0.6) } else { -1.0 });
                let hi: [f64; 3] = std::array::from_fn(|d| if d < dims { lo[d] + rng.range(0.1, 0.3) } else { 2.0 });
                (lo, hi)
            })
            .collect();
        let fluid: Vec<bool> =
            pts.iter().map(|x| !boxes.iter().any(|(lo, hi)| (0..3).all(|d| x[d] >= lo[d] && x[d] <= hi[d]))).collect();
        let p = if dims == 3 {
            PoissonFv::new_3d([n; 3], [1.0; 3], Some(k.to_vec()), [zero; 6], Some(fluid))
        } else {
            PoissonFv::new_2d(n, n, [1.0, 1.0], Some(k.to_vec()), [zero; 4], Some(fluid))
        }?;
        if !p.is_singular() {
            return Ok(p);
        }
    }
}

fn solver_error(sample: usize, e: impl std::fmt::Display) -> DatasetError {
    DatasetError::Config { origin: format!("sample {sample}"), message: format!("the linear solve failed: {e}") }
}

/// The Poisson problem of one sample of a `poisson2d` or `poisson3d` dataset, before its solve.
#[derive(Debug)]
pub struct PoissonSample {
    /// The coefficient, one value per grid cell (x fastest).
    pub k: Vec<f64>,
    /// The source, one value per grid cell.
    pub f: Vec<f64>,
    /// The discretisation with the sample's solids.
    pub problem: PoissonFv,
}

/// Sample `i`'s problem: exactly the system [`solve_static_sample`] solves. Fails for an elasticity spec.
pub fn poisson_sample(spec: &StaticSpec, i: usize) -> Result<PoissonSample> {
    let (n, dims) = (spec.n, spec.pde.dims());
    if spec.pde == StaticPde::Elasticity2d {
        return Err(DatasetError::Config { origin: "elasticity2d".into(), message: "not a Poisson problem".into() });
    }
    let pts = centres(n, dims);
    let mut rng = SampleRng::new(spec.seed, i as u64);
    let k: Vec<f64> = SmoothField::draw(&mut rng, &pts, dims, 12)
        .sample(&pts)
        .iter()
        .map(|g| (spec.log_contrast * g).exp())
        .collect();
    let f: Vec<f64> =
        SmoothField::draw(&mut rng, &pts, dims, 12).sample(&pts).iter().map(|g| spec.amplitude * g).collect();
    let problem = draw_poisson(n, dims, &k, spec.max_solids, &mut rng).map_err(|e| solver_error(i, e))?;
    Ok(PoissonSample { k, f, problem })
}

/// Sample `i`: its fields `(field, cell)` in the order of [`StaticPde::fields`] and its solver report.
pub fn solve_static_sample(spec: &StaticSpec, i: usize) -> Result<(Vec<f64>, SolveInfo)> {
    let (n, dims) = (spec.n, spec.pde.dims());
    let pts = centres(n, dims);
    let cells = pts.len();
    let mut rng = SampleRng::new(spec.seed, i as u64);
    let tol = Tolerance::relative(spec.rtol, 50_000);
    match spec.pde {
        StaticPde::Poisson2d | StaticPde::Poisson3d => {
            let PoissonSample { k, f, problem } = poisson_sample(spec, i)?;
            let a = problem.assemble();
            let m: Box<dyn Preconditioner> = match Multigrid::new(&a, &problem.box_grid(), 2, 64) {
                Ok(mg) => Box::new(mg),
                Err(_) => Box::new(Ic0::shifted(&a).map_err(|e| solver_error(i, e))?),
            };
            let (u, info) = problem.solve(&f, m.as_ref(), tol).map_err(|e| solver_error(i, e))?;
            let fluid = problem.to_grid(&vec![1.0; problem.unknowns()], 0.0);
            let mut data = Vec::with_capacity(4 * cells);
            data.extend_from_slice(&k);
            data.extend_from_slice(&f);
            data.extend_from_slice(&fluid);
            data.extend_from_slice(&u);
            Ok((data, info))
        }
        StaticPde::Elasticity2d => {
            let mu: Vec<f64> = SmoothField::draw(&mut rng, &pts, 2, 12)
                .sample(&pts)
                .iter()
                .map(|g| 0.5 * (spec.log_contrast * g).exp())
                .collect();
            let lambda: Vec<f64> = SmoothField::draw(&mut rng, &pts, 2, 12)
                .sample(&pts)
                .iter()
                .map(|g| (spec.log_contrast * g).exp())
                .collect();
            let bx = SmoothField::draw(&mut rng, &pts, 2, 12);
            let by = SmoothField::draw(&mut rng, &pts, 2, 12);
            let sides =
                [ElasticSide::Displacement, ElasticSide::Traction, ElasticSide::Traction, ElasticSide::Traction];
            let p = Elasticity2d::new(n, n, [1.0, 1.0], lambda.clone(), mu.clone(), Model::PlaneStrain, sides)
                .map_err(|e| solver_error(i, e))?;
            let body = |x: f64, y: f64| [spec.amplitude * bx.eval([x, y, 0.0]), spec.amplitude * by.eval([x, y, 0.0])];
            let free = |_: Side, _: f64, _: f64| [0.0; 2];
            let a = p.assemble();
            let b = p.rhs(&body, &free);
            let mut x = vec![0.0; p.unknowns()];
            let info = pcg(&a, &Ic0::shifted(&a).map_err(|e| solver_error(i, e))?, &b, &mut x, tol)
                .map_err(|e| solver_error(i, e))?;
            let (u, v) = p.fields(&x, &free);
            let mut data = Vec::with_capacity(6 * cells);
            data.extend_from_slice(&lambda);
            data.extend_from_slice(&mu);
            data.extend(pts.iter().map(|c| body(c[0], c[1])[0]));
            data.extend(pts.iter().map(|c| body(c[0], c[1])[1]));
            data.extend((0..cells).map(|c| 0.5 * (u[(c / n) * (n + 1) + c % n] + u[(c / n) * (n + 1) + c % n + 1])));
            data.extend((0..cells).map(|c| 0.5 * (v[c] + v[c + n])));
            Ok((data, info))
        }
    }
}

/// Generates the dataset of `spec` into `out` (see [`crate::generate::generate`] for the guarantees).
pub fn generate_static(
    spec: &StaticSpec,
    out: &Path,
    opts: &GenerateOptions,
    mut progress: impl FnMut(usize, usize),
) -> Result<GenerateReport> {
    let (n, dims) = (spec.n, spec.pde.dims());
    let h = 1.0 / n as f64;
    let axis: Vec<f64> = (0..n).map(|i| (i as f64 + 0.5) * h).collect();
    let (bc, source) = match spec.pde {
        StaticPde::Elasticity2d => (
            vec!["dirichlet (x = 0, clamped) / traction (x = 1, free)".to_string(), "traction (free)".to_string()],
            "plane strain, staggered finite volume; left side clamped, other sides traction-free; PCG with IC(0)",
        ),
        _ => {
            (vec!["dirichlet".to_string(); dims], "cell-centred finite volume, u = 0 on every side; PCG with multigrid")
        }
    };
    let layout = Layout {
        pde: spec.pde.name().into(),
        fields: spec
            .pde
            .fields()
            .into_iter()
            .map(|(name, long)| Field { name: name.into(), long_name: long.into() })
            .collect(),
        parameters: vec![
            ParameterInfo {
                name: "solver_iterations".into(),
                long_name: "iterations of the linear solve".into(),
                simulation: false,
            },
            ParameterInfo {
                name: "solver_residual".into(),
                long_name: "final relative residual of the linear solve".into(),
                simulation: false,
            },
        ],
        samples: spec.samples,
        first_sample: 0,
        times: vec![],
        x: axis.clone(),
        y: Some(axis.clone()),
        z: (dims == 3).then(|| axis.clone()),
        grid_type: GridType::CellCentered,
        extent: vec![1.0; dims],
        bc,
        precision: spec.precision,
        compression: spec.compression,
        time_chunk: 1,
        text: vec![
            ("title".into(), format!("{} samples generated by Ansatz", spec.pde.name())),
            (
                "source".into(),
                format!("ansatz-solvers {}: {source}, relative residual {}", env!("CARGO_PKG_VERSION"), spec.rtol),
            ),
            ("history".into(), opts.history.clone()),
            ("generation_config".into(), spec.config_text.clone()),
        ],
        seed: Some(spec.seed),
        context_frames: 0,
    };
    write_dataset(
        layout,
        out,
        opts,
        |k| {
            let (data, info) = solve_static_sample(spec, k)?;
            let bnorm = info.residuals.first().copied().unwrap_or(1.0).max(f64::MIN_POSITIVE);
            Ok((data, vec![info.iterations as f64, info.residual() / bnorm]))
        },
        &mut progress,
    )
}
