//! A filesystem that can lose power: a FUSE filesystem over a backing directory that keeps
//! everything not yet synced in a pending state and, on [`PowerCutFs::cut`], throws it away,
//! so that what is left is what a disk could hold after a power loss. A process kill keeps
//! the page cache, so crash tests that only kill cannot catch a missing or misplaced
//! fdatasync; with this filesystem under the store they can.
//!
//! **Use.** [`PowerCutFs::mount`] loads the backing directory (all of it taken as durable)
//! and mounts the filesystem on a fresh temp dir, [`PowerCutFs::path`]; the program under
//! test works under that path. Kill the program, then [`PowerCutFs::cut`] with a
//! [`CutMode`]: the mount keeps serving, now the durable state, and the backing directory
//! is rewritten to hold exactly that. [`PowerCutFs::unmount`] is a clean shutdown (everything
//! becomes durable, as `umount` would sync it) and leaves the tree in the backing directory.
//!
//! **What is durable when** is the model's ([`model`]): a file's writes, truncations and
//! fallocates become durable on an fsync/fdatasync of that file, directory entries on an
//! fsync of their directory, nothing else ever (strict POSIX; no "fsync of a new file also
//! persists its name"). A cut may keep nothing, a random prefix of each inode's pending
//! changes, or a prefix ending in a write torn at a 512-byte sector boundary.
//!
//! **Kernel caches.** Every file is opened `FOPEN_DIRECT_IO`, attributes and entries have a
//! zero TTL and the writeback cache is off, so each read, write and sync reaches the model.
//! mmap of a file is therefore limited to what the kernel allows for direct-I/O files.
//! Handles open at the cut die (`EIO`): a process should be killed before the cut, as the
//! power takes the process too.
//!
//! **Where FUSE is missing.** Mounting uses the `fuser` crate's own mount code, which calls
//! mount(2) on `/dev/fuse` directly when run as root (no fusermount, no libfuse). Where that
//! is not possible, [`PowerCutFs::mount`] says why, and [`PowerCutFs::mount_or_skip`] prints
//! a `SKIPPED` line through [`crate::report`] and the test returns early.
//!
//! Memory: the whole tree lives in memory (pages that were never written take none), twice
//! where live and durable differ; meant for stores of a few tens of MiB.

pub mod model;

mod fuse;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

pub use model::{CutMode, CutReport, SplitMix64, SyncCounts};

use fuse::PowerCutFuse;
use model::Model;

/// A mounted power-cut filesystem. Unmounted (cleanly) when dropped.
#[derive(Debug)]
pub struct PowerCutFs {
    backing: PathBuf,
    model: Arc<Mutex<Model>>,
    session: Option<fuser::BackgroundSession>,
    // Declared last: the mount point is removed after the unmount.
    mount_point: tempfile::TempDir,
}

impl PowerCutFs {
    /// Mounts a power-cut filesystem holding the tree under `backing`; `Err(reason)` where
    /// FUSE cannot be mounted here.
    pub fn mount(backing: &Path) -> Result<PowerCutFs, String> {
        if !Path::new("/dev/fuse").exists() {
            return Err("/dev/fuse does not exist (no FUSE module?)".to_owned());
        }
        let model =
            Model::load(backing).map_err(|e| format!("loading {}: {e}", backing.display()))?;
        let model = Arc::new(Mutex::new(model));
        let mount_point = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
        let mut config = fuser::Config::default();
        config.mount_options = vec![
            fuser::MountOption::FSName("ringmq-powercut".to_owned()),
            fuser::MountOption::NoAtime,
        ];
        let session = fuser::Session::new(
            PowerCutFuse::new(Arc::clone(&model)),
            mount_point.path(),
            &config,
        )
        .and_then(fuser::Session::spawn)
        .map_err(|e| format!("mounting FUSE on {}: {e}", mount_point.path().display()))?;
        Ok(PowerCutFs {
            backing: backing.to_path_buf(),
            model,
            session: Some(session),
            mount_point,
        })
    }

    /// Mounts one, or reports `SKIPPED <test>: ...` and returns `None`: the caller returns
    /// early.
    pub fn mount_or_skip(test: &str, backing: &Path) -> Option<PowerCutFs> {
        match PowerCutFs::mount(backing) {
            Ok(fs) => Some(fs),
            Err(reason) => {
                crate::report(&format!(
                    "SKIPPED {test}: FUSE cannot be mounted here ({reason})"
                ));
                None
            }
        }
    }

    /// The mount point: work under this path.
    pub fn path(&self) -> &Path {
        self.mount_point.path()
    }

    /// The backing directory (holds the durable tree after a cut or an unmount).
    pub fn backing_dir(&self) -> &Path {
        &self.backing
    }

    fn model(&self) -> MutexGuard<'_, Model> {
        self.model.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Cuts the power: drops what `mode` says of everything not synced, serves the durable
    /// state from now on and rewrites the backing directory to it. Kill the program using the
    /// filesystem first: its open files die (`EIO`).
    pub fn cut(&self, mode: CutMode) -> io::Result<CutReport> {
        let mut model = self.model();
        let known = model.inode_numbers();
        let report = model.cut(mode);
        model.write_tree(&self.backing)?;
        drop(model);
        // The kernel may cache pages or sizes of inodes whose content just changed under it;
        // an inode it does not know answers ENOENT, which changes nothing.
        if let Some(session) = &self.session {
            let notifier = session.notifier();
            for ino in known {
                let _ = notifier.inval_inode(fuser::INodeNo(ino), 0, -1);
            }
        }
        Ok(report)
    }

    /// Makes everything durable, as `sync(2)` or a disk given time to write back would.
    pub fn sync_all(&self) {
        self.model().sync_all();
    }

    /// What a [`CutMode::DropAllPending`] cut would drop now.
    pub fn pending(&self) -> CutReport {
        self.model().pending()
    }

    /// File and directory syncs served since the mount.
    pub fn sync_counts(&self) -> SyncCounts {
        self.model().sync_counts()
    }

    /// Clean shutdown: everything becomes durable, is written to the backing directory, and
    /// the filesystem is unmounted. Fails if a process still has files open in it.
    pub fn unmount(mut self) -> io::Result<()> {
        self.unmount_cleanly()
    }

    fn unmount_cleanly(&mut self) -> io::Result<()> {
        let Some(session) = self.session.take() else {
            return Ok(());
        };
        {
            let mut model = self.model();
            model.sync_all();
            model.write_tree(&self.backing)?;
        }
        session.umount_and_join()
    }
}

impl Drop for PowerCutFs {
    fn drop(&mut self) {
        if self.unmount_cleanly().is_err() {
            // Busy (a process still has files open): detach it, so the test's temp dirs can
            // go; the kernel ends the session when the last file closes.
            if let Ok(path) = std::ffi::CString::new(self.path().as_os_str().as_encoded_bytes()) {
                // SAFETY: umount2 reads the NUL-terminated path, alive for the call.
                unsafe { libc::umount2(path.as_ptr(), libc::MNT_DETACH) };
            }
        }
    }
}
