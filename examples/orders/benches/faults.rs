//! The tutorial under faults, the long run: `orders chaos` with 1000 orders at 20/s while LiveCheck instances are
//! SIGKILLed ten times, one is restarted gracefully and one joins and leaves mid-run. Prints the faults as they
//! happen, and the summary (lost, duplicated and wrong executions). Runs under `cargo bench` only.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_orders");

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--list") {
        return;
    }
    if !args.iter().any(|a| a == "--bench") {
        println!("faults: skipped (a long run; `cargo bench -p orders --bench faults` runs it)");
        return;
    }
    let status = Command::new(BIN)
        .args(["chaos", "--executions", "1000", "--rate", "20", "--kills", "10", "--instances", "2"])
        .env_remove("LIVECHECK_BROKER")
        .env("NO_COLOR", "1")
        .status();
    // A bench reports; the test in tests/faults.rs is the one that fails on a lost or repeated report.
    match status {
        Ok(status) if status.success() => println!("faults: no execution lost, duplicated or wrong"),
        Ok(status) => println!("faults: problems found ({status}); see the summary above"),
        Err(error) => println!("faults: could not run {BIN}: {error}"),
    }
}
