//! Where log lines go: stderr, coloured only on a terminal; a reader that went away (`orders demo 2>&1 | head -1`)
//! stops the process quietly instead of a panic on the next line.

use std::io::{self, IsTerminal, Write};

use tokio::sync::watch;

/// How log lines are written.
#[derive(Clone, Copy, clap::ValueEnum)]
pub(crate) enum LogFormat {
    Text,
    Json,
}

/// Told when stderr is closed: the process then stops as on Ctrl-C.
#[derive(Clone)]
pub(crate) struct ReaderGone(watch::Receiver<bool>);

impl ReaderGone {
    /// Resolves once a write to stderr found it closed.
    pub(crate) async fn wait(mut self) {
        if self.0.wait_for(|gone| *gone).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// Installs the subscriber writing to stderr at `filter` in `format`.
pub(crate) fn init(filter: &str, format: LogFormat) -> ReaderGone {
    let (gone, on_gone) = watch::channel(false);
    let writer = Stderr { gone };
    // A write error is not printed to the stderr that failed (tracing-subscriber's `eprintln!` would panic).
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(move || writer.clone())
        .log_internal_errors(false);
    match format {
        // Colours only when a terminal reads them: escape codes in a file or a pipe are noise.
        LogFormat::Text => logs.with_target(false).with_ansi(io::stderr().is_terminal()).init(),
        LogFormat::Json => logs.json().with_ansi(false).init(),
    }
    ReaderGone(on_gone)
}

/// Stderr, telling [`ReaderGone`] when it is closed; once it is, lines are dropped.
#[derive(Clone)]
struct Stderr {
    gone: watch::Sender<bool>,
}

impl Write for Stderr {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if *self.gone.borrow() {
            return Ok(buf.len());
        }
        match io::stderr().write(buf) {
            Err(error) if error.kind() == io::ErrorKind::BrokenPipe => {
                self.gone.send_replace(true);
                Ok(buf.len())
            }
            other => other,
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match io::stderr().flush() {
            Err(error) if error.kind() == io::ErrorKind::BrokenPipe => Ok(()),
            other => other,
        }
    }
}

/// Writes `text` and a line feed to stdout; a closed stdout is not an error (the reader has what it wanted).
pub(crate) fn print(text: &str) {
    let _ = writeln!(io::stdout().lock(), "{text}");
}

/// Writes `text` and a line feed to stderr, whether or not anyone reads it.
pub(crate) fn eprint(text: &str) {
    let _ = writeln!(io::stderr().lock(), "{text}");
}
