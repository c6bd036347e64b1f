//! Which file the embedded log is, and whether it is still that file. A log deleted (or replaced) while processes
//! use it would otherwise go on silently: SQLite keeps writing to the unlinked file, and a process started later
//! creates a new, empty log that the others never see. So the writer checks the file before every transaction and
//! the group members on every heartbeat, and a log that was there once is not created again unless asked.

use std::{
    fs::File,
    path::{Path, PathBuf},
};

use crate::{Error, Result};

/// The identity (device and inode) of the log's file when it was opened.
#[derive(Clone, Debug)]
pub(super) struct FileIdentity {
    path: PathBuf,
    id: Option<(u64, u64)>,
}

impl FileIdentity {
    pub(super) fn of(path: &Path) -> Result<Self> {
        let metadata = std::fs::metadata(path)
            .map_err(|e| Error::transport(format!("the embedded log {}", path.display()), false, e))?;
        Ok(FileIdentity { path: path.to_owned(), id: id(&metadata) })
    }

    /// An error when the file is gone or is another file now.
    pub(super) fn check(&self) -> Result<()> {
        let problem = match std::fs::metadata(&self.path) {
            Err(_) => "was deleted",
            Ok(metadata) if id(&metadata) != self.id => "was replaced by another file",
            Ok(_) => return Ok(()),
        };
        Err(Error::transport(
            format!(
                "the embedded log {} {problem} while in use; stop every process that uses it (what they wrote \
                 since is lost with the old file), then start them again — a new log is created only with \
                 `?recreate=1` on the sqlite:// URL",
                self.path.display()
            ),
            false,
            std::io::Error::from(std::io::ErrorKind::NotFound),
        ))
    }
}

#[cfg(unix)]
fn id(metadata: &std::fs::Metadata) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    Some((metadata.dev(), metadata.ino()))
}

#[cfg(not(unix))]
fn id(_metadata: &std::fs::Metadata) -> Option<(u64, u64)> {
    None
}

/// The file next to the log that says a log was created here: `NAME.created`.
fn marker(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".created");
    path.with_file_name(name)
}

/// Creates the log's file (mode 0600, in a directory created 0700 when missing) on first use. A log whose file is
/// gone although one was created here before is an error, unless `recreate`.
pub(super) fn create_or_check(path: &Path, recreate: bool) -> Result<()> {
    let failed = |what: String, e: std::io::Error| Error::transport(what, false, e);
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if !dir.exists() {
            let mut builder = std::fs::DirBuilder::new();
            builder.recursive(true);
            #[cfg(unix)]
            std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
            builder.create(dir).map_err(|e| failed(format!("cannot create {}", dir.display()), e))?;
        }
    }
    if path.exists() {
        return Ok(());
    }
    let marker = marker(path);
    if marker.exists() && !recreate {
        return Err(Error::transport(
            format!(
                "the embedded log {} is gone (it was created here before: {} says so); add `?recreate=1` to the \
                 sqlite:// URL to start a new, empty log",
                path.display(),
                marker.display()
            ),
            false,
            std::io::Error::from(std::io::ErrorKind::NotFound),
        ));
    }
    let mut options = File::options();
    options.write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path).map_err(|e| failed(format!("cannot create {}", path.display()), e))?;
    std::fs::write(
        &marker,
        "A LiveCheck embedded log was created next to this file. While this file is here, a missing log is an \
         error rather than silently replaced by an empty one.\n",
    )
    .map_err(|e| failed(format!("cannot create {}", marker.display()), e))?;
    Ok(())
}
