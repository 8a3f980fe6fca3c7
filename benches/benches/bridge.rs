//! The cost of the method foundation: each bridged solver op against the bare solver call it wraps, and k
//! forward-mode tangents through an FNO against the k + 1 forward passes of one-sided finite differences.
//!
//! `cargo bench -p ansatz-benches --bench bridge` (figures in docs/benchmarks.md).

use ansatz_datasets::problems::random_poisson;
use ansatz_operators::bridge::{self, BridgeReport, LinearSystem, SparseOperator};
use ansatz_operators::fno::FnoConfig;
use ansatz_operators::init::Init;
use ansatz_operators::jet::Jet;
use ansatz_solvers::implicit::LinearSolver;
use ansatz_solvers::integrate::{self, AdjointStrategy, TrajectoryLoss};
use ansatz_solvers::krylov::{Tolerance, cg};
use ansatz_solvers::prelude::*;
use burn::prelude::*;
use burn::tensor::TensorData;
use criterion::{Criterion, criterion_group, criterion_main};
use ndarray::Array2;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

/// `L = Σ g · u_T`: the bare adjoint that the bridged `steps` backward runs.
struct Inject<'a>(&'a Array2<f64>, usize);
impl TrajectoryLoss for Inject<'_> {
    fn term(&self, sample: usize, step: usize, u: &[f64], grad: &mut [f64]) -> f64 {
        if step != self.1 {
            return 0.0;
        }
        let g = self.0.row(sample);
        grad.iter_mut().zip(g.iter()).for_each(|(a, b)| *a += b);
        u.iter().zip(g.iter()).map(|(a, b)| a * b).sum()
    }
}

fn tensor(values: Vec<f64>, shape: [usize; 2], device: &Device) -> Tensor<2> {
    Tensor::from_data(TensorData::new(values, shape), (device, burn::tensor::DType::F64))
}

fn solver_ops(c: &mut Criterion) {
    let (plain, ad) = (Device::flex(), Device::flex().autodiff());
    let report = BridgeReport::new();
    // 1D spectral Burgers, 256 points, 16 samples, 20 RK4 steps
    let (n, batch, steps) = (256, 16, 20);
    let pde = SpectralBurgers1d::new(n, std::f64::consts::TAU).unwrap();
    let stepper = Arc::new(ExplicitRk::rk4(SpectralRhs::new(pde, 0.02).unwrap(), 1e-3).unwrap());
    let u0 = Array2::from_shape_fn((batch, n), |(s, i)| ((i as f64) * 0.0245 * (1.0 + s as f64 * 0.1)).sin());
    let g = Array2::from_elem((batch, n), 1.0);
    let adjoint: Arc<dyn AdjointStrategy + Send + Sync> = Arc::new(Checkpointed::sqrt());
    let mut works = integrate::works(&*stepper, batch);
    c.bench_function("steps bare: 16 x 20 RK4 steps, N=256", |b| {
        b.iter(|| {
            let mut u = u0.clone();
            integrate::advance(&*stepper, u.view_mut(), steps, &mut works).unwrap();
            black_box(u)
        })
    });
    let flat: Vec<f64> = u0.iter().copied().collect();
    c.bench_function("steps bridged forward: 16 x 20 RK4 steps, N=256", |b| {
        b.iter(|| {
            let u = tensor(flat.clone(), [batch, n], &plain);
            black_box(bridge::steps(stepper.clone(), u, steps, adjoint.clone(), &report).unwrap().into_data())
        })
    });
    c.bench_function("steps bare adjoint: forward + checkpointed reverse", |b| {
        b.iter(|| {
            let r = integrate::gradient(&*stepper, u0.view(), steps, &Inject(&g, steps), &Checkpointed::sqrt());
            black_box(r.unwrap().du0)
        })
    });
    c.bench_function("steps bridged forward + backward", |b| {
        b.iter(|| {
            let u = tensor(flat.clone(), [batch, n], &ad).require_grad();
            let y = bridge::steps(stepper.clone(), u.clone(), steps, adjoint.clone(), &report).unwrap();
            let grads = y.sum().backward();
            black_box(u.grad(&grads).map(|t| t.into_data()))
        })
    });
    let rhs_scheme =
        Arc::new(SpectralRhs::new(SpectralBurgers1d::new(n, std::f64::consts::TAU).unwrap(), 0.02).unwrap());
    let mut w = rhs_scheme.work();
    let mut out = vec![0.0; n];
    c.bench_function("rhs bare: 16 samples, N=256", |b| {
        b.iter(|| {
            for s in 0..batch {
                rhs_scheme.rhs(&flat[s * n..(s + 1) * n], &mut out, &mut w);
            }
            black_box(&out);
        })
    });
    c.bench_function("rhs bridged forward + backward", |b| {
        b.iter(|| {
            let u = tensor(flat.clone(), [batch, n], &ad).require_grad();
            let y = bridge::rhs(rhs_scheme.clone(), u.clone(), &report).unwrap();
            let grads = y.sum().backward();
            black_box(u.grad(&grads).map(|t| t.into_data()))
        })
    });

    // Poisson 128², 8 right-hand sides
    let (p, _) = random_poisson(2, 128, 1).unwrap();
    let a = p.assemble();
    let m = a.nrows();
    let rb = 8;
    let xs: Vec<f64> = (0..rb * m).map(|i| ((i % 97) as f64 - 48.0) / 48.0).collect();
    let mut y = vec![0.0; m];
    c.bench_function("spmv bare: 8 vectors, Poisson 128^2", |b| {
        b.iter(|| {
            for s in 0..rb {
                a.matvec(&xs[s * m..(s + 1) * m], &mut y);
            }
            black_box(&y);
        })
    });
    let op = Arc::new(SparseOperator::new(a.clone()));
    c.bench_function("spmv bridged forward + backward", |b| {
        b.iter(|| {
            let x = tensor(xs.clone(), [rb, m], &ad).require_grad();
            let grads = bridge::spmv(op.clone(), x.clone(), &report).unwrap().sum().backward();
            black_box(x.grad(&grads).map(|t| t.into_data()))
        })
    });
    let tol = Tolerance::relative(1e-8, 2000);
    c.bench_function("cg bare: 8 solves to 1e-8, Poisson 128^2", |b| {
        b.iter(|| {
            for s in 0..rb {
                let mut u = vec![0.0; m];
                cg(&a, &xs[s * m..(s + 1) * m], &mut u, tol).unwrap();
                black_box(u);
            }
        })
    });
    let system = Arc::new(LinearSystem::new(a.clone(), LinearSolver::Cg, tol).unwrap());
    c.bench_function("linear_solve bridged forward + backward (CG both ways)", |b| {
        b.iter(|| {
            let x = tensor(xs.clone(), [rb, m], &ad).require_grad();
            let grads = bridge::linear_solve(system.clone(), x.clone(), &report).unwrap().sum().backward();
            black_box(x.grad(&grads).map(|t| t.into_data()))
        })
    });
    assert!(report.is_empty(), "{:?}", report.failures());
}

fn tangents(c: &mut Criterion) {
    // the FNO of the 2D benchmarks: 32², width 32, 8 modes, 4 layers, batch 4, f32
    let device = Device::flex();
    let mut init = Init::new(3, &device);
    let model = FnoConfig::new(1, 1, 32, 8, 8, 4, 32, 32).with_projection(128).init(&mut init);
    let x = init.uniform([4, 1, 32, 32], -1.0, 1.0);
    for k in [1usize, 4] {
        let v: Vec<Tensor<4>> = (0..k).map(|_| init.uniform([4, 1, 32, 32], -1.0, 1.0)).collect();
        c.bench_function(&format!("fno2d jet: value + {k} tangents"), |b| {
            b.iter(|| {
                let out = model.forward_jet(&Jet::seed(x.clone(), v.clone()));
                black_box(out.tangents.into_iter().map(|t| t.into_data()).collect::<Vec<_>>())
            })
        });
        c.bench_function(&format!("fno2d finite differences: {} forward passes", k + 1), |b| {
            b.iter(|| {
                let f0 = model.forward(x.clone());
                let d: Vec<_> = v
                    .iter()
                    .map(|vi| (model.forward(x.clone() + vi.clone().mul_scalar(1e-3)) - f0.clone()).into_data())
                    .collect();
                black_box(d)
            })
        });
    }
}

/// Φ-ROM's two bridged ops at the Burgers benchmark's size: the per-sample right-hand sides of 800 decoded
/// fields (256 cells, each its own μ) and 800 latent-velocity least squares (25 × 4), against the bare loops.
fn reduced_order(c: &mut Criterion) {
    use ansatz_solvers::linalg::{LstsqWork, lstsq};
    use ansatz_solvers::rom::{BurgersSource1d, RomRhs};
    let (b, n, m, k) = (800, 256, 25, 4);
    let schemes: Vec<Arc<RomRhs>> = (0..b)
        .map(|s| {
            Arc::new(RomRhs::BurgersSource(BurgersSource1d::new(n, 100.0, 0.02, 0.015 + 1e-5 * s as f64).unwrap()))
        })
        .collect();
    let u: Vec<f64> = (0..b * n).map(|i| 2.0 + (i as f64 * 0.37).sin()).collect();
    let jf: Vec<f64> = (0..b * (m * k + m)).map(|i| (i as f64 * 0.731).sin()).collect();
    let plain = Device::flex();
    let ad = Device::flex().autodiff();
    let report = BridgeReport::new();
    c.bench_function("rom/rhs 800 × 256, bare", |bn| {
        let mut out = vec![0.0; n];
        let mut w = schemes[0].work();
        bn.iter(|| {
            for (s, scheme) in schemes.iter().enumerate() {
                scheme.rhs(&u[s * n..(s + 1) * n], &mut out, &mut w);
            }
            black_box(out[0])
        })
    });
    c.bench_function("rom/rhs_each 800 × 256, bridged forward + backward", |bn| {
        bn.iter(|| {
            let x = tensor(u.clone(), [b, n], &ad).require_grad();
            let y = bridge::rhs_each(schemes.clone(), x.clone(), &report).unwrap();
            let g = y.sum().backward();
            black_box(x.grad(&g).is_some())
        })
    });
    c.bench_function("rom/lstsq 800 × (25 × 4), bare", |bn| {
        let mut w = LstsqWork::new(m, k);
        let mut x = vec![0.0; k];
        bn.iter(|| {
            for s in 0..b {
                let row = &jf[s * (m * k + m)..(s + 1) * (m * k + m)];
                let _ = lstsq(&row[..m * k], &row[m * k..], &mut x, 1e-12, &mut w);
            }
            black_box(x[0])
        })
    });
    c.bench_function("rom/lstsq 800 × (25 × 4), bridged forward", |bn| {
        bn.iter(|| black_box(bridge::lstsq(tensor(jf.clone(), [b, m * k + m], &plain), m, k, &report).unwrap()))
    });
    c.bench_function("rom/lstsq 800 × (25 × 4), bridged forward + backward", |bn| {
        bn.iter(|| {
            let x = tensor(jf.clone(), [b, m * k + m], &ad).require_grad();
            let g = bridge::lstsq(x.clone(), m, k, &report).unwrap().sum().backward();
            black_box(x.grad(&g).is_some())
        })
    });
}

/// The expert layer of hard-constrained learning at the diffusion–sorption setting: 4 samples × 4 experts, each
/// with 2000 PDE rows plus 32 initial and 50 boundary rows over 8 basis functions (features 2082 × 3 × 8), solved
/// by Levenberg–Marquardt from ω = 1; forward alone, and forward with the implicit backward.
fn experts(c: &mut Criterion) {
    use ansatz_solvers::constrained::{Closure, ExpertOptions, SorptionClosure, SorptionRow};
    use ansatz_solvers::sorption::SorptionConstants;
    let (experts, rows, n) = (16, 2082, 8);
    let kinds: Vec<SorptionRow> = (0..rows)
        .map(|p| match p {
            0..2000 => SorptionRow::Pde,
            2000..2032 => SorptionRow::Initial,
            2032..2057 => SorptionRow::Inflow,
            _ => SorptionRow::Outflow,
        })
        .collect();
    let targets = kinds.iter().map(|k| if *k == SorptionRow::Inflow { 1.0 } else { 0.1 }).collect::<Vec<_>>();
    let closure: Arc<dyn Closure + Send + Sync> = Arc::new(SorptionClosure {
        constants: SorptionConstants::pdebench(),
        time_scale: 500.0,
        weights: kinds.iter().map(|k| if *k == SorptionRow::Pde { 1.0 / 2000f64.sqrt() } else { 0.15 }).collect(),
        kinds,
        targets,
    });
    let closures = vec![closure; experts];
    let f: Vec<f64> = (0..experts * rows * 3 * n)
        .map(|i| if (i / n) % 3 == 0 { 0.3 + 0.2 * (i as f64 * 0.37).sin().abs() } else { (i as f64 * 0.731).sin() })
        .collect();
    let (plain, ad) = (Device::flex(), Device::flex().autodiff());
    let (log, report) = (bridge::ExpertLog::new(), BridgeReport::new());
    let opts = ExpertOptions::default();
    c.bench_function("experts/16 × (2082 rows, N = 8), forward", |bn| {
        bn.iter(|| {
            let x = tensor(f.clone(), [experts, rows * 3 * n], &plain);
            black_box(bridge::experts(closures.clone(), n, x, &[1.0; 8], opts, &log, &report).unwrap())
        })
    });
    c.bench_function("experts/16 × (2082 rows, N = 8), forward + implicit backward", |bn| {
        bn.iter(|| {
            let x = tensor(f.clone(), [experts, rows * 3 * n], &ad).require_grad();
            let g = bridge::experts(closures.clone(), n, x.clone(), &[1.0; 8], opts, &log, &report)
                .unwrap()
                .sum()
                .backward();
            black_box(x.grad(&g).is_some())
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3)).sample_size(10);
    targets = solver_ops, tangents, reduced_order, experts
}
criterion_main!(benches);
