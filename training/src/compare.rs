//! `ansatz compare`: one leaderboard across rollout reports. Reports of runs whose configurations differ only
//! in `seed` (same data, same rollout length) form one row: its value is the median over seeds of each run's
//! median over test samples, its range the smallest and largest of those. A row with one run shows the median
//! over test samples and the 5–95% range of the samples. Written as markdown, JSON, CSV and a self-contained
//! HTML page with the median error curves overlaid.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

use crate::figures::{LineChart, Series};
use crate::trainer::TrainError;

fn bad(msg: String) -> TrainError {
    TrainError::input(msg)
}

fn failed(msg: String) -> TrainError {
    TrainError::failed(msg)
}

/// A value with its range: over test samples (one run) or over seeds (several).
#[derive(Clone, Copy, Debug, Serialize, PartialEq)]
pub struct Ranged {
    pub value: f64,
    pub lo: f64,
    pub hi: f64,
}

/// One rollout report as read back.
#[derive(Clone, Debug, Serialize)]
pub struct Entry {
    pub report: PathBuf,
    pub run: PathBuf,
    pub model: String,
    pub seed: Option<i64>,
    pub parameters: u64,
    pub steps: usize,
    /// Median over samples, 5th and 95th percentiles, per metric (NaN where the report lacks it).
    #[serde(skip)]
    metrics: Vec<Ranged>,
    /// Median nRMSE over test samples at each rollout step (from `metrics.nc`).
    #[serde(skip)]
    curve: Vec<f64>,
    #[serde(skip)]
    key: String,
}

/// One row of the leaderboard.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    pub label: String,
    pub model: String,
    pub runs: Vec<PathBuf>,
    pub seeds: Vec<Option<i64>>,
    pub parameters: u64,
    /// Per metric of [`METRICS`], in order.
    pub values: Vec<Ranged>,
    /// Median nRMSE curve (over seeds of the per-run medians over samples).
    pub curve: Vec<f64>,
}

/// The metric columns: (name, unit or kind, whether lower is better).
pub const METRICS: [(&str, &str, bool); 8] = [
    ("nRMSE step 1", "1", true),
    ("nRMSE step 10", "1", true),
    ("nRMSE last step", "1", true),
    ("nRMSE mean over steps", "1", true),
    ("correlation time ρ<0.8", "steps", false),
    ("valid-prediction time", "steps", false),
    ("blow-up rate", "fraction", true),
    ("error-matched speed-up", "×", false),
];

/// The leaderboard.
#[derive(Clone, Debug, Serialize)]
pub struct Leaderboard {
    pub metrics: Vec<String>,
    pub rows: Vec<Row>,
}

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}

fn stat(v: &Value) -> Ranged {
    Ranged { value: num(&v["median"]), lo: num(&v["p5"]), hi: num(&v["p95"]) }
}

fn single(x: f64) -> Ranged {
    Ranged { value: x, lo: x, hi: x }
}

/// The run's configuration (from the run directory named in the summary, as given or relative to the report),
/// without its seed, as the grouping key; and the seed.
fn run_config(report: &Path, run: &Path) -> (Option<toml::Table>, Option<i64>) {
    let candidates = [run.to_path_buf(), report.join(run), report.parent().unwrap_or(report).join(run)];
    for dir in candidates {
        if let Ok(text) = std::fs::read_to_string(dir.join("config.toml")) {
            if let Ok(mut t) = text.parse::<toml::Table>() {
                let seed = t.remove("seed").and_then(|s| s.as_integer());
                return (Some(t), seed.or(Some(0)));
            }
        }
    }
    (None, None)
}

/// Median nRMSE over samples per step, from `metrics.nc`.
fn median_curve(path: &Path) -> Result<Vec<f64>, TrainError> {
    ansatz_datasets::quiet_hdf5();
    let f = netcdf::open(path).map_err(|e| bad(format!("{}: {e}", path.display())))?;
    let v = f.variable("nrmse").ok_or_else(|| bad(format!("{}: no variable 'nrmse'", path.display())))?;
    let dims: Vec<usize> = v.dimensions().iter().map(|d| d.len()).collect();
    if dims.len() != 2 {
        return Err(bad(format!("{}: 'nrmse' is not (sample, step)", path.display())));
    }
    let vals: Vec<f64> = v.get_values(..).map_err(|e| bad(format!("{}: {e}", path.display())))?;
    let (ns, nt) = (dims[0], dims[1]);
    Ok((0..nt).map(|t| median((0..ns).map(|s| vals[s * nt + t]).collect())).collect())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.retain(|x| x.is_finite());
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 { v[n / 2] } else { 0.5 * (v[n / 2 - 1] + v[n / 2]) }
}

/// Reads one report directory.
pub fn read_report(dir: &Path) -> Result<Entry, TrainError> {
    let path = dir.join("summary.json");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| bad(format!("{}: {e} (not a rollout report directory?)", path.display())))?;
    let s: Value =
        serde_json::from_str(&text).map_err(|e| bad(format!("{}: not a rollout summary ({e})", path.display())))?;
    let model = s["model"].as_str().ok_or_else(|| bad(format!("{}: no 'model'", path.display())))?.to_string();
    let steps = s["steps"].as_u64().ok_or_else(|| bad(format!("{}: no 'steps'", path.display())))? as usize;
    let at = |step: usize| -> Ranged {
        s["nrmse_at"]
            .as_array()
            .and_then(|a| a.iter().find(|p| p[0].as_u64() == Some(step as u64)))
            .map(|p| stat(&p[1]))
            .unwrap_or(single(f64::NAN))
    };
    let metrics = vec![
        at(1),
        at(10),
        at(steps),
        stat(&s["nrmse_mean"]),
        stat(&s["correlation_time_08"]),
        stat(&s["valid_prediction_steps"]),
        single(num(&s["blow_up_rate"])),
        single(num(&s["cost"]["error_matched_speedup"])),
    ];
    let run = PathBuf::from(s["run"].as_str().unwrap_or_default());
    let (config, seed) = run_config(dir, &run);
    let key = format!(
        "{model}|{}|{steps}|{}|{}",
        s["data"].as_str().unwrap_or_default(),
        s["context_frames"],
        config.map(|c| toml::to_string(&c).unwrap_or_default()).unwrap_or_else(|| dir.display().to_string())
    );
    let curve = median_curve(&dir.join("metrics.nc"))?;
    Ok(Entry {
        report: dir.to_path_buf(),
        run,
        model,
        seed,
        parameters: s["parameters"].as_u64().unwrap_or(0),
        steps,
        metrics,
        curve,
        key,
    })
}

/// Groups entries whose configurations differ only in seed and summarises each group.
pub fn leaderboard(entries: Vec<Entry>) -> Leaderboard {
    let mut groups: BTreeMap<String, Vec<Entry>> = BTreeMap::new();
    let mut order = vec![];
    for e in entries {
        if !groups.contains_key(&e.key) {
            order.push(e.key.clone());
        }
        groups.entry(e.key.clone()).or_default().push(e);
    }
    let mut rows: Vec<Row> = order
        .iter()
        .map(|k| {
            let g = &groups[k];
            let values = (0..METRICS.len())
                .map(|m| {
                    if g.len() == 1 {
                        return g[0].metrics[m];
                    }
                    let per: Vec<f64> = g.iter().map(|e| e.metrics[m].value).filter(|v| v.is_finite()).collect();
                    let lo = per.iter().copied().fold(f64::INFINITY, f64::min);
                    let hi = per.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    if per.is_empty() { single(f64::NAN) } else { Ranged { value: median(per), lo, hi } }
                })
                .collect();
            let len = g.iter().map(|e| e.curve.len()).min().unwrap_or(0);
            let curve = (0..len).map(|t| median(g.iter().map(|e| e.curve[t]).collect())).collect();
            Row {
                label: g[0].model.clone(),
                model: g[0].model.clone(),
                runs: g.iter().map(|e| e.run.clone()).collect(),
                seeds: g.iter().map(|e| e.seed).collect(),
                parameters: g[0].parameters,
                values,
                curve,
            }
        })
        .collect();
    // rows of the same model from different configurations are told apart by their first run directory
    let mut count: BTreeMap<String, usize> = BTreeMap::new();
    for r in &rows {
        *count.entry(r.model.clone()).or_default() += 1;
    }
    for r in &mut rows {
        if count[&r.model] > 1 {
            let dir = r.runs[0].file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
            r.label = format!("{} ({dir})", r.model);
        }
    }
    // best first: by the median nRMSE over steps
    rows.sort_by(|a, b| {
        let (x, y) = (a.values[3].value, b.values[3].value);
        x.is_nan().cmp(&y.is_nan()).then(x.total_cmp(&y))
    });
    Leaderboard { metrics: METRICS.iter().map(|m| m.0.to_string()).collect(), rows }
}

fn fmt(x: f64) -> String {
    if !x.is_finite() {
        "n/a".into()
    } else if x == 0.0 || (1e-3..1e4).contains(&x.abs()) {
        let s = format!("{x:.3}");
        if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_string() } else { s }
    } else {
        format!("{x:.2e}")
    }
}

fn cell(r: &Ranged) -> String {
    if !r.value.is_finite() {
        return "n/a".into();
    }
    if r.lo == r.hi || !r.lo.is_finite() {
        fmt(r.value)
    } else {
        format!("{} [{}, {}]", fmt(r.value), fmt(r.lo), fmt(r.hi))
    }
}

impl Leaderboard {
    /// The table as markdown.
    pub fn markdown(&self) -> String {
        let mut m = String::from("| model | runs | parameters |");
        for (name, unit, _) in METRICS {
            m.push_str(&format!(" {name} ({unit}) |"));
        }
        m.push_str("\n|---|---|---|");
        m.push_str(&"---|".repeat(METRICS.len()));
        m.push('\n');
        for r in &self.rows {
            m.push_str(&format!("| {} | {} | {} |", r.label, r.runs.len(), r.parameters));
            for v in &r.values {
                m.push_str(&format!(" {} |", cell(v)));
            }
            m.push('\n');
        }
        m.push_str(
            "\nRows are sorted by the mean nRMSE over steps. One run: median over test samples [5th, 95th \
             percentile]. Several runs differing only in seed: median over seeds of the per-run medians [smallest, \
             largest]. Correlation and valid-prediction times of rollouts that never cross the threshold count as \
             the rollout length.\n",
        );
        m
    }

    /// The table as CSV: `model,runs,parameters` then `<metric>,<metric> lo,<metric> hi` per metric.
    pub fn csv(&self) -> String {
        let q = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
        let mut c = String::from("model,runs,parameters");
        for (name, _, _) in METRICS {
            c.push_str(&format!(",{},{},{}", q(name), q(&format!("{name} lo")), q(&format!("{name} hi"))));
        }
        c.push('\n');
        for r in &self.rows {
            c.push_str(&format!("{},{},{}", q(&r.label), r.runs.len(), r.parameters));
            for v in &r.values {
                let f = |x: f64| if x.is_finite() { format!("{x}") } else { String::new() };
                c.push_str(&format!(",{},{},{}", f(v.value), f(v.lo), f(v.hi)));
            }
            c.push('\n');
        }
        c
    }
}

/// Links to the reports' own pages where they lie below `out` (as in the demo directory).
fn report_links(reports: &[PathBuf], out: &Path) -> Vec<(String, String)> {
    let Ok(base) = out.canonicalize() else { return vec![] };
    reports
        .iter()
        .filter_map(|r| {
            let page = r.join("report.html").canonicalize().ok()?;
            let rel = page.strip_prefix(&base).ok()?;
            let href = rel.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect::<Vec<_>>();
            Some((format!("report of {}", r.display()), href.join("/")))
        })
        .collect()
}

/// Compares the reports in `reports` and writes `leaderboard.md`, `leaderboard.json`, `leaderboard.csv`,
/// `error_curves.svg|png` and `report.html` into `out` (refusing to replace them without `force`).
pub fn compare(reports: &[PathBuf], out: &Path, force: bool) -> Result<Leaderboard, TrainError> {
    if reports.is_empty() {
        return Err(bad("no report directories given".into()));
    }
    let names = ["leaderboard.md", "leaderboard.json", "leaderboard.csv", "report.html", "error_curves.svg"];
    if !force {
        if let Some(n) = names.iter().find(|n| out.join(n).exists()) {
            return Err(bad(format!("{} exists; pass --force to replace it", out.join(n).display())));
        }
    }
    let entries = reports.iter().map(|r| read_report(r)).collect::<Result<Vec<_>, _>>()?;
    let board = leaderboard(entries);
    std::fs::create_dir_all(out).map_err(|e| failed(format!("{}: {e}", out.display())))?;
    let write = |name: &str, text: &str| -> Result<(), TrainError> {
        let tmp = out.join(format!("{name}.partial"));
        std::fs::write(&tmp, text)
            .and_then(|_| std::fs::rename(&tmp, out.join(name)))
            .map_err(|e| failed(format!("{}: {e}", out.join(name).display())))
    };
    let md = format!("# Leaderboard\n\n{}", board.markdown());
    write("leaderboard.md", &md)?;
    write("leaderboard.json", &serde_json::to_string_pretty(&board).unwrap_or_default())?;
    write("leaderboard.csv", &board.csv())?;
    let mut chart =
        LineChart::new("nRMSE against rollout step, median over test samples (and seeds)", "rollout step", "nRMSE (1)")
            .log_y();
    for (i, r) in board.rows.iter().enumerate() {
        let pts = r.curve.iter().enumerate().map(|(t, v)| ((t + 1) as f64, *v)).collect();
        let s = Series::new(&r.label, pts).colour(i);
        chart = chart.with(if i % 2 == 1 { s.dashed() } else { s });
    }
    chart.save(out, "error_curves").map_err(|e| failed(format!("{}: {e}", out.display())))?;
    let members: Vec<(String, String)> = board
        .rows
        .iter()
        .map(|r| {
            let runs: Vec<String> = r
                .runs
                .iter()
                .zip(&r.seeds)
                .map(|(p, s)| match s {
                    Some(s) => format!("{} (seed {s})", p.display()),
                    None => format!("{} (seed unknown: no config.toml found)", p.display()),
                })
                .collect();
            (r.label.clone(), runs.join("\n"))
        })
        .collect();
    let page = crate::report::Page {
        title: "Leaderboard",
        summary_markdown: &board.markdown(),
        texts: vec![],
        tables: vec![("Runs in each row".into(), members)],
        figures: vec![("error_curves".into(), "Median nRMSE against rollout step, one line per row.".into())],
        links: report_links(reports, out),
    };
    crate::report::write(out, &page).map_err(|e| failed(format!("{}: {e}", out.display())))?;
    Ok(board)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(model: &str, key: &str, seed: i64, nrmse: f64) -> Entry {
        Entry {
            report: PathBuf::from(format!("r-{model}-{seed}")),
            run: PathBuf::from(format!("runs/{model}-{key}-{seed}")),
            model: model.into(),
            seed: Some(seed),
            parameters: 10,
            steps: 20,
            metrics: (0..METRICS.len()).map(|_| Ranged { value: nrmse, lo: nrmse / 2.0, hi: nrmse * 2.0 }).collect(),
            curve: vec![nrmse; 3],
            key: key.into(),
        }
    }

    #[test]
    fn runs_differing_only_in_seed_share_a_row_with_the_range_over_seeds() {
        let b = leaderboard(vec![
            entry("fno", "a", 0, 0.3),
            entry("dymixop", "b", 0, 0.2),
            entry("fno", "a", 1, 0.5),
            entry("fno", "a", 2, 0.4),
            entry("fno", "c", 0, 0.1),
        ]);
        assert_eq!(b.rows.len(), 3);
        // sorted by mean nRMSE; two fno configurations get their run directory in the label
        assert_eq!(b.rows[0].label, "fno (fno-c-0)");
        assert_eq!(b.rows[1].label, "dymixop");
        let three = &b.rows[2];
        assert_eq!((three.runs.len(), three.seeds.clone()), (3, vec![Some(0), Some(1), Some(2)]));
        assert_eq!(three.values[0], Ranged { value: 0.4, lo: 0.3, hi: 0.5 });
        assert_eq!(three.curve, [0.4; 3]);
        // a single run keeps its sample range
        assert_eq!(b.rows[1].values[0], Ranged { value: 0.2, lo: 0.1, hi: 0.4 });
        let md = b.markdown();
        assert!(md.contains("| fno (fno-c-0) | 1 | 10 | 0.1 [0.05, 0.2] |"), "{md}");
        assert!(md.contains("| 0.4 [0.3, 0.5] |"), "{md}");
        let csv = b.csv();
        assert_eq!(csv.lines().count(), 4);
        assert!(csv.lines().nth(3).unwrap().starts_with("\"fno (fno-a-0)\",3,10,0.4,0.3,0.5"), "{csv}");
    }
}
