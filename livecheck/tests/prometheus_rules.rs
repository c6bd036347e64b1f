//! The Prometheus rules shipped in `deploy/prometheus/` are valid and do what their unit tests say:
//! `promtool check rules` and `promtool test rules` (Debian `prometheus`; scripts/test installs it).

use std::process::Command;

fn promtool(args: &[&str]) -> std::process::Output {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/prometheus");
    Command::new("promtool").args(args).current_dir(dir).output().unwrap_or_else(|error| {
        panic!("promtool cannot run ({error}): `sudo apt-get install -y prometheus` (scripts/test does it)")
    })
}

#[test]
fn the_rules_are_valid_and_pass_their_unit_tests() {
    let check = promtool(&["check", "rules", "livecheck.rules.yml"]);
    let said = format!("{}{}", String::from_utf8_lossy(&check.stdout), String::from_utf8_lossy(&check.stderr));
    assert!(check.status.success(), "{said}");
    let test = promtool(&["test", "rules", "livecheck.rules.test.yml"]);
    let said = format!("{}{}", String::from_utf8_lossy(&test.stdout), String::from_utf8_lossy(&test.stderr));
    assert!(test.status.success() && said.contains("SUCCESS"), "{said}");
}
