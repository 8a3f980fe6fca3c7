//! What a NetCDF file claims and what Ansatz needs from it: the convention it names, and for a file written by
//! another program, each requirement of the dataset format (`docs/dataset-format.md`) found or missing, in words a
//! user can act on. `ansatz info` prints this after the header.

use std::fmt::Write as _;
use std::path::Path;

use crate::schema::{SCHEMA_VERSION, TIME};

/// One requirement of the dataset format and whether the file meets it.
#[derive(Clone, Debug, PartialEq)]
pub struct Need {
    /// Whether the file meets it.
    pub met: bool,
    /// What is needed, and what was found or how to supply it.
    pub text: String,
}

impl Need {
    fn ok(text: impl Into<String>) -> Self {
        Self { met: true, text: text.into() }
    }

    fn missing(text: impl Into<String>) -> Self {
        Self { met: false, text: text.into() }
    }
}

/// The PDE names the `pde` attribute may hold.
pub const KNOWN_PDES: [&str; 7] =
    ["burgers1d", "burgers2d", "poisson2d", "poisson3d", "elasticity2d", "ritz-poisson2d", "ritz-poisson3d"];

fn text_attr(file: &netcdf::File, name: &str) -> Option<String> {
    match file.attribute(name)?.value().ok()? {
        netcdf::AttributeValue::Str(s) => Some(s),
        _ => None,
    }
}

fn var_text(v: &netcdf::Variable, name: &str) -> Option<String> {
    match v.attribute_value(name)?.ok()? {
        netcdf::AttributeValue::Str(s) => Some(s),
        _ => None,
    }
}

fn dims_of(v: &netcdf::Variable) -> Vec<String> {
    v.dimensions().iter().map(|d| d.name()).collect()
}

/// The line about the convention the file claims (its `Conventions` attribute).
pub fn convention_line(file: &netcdf::File) -> String {
    match text_attr(file, "Conventions") {
        Some(c) if c.contains("CF-") => format!(
            "conventions: the file claims {c} (global attribute 'Conventions'); Ansatz's own files pass the IOOS \
             compliance checker for CF-1.11"
        ),
        Some(c) => format!("conventions: the file claims {c:?} (global attribute 'Conventions'), not CF"),
        None => "conventions: none claimed (no global attribute 'Conventions')".into(),
    }
}

/// A time-like dimension of a file not in our layout: a dimension named like time, or the dimension of a variable
/// that CF marks as time (`standard_name = "time"`, `axis = "T"`, units "… since …").
fn foreign_time(file: &netcdf::File) -> Option<(String, bool)> {
    for v in file.variables() {
        let dims = dims_of(&v);
        let units = var_text(&v, "units").unwrap_or_default();
        let calendar_time = units.contains(" since ");
        let marked = var_text(&v, "standard_name").as_deref() == Some("time")
            || var_text(&v, "axis").as_deref() == Some("T")
            || calendar_time;
        if marked && dims.len() == 1 {
            return Some((dims[0].clone(), calendar_time));
        }
    }
    ["time", "Time", "TIME", "times", "t-coordinate", "time_step", "step"]
        .into_iter()
        .find(|n| file.dimension(n).is_some())
        .map(|n| (n.to_string(), false))
}

/// Whether a coordinate variable holds finite, increasing, uniformly spaced values (relative tolerance 1e-6).
fn uniform(v: &netcdf::Variable) -> std::result::Result<(), String> {
    let x: Vec<f64> = v.get_values(..).map_err(|e| format!("unreadable ({e})"))?;
    if x.iter().any(|x| !x.is_finite()) {
        return Err("it holds non-finite values".into());
    }
    let Some(h) = x.get(1).map(|b| b - x[0]) else { return Ok(()) };
    if h <= 0.0 {
        return Err("its values do not increase".into());
    }
    match x.windows(2).position(|w| ((w[1] - w[0]) - h).abs() > 1e-6 * h.max(x[0].abs()).max(1e-300)) {
        Some(i) => Err(format!("the spacing changes at index {i} (uniform grids only)")),
        None => Ok(()),
    }
}

/// Each requirement of the dataset format for a file without `ansatz_schema`, met or not, with what to do.
pub fn dataset_needs(file: &netcdf::File) -> Vec<Need> {
    let mut needs = vec![];
    // sample
    if file.dimension("sample").is_some() {
        needs.push(Need::ok("a dimension 'sample' (one entry per trajectory or problem)"));
    } else {
        needs.push(Need::missing(
            "a dimension 'sample' (one entry per trajectory or problem): not found; a single trajectory gets one \
             of length 1 with xarray's ds.expand_dims(\"sample\")",
        ));
    }
    // time
    let has_t = file.dimension(TIME).is_some();
    let t_coord = file.variable(TIME).filter(|v| dims_of(v) == [TIME]);
    let other_time = foreign_time(file);
    match (has_t, t_coord.is_some(), &other_time) {
        (true, true, _) => needs.push(Need::ok("a time coordinate t(t), nondimensional, first value 0")),
        (true, false, _) => needs.push(Need::missing(
            "a coordinate variable t(t) holding the saved times: the dimension 't' exists but has no coordinate \
             variable",
        )),
        (false, _, Some((name, calendar))) => {
            let convert = if *calendar {
                "; its units are a calendar time (\"since\"), Ansatz's are plain nondimensional numbers: open with \
                 xarray's decode_times=False and store t - t[0] in units \"1\""
                    .to_string()
            } else {
                String::new()
            };
            needs.push(Need::missing(format!(
                "a time coordinate t(t): found the time dimension '{name}' instead; rename it (xarray: \
                 ds.rename({name}=\"t\"); NCO: ncrename -d {name},t -v {name},t FILE){convert}"
            )))
        }
        (false, _, None) => needs.push(Need::missing(
            "a time coordinate t(t) holding the saved times (first 0): no time dimension found; only a static \
             problem (pde poisson2d, poisson3d or elasticity2d) has none",
        )),
    }
    // space
    let axes: Vec<&str> = ["z", "y", "x"].into_iter().filter(|a| file.dimension(a).is_some()).collect();
    if !axes.contains(&"x") {
        let dims: Vec<String> = file.dimensions().map(|d| d.name()).collect();
        needs.push(Need::missing(format!(
            "spatial dimensions named 'x' (and 'y', 'z' in 2D and 3D): not found (the file's dimensions: {}); \
             rename them as for time",
            if dims.is_empty() { "none".into() } else { dims.join(", ") }
        )));
    } else {
        for a in &axes {
            match file.variable(a).filter(|v| dims_of(v) == [*a]) {
                Some(v) => match uniform(&v) {
                    Ok(()) => needs.push(Need::ok(format!("a coordinate variable {a}({a}), uniform and increasing"))),
                    Err(why) => needs.push(Need::missing(format!(
                        "a coordinate variable {a}({a}) with uniform, increasing values: {why}"
                    ))),
                },
                None => needs.push(Need::missing(format!(
                    "a coordinate variable {a}({a}) with the cell centres or collocation points (uniform): the \
                     dimension exists, the variable does not"
                ))),
            }
        }
    }
    // fields
    let listed = text_attr(file, "fields");
    let fields: Vec<String> = match &listed {
        Some(l) => l.split_whitespace().map(String::from).collect(),
        None => ["u", "v"].iter().filter(|n| file.variable(n).is_some()).map(|s| s.to_string()).collect(),
    };
    // the dimensions a field must have once the ones above are named as required
    let mut expected = vec!["sample".to_string()];
    if file.dimension(TIME).is_some() || other_time.is_some() {
        expected.push(TIME.into());
    }
    if axes.is_empty() {
        expected.push("x".into());
    }
    expected.extend(axes.iter().map(|a| a.to_string()));
    let renamed = |d: &str| match &other_time {
        Some((name, _)) if name == d => TIME.to_string(),
        _ => d.to_string(),
    };
    if fields.is_empty() {
        needs.push(Need::missing(format!(
            "field variables, listed in the global attribute 'fields' (without it, 'u' and 'v' are used) on ({}): \
             none found",
            expected.join(", ")
        )));
    }
    for f in &fields {
        match file.variable(f) {
            Some(v) if dims_of(&v) == expected => {
                needs.push(Need::ok(format!("field variable {f}({})", expected.join(", "))))
            }
            Some(v) => {
                let dims = dims_of(&v);
                let mut have: Vec<String> = dims.iter().map(|d| renamed(d)).collect();
                have.sort();
                let mut want = expected.clone();
                want.sort();
                let fix = if have == want {
                    format!(
                        "reorder with xarray's transpose({})",
                        expected.iter().map(|d| format!("\"{d}\"")).collect::<Vec<_>>().join(", ")
                    )
                } else {
                    "the dimensions differ, not only their order".to_string()
                };
                needs.push(Need::missing(format!(
                    "field variable '{f}' on ({}): found ({}); {fix}",
                    expected.join(", "),
                    dims.join(", ")
                )))
            }
            None => needs.push(Need::missing(format!("field variable '{f}' (listed in 'fields'): not in the file"))),
        }
    }
    // pde
    match text_attr(file, "pde") {
        Some(p) if KNOWN_PDES.contains(&p.as_str()) => needs.push(Need::ok(format!("global attribute pde = {p:?}"))),
        Some(p) => needs.push(Need::missing(format!(
            "global attribute 'pde' naming the equation ({}): found {p:?}",
            KNOWN_PDES.join(", ")
        ))),
        None => needs.push(Need::missing(format!(
            "global attribute 'pde' naming the equation ({}): not found",
            KNOWN_PDES.join(", ")
        ))),
    }
    // recommended: extent, grid type, boundary conditions
    for (attr, what) in [
        ("domain_extent", "the domain length per axis, x first"),
        ("grid_type", "\"cell_centered\" or \"spectral_collocation\""),
        ("bc_x", "the boundary condition along x: periodic, dirichlet or neumann"),
    ] {
        if file.attribute(attr).is_some() {
            needs.push(Need::ok(format!("global attribute '{attr}'")));
        } else {
            needs.push(Need::missing(format!("global attribute '{attr}': {what}")));
        }
    }
    needs.push(Need::missing(format!(
        "global attribute ansatz_schema = {SCHEMA_VERSION}, which declares the layout above: add it last, once \
         everything else holds"
    )));
    needs
}

/// The report of `ansatz info` for a file without `ansatz_schema`: what Ansatz needs to train on it or roll out
/// against it, and whether `ansatz solve --init` accepts it.
pub fn foreign_report(path: &Path, file: &netcdf::File) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "not an Ansatz dataset (no global attribute 'ansatz_schema'). To train on it or roll out against it, Ansatz \
         needs (docs/dataset-format.md):"
    );
    for n in dataset_needs(file) {
        let _ = writeln!(s, "  {} {}", if n.met { "found:  " } else { "missing:" }, n.text);
    }
    let one = crate::reader::read_initial_condition(path, &["u"], false);
    let two = crate::reader::read_initial_condition(path, &["u", "v"], true);
    match (one, two) {
        (_, Ok(ic)) => {
            let _ = writeln!(
                s,
                "as initial conditions: `ansatz solve burgers2d --init` accepts it ({} samples)",
                ic.values.nrows()
            );
        }
        (Ok(ic), _) => {
            let _ = writeln!(
                s,
                "as initial conditions: `ansatz solve burgers1d --init` accepts it ({} samples)",
                ic.values.nrows()
            );
        }
        (Err(e), _) => {
            let _ = writeln!(s, "as initial conditions: `ansatz solve --init` does not accept it: {e}");
        }
    }
    s
}
