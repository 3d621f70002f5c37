//! Replacing a small file so that a crash or a power cut leaves the old version or the new
//! one, never a mix: write `<path>.tmp`, fsync it, rename it over `path`, fsync the
//! directory (the rename is durable only then). Blocking: call it off the ring threads.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// A step of [`replace`] failed.
#[derive(Debug, thiserror::Error)]
#[error("{}: {source}", path.display())]
pub struct FileError {
    /// The file or directory the failed step worked on.
    pub path: PathBuf,
    /// The OS error.
    #[source]
    pub source: io::Error,
}

/// Durably replaces `path` with `bytes` (module documentation).
pub fn replace(path: &Path, bytes: &[u8]) -> Result<(), FileError> {
    let failed = |path: &Path| {
        let path = path.to_path_buf();
        move |source| FileError { path, source }
    };
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    ringmq_engine::dirs::create_dir_all_durable_blocking(dir).map_err(failed(dir))?;
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(".tmp");
    let tmp = PathBuf::from(tmp_name);
    let mut file = std::fs::File::create(&tmp).map_err(failed(&tmp))?;
    file.write_all(bytes).map_err(failed(&tmp))?;
    file.sync_all().map_err(failed(&tmp))?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(failed(path))?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(failed(dir))
}
