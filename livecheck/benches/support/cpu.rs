//! CPU time, for benches that tell the cost per operation besides the rate.

use std::time::Duration;

/// CPU time (user + system) this process used so far, from `/proc/self/stat` (Linux; `None` elsewhere).
pub(crate) fn cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_secs_f64(ticks as f64 / 100.0)) // USER_HZ is 100 on Linux
}
