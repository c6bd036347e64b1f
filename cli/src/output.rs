//! Writing to the terminal: colours only when stdout is one, and lines that stop quietly when the reader went
//! away (`livecheck tail | head`).

use std::io::{IsTerminal, Write};

/// How a state reads at a glance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Tone {
    /// Passing (green).
    Good,
    /// Failing (red).
    Bad,
    /// Neither yet, or not run (yellow).
    Neutral,
}

impl Tone {
    /// The tone of a state's wire name: PASS is good; FAIL, ERROR, TIMEOUT and STALL are bad; INIT, SKIP and
    /// anything unknown are neutral.
    pub(crate) fn of_state(state: &str) -> Tone {
        match state {
            "PASS" => Tone::Good,
            "DEGRADED" => Tone::Neutral,
            "FAIL" | "ERROR" | "TIMEOUT" | "STALL" => Tone::Bad,
            _ => Tone::Neutral,
        }
    }
}

/// Colours text with ANSI escapes when enabled.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Paint {
    enabled: bool,
}

impl Paint {
    /// Colours when stdout is a terminal and `NO_COLOR` is not set.
    pub(crate) fn for_stdout() -> Self {
        Paint { enabled: std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none() }
    }

    /// Never colours.
    #[cfg(test)]
    pub(crate) fn plain() -> Self {
        Paint { enabled: false }
    }

    /// `text` in the colour of `tone`.
    pub(crate) fn tone(self, text: &str, tone: Tone) -> String {
        if !self.enabled {
            return text.to_owned();
        }
        let code = match tone {
            Tone::Good => "32",
            Tone::Bad => "31",
            Tone::Neutral => "33",
        };
        format!("\x1b[{code}m{text}\x1b[0m")
    }

    /// `text` in bold.
    pub(crate) fn bold(self, text: &str) -> String {
        if self.enabled {
            format!("\x1b[1m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }
}

/// Writes `text` and a line feed to stdout, flushed (a pipe sees each line as it comes). An error means the
/// reader is gone.
pub(crate) fn line(text: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}")?;
    out.flush()
}

/// Writes `text` and a line feed to stderr, whatever happened to it (closed, full: nothing more to do).
pub(crate) fn warn(text: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{text}");
}

/// `text` padded with spaces to `width` characters (not bytes).
pub(crate) fn pad(text: &str, width: usize) -> String {
    let len = text.chars().count();
    format!("{text}{}", " ".repeat(width.saturating_sub(len)))
}
