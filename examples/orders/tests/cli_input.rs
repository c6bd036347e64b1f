//! Options a user gets wrong are rejected at start with a message naming the option and what it takes.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_orders");

fn rejected(args: &[&str], expected: &str) {
    let output = Command::new(BIN).args(args).env_remove("LIVECHECK_BROKER").output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "`orders {}` is rejected: {stderr}", args.join(" "));
    assert!(stderr.contains(expected), "`orders {}` says `{expected}`: {stderr}", args.join(" "));
}

#[test]
fn an_unknown_log_level_a_probability_outside_0_to_1_and_an_unknown_signal_are_rejected() {
    rejected(&["-l", "loud", "worker"], "`loud` is not a log level");
    rejected(&["-l", "warn,livecheck=lots", "livecheck"], "`livecheck=lots` is not a log level");
    rejected(&["worker", "--probability", "1.5"], "not a probability from 0 to 1");
    rejected(&["worker", "--probability=-0.1"], "not a probability from 0 to 1");
    rejected(&["worker", "--skip-signal", "order_sent_to_mars"], "possible values: order_sent_to_db");
    rejected(&["livecheck", "--stage-timeout", "inf"], "not a number of seconds above 0");
    rejected(&["livecheck", "--stage-timeout", "0"], "not a number of seconds above 0");
}

/// Runs `orders args` to its end; its exit code and stderr.
fn failed(args: &[&str], envs: &[(&str, &str)]) -> (Option<i32>, String) {
    let output =
        Command::new(BIN).args(args).envs(envs.iter().copied()).env_remove("LIVECHECK_BROKER").output().unwrap();
    (output.status.code(), String::from_utf8_lossy(&output.stderr).into_owned())
}

fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[test]
fn each_subcommand_lists_only_the_options_it_uses() {
    // `-h`: the short help, one line per option.
    let help = |command: &str| {
        String::from_utf8_lossy(&Command::new(BIN).args([command, "-h"]).output().unwrap().stdout).into_owned()
    };
    let post_order = help("post-order");
    assert!(post_order.contains("--side") && post_order.contains("--base-url"), "{post_order}");
    assert!(!post_order.contains("--broker") && !post_order.contains("--cache"), "{post_order}");
    let worker = help("worker");
    assert!(worker.contains("--broker") && worker.contains("--cache") && worker.contains("--port"), "{worker}");
    // Every option has its line of help, on its line or (when the lines are long) the next.
    for text in [&worker, &post_order] {
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate().filter(|(_, line)| line.trim_start().starts_with('-')) {
            let next_is_help = lines.get(i + 1).is_some_and(|next| {
                let next = next.trim_start();
                !next.is_empty() && !next.starts_with('-')
            });
            assert!(line.split_whitespace().count() > 2 || next_is_help, "an option without help: `{line}`");
        }
    }
}

#[test]
fn a_sqlite_path_in_a_missing_directory_is_rejected_not_created() {
    let dir = std::env::temp_dir().join(format!("orders-missing-{}-{}", std::process::id(), closed_port()));
    let broker = format!("sqlite://{}/lc.sqlite3", dir.display());
    let (code, stderr) = failed(&["worker", "--port", &closed_port().to_string(), "--broker", &broker], &[]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("does not exist"), "{stderr}");
    assert!(!dir.exists(), "the directory was created");
}

#[test]
fn an_error_is_one_line_with_its_cause_and_no_backtrace_whatever_rust_backtrace_says() {
    let base_url = format!("http://127.0.0.1:{}", closed_port());
    let (code, stderr) = failed(&["post-order", "--side", "sell", "--base-url", &base_url], &[("RUST_BACKTRACE", "1")]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(stderr.to_lowercase().contains("connection refused"), "the cause is kept: {stderr}");
    assert!(!stderr.contains("backtrace") && stderr.trim_end().lines().count() == 1, "{stderr}");
}

#[test]
fn a_redis_that_is_not_there_is_named_with_its_url() {
    let dir = std::env::temp_dir().join(format!("orders-redis-{}-{}", std::process::id(), closed_port()));
    std::fs::create_dir_all(&dir).unwrap();
    let broker = format!("sqlite://{}/lc.sqlite3", dir.display());
    let redis = format!("redis://127.0.0.1:{}", closed_port());
    let port = closed_port().to_string();
    let (code, stderr) = failed(&["worker", "--port", &port, "--broker", &broker, "--cache", &redis], &[]);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains(&format!("Redis at {redis}")), "{stderr}");
}

#[test]
fn a_port_in_use_names_the_server_and_the_port() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let dir = std::env::temp_dir().join(format!("orders-port-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let broker = format!("sqlite://{}/lc.sqlite3", dir.display());
    let (code, stderr) = failed(&["worker", "--port", &port, "--broker", &broker], &[]);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains(&format!("the worker's web server: 127.0.0.1:{port} is in use")), "{stderr}");
    let dir = std::env::temp_dir().join(format!("orders-port-lc-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let broker = format!("sqlite://{}/lc.sqlite3", dir.display());
    let (code, stderr) = failed(&["livecheck", "--port", &port, "--broker", &broker], &[]);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(code, Some(1), "{stderr}");
    let error = stderr.lines().find(|line| line.starts_with("error:")).unwrap_or_default();
    assert_eq!(
        error,
        format!("error: LiveCheck web server: cannot listen on 127.0.0.1:{port}: Address already in use (os error 98)")
    );
    assert_eq!(error.matches("in use").count(), 1, "said once: {error}");
}

#[test]
fn the_web_servers_tls_files_are_checked_at_start_and_come_as_a_pair() {
    rejected(&["livecheck", "--web-tls-cert", "cert.pem"], "--web-tls-key");
    let missing = std::env::temp_dir().join(format!("livecheck-no-such-cert-{}.pem", std::process::id()));
    let missing = missing.to_str().unwrap();
    // From the environment as from the options; the instance does not start, naming the file.
    let envs = [("LIVECHECK_WEB_TLS_CERT", missing), ("LIVECHECK_WEB_TLS_KEY", missing)];
    let (code, stderr) = failed(&["livecheck", "--broker", "memory://", "--port", "0"], &envs);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains(&format!("its TLS certificate `{missing}` cannot be read")), "{stderr}");
}
