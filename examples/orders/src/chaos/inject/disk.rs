//! A small disk of its own for the log: a tmpfs mounted on a directory (root only), unmounted when dropped, and a
//! filler file that takes all its free space.

use std::{
    io::Write,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::Context;

/// A tmpfs mounted on a directory; unmounted when dropped (lazily if still busy).
pub(super) struct Tmpfs {
    dir: PathBuf,
    mounted: bool,
}

impl Tmpfs {
    /// Mounts a tmpfs of `bytes` on `dir` (created if missing). An error says why it could not (not root, no
    /// `mount`, …).
    pub(super) fn mount(dir: &Path, bytes: u64) -> Result<Tmpfs, String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let options = format!("size={bytes},mode=0700");
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &options, "livecheck-inject"])
            .arg(dir)
            .output()
            .map_err(|e| format!("cannot run `mount`: {e}"))?;
        if !output.status.success() {
            return Err(format!(
                "`mount -t tmpfs -o {options} livecheck-inject {}` failed ({}): {} (mounting needs root, or \
                 CAP_SYS_ADMIN)",
                dir.display(),
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
        Ok(Tmpfs { dir: dir.to_owned(), mounted: true })
    }

    /// Writes a filler file until the disk is full (the write fails with "no space left"); its size.
    pub(super) async fn fill(&self) -> anyhow::Result<Filler> {
        let path = self.dir.join("filler");
        tokio::task::spawn_blocking(move || fill(path)).await.context("the filler's task")?
    }

    /// Unmounts it; an error says why not.
    pub(super) fn unmount(&mut self) -> anyhow::Result<()> {
        if !self.mounted {
            return Ok(());
        }
        let status = Command::new("umount").arg(&self.dir).status().context("running umount")?;
        if !status.success() {
            // Still busy (a process that did not exit yet): detach it now, it goes when the last file closes.
            let lazy = Command::new("umount").arg("-l").arg(&self.dir).status().context("running umount -l")?;
            anyhow::ensure!(lazy.success(), "umount {} failed: {status}, then umount -l: {lazy}", self.dir.display());
        }
        self.mounted = false;
        Ok(())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        if let Err(error) = self.unmount() {
            eprintln!("orders inject: {error:#}");
        }
    }
}

/// The file that fills the disk.
pub(super) struct Filler {
    path: PathBuf,
    /// How many bytes it took.
    pub(super) bytes: u64,
}

impl Filler {
    /// Deletes it: the disk has room again.
    pub(super) fn remove(self) -> anyhow::Result<()> {
        std::fs::remove_file(&self.path).with_context(|| format!("removing {}", self.path.display()))
    }
}

/// Writes the file at `path` until the disk is full.
fn fill(path: PathBuf) -> anyhow::Result<Filler> {
    let mut file = std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
    let mut written = 0u64;
    let mut chunk = vec![0xa5u8; 1 << 20];
    while !chunk.is_empty() {
        match file.write(&chunk) {
            Ok(0) => break,
            Ok(n) => written += n as u64,
            // Full: try smaller writes, down to one byte, so that not a page is left.
            Err(error) if error.kind() == std::io::ErrorKind::StorageFull => chunk.truncate(chunk.len() / 2),
            Err(error) => return Err(error).with_context(|| format!("writing {}", path.display())),
        }
    }
    // Data not flushed yet would still be written later, on a full disk: sync it now.
    let _ = file.sync_all();
    Ok(Filler { path, bytes: written })
}
