//! The rollout report as people look at it: every figure as valid SVG and PNG, and `report.html` one
//! self-contained page whose links stay inside the report. When Chromium is installed (`apt-get install
//! chromium`, or `ANSATZ_CHROMIUM=/path/to/chrome`), the page is loaded headless: any console message fails the
//! test, and a screenshot is saved to `target/report-check/report.png`.

use std::path::{Path, PathBuf};
use std::process::Command;

fn ansatz(args: &[&str]) {
    let o = Command::new(env!("CARGO_BIN_EXE_ansatz")).args(args).output().unwrap();
    assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
}

/// Every `href`/`src` value of `html`.
fn references(html: &str) -> Vec<String> {
    let mut out = vec![];
    for key in ["href=\"", "src=\""] {
        let mut rest = html;
        while let Some(i) = rest.find(key) {
            rest = &rest[i + key.len()..];
            let end = rest.find('"').unwrap_or(rest.len());
            out.push(rest[..end].to_string());
        }
    }
    out
}

/// The references of a page that do not name an existing file in its directory or below (anchors are fine).
fn outside_references(page: &Path) -> Vec<String> {
    let html = std::fs::read_to_string(page).unwrap();
    let dir = page.parent().unwrap();
    references(&html)
        .into_iter()
        .filter(|r| !r.starts_with('#'))
        .filter(|r| r.contains(':') || r.starts_with('/') || r.contains("..") || !dir.join(r).is_file())
        .collect()
}

fn chromium() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("ANSATZ_CHROMIUM") {
        return Some(p.into());
    }
    ["chromium", "chromium-browser", "google-chrome"].iter().find_map(|name| {
        let o = Command::new("sh").args(["-c", &format!("command -v {name}")]).output().ok()?;
        o.status.success().then(|| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
    })
}

/// Loads `page` in headless Chromium, saves a screenshot, and returns the console messages it logged.
fn console_messages(browser: &Path, page: &Path, screenshot: &Path) -> Vec<String> {
    let url = format!("file://{}", page.canonicalize().unwrap().display());
    let o = Command::new(browser)
        .args(["--headless=new", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0"])
        .args(["--window-size=1400,2400", &format!("--screenshot={}", screenshot.display()), &url])
        .output()
        .expect("run chromium");
    assert!(o.status.success(), "chromium failed: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stderr).lines().filter(|l| l.contains(":CONSOLE")).map(String::from).collect()
}

#[test]
fn the_rollout_report_is_one_self_contained_page_with_valid_figures() {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    ansatz(&["generate", "burgers2d", "--samples", "5", "--out", &p("b.nc"), "--set", "grid.n=16"]);
    std::fs::write(
        p("tiny.toml"),
        "[data]\nhistory = 1\nhorizon = 1\nvalidation = 0.2\ntest = 0.2\n\
         [model]\nkind = \"fno\"\nwidth = 6\nlayers = 1\nmodes = 4\nprojection = 8\nvariance_head = true\n\
         [training]\nsteps = 3\nbatch = 2\nloss = \"gaussian-nll\"\n",
    )
    .unwrap();
    ansatz(&["train", &p("tiny.toml"), "--data", &p("b.nc"), "--out", &p("run")]);
    ansatz(&["rollout", "--run", &p("run"), "--out", &p("report"), "--steps", "4", "--no-baseline"]);
    let report = dir.path().join("report");
    for stem in ["error", "correlation", "spectra", "snapshots", "sigma", "sigma_map"] {
        let svg = std::fs::read_to_string(report.join(format!("{stem}.svg"))).unwrap();
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"), "{stem}.svg");
        let png = std::fs::read(report.join(format!("{stem}.png"))).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "{stem}.png");
    }
    let snap = std::fs::read_to_string(report.join("snapshots.svg")).unwrap();
    for needle in ["prediction, step 1", "reference, step 4", "error, step 4", "prediction − reference (1)", "u (1)"]
    {
        assert!(snap.contains(needle), "snapshots.svg lacks {needle:?}");
    }
    let error = std::fs::read_to_string(report.join("error.svg")).unwrap();
    assert!(error.contains("rollout step (Δt = ") && error.contains("relative error (1)") && error.contains("VRMSE"));

    let page = report.join("report.html");
    let html = std::fs::read_to_string(&page).unwrap();
    for needle in
        ["<h1>Rollout of fno on burgers2d</h1>", "nRMSE at step 1", "Data provenance", "Configuration of the run"]
    {
        assert!(html.contains(needle), "report.html lacks {needle:?}");
    }
    assert_eq!(html.matches("<svg").count(), 6, "every figure inline");
    assert!(!html.contains("<script"), "no scripts");
    assert_eq!(outside_references(&page), Vec::<String>::new());

    // the reference check can fail
    let bad = dir.path().join("report/bad.html");
    std::fs::write(
        &bad,
        "<a href=\"https://example.org/x\">x</a><img src=\"missing.png\"><a href=\"error.svg\">ok</a>",
    )
    .unwrap();
    assert_eq!(outside_references(&bad), ["https://example.org/x", "missing.png"]);

    let Some(browser) = chromium() else {
        eprintln!("no Chromium: skipping the headless load of report.html (apt-get install chromium to run it)");
        return;
    };
    let shots = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/target/report-check"));
    std::fs::create_dir_all(&shots).unwrap();
    let messages = console_messages(&browser, &page, &shots.join("report.png"));
    assert!(messages.is_empty(), "console messages on report.html: {messages:#?}");
    let shot = std::fs::read(shots.join("report.png")).unwrap();
    assert_eq!(&shot[..8], b"\x89PNG\r\n\x1a\n");
    // and the console check can fail
    std::fs::write(&bad, "<!DOCTYPE html><p>x</p><script>console.error('broken page')</script>").unwrap();
    let messages = console_messages(&browser, &bad, &shots.join("bad.png"));
    assert!(messages.iter().any(|m| m.contains("broken page")), "{messages:?}");
}

#[test]
fn compare_groups_seeds_into_one_row_and_writes_every_format() {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    ansatz(&["generate", "burgers1d", "--samples", "6", "--out", &p("b.nc"), "--set", "grid.n=32"]);
    std::fs::write(
        p("tiny.toml"),
        "[data]\nhistory = 2\nhorizon = 1\nvalidation = 0.2\ntest = 0.2\n\
         [model]\nkind = \"fno\"\nwidth = 6\nlayers = 1\nmodes = 4\nprojection = 8\n[training]\nsteps = 3\nbatch = 2\n",
    )
    .unwrap();
    for (run, extra) in [("a0", "seed=0"), ("a1", "seed=1"), ("a2", "seed=2"), ("wide", "model.width=8")] {
        ansatz(&["train", &p("tiny.toml"), "--data", &p("b.nc"), "--out", &p(run), "--set", extra]);
        ansatz(&[
            "rollout",
            "--run",
            &p(run),
            "--out",
            &p(&format!("r-{run}")),
            "--steps",
            "3",
            "--no-plots",
            "--no-baseline",
        ]);
    }
    let reports = ["r-a0", "r-a1", "r-a2", "r-wide"].map(p);
    let out = p("board");
    let args: Vec<&str> =
        ["compare"].into_iter().chain(reports.iter().map(String::as_str)).chain(["--out", &out]).collect();
    ansatz(&args);
    let board: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("board/leaderboard.json")).unwrap()).unwrap();
    let rows = board["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{board:#}");
    let seeds: Vec<usize> = rows.iter().map(|r| r["seeds"].as_array().unwrap().len()).collect();
    assert!(seeds.contains(&3) && seeds.contains(&1), "{seeds:?}");
    let three = rows.iter().find(|r| r["seeds"].as_array().unwrap().len() == 3).unwrap();
    assert_eq!(three["seeds"], serde_json::json!([0, 1, 2]));
    let v = &three["values"][0];
    let (value, lo, hi) = (v["value"].as_f64().unwrap(), v["lo"].as_f64().unwrap(), v["hi"].as_f64().unwrap());
    assert!(lo <= value && value <= hi && lo < hi, "range over seeds {v}");
    let csv = std::fs::read_to_string(dir.path().join("board/leaderboard.csv")).unwrap();
    assert_eq!(csv.lines().count(), 3);
    assert!(csv.starts_with("model,runs,parameters,\"nRMSE step 1\""), "{csv}");
    let md = std::fs::read_to_string(dir.path().join("board/leaderboard.md")).unwrap();
    assert!(md.contains("| fno (a0) | 3 |") && md.contains("| fno (wide) | 1 |"), "{md}");
    assert!(dir.path().join("board/error_curves.svg").exists() && dir.path().join("board/error_curves.png").exists());
    let page = dir.path().join("board/report.html");
    assert_eq!(outside_references(&page), Vec::<String>::new());
    assert!(std::fs::read_to_string(&page).unwrap().contains("(seed 2)"));
    // reports below the leaderboard's directory (as in the demo) are linked from its page
    let top = dir.path().to_str().unwrap().to_string();
    let args_top: Vec<&str> =
        ["compare"].into_iter().chain(reports.iter().map(String::as_str)).chain(["--out", &top]).collect();
    ansatz(&args_top);
    let page = dir.path().join("report.html");
    let html = std::fs::read_to_string(&page).unwrap();
    // rollouts without --no-plots are not needed: report.html exists in every report
    assert_eq!(html.matches("/report.html\"").count(), 4, "{html}");
    assert!(html.contains("href=\"r-a0/report.html\""), "{html}");
    assert_eq!(outside_references(&page), Vec::<String>::new());
    // an existing leaderboard is not replaced without --force; a directory without a summary is named
    let o = Command::new(env!("CARGO_BIN_EXE_ansatz")).args(&args).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--force"));
    let o =
        Command::new(env!("CARGO_BIN_EXE_ansatz")).args(["compare", &p("a0"), "--out", &p("board2")]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("summary.json"), "{}", String::from_utf8_lossy(&o.stderr));
}
