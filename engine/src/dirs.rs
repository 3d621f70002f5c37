//! Directories whose creation survives a power cut. A new directory's entry lives in its
//! parent, so `mkdir -p` is durable only once the parent of every directory it created is
//! fsynced (a file's fdatasync never covers the names leading to it). Without this a fresh
//! store could acknowledge synced messages whose `commitlog/<shard>` directory a power cut
//! then takes away.

use std::io;
use std::path::{Path, PathBuf};

/// `dir` and its ancestors that do not exist yet, deepest first.
pub fn missing_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut missing = Vec::new();
    let mut current = Some(dir);
    while let Some(path) = current {
        if path.as_os_str().is_empty() || path.exists() {
            break;
        }
        missing.push(path.to_path_buf());
        current = path.parent();
    }
    missing
}

/// Creates `dir` and its missing ancestors and makes their entries durable (fsyncs the
/// parent of each one created), through the shard's ring.
pub async fn create_dir_all_durable(dir: &Path) -> io::Result<()> {
    let created = missing_dirs(dir);
    compio::fs::create_dir_all(dir).await?;
    for path in created.iter().rev() {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            crate::commitlog::sync_dir(parent).await?;
        }
    }
    Ok(())
}

/// [`create_dir_all_durable`] for threads without a ring (start-up, the topic writer).
pub fn create_dir_all_durable_blocking(dir: &Path) -> io::Result<()> {
    let created = missing_dirs(dir);
    std::fs::create_dir_all(dir)?;
    for path in created.iter().rev() {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::File::open(parent)?.sync_all()?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_dirs_lists_what_mkdir_p_creates_deepest_first() {
        let tmp = tempfile::tempdir().unwrap();
        let deep = tmp.path().join("a/b/c");
        assert_eq!(
            missing_dirs(&deep),
            vec![deep.clone(), tmp.path().join("a/b"), tmp.path().join("a")]
        );
        create_dir_all_durable_blocking(&deep).unwrap();
        assert!(deep.is_dir());
        assert!(missing_dirs(&deep).is_empty());
    }
}
