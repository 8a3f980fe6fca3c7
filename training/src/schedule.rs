//! Learning-rate schedules.
//!
//! A schedule is a pure function of the optimiser step, so a resumed run needs nothing but the step counter to
//! continue on exactly the learning rate an uninterrupted run would have used.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A learning-rate schedule as written in an experiment configuration (`[schedule]` table, tagged by `kind`).
///
/// ```toml
/// [schedule]
/// kind = "warmup-cosine"
/// peak = 1e-3
/// warmup_steps = 100
/// total_steps = 5000
/// final_fraction = 0.01
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Schedule {
    /// The same rate at every step.
    Constant { rate: f64 },
    /// Linear warmup from `peak / warmup_steps` to `peak` over `warmup_steps`, then a half-cosine decay to
    /// `peak * final_fraction` at `total_steps`; the final rate is held after that. `total_steps` may be left out
    /// in an experiment configuration, where it means the run's number of steps.
    WarmupCosine {
        peak: f64,
        #[serde(default)]
        warmup_steps: usize,
        #[serde(default)]
        total_steps: usize,
        #[serde(default)]
        final_fraction: f64,
    },
    /// Linear warmup as above, then the rate is multiplied by `factor` every `every` steps after warmup (a
    /// staircase exponential decay), never below `floor`.
    WarmupStep {
        peak: f64,
        #[serde(default)]
        warmup_steps: usize,
        every: usize,
        factor: f64,
        #[serde(default)]
        floor: f64,
    },
}

/// A schedule whose parameters cannot produce a positive, finite learning rate.
#[derive(Clone, Debug, PartialEq)]
pub struct ScheduleError(String);

impl fmt::Display for ScheduleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid [schedule]: {}", self.0)
    }
}

impl std::error::Error for ScheduleError {}

fn positive(name: &str, value: f64) -> Result<(), ScheduleError> {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err(ScheduleError(format!("`{name}` must be a positive finite number, got {value}")))
    }
}

impl Schedule {
    /// The schedule with an unset `total_steps` (0) replaced by `steps`.
    pub fn resolved(mut self, steps: usize) -> Self {
        if let Schedule::WarmupCosine { total_steps, .. } = &mut self
            && *total_steps == 0
        {
            *total_steps = steps;
        }
        self
    }

    /// Checks the parameters; [`Schedule::rate`] assumes a validated schedule.
    pub fn validate(&self) -> Result<(), ScheduleError> {
        match *self {
            Schedule::Constant { rate } => positive("rate", rate),
            Schedule::WarmupCosine { peak, warmup_steps, total_steps, final_fraction } => {
                positive("peak", peak)?;
                if total_steps == 0 || warmup_steps >= total_steps {
                    return Err(ScheduleError(format!(
                        "`warmup_steps` ({warmup_steps}) must be smaller than `total_steps` ({total_steps})"
                    )));
                }
                if !(0.0..=1.0).contains(&final_fraction) {
                    return Err(ScheduleError(format!("`final_fraction` must lie in [0, 1], got {final_fraction}")));
                }
                Ok(())
            }
            Schedule::WarmupStep { peak, every, factor, floor, .. } => {
                positive("peak", peak)?;
                if !(floor.is_finite() && (0.0..=peak).contains(&floor)) {
                    return Err(ScheduleError(format!("`floor` must lie in [0, peak], got {floor}")));
                }
                if every == 0 {
                    return Err(ScheduleError("`every` must be at least 1".into()));
                }
                if !(factor > 0.0 && factor <= 1.0) {
                    return Err(ScheduleError(format!("`factor` must lie in (0, 1], got {factor}")));
                }
                Ok(())
            }
        }
    }

    /// The learning rate for the optimiser step `step` (0-based: the first update uses `rate(0)`).
    pub fn rate(&self, step: usize) -> f64 {
        match *self {
            Schedule::Constant { rate } => rate,
            Schedule::WarmupCosine { peak, warmup_steps, total_steps, final_fraction } => {
                if step < warmup_steps {
                    return peak * (step + 1) as f64 / warmup_steps as f64;
                }
                let decay_steps = (total_steps - warmup_steps) as f64;
                let progress = ((step - warmup_steps) as f64 / decay_steps).min(1.0);
                let floor = peak * final_fraction;
                floor + 0.5 * (peak - floor) * (1.0 + (std::f64::consts::PI * progress).cos())
            }
            Schedule::WarmupStep { peak, warmup_steps, every, factor, floor } => {
                if step < warmup_steps {
                    return peak * (step + 1) as f64 / warmup_steps as f64;
                }
                let drops = (step - warmup_steps) / every;
                (peak * factor.powi(drops.min(i32::MAX as usize) as i32)).max(floor)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Schedule, toml::de::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Wrapper {
            schedule: Schedule,
        }
        toml::from_str::<Wrapper>(text).map(|w| w.schedule)
    }

    #[test]
    fn warmup_cosine_hits_its_landmarks() {
        let s = Schedule::WarmupCosine { peak: 1e-3, warmup_steps: 10, total_steps: 110, final_fraction: 0.1 };
        s.validate().unwrap();
        assert!((s.rate(0) - 1e-4).abs() < 1e-18);
        assert!((s.rate(4) - 5e-4).abs() < 1e-18);
        assert!((s.rate(9) - 1e-3).abs() < 1e-18);
        assert!((s.rate(10) - 1e-3).abs() < 1e-18);
        // halfway through the decay: floor + (peak - floor) / 2
        assert!((s.rate(60) - (1e-4 + 0.5 * 9e-4)).abs() < 1e-15);
        assert!((s.rate(110) - 1e-4).abs() < 1e-18);
        assert!((s.rate(10_000) - 1e-4).abs() < 1e-18);
        // monotone after warmup
        for k in 10..200 {
            assert!(s.rate(k + 1) <= s.rate(k) + 1e-18, "rate rises at step {k}");
        }
    }

    #[test]
    fn warmup_step_drops_by_factor() {
        let s = Schedule::WarmupStep { peak: 1.0, warmup_steps: 2, every: 5, factor: 0.5, floor: 0.0 };
        s.validate().unwrap();
        let got: Vec<f64> = (0..14).map(|k| s.rate(k)).collect();
        let want = [0.5, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.5, 0.5, 0.25, 0.25];
        assert_eq!(got, want);
        let floored = Schedule::WarmupStep { peak: 1.0, warmup_steps: 0, every: 1, factor: 0.5, floor: 0.2 };
        assert_eq!((floored.rate(2), floored.rate(3), floored.rate(50)), (0.25, 0.2, 0.2));
    }

    #[test]
    fn parses_from_toml_and_rejects_unknown_keys() {
        let s =
            parse("[schedule]\nkind = \"warmup-cosine\"\npeak = 2e-3\nwarmup_steps = 5\ntotal_steps = 50\n").unwrap();
        assert_eq!(s, Schedule::WarmupCosine { peak: 2e-3, warmup_steps: 5, total_steps: 50, final_fraction: 0.0 });
        let c = parse("[schedule]\nkind = \"constant\"\nrate = 0.1\n").unwrap();
        assert_eq!(c.rate(123), 0.1);
        let err = parse("[schedule]\nkind = \"constant\"\nrate = 0.1\nwarmup = 3\n").unwrap_err();
        assert!(err.to_string().contains("warmup"), "{err}");
        let err = parse("[schedule]\nkind = \"linear\"\n").unwrap_err();
        assert!(err.to_string().contains("linear"), "{err}");
    }

    #[test]
    fn validation_names_the_bad_key() {
        let bad = [
            (Schedule::Constant { rate: f64::NAN }, "rate"),
            (Schedule::Constant { rate: 0.0 }, "rate"),
            (
                Schedule::WarmupCosine { peak: 1.0, warmup_steps: 10, total_steps: 10, final_fraction: 0.0 },
                "warmup_steps",
            ),
            (
                Schedule::WarmupCosine { peak: 1.0, warmup_steps: 0, total_steps: 10, final_fraction: 1.5 },
                "final_fraction",
            ),
            (Schedule::WarmupStep { peak: 1.0, warmup_steps: 0, every: 0, factor: 0.5, floor: 0.0 }, "every"),
            (Schedule::WarmupStep { peak: 1.0, warmup_steps: 0, every: 3, factor: 2.0, floor: 0.0 }, "factor"),
            (Schedule::WarmupStep { peak: 1.0, warmup_steps: 0, every: 3, factor: 0.5, floor: 2.0 }, "floor"),
        ];
        for (s, key) in bad {
            let err = s.validate().unwrap_err().to_string();
            assert!(err.contains(key), "{err} should name {key}");
        }
    }
}
