//! Process memory settings for training and inference on the CPU.
//!
//! A training step allocates and frees many activation-sized buffers (megabytes each). With glibc's default
//! settings, buffers above its dynamic mmap threshold are returned to the kernel when freed and the top of the heap
//! is trimmed, so the next step page-faults and zero-fills the same memory again: on the benchmark FNOs that cost
//! 30–50% of the step time. [`retain_freed_memory`] keeps freed memory in the process for reuse. Peak resident
//! memory barely changes (92 against 90 MiB on the FNO benchmarks: the buffers were resident at the peak anyway);
//! memory is held until exit.

/// Largest allocation served from the heap instead of a fresh mapping (glibc's upper limit for this setting).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: libc::c_int = 32 << 20;
/// Free memory at the top of the heap kept instead of returned to the kernel.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const TRIM_THRESHOLD: libc::c_int = 1 << 30;

/// Keeps freed buffers in the process for reuse (glibc on Linux; elsewhere nothing changes). Idempotent; call it
/// before the first training or inference step. Returns whether the settings were applied.
pub fn retain_freed_memory() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        static APPLIED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *APPLIED.get_or_init(|| {
            // SAFETY: mallopt only changes allocator parameters; it is safe to call at any time.
            unsafe {
                libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
                    && libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
            }
        })
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

/// Returns the free memory the allocator holds to the kernel (glibc's `malloc_trim`; elsewhere nothing), e.g. the
/// buffers of data loading before a training loop whose peak is measured. Returns whether memory was released.
pub fn release_free_memory() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: malloc_trim only returns unused heap pages; it is safe to call at any time.
        unsafe { libc::malloc_trim(0) == 1 }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

/// Resets the process's peak resident set size (`VmHWM`) to its current resident size (Linux ≥ 4.0), so that a
/// later [`peak_rss`] measures a phase of the run; returns whether it could.
pub fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// The current and the peak resident set size in bytes (`VmRSS`, `VmHWM`) since the start or the last
/// [`reset_peak_rss`]; `None` where `/proc/self/status` does not say.
pub fn peak_rss() -> Option<(u64, u64)> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib = |key: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(key))?;
        line[key.len()..].trim().trim_end_matches("kB").trim().parse::<u64>().ok().map(|v| v * 1024)
    };
    Some((kib("VmRSS:")?, kib("VmHWM:")?))
}

#[cfg(test)]
mod tests {
    #[test]
    #[cfg(target_os = "linux")]
    fn the_peak_follows_an_allocation_and_resets() {
        let (_, before) = super::peak_rss().expect("/proc/self/status");
        let big = vec![1u8; 256 << 20];
        std::hint::black_box(&big);
        let (_, during) = super::peak_rss().unwrap();
        assert!(during >= before.max(200 << 20), "{before} -> {during}");
        drop(big);
        if super::reset_peak_rss() {
            let (now, after) = super::peak_rss().unwrap();
            assert!(after < during && after >= now, "after a reset: peak {after}, current {now}, before {during}");
        }
    }

    #[test]
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fn settings_are_accepted_by_glibc() {
        assert!(super::retain_freed_memory());
        assert!(super::retain_freed_memory(), "a second call reports the same");
    }
}
