//! A process's memory as the kernel counts it: resident set now (`VmRSS`) and its peak (`VmHWM`), from
//! `/proc/PID/status` (Linux).

use anyhow::Context;
use serde::Serialize;

/// One reading of a process's resident memory, in bytes.
#[derive(Clone, Copy, Debug, Serialize)]
pub(super) struct Memory {
    /// Resident now.
    pub(super) rss: u64,
    /// The most it was resident since it started (the high-water mark).
    pub(super) peak: u64,
}

impl Memory {
    /// Reads it for process `pid`.
    pub(super) fn of(pid: u32) -> anyhow::Result<Memory> {
        let path = format!("/proc/{pid}/status");
        let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
        let field = |name: &str| -> anyhow::Result<u64> {
            let line = status
                .lines()
                .find_map(|line| line.strip_prefix(name))
                .with_context(|| format!("no {name} in {path}"))?;
            let kib: u64 =
                line.trim().trim_end_matches("kB").trim().parse().with_context(|| format!("{name}{line}"))?;
            Ok(kib * 1024)
        };
        Ok(Memory { rss: field("VmRSS:")?, peak: field("VmHWM:")? })
    }
}

/// The instance's peak RSS under an attack: before, after, and the bound it must stay within.
#[derive(Clone, Debug, Serialize)]
pub(super) struct PeakRss {
    /// Before the attack (after a warm-up with genuine orders).
    pub(super) before: Memory,
    /// After the attack was consumed.
    pub(super) after: Memory,
    /// The most `after.peak` may be: `before.peak` plus the configured byte limits plus an allowance.
    pub(super) bound: u64,
}

impl PeakRss {
    /// Whether the peak after the attack is within the bound.
    pub(super) fn within_bound(&self) -> bool {
        self.after.peak <= self.bound
    }
}

/// `bytes` in MiB, one decimal.
pub(super) fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}
