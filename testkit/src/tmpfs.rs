//! A small tmpfs mounted for one test: a filesystem the test can fill, so that "disk full"
//! is the kernel's ENOSPC and not a simulation.
//!
//! Mounting needs root (or CAP_SYS_ADMIN); where it is not allowed, [`Tmpfs::mount`] says why
//! and the test skips with that reason printed (CI's log then shows the test did not run).
//! The mount is lazily unmounted when the value drops, even if the test panicked.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A tmpfs of a fixed size mounted on a fresh temp dir.
#[derive(Debug)]
pub struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size_bytes` on a fresh temp dir; `Err(reason)` where mounting is
    /// not possible here.
    pub fn mount(size_bytes: u64) -> Result<Tmpfs, String> {
        let dir = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size_bytes}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .map_err(|e| format!("running mount: {e}"))?;
        if !output.status.success() {
            return Err(format!(
                "mount -t tmpfs failed ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
        Ok(Tmpfs { dir })
    }

    /// Mounts one, or prints why not and returns `None`: the caller returns early (skips).
    pub fn mount_or_skip(test: &str, size_bytes: u64) -> Option<Tmpfs> {
        match Tmpfs::mount(size_bytes) {
            Ok(fs) => Some(fs),
            Err(reason) => {
                crate::report(&format!("SKIPPED {test}: no tmpfs to fill ({reason})"));
                None
            }
        }
    }

    /// The mount point.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Fills the filesystem with a file the test owns (`<mount>/filler`) until fewer than
    /// `leave_bytes` are free; returns the file's path. Remove it to free the space.
    pub fn fill_leaving(&self, leave_bytes: u64) -> std::io::Result<PathBuf> {
        use std::io::Write;
        let path = self.path().join("filler");
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)?;
        let chunk = vec![0xA5_u8; 4096];
        // Bounded: a tmpfs of at most a few GiB in 4 KiB steps.
        for _ in 0..(1 << 20) {
            if self.available_bytes()? < leave_bytes + chunk.len() as u64 {
                break;
            }
            match file.write_all(&chunk) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
                Err(e) => return Err(e),
            }
        }
        file.sync_all()?;
        Ok(path)
    }

    /// Bytes an unprivileged writer may still use.
    pub fn available_bytes(&self) -> std::io::Result<u64> {
        let c_path = std::ffi::CString::new(self.path().as_os_str().as_encoded_bytes())
            .map_err(std::io::Error::other)?;
        // SAFETY: statvfs is plain old data; all-zero is a valid value of it.
        let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
        // SAFETY: `c_path` is NUL-terminated and alive for the call; `stat` is exclusively
        // borrowed for the kernel to fill.
        let rc = unsafe { libc::statvfs(c_path.as_ptr(), &mut stat) };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
        #[allow(clippy::useless_conversion)]
        Ok(u64::from(stat.f_bavail) * u64::from(stat.f_frsize))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazy: a broker process still holding files does not keep the mount busy.
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}
