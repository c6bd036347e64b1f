//! The tutorial under the faults and hostile input of issue 10, the long run: `orders inject` with every scenario
//! (a full disk, a deleted log, SIGTERM, forged headers, poison rows, 1 MB fields), each on a fresh embedded log
//! with real processes. Prints each scenario as it goes and a table: messages lost, reports lost, orders answered
//! 200 but never executed, and the LiveCheck instance's peak RSS under the 1 MB-field attack. Runs under
//! `cargo bench` only.
//!
//! The full-disk scenario mounts a tmpfs, which needs root: without it, it is reported NOT RUN with the reason.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_orders");

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--list") {
        return;
    }
    if !args.iter().any(|a| a == "--bench") {
        println!("fault_injection: skipped (a long run; `cargo bench -p orders --bench fault_injection` runs it)");
        return;
    }
    let status = Command::new(BIN)
        .args(["-l", "error", "inject"])
        .env_remove("LIVECHECK_BROKER")
        .env_remove("LIVECHECK_SIGNING_SECRET")
        .env_remove("LIVECHECK_SIGNING_SECRET_PREVIOUS")
        .env("NO_COLOR", "1")
        .status();
    // A bench reports; tests/fault_injection.rs is the one that fails on a loss.
    match status {
        Ok(status) if status.success() => println!("fault_injection: every scenario passed"),
        Ok(status) if status.code() == Some(3) => {
            println!("fault_injection: a scenario was NOT RUN (see above); the others passed")
        }
        Ok(status) => println!("fault_injection: problems found ({status}); see the table above"),
        Err(error) => println!("fault_injection: could not run {BIN}: {error}"),
    }
}
