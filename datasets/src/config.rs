//! Generation configs: TOML with embedded defaults per PDE, `--set` overrides, and the mapping from names to
//! solver types (the only place besides the command line where strings become algorithm choices).

use ansatz_solvers::fv::{Boundary, Limiter, NumericalFlux, Reconstruction, WenoWeights};
use serde::{Deserialize, Serialize};

use crate::error::{DatasetError, Result};
use crate::samplers::{InitialCondition, Parameter};
use crate::schema::Precision;

/// Embedded default configs, by PDE name.
pub const DEFAULTS: [(&str, &str); 3] = [
    ("burgers1d", include_str!("../../configs/burgers1d.toml")),
    ("burgers2d", include_str!("../../configs/burgers2d.toml")),
    ("navier-stokes2d", include_str!("../../configs/navier-stokes2d.toml")),
];

/// Embedded presets: a name, the PDE it configures and its config (`ansatz generate <preset>`).
pub const PRESETS: [(&str, &str, &str); 3] = [
    ("burgers1d-shocks", "burgers1d", include_str!("../../configs/burgers1d-shocks.toml")),
    ("burgers2d-moe", "burgers2d", include_str!("../../configs/burgers2d-moe.toml")),
    ("kolmogorov-re1000", "navier-stokes2d", include_str!("../../configs/kolmogorov-re1000.toml")),
];

/// The PDEs `generate` and `solve` know.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pde {
    Burgers1d,
    Burgers2d,
    /// 2D incompressible Navier–Stokes in vorticity form (periodic, pseudo-spectral).
    NavierStokes2d,
}

impl Pde {
    /// Parses a PDE name.
    pub fn from_name(name: &str) -> Result<Self> {
        match name {
            "burgers1d" => Ok(Pde::Burgers1d),
            "burgers2d" => Ok(Pde::Burgers2d),
            "navier-stokes2d" => Ok(Pde::NavierStokes2d),
            other => Err(DatasetError::Config {
                origin: "pde".into(),
                message: format!(
                    "unknown PDE '{other}' (known: burgers1d, burgers2d, navier-stokes2d, poisson2d, poisson3d, \
                     elasticity2d)"
                ),
            }),
        }
    }

    /// The name.
    pub fn name(self) -> &'static str {
        match self {
            Pde::Burgers1d => "burgers1d",
            Pde::Burgers2d => "burgers2d",
            Pde::NavierStokes2d => "navier-stokes2d",
        }
    }

    /// Field components.
    pub fn components(self) -> &'static [&'static str] {
        match self {
            Pde::Burgers1d => &["u"],
            Pde::Burgers2d => &["u", "v"],
            Pde::NavierStokes2d => &["omega"],
        }
    }

    /// Whether the PDE is two-dimensional.
    pub fn two_d(self) -> bool {
        matches!(self, Pde::Burgers2d | Pde::NavierStokes2d)
    }

    /// The embedded default config.
    pub fn default_config(self) -> &'static str {
        DEFAULTS.iter().find(|(n, _)| *n == self.name()).map(|(_, t)| *t).unwrap_or("")
    }
}

/// Spatial discretisation with its options.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Scheme {
    /// Finite volume (MUSCL or WENO5 reconstruction), SSP-RK3.
    FiniteVolume(Reconstruction, NumericalFlux),
    /// Pseudo-spectral with 2/3 dealiasing, ETDRK4 (periodic only).
    Spectral,
}

impl Scheme {
    /// Builds a scheme from its names (as in configs and on the command line).
    pub fn from_names(name: &str, limiter: &str, weno: &str, flux: &str) -> Result<Self> {
        let bad = |key: &str, v: &str, allowed: &str| DatasetError::Config {
            origin: format!("scheme.{key}"),
            message: format!("unknown value '{v}' (allowed: {allowed})"),
        };
        let flux = match flux {
            "rusanov" => NumericalFlux::Rusanov,
            "godunov" => NumericalFlux::Godunov,
            v => return Err(bad("flux", v, "rusanov, godunov")),
        };
        match name {
            "fv-muscl" => {
                let l = match limiter {
                    "minmod" => Limiter::Minmod,
                    "van-leer" => Limiter::VanLeer,
                    "mc" => Limiter::Mc,
                    v => return Err(bad("limiter", v, "minmod, van-leer, mc")),
                };
                Ok(Scheme::FiniteVolume(Reconstruction::Muscl(l), flux))
            }
            "fv-weno5" => {
                let w = match weno {
                    "js" => WenoWeights::JiangShu,
                    "z" => WenoWeights::Z,
                    v => return Err(bad("weno", v, "js, z")),
                };
                Ok(Scheme::FiniteVolume(Reconstruction::Weno5(w), flux))
            }
            "spectral" => Ok(Scheme::Spectral),
            v => Err(bad("name", v, "fv-muscl, fv-weno5, spectral")),
        }
    }

    /// A description for file metadata.
    pub fn describe(&self) -> String {
        match self {
            Scheme::FiniteVolume(r, f) => format!("finite volume, {r:?} reconstruction, {f:?} flux, SSP-RK3"),
            Scheme::Spectral => "pseudo-spectral, 2/3 dealiasing, ETDRK4".into(),
        }
    }
}

/// Parses a boundary condition name and its value.
pub fn boundary(name: &str, value: f64, key: &str) -> Result<Boundary> {
    match name {
        "periodic" => Ok(Boundary::Periodic),
        "dirichlet" => Ok(Boundary::Dirichlet(value)),
        "neumann" => Ok(Boundary::Neumann(value)),
        v => Err(DatasetError::Config {
            origin: key.into(),
            message: format!("unknown boundary condition '{v}' (allowed: periodic, dirichlet, neumann)"),
        }),
    }
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    pde: String,
    samples: usize,
    seed: u64,
    grid: RawGrid,
    time: RawTime,
    scheme: RawScheme,
    boundary: RawBoundary,
    initial_condition: RawIc,
    parameters: RawParams,
    output: RawOutput,
    /// Navier–Stokes only; absent from other PDEs' stored configs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    forcing: Option<RawForcing>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct RawForcing {
    #[serde(default)]
    amplitude: f64,
    #[serde(default = "default_wavenumber")]
    wavenumber: usize,
    #[serde(default)]
    drag: f64,
}

fn default_wavenumber() -> usize {
    4
}

/// The forcing of the Navier–Stokes equations: Kolmogorov's body force `(A sin(2π k y / L), 0)` (its curl is the
/// vorticity source) and a linear drag `−α ω`. Zero for the other PDEs.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Forcing {
    pub amplitude: f64,
    pub wavenumber: usize,
    pub drag: f64,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct RawGrid {
    n: usize,
    length: f64,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct RawTime {
    t_end: f64,
    save_every: f64,
    #[serde(default = "default_cfl")]
    cfl: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    dt: Option<f64>,
    #[serde(default, skip_serializing_if = "is_zero")]
    spin_up: f64,
}

fn is_zero(v: &f64) -> bool {
    *v == 0.0
}

fn default_cfl() -> f64 {
    0.4
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct RawScheme {
    name: String,
    #[serde(default = "default_limiter")]
    limiter: String,
    #[serde(default = "default_weno")]
    weno: String,
    #[serde(default = "default_flux")]
    flux: String,
}

fn default_limiter() -> String {
    "van-leer".into()
}
fn default_weno() -> String {
    "z".into()
}
fn default_flux() -> String {
    "rusanov".into()
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct RawBoundary {
    x: String,
    #[serde(default)]
    x_lower: f64,
    #[serde(default)]
    x_upper: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    y: Option<String>,
    #[serde(default)]
    y_lower: f64,
    #[serde(default)]
    y_upper: f64,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct RawIc {
    kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max_mode: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    waves: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    amplitude: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    alpha: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tau: Option<f64>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct RawParams {
    nu: RawParam,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(untagged)]
enum RawParam {
    Value(f64),
    Range(RawRange),
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct RawRange {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    uniform: Option<[f64; 2]>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    log_uniform: Option<[f64; 2]>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct RawOutput {
    #[serde(default = "default_precision")]
    precision: String,
    #[serde(default = "default_compression")]
    compression: i32,
    #[serde(default)]
    time_chunk: usize,
}

fn default_precision() -> String {
    "f32".into()
}
fn default_compression() -> i32 {
    4
}

/// A validated generation spec.
#[derive(Clone, Debug, PartialEq)]
pub struct Spec {
    pub pde: Pde,
    pub samples: usize,
    pub seed: u64,
    /// Points per axis.
    pub n: usize,
    /// Domain length per axis.
    pub length: f64,
    pub t_end: f64,
    pub save_every: f64,
    /// Saved time levels after t = 0.
    pub frames: usize,
    pub cfl: f64,
    pub dt: Option<f64>,
    /// Time integrated from the initial condition before the first saved level (0: none).
    pub spin_up: f64,
    pub scheme: Scheme,
    /// `[x, y]` boundaries, each `[lower, upper]` (y unused in 1D).
    pub bc: [[Boundary; 2]; 2],
    pub bc_names: Vec<String>,
    pub ic: InitialCondition,
    pub nu: Parameter,
    /// Navier–Stokes forcing and drag (zero otherwise).
    pub forcing: Forcing,
    pub precision: Precision,
    pub compression: i32,
    pub time_chunk: usize,
    /// The merged config as TOML (stored in the file; `--resume` requires it unchanged).
    pub config_text: String,
}

fn cfg_err(origin: &str, message: impl Into<String>) -> DatasetError {
    DatasetError::Config { origin: origin.into(), message: message.into() }
}

/// Parses `key=value` into a TOML value (numbers, booleans, arrays, inline tables; anything else is a string).
fn parse_value(raw: &str) -> toml::Value {
    let doc = format!("v = {raw}");
    match doc.parse::<toml::Table>() {
        Ok(mut t) => t.remove("v").unwrap_or(toml::Value::String(raw.into())),
        Err(_) => toml::Value::String(raw.into()),
    }
}

/// Sets the dotted `key` (e.g. `training.steps`) of a TOML table to `raw`, read as a TOML value (a bare word is
/// a string), creating tables on the way. Shared by every `--set key=value` of the command line.
pub fn set_dotted(table: &mut toml::Table, key: &str, raw: &str) -> std::result::Result<(), String> {
    let parts: Vec<&str> = key.split('.').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(format!("bad key '{key}'"));
    }
    let mut t = table;
    for p in &parts[..parts.len() - 1] {
        t = match t.entry(p.to_string()).or_insert_with(|| toml::Value::Table(toml::Table::new())) {
            toml::Value::Table(inner) => inner,
            _ => return Err(format!("'{p}' in '{key}' is not a section")),
        };
    }
    t.insert(parts[parts.len() - 1].to_string(), parse_value(raw.trim()));
    Ok(())
}

/// Applies one `--set key=value` to a config table. `nu` is short for `parameters.nu`.
fn apply_set(table: &mut toml::Table, item: &str) -> Result<()> {
    let (key, raw) = item.split_once('=').ok_or_else(|| cfg_err("--set", format!("'{item}' is not key=value")))?;
    let key = key.trim();
    let key = if key == "nu" { "parameters.nu" } else { key };
    set_dotted(table, key, raw).map_err(|m| cfg_err("--set", m))
}

/// The checks every static and Ritz config shares (its `pde`, `samples`, `grid.n` and `[output]`); returns the
/// output precision. `err(key, message)` makes the error.
pub(crate) fn common_checks(
    pde: (&str, &str),
    samples: usize,
    n: usize,
    output: (&str, i32),
    err: &dyn Fn(&str, String) -> DatasetError,
) -> Result<Precision> {
    if pde.0 != pde.1 {
        return Err(err("pde", format!("the config is for '{}', not '{}'", pde.0, pde.1)));
    }
    if samples == 0 {
        return Err(err("samples", "must be at least 1".into()));
    }
    if n < 4 {
        return Err(err("grid.n", "must be at least 4".into()));
    }
    let precision = match output.0 {
        "f32" => Precision::F32,
        "f64" => Precision::F64,
        p => return Err(err("output.precision", format!("unknown precision '{p}' (allowed: f32, f64)"))),
    };
    if !(0..=9).contains(&output.1) {
        return Err(err("output.compression", "must be a zlib level 0-9".into()));
    }
    Ok(precision)
}

/// A static or Ritz config as a TOML table: `file` (name, text) or the embedded `default` (named `name`), with
/// `sets`, `samples` and `seed` applied; returns the origin (for error messages) and the table.
pub(crate) fn config_table(
    name: &str,
    default: &str,
    file: Option<(&str, &str)>,
    sets: &[String],
    samples: Option<usize>,
    seed: Option<u64>,
) -> Result<(String, toml::Table)> {
    let (origin, text) = match file {
        Some((n, t)) => (n.to_string(), t.to_string()),
        None => (format!("embedded config '{name}'"), default.to_string()),
    };
    let mut table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| DatasetError::Config { origin: origin.clone(), message: e.to_string() })?;
    apply_sets(&mut table, sets)?;
    if let Some(n) = samples {
        table.insert("samples".into(), toml::Value::Integer(n as i64));
    }
    if let Some(s) = seed {
        let s = i64::try_from(s).map_err(|_| DatasetError::Config {
            origin: format!("{origin}: --seed"),
            message: "must be below 2^63".into(),
        })?;
        table.insert("seed".into(), toml::Value::Integer(s));
    }
    Ok((origin, table))
}

/// Applies `--set key=value` items to a config table.
pub(crate) fn apply_sets(table: &mut toml::Table, sets: &[String]) -> Result<()> {
    for s in sets {
        apply_set(table, s)?;
    }
    Ok(())
}

/// Loads the config of `pde`: the embedded default, or `file` (named in errors) instead, then `sets`, `samples`
/// and `seed` on top; validates every value.
pub fn load(
    pde: &str,
    file: Option<(&str, &str)>,
    sets: &[String],
    samples: Option<usize>,
    seed: Option<u64>,
) -> Result<Spec> {
    let preset = PRESETS.iter().find(|(n, _, _)| *n == pde);
    let pde = preset.map_or(pde, |(_, p, _)| *p);
    let pde_kind = Pde::from_name(pde)?;
    let (origin, text) = match (file, preset) {
        (Some((name, text)), _) => (name.to_string(), text.to_string()),
        (None, Some((name, _, text))) => (format!("embedded preset '{name}'"), text.to_string()),
        (None, None) => (format!("embedded config '{pde}'"), pde_kind.default_config().to_string()),
    };
    let mut table: toml::Table = text.parse().map_err(|e: toml::de::Error| cfg_err(&origin, e.to_string()))?;
    apply_sets(&mut table, sets)?;
    if let Some(n) = samples {
        table.insert("samples".into(), toml::Value::Integer(n as i64));
    }
    if let Some(s) = seed {
        table.insert(
            "seed".into(),
            toml::Value::Integer(i64::try_from(s).map_err(|_| cfg_err("--seed", "must be below 2^63"))?),
        );
    }
    let raw: RawConfig = toml::Value::Table(table)
        .try_into()
        .map_err(|e: toml::de::Error| cfg_err(&origin, e.to_string().trim().replace('\n', " ")))?;
    if raw.pde != pde {
        return Err(cfg_err(&origin, format!("the config is for '{}', not '{pde}'", raw.pde)));
    }
    validate(pde_kind, raw, &origin)
}

fn validate(pde: Pde, raw: RawConfig, origin: &str) -> Result<Spec> {
    let e = |key: &str, m: String| cfg_err(&format!("{origin}: {key}"), m);
    let pos = |key: &str, v: f64| {
        if v.is_finite() && v > 0.0 { Ok(()) } else { Err(e(key, format!("must be positive, got {v}"))) }
    };
    if raw.samples == 0 {
        return Err(e("samples", "must be at least 1".into()));
    }
    if raw.seed > i64::MAX as u64 {
        return Err(e("seed", "must be below 2^63".into()));
    }
    if raw.grid.n < 8 {
        return Err(e("grid.n", format!("must be at least 8, got {}", raw.grid.n)));
    }
    pos("grid.length", raw.grid.length)?;
    pos("time.t_end", raw.time.t_end)?;
    pos("time.save_every", raw.time.save_every)?;
    pos("time.cfl", raw.time.cfl)?;
    if let Some(dt) = raw.time.dt {
        pos("time.dt", dt)?;
    }
    if !(raw.time.spin_up >= 0.0 && raw.time.spin_up.is_finite()) {
        return Err(e("time.spin_up", format!("must be a finite time ≥ 0, got {}", raw.time.spin_up)));
    }
    let ratio = raw.time.t_end / raw.time.save_every;
    let frames = ratio.round() as usize;
    if frames == 0 || (ratio - frames as f64).abs() > 1e-9 * ratio.max(1.0) {
        return Err(e("time.save_every", format!("must divide t_end = {} into whole intervals", raw.time.t_end)));
    }
    let scheme = Scheme::from_names(&raw.scheme.name, &raw.scheme.limiter, &raw.scheme.weno, &raw.scheme.flux)?;
    let bx = [
        boundary(&raw.boundary.x, raw.boundary.x_lower, "boundary.x")?,
        boundary(&raw.boundary.x, raw.boundary.x_upper, "boundary.x")?,
    ];
    let mut names = vec![raw.boundary.x.clone()];
    let by = if pde.two_d() {
        let y = raw.boundary.y.clone().ok_or_else(|| e("boundary.y", "required for a 2D PDE".into()))?;
        names.push(y.clone());
        [boundary(&y, raw.boundary.y_lower, "boundary.y")?, boundary(&y, raw.boundary.y_upper, "boundary.y")?]
    } else {
        if raw.boundary.y.is_some() {
            return Err(e("boundary.y", "a 1D PDE has no y boundary".into()));
        }
        [Boundary::Periodic; 2]
    };
    if scheme == Scheme::Spectral && (bx[0] != Boundary::Periodic || by[0] != Boundary::Periodic) {
        return Err(e("scheme.name", "the spectral scheme needs periodic boundaries".into()));
    }
    let ic = match raw.initial_condition.kind.as_str() {
        "fourier" => {
            let i = &raw.initial_condition;
            if i.alpha.is_some() || i.tau.is_some() {
                return Err(e("initial_condition", "alpha and tau belong to kind = \"grf\"".into()));
            }
            let amplitude = i.amplitude.unwrap_or(1.0);
            pos("initial_condition.amplitude", amplitude)?;
            InitialCondition::Fourier {
                max_mode: i.max_mode.unwrap_or(4).max(1),
                waves: i.waves.unwrap_or(2).max(1),
                amplitude,
            }
        }
        "grf" => {
            let i = &raw.initial_condition;
            if i.max_mode.is_some() || i.waves.is_some() {
                return Err(e("initial_condition", "max_mode and waves belong to kind = \"fourier\"".into()));
            }
            let (alpha, tau, amplitude) = (i.alpha.unwrap_or(2.5), i.tau.unwrap_or(7.0), i.amplitude.unwrap_or(0.5));
            pos("initial_condition.alpha", alpha)?;
            pos("initial_condition.tau", tau)?;
            pos("initial_condition.amplitude", amplitude)?;
            InitialCondition::Grf { alpha, tau, amplitude }
        }
        k => return Err(e("initial_condition.kind", format!("unknown kind '{k}' (allowed: fourier, grf)"))),
    };
    let nu = match &raw.parameters.nu {
        RawParam::Value(v) if v.is_finite() && *v >= 0.0 => Parameter::Fixed(*v),
        RawParam::Value(v) => return Err(e("parameters.nu", format!("must be non-negative, got {v}"))),
        RawParam::Range(r) => match (r.uniform, r.log_uniform) {
            (Some([a, b]), None) if a.is_finite() && b.is_finite() && 0.0 <= a && a < b => Parameter::Uniform(a, b),
            (None, Some([a, b])) if a.is_finite() && b.is_finite() && 0.0 < a && a < b => Parameter::LogUniform(a, b),
            _ => {
                return Err(e(
                    "parameters.nu",
                    "needs exactly one of uniform = [a, b] (0 ≤ a < b) or log_uniform = [a, b] (0 < a < b)".into(),
                ));
            }
        },
    };
    let precision = match raw.output.precision.as_str() {
        "f32" => Precision::F32,
        "f64" => Precision::F64,
        p => return Err(e("output.precision", format!("unknown precision '{p}' (allowed: f32, f64)"))),
    };
    if !(0..=9).contains(&raw.output.compression) {
        return Err(e("output.compression", "must be a zlib level 0-9".into()));
    }
    let forcing = match (&raw.forcing, pde) {
        (None, _) => Forcing::default(),
        (Some(f), Pde::NavierStokes2d) => {
            if !(f.amplitude.is_finite() && f.drag.is_finite() && f.drag >= 0.0) {
                return Err(e("forcing", "amplitude must be finite and drag finite and ≥ 0".into()));
            }
            if f.amplitude != 0.0 && f.wavenumber == 0 {
                return Err(e("forcing.wavenumber", "must be at least 1".into()));
            }
            Forcing { amplitude: f.amplitude, wavenumber: f.wavenumber, drag: f.drag }
        }
        (Some(_), _) => return Err(e("forcing", format!("only navier-stokes2d is forced, not {}", pde.name()))),
    };
    if pde == Pde::NavierStokes2d && scheme != Scheme::Spectral {
        return Err(e("scheme.name", "navier-stokes2d is pseudo-spectral only (\"spectral\")".into()));
    }
    let config_text = toml::to_string(&raw).map_err(|er| cfg_err(origin, er.to_string()))?;
    Ok(Spec {
        pde,
        samples: raw.samples,
        seed: raw.seed,
        n: raw.grid.n,
        length: raw.grid.length,
        t_end: raw.time.t_end,
        save_every: raw.time.save_every,
        frames,
        cfl: raw.time.cfl,
        dt: raw.time.dt,
        spin_up: raw.time.spin_up,
        scheme,
        bc: [bx, by],
        bc_names: names,
        ic,
        nu,
        forcing,
        precision,
        compression: raw.output.compression,
        time_chunk: if raw.output.time_chunk == 0 { frames + 1 } else { raw.output.time_chunk },
        config_text,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_load_and_sets_apply() {
        let s = load("burgers1d", None, &[], None, None).unwrap();
        assert_eq!(s.frames, 100);
        assert!(matches!(s.nu, Parameter::LogUniform(..)));
        let s = load(
            "burgers2d",
            None,
            &["nu=0.003".into(), "grid.n=32".into(), "scheme.name=spectral".into()],
            Some(3),
            Some(9),
        )
        .unwrap();
        assert_eq!((s.n, s.samples, s.seed, s.nu, s.scheme), (32, 3, 9, Parameter::Fixed(0.003), Scheme::Spectral));
    }

    #[test]
    fn the_shock_preset_is_burgers1d_on_256_points() {
        let s = load("burgers1d-shocks", None, &[], None, None).unwrap();
        assert_eq!((s.pde, s.n, s.frames), (Pde::Burgers1d, 256, 600));
        assert!(matches!(s.nu, Parameter::LogUniform(a, b) if a == 0.001 && b == 0.003));
        let s = load("burgers1d-shocks", None, &["nu=0.0005".into()], None, None).unwrap();
        assert_eq!(s.nu, Parameter::Fixed(0.0005));
    }

    #[test]
    fn the_constrained_preset_is_periodic_burgers2d_on_32_cells() {
        let s = load("burgers2d-moe", None, &[], None, None).unwrap();
        assert_eq!((s.pde, s.n, s.frames), (Pde::Burgers2d, 32, 20));
        assert!(s.bc.iter().flatten().all(|b| *b == Boundary::Periodic));
    }

    #[test]
    fn the_kolmogorov_preset_is_kochkovs_flow_spun_up() {
        let s = load("kolmogorov-re1000", None, &[], None, None).unwrap();
        assert_eq!(
            (s.pde, s.n, s.frames, s.spin_up, s.nu),
            (Pde::NavierStokes2d, 256, 150, 40.0, Parameter::Fixed(1e-3))
        );
        assert_eq!(s.forcing, Forcing { amplitude: 1.0, wavenumber: 4, drag: 0.1 });
        let m = load("kolmogorov-re1000", None, &["time.spin_up=-1".into()], None, None).unwrap_err().to_string();
        assert!(m.contains("time.spin_up"), "{m}");
    }

    #[test]
    fn bad_keys_and_values_are_named() {
        let err = |r: Result<Spec>| r.unwrap_err().to_string();
        let m = err(load("burgers1d", None, &["grid.nn=3".into()], None, None));
        assert!(m.contains("nn"), "{m}");
        let m = err(load("burgers1d", None, &["scheme.name=fem".into()], None, None));
        assert!(m.contains("scheme.name") && m.contains("fem"), "{m}");
        let m = err(load("burgers3d", None, &[], None, None));
        assert!(m.contains("burgers3d"), "{m}");
        let m = err(load("burgers1d", Some(("my.toml", "pde = \"burgers1d\"\nsamples = 1\n")), &[], None, None));
        assert!(m.contains("my.toml") && m.contains("missing"), "{m}");
        let m =
            err(load("burgers1d", None, &["boundary.x=dirichlet".into(), "scheme.name=spectral".into()], None, None));
        assert!(m.contains("periodic"), "{m}");
        let m = err(load("burgers1d", None, &["time.save_every=0.03".into()], None, None));
        assert!(m.contains("save_every"), "{m}");
    }
}
