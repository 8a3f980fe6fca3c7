//! Right-hand sides for training learned Poisson preconditioners (the deep conjugate direction method): random
//! combinations of Ritz vectors of Poisson matrices, weighted toward the low end of the spectrum, where
//! conjugate gradients converge slowest.
//!
//! A dataset holds `samples` right-hand sides drawn from `systems.count` matrices (each its own log-normal
//! coefficient and solid rectangles or boxes, as in the `poisson2d`/`poisson3d` datasets, u = 0 on every side).
//! Sample `i` belongs to system `⌊i · count / samples⌋`, so the samples of one system are contiguous. For each
//! system: `lanczos.steps` Lanczos steps with full reorthogonalisation from `A z`, `z ~ N(0, I)`; the Ritz pairs
//! of the tridiagonal matrix; the pairs with a Ritz value below `lanczos.null_tolerance` times the largest
//! dropped (the null space, for singular systems). A sample is `b = Σ_j c_j v_j / ‖·‖` with `c_j ~ N(0, 1)`,
//! multiplied by `rhs.low_weight` for the lowest `rhs.low_fraction` of the kept pairs, except in a fraction
//! `rhs.flat_fraction` of the samples (drawn per sample), whose coefficients are all `N(0, 1)`.
//!
//! Stored per sample on the cell grid: `k` and `fluid` (the matrix is `PoissonFv` of these, rebuilt by the
//! reader), and `b` (zero in solid cells). Sample `i` depends only on `(seed, i)`: its system is rebuilt from
//! `(seed, system)` and its coefficients drawn from `(seed, i)`, so shards and resumed runs agree bit for bit.
//! Memory while generating: the Lanczos basis and the Ritz vectors of each system in use, `2 · steps · cells`
//! values.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use ansatz_solvers::krylov::{RitzPairs, ritz_pairs};
use ansatz_solvers::linalg::LinearOperator;
use ansatz_solvers::poisson::PoissonFv;
use serde::{Deserialize, Serialize};

use crate::error::{DatasetError, Result};
use crate::generate::{GenerateOptions, GenerateReport, write_dataset};
use crate::problems::SmoothField;
use crate::rng::SampleRng;
use crate::schema::{Field, GridType, Layout, ParameterInfo, Precision};
use crate::statics::{centres, draw_poisson};

/// The Ritz-vector datasets `generate` knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RitzPde {
    Poisson2d,
    Poisson3d,
}

impl RitzPde {
    /// Parses a name (`ritz-poisson2d`, `ritz-poisson3d`); `None` for others.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "ritz-poisson2d" => Some(RitzPde::Poisson2d),
            "ritz-poisson3d" => Some(RitzPde::Poisson3d),
            _ => None,
        }
    }

    /// The name of the dataset kind.
    pub fn name(self) -> &'static str {
        match self {
            RitzPde::Poisson2d => "ritz-poisson2d",
            RitzPde::Poisson3d => "ritz-poisson3d",
        }
    }

    /// Space dimensions.
    pub fn dims(self) -> usize {
        match self {
            RitzPde::Poisson2d => 2,
            RitzPde::Poisson3d => 3,
        }
    }

    fn default_config(self) -> &'static str {
        match self {
            RitzPde::Poisson2d => include_str!("../../configs/ritz-poisson2d.toml"),
            RitzPde::Poisson3d => include_str!("../../configs/ritz-poisson3d.toml"),
        }
    }

    /// Field variables, in storage order.
    pub fn fields() -> Vec<(&'static str, &'static str)> {
        vec![
            ("k", "diffusion coefficient of the system"),
            ("fluid", "cell indicator: 1 fluid (an unknown), 0 solid"),
            ("b", "right-hand side: unit-norm combination of Ritz vectors (0 in solid cells)"),
        ]
    }
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct Raw {
    pde: String,
    samples: usize,
    seed: u64,
    grid: RawGrid,
    systems: RawSystems,
    coefficient: RawCoefficient,
    mask: RawMask,
    lanczos: RawLanczos,
    rhs: RawRhs,
    output: RawOutput,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct RawGrid {
    n: usize,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct RawSystems {
    count: usize,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct RawCoefficient {
    log_contrast: f64,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct RawMask {
    max_solids: usize,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct RawLanczos {
    steps: usize,
    null_tolerance: f64,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct RawRhs {
    low_fraction: f64,
    low_weight: f64,
    #[serde(default)]
    flat_fraction: f64,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct RawOutput {
    precision: String,
    compression: i32,
}

/// A validated Ritz-vector dataset spec.
#[derive(Clone, Debug, PartialEq)]
pub struct RitzSpec {
    pub pde: RitzPde,
    pub samples: usize,
    pub seed: u64,
    pub n: usize,
    pub systems: usize,
    pub log_contrast: f64,
    pub max_solids: usize,
    pub steps: usize,
    pub null_tolerance: f64,
    pub low_fraction: f64,
    pub low_weight: f64,
    /// The fraction of samples drawn with every coefficient `N(0, 1)` (no low-mode weighting).
    pub flat_fraction: f64,
    pub precision: Precision,
    pub compression: i32,
    pub config_text: String,
}

/// Loads the config (embedded default or `file`), then `sets`, `samples` and `seed`.
pub fn load(
    pde: RitzPde,
    file: Option<(&str, &str)>,
    sets: &[String],
    samples: Option<usize>,
    seed: Option<u64>,
) -> Result<RitzSpec> {
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
    if raw.systems.count == 0 || raw.systems.count > raw.samples {
        return Err(err(
            "systems.count",
            format!("must be between 1 and samples ({}), got {}", raw.samples, raw.systems.count),
        ));
    }
    if !(raw.coefficient.log_contrast.is_finite() && raw.coefficient.log_contrast >= 0.0) {
        return Err(err(
            "coefficient.log_contrast",
            format!("must be non-negative, got {}", raw.coefficient.log_contrast),
        ));
    }
    if raw.lanczos.steps < 2 {
        return Err(err("lanczos.steps", "must be at least 2".into()));
    }
    if !(raw.lanczos.null_tolerance >= 0.0 && raw.lanczos.null_tolerance < 1.0) {
        return Err(err("lanczos.null_tolerance", format!("must be in [0, 1), got {}", raw.lanczos.null_tolerance)));
    }
    if !(0.0..=1.0).contains(&raw.rhs.low_fraction) {
        return Err(err("rhs.low_fraction", format!("must be in [0, 1], got {}", raw.rhs.low_fraction)));
    }
    if !(0.0..=1.0).contains(&raw.rhs.flat_fraction) {
        return Err(err("rhs.flat_fraction", format!("must be in [0, 1], got {}", raw.rhs.flat_fraction)));
    }
    if !(raw.rhs.low_weight.is_finite() && raw.rhs.low_weight > 0.0) {
        return Err(err("rhs.low_weight", format!("must be positive, got {}", raw.rhs.low_weight)));
    }
    let config_text =
        toml::to_string(&raw).map_err(|e| DatasetError::Config { origin: origin.clone(), message: e.to_string() })?;
    Ok(RitzSpec {
        pde,
        samples: raw.samples,
        seed: raw.seed,
        n: raw.grid.n,
        systems: raw.systems.count,
        log_contrast: raw.coefficient.log_contrast,
        max_solids: raw.mask.max_solids,
        steps: raw.lanczos.steps,
        null_tolerance: raw.lanczos.null_tolerance,
        low_fraction: raw.rhs.low_fraction,
        low_weight: raw.rhs.low_weight,
        flat_fraction: raw.rhs.flat_fraction,
        precision,
        compression: raw.output.compression,
        config_text,
    })
}

/// One system of a Ritz dataset: its coefficient, its problem and its kept Ritz pairs (ascending).
#[derive(Debug)]
pub struct RitzSystem {
    pub k: Vec<f64>,
    pub problem: PoissonFv,
    pub ritz: RitzPairs,
}

/// The stream of system `s` (distinct from every sample's stream `(seed, i)`: the top bit is set).
const SYSTEM_STREAM: u64 = 1 << 63;

/// The system of sample `i`.
pub fn system_of(spec: &RitzSpec, i: usize) -> usize {
    ((i as u128 * spec.systems as u128) / spec.samples as u128) as usize
}

/// Builds system `s`: coefficient and solids from `(seed, s)`, Lanczos from `A z`, the null space dropped.
pub fn build_system(spec: &RitzSpec, s: usize) -> Result<RitzSystem> {
    let (n, dims) = (spec.n, spec.pde.dims());
    let fail = |e: String| DatasetError::Config { origin: format!("system {s}"), message: e };
    let pts = centres(n, dims);
    let mut rng = SampleRng::new(spec.seed, SYSTEM_STREAM | s as u64);
    let k: Vec<f64> = SmoothField::draw(&mut rng, &pts, dims, 12)
        .sample(&pts)
        .iter()
        .map(|g| (spec.log_contrast * g).exp())
        .collect();
    let problem = draw_poisson(n, dims, &k, spec.max_solids, &mut rng).map_err(|e| fail(e.to_string()))?;
    let a = problem.assemble();
    let z: Vec<f64> = (0..a.nrows()).map(|_| rng.normal()).collect();
    let mut start = vec![0.0; a.nrows()];
    a.apply(&z, &mut start);
    let all = ritz_pairs(&a, &start, spec.steps).map_err(|e| fail(format!("Lanczos failed: {e}")))?;
    let floor = spec.null_tolerance * all.values.last().copied().unwrap_or(0.0);
    let (values, vectors) = all.values.into_iter().zip(all.vectors).filter(|(v, _)| *v >= floor).unzip();
    let ritz = RitzPairs { values, vectors };
    if ritz.values.is_empty() {
        return Err(fail("no Ritz pair above the null-space tolerance".into()));
    }
    Ok(RitzSystem { k, problem, ritz })
}

/// Sample `i` of a system: unit-norm `b` on the unknowns of the system's problem.
pub fn sample_rhs(spec: &RitzSpec, system: &RitzSystem, i: usize) -> Vec<f64> {
    let mut rng = SampleRng::new(spec.seed, i as u64);
    let m = system.ritz.values.len();
    // drawn only when flat samples are asked for, so that the default keeps its stream
    let flat = spec.flat_fraction > 0.0 && rng.uniform() < spec.flat_fraction;
    let low = if flat { 0 } else { (spec.low_fraction * m as f64).round() as usize };
    let mut b = vec![0.0; system.problem.unknowns()];
    for (j, v) in system.ritz.vectors.iter().enumerate() {
        let c = rng.normal() * if j < low { spec.low_weight } else { 1.0 };
        for (bt, vt) in b.iter_mut().zip(v) {
            *bt += c * vt;
        }
    }
    let norm = b.iter().map(|x| x * x).sum::<f64>().sqrt();
    b.iter_mut().for_each(|x| *x /= norm);
    b
}

/// Generates the dataset of `spec` into `out` (see [`crate::generate::generate`] for the guarantees).
pub fn generate_ritz(
    spec: &RitzSpec,
    out: &Path,
    opts: &GenerateOptions,
    mut progress: impl FnMut(usize, usize),
) -> Result<GenerateReport> {
    let (n, dims) = (spec.n, spec.pde.dims());
    let h = 1.0 / n as f64;
    let axis: Vec<f64> = (0..n).map(|i| (i as f64 + 0.5) * h).collect();
    let layout = Layout {
        pde: spec.pde.name().into(),
        fields: RitzPde::fields()
            .into_iter()
            .map(|(name, long)| Field { name: name.into(), long_name: long.into() })
            .collect(),
        parameters: vec![
            ParameterInfo {
                name: "system".into(),
                long_name: "index of the system (matrix)".into(),
                simulation: false,
            },
            ParameterInfo {
                name: "ritz_min".into(),
                long_name: "smallest kept Ritz value of the system".into(),
                simulation: false,
            },
            ParameterInfo {
                name: "ritz_max".into(),
                long_name: "largest Ritz value of the system".into(),
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
        bc: vec!["dirichlet".to_string(); dims],
        precision: spec.precision,
        compression: spec.compression,
        time_chunk: 1,
        text: vec![
            ("title".into(), format!("{} right-hand sides generated by Ansatz", spec.pde.name())),
            (
                "source".into(),
                format!(
                    "ansatz-solvers {}: cell-centred finite-volume Poisson matrices, u = 0 on every side; {} Lanczos \
                     steps with full reorthogonalisation; Ritz-vector combinations weighted toward the low modes",
                    env!("CARGO_PKG_VERSION"),
                    spec.steps
                ),
            ),
            ("history".into(), opts.history.clone()),
            ("generation_config".into(), spec.config_text.clone()),
        ],
        seed: Some(spec.seed),
        context_frames: 0,
    };
    // each system is built once, by the first sample that needs it (others wait for it)
    let systems: Vec<OnceLock<std::result::Result<Arc<RitzSystem>, String>>> =
        (0..spec.systems).map(|_| OnceLock::new()).collect();
    write_dataset(
        layout,
        out,
        opts,
        |i| {
            let s = system_of(spec, i);
            let system = systems[s]
                .get_or_init(|| build_system(spec, s).map(Arc::new).map_err(|e| e.to_string()))
                .clone()
                .map_err(|m| DatasetError::Config { origin: format!("system {s}"), message: m })?;
            let b = system.problem.to_grid(&sample_rhs(spec, &system, i), 0.0);
            let fluid = system.problem.to_grid(&vec![1.0; system.problem.unknowns()], 0.0);
            let mut data = Vec::with_capacity(3 * b.len());
            data.extend_from_slice(&system.k);
            data.extend_from_slice(&fluid);
            data.extend_from_slice(&b);
            let r = &system.ritz.values;
            Ok((data, vec![s as f64, r[0], r[r.len() - 1]]))
        },
        &mut progress,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(sets: &[&str]) -> RitzSpec {
        let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
        load(RitzPde::Poisson2d, None, &sets, None, None).unwrap()
    }

    #[test]
    fn samples_split_evenly_and_contiguously_between_systems() {
        let s = spec(&["samples=10", "systems.count=3"]);
        let of: Vec<usize> = (0..10).map(|i| system_of(&s, i)).collect();
        assert_eq!(of, vec![0, 0, 0, 0, 1, 1, 1, 2, 2, 2]);
    }

    #[test]
    fn right_hand_sides_are_unit_and_lean_toward_the_low_modes() {
        let s = spec(&[
            "grid.n=12",
            "lanczos.steps=60",
            "samples=40",
            "systems.count=1",
            "mask.max_solids=2",
            "rhs.flat_fraction=0",
        ]);
        let sys = build_system(&s, 0).unwrap();
        let m = sys.ritz.values.len();
        assert!(m > 10 && sys.ritz.values.windows(2).all(|w| w[0] <= w[1]));
        let low = (s.low_fraction * m as f64).round() as usize;
        // the energy of b in the low Ritz vectors against the high ones, averaged over samples
        let (mut e_low, mut e_high) = (0.0, 0.0);
        for i in 0..40 {
            let b = sample_rhs(&s, &sys, i);
            assert!((b.iter().map(|x| x * x).sum::<f64>() - 1.0).abs() < 1e-12);
            for (j, v) in sys.ritz.vectors.iter().enumerate() {
                let c: f64 = v.iter().zip(&b).map(|(x, y)| x * y).sum();
                if j < low { e_low += c * c } else { e_high += c * c }
            }
        }
        // weights 9 : 1 in amplitude, 81 : 1 in energy per vector
        let ratio = (e_low / low as f64) / (e_high / (m - low) as f64);
        assert!(ratio > 30.0 && ratio < 200.0, "energy ratio {ratio}");
        // samples depend on (seed, i) only
        assert_eq!(sample_rhs(&s, &sys, 7), sample_rhs(&s, &build_system(&s, 0).unwrap(), 7));
        assert_ne!(sample_rhs(&s, &sys, 7), sample_rhs(&s, &sys, 8));
    }

    #[test]
    fn bad_keys_and_values_are_named() {
        for (set, key) in [
            ("systems.count=0", "systems.count"),
            ("lanczos.steps=1", "lanczos.steps"),
            ("rhs.low_fraction=1.5", "rhs.low_fraction"),
            ("rhs.low_weight=0", "rhs.low_weight"),
            ("rhs.flat_fraction=2", "rhs.flat_fraction"),
            ("lanczos.null_tolerance=-1", "lanczos.null_tolerance"),
        ] {
            let e = load(RitzPde::Poisson2d, None, &[set.to_string()], None, None).unwrap_err().to_string();
            assert!(e.contains(key), "{set}: {e}");
        }
        let e = load(RitzPde::Poisson2d, None, &["lanczos.stepz=3".to_string()], None, None).unwrap_err().to_string();
        assert!(e.contains("stepz"), "{e}");
    }
}
