//! What a process logged: its log file's JSON lines (`--log-format json`), read back to check that a fault was
//! reported loudly, or that a poison row was skipped.

use std::path::Path;

/// The JSON log lines of one process (other lines, like the harness's own, are left out).
pub(super) struct ProcessLog {
    lines: Vec<serde_json::Value>,
    /// The raw text, for lines that are not JSON (a process's last error, printed on exit).
    text: String,
}

impl ProcessLog {
    /// Reads the log file at `path` (empty when missing).
    pub(super) fn read(path: &Path) -> Self {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let lines = text.lines().filter_map(|line| serde_json::from_str(line).ok()).collect();
        ProcessLog { lines, text }
    }

    /// Lines at `level` (`ERROR`, `WARN` …) whose text contains `needle`.
    pub(super) fn at_level_containing(&self, level: &str, needle: &str) -> Vec<&serde_json::Value> {
        self.lines.iter().filter(|line| line["level"] == level && line.to_string().contains(needle)).collect()
    }

    /// The fields of every line whose message is `message`.
    pub(super) fn fields_of(&self, message: &str) -> Vec<&serde_json::Value> {
        self.lines.iter().filter(|line| line["fields"]["message"] == message).map(|line| &line["fields"]).collect()
    }

    /// The text logged since the process was last started (after the harness's last `--- orders chaos:
    /// starting` line).
    pub(super) fn since_last_start(&self) -> &str {
        match self.text.rfind("--- orders chaos: starting") {
            Some(at) => self.text[at..].split_once('\n').map_or("", |(_, rest)| rest),
            None => &self.text,
        }
    }
}
