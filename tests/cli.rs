//! The `ansatz` binary: help, version, exit codes, and a small demo run end to end.

use std::process::Command;

fn ansatz(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ansatz")).args(args).output().expect("run ansatz");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn help_and_version() {
    let (code, out, _) = ansatz(&["--help"]);
    assert_eq!(code, 0);
    assert!(out.contains("solver-demo") && out.contains("Exit codes"), "{out}");
    let (code, out, _) = ansatz(&["--version"]);
    assert_eq!(code, 0);
    assert_eq!(out.trim(), format!("ansatz {}", env!("CARGO_PKG_VERSION")));
    let (code, out, _) = ansatz(&["solver-demo", "--help"]);
    assert_eq!(code, 0);
    assert!(out.contains("--scheme") && out.contains("fv-weno5"), "{out}");
}

#[test]
fn bad_usage_exits_with_2_and_names_the_problem() {
    let (code, _, err) = ansatz(&["solver-demo", "--scheme", "finite-element"]);
    assert_eq!(code, 2);
    assert!(err.contains("finite-element"), "{err}");
    let (code, _, err) = ansatz(&["solver-demo", "--n", "4"]);
    assert_eq!(code, 2);
    assert!(err.contains("--n"), "{err}");
    let (code, _, err) = ansatz(&["solver-demo", "--nu=-1"]);
    assert_eq!(code, 2);
    assert!(err.contains("nu"), "{err}");
    let (code, _, _) = ansatz(&["no-such-command"]);
    assert_eq!(code, 2);
}

#[test]
fn blow_up_exits_with_1_and_says_where() {
    // an inviscid finite-volume run at CFL 5 cannot stay finite
    let (code, _, err) =
        ansatz(&["solver-demo", "--scheme", "fv-muscl", "--n", "16", "--nu", "0", "--cfl", "5", "--t-end", "50"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("non-finite") && err.contains("sample"), "{err}");
}

#[test]
fn small_demo_runs_and_checks_its_gradient() {
    for scheme in ["spectral", "fv-muscl", "fv-weno5"] {
        let (code, out, err) =
            ansatz(&["solver-demo", "--scheme", scheme, "--n", "16", "--batch", "2", "--t-end", "0.2"]);
        assert_eq!(code, 0, "{scheme}: {err}");
        assert!(out.contains("sample 1: kinetic energy"), "{out}");
        let line = out.lines().find(|l| l.contains("central difference")).expect("gradient check line");
        let rel: f64 = line.split("to ").nth(1).and_then(|s| s.split_whitespace().next()).unwrap().parse().unwrap();
        assert!(rel < 1e-4, "{scheme}: {line}");
    }
}
