//! Disk guard: refuse appends when the store's filesystem is nearly full (design.md §11),
//! resume by itself when space returns.
//!
//! **Owns** a cached `statvfs(2)` of the store directory and the verdict derived from it.
//! Two limits, either one refuses with [`DiskGuardError::DiskFull`]:
//! - the filesystem's used ratio, as `df` counts it (`used / (used + available to
//!   unprivileged users)`), above `max_used_ratio` (default 0.90);
//! - optionally a quota on the bytes the store itself holds, counted by the store
//!   ([`DiskGuard::set_store_bytes`]), above `quota_bytes`.
//!
//! **Accuracy and cost.** A statvfs answer is reused, but never blindly: the store reports
//! every byte it appends or allocates ([`DiskGuard::note_written`]), and the verdict uses
//! `used at the last statvfs + bytes written since`. A fresh statvfs is taken when the
//! answer is older than `check_interval` (1 s), when the bytes written since pass
//! `margin_bytes` (16 MiB), or before refusing on an estimate (a refusal is always on a
//! measured figure). So this store alone can
//! never carry the filesystem past the limit by more than `margin_bytes`, other writers
//! (other shards, other processes) by what they write in one interval. Between statvfs
//! calls a check is a clock read and a few comparisons, so the write path may call
//! [`DiskGuard::check`] before every append. The verdict is recomputed from the figures
//! each time, so a config change or a freed quota applies at once and a freed filesystem
//! within one interval: appends resume without anyone resetting anything.
//!
//! Nothing is persisted; a crash leaves nothing behind.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Refuse appends above this used ratio unless configured (design.md §11).
pub const DEFAULT_MAX_USED_RATIO: f64 = 0.90;

/// How long a statvfs answer is reused unless configured.
pub const DEFAULT_CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// Bytes written since the last statvfs after which a fresh one is taken, unless configured.
pub const DEFAULT_MARGIN_BYTES: u64 = 16 << 20;

/// Which limit refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FullCause {
    /// The filesystem's used ratio is above `max_used_ratio`.
    UsedRatio,
    /// The store's own bytes are above `quota_bytes`.
    StoreQuota,
}

/// Why an append is refused, or why the guard could not tell.
#[derive(Debug, thiserror::Error)]
pub enum DiskGuardError {
    /// Over a limit. For [`FullCause::UsedRatio`]: `used_bytes` of the filesystem's
    /// `total_bytes` (used + available), limit `limit_bytes = total × ratio`. For
    /// [`FullCause::StoreQuota`]: the store's `used_bytes` against `limit_bytes` = the quota,
    /// `total_bytes` the filesystem's size.
    #[error(
        "disk full ({cause:?}): {used_bytes} bytes used of {total_bytes}, limit {limit_bytes}"
    )]
    DiskFull {
        /// Bytes in use (see the variant's doc for which).
        used_bytes: u64,
        /// Size of the filesystem as `df` counts it.
        total_bytes: u64,
        /// The limit crossed.
        limit_bytes: u64,
        /// Which limit.
        cause: FullCause,
    },
    /// `statvfs` failed.
    #[error("statvfs {path}: {source}")]
    Statvfs {
        /// The store directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

/// Limits and cache interval of a [`DiskGuard`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DiskGuardConfig {
    /// Refuse when the filesystem's used ratio is above this (0.0 ..= 1.0).
    pub max_used_ratio: f64,
    /// Refuse when the store's own bytes are above this, if set.
    pub quota_bytes: Option<u64>,
    /// Reuse a statvfs answer this long.
    pub check_interval: Duration,
    /// Take a fresh statvfs once the store wrote this many bytes since the last one.
    pub margin_bytes: u64,
}

impl Default for DiskGuardConfig {
    fn default() -> Self {
        Self {
            max_used_ratio: DEFAULT_MAX_USED_RATIO,
            quota_bytes: None,
            check_interval: DEFAULT_CHECK_INTERVAL,
            margin_bytes: DEFAULT_MARGIN_BYTES,
        }
    }
}

/// Space of a filesystem, from statvfs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FsUsage {
    /// Bytes in use (`(f_blocks - f_bfree) × f_frsize`).
    pub used_bytes: u64,
    /// Bytes an unprivileged writer may still use (`f_bavail × f_frsize`).
    pub available_bytes: u64,
}

impl FsUsage {
    /// Size as `df` counts it: used + available (the root reserve left out).
    pub fn total_bytes(&self) -> u64 {
        self.used_bytes.saturating_add(self.available_bytes)
    }

    /// Used ratio as `df` reports it (`used / (used + available)`); `None` for a size of 0.
    pub fn used_ratio(&self) -> Option<f64> {
        used_ratio(self.used_bytes, self.total_bytes())
    }

    /// `statvfs(2)` of the filesystem holding `path`.
    pub fn of(path: &Path) -> io::Result<Self> {
        let c_path = CString::new(path.as_os_str().as_bytes())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        // SAFETY: `statvfs` is plain old data; all-zero is a valid value of it.
        let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
        // SAFETY: `c_path` is a NUL-terminated string alive for the call; `stat` is a
        // valid, exclusively borrowed statvfs the kernel fills.
        let rc = unsafe { libc::statvfs(c_path.as_ptr(), &mut stat) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        // Field widths differ between targets; u64 holds them all.
        #[allow(clippy::useless_conversion)]
        let (blocks, free, avail, frsize) = (
            u64::from(stat.f_blocks),
            u64::from(stat.f_bfree),
            u64::from(stat.f_bavail),
            u64::from(stat.f_frsize),
        );
        Ok(Self {
            used_bytes: blocks.saturating_sub(free).saturating_mul(frsize),
            available_bytes: avail.saturating_mul(frsize),
        })
    }
}

/// `used_bytes / total_bytes`; `None` for a total of 0.
pub fn used_ratio(used_bytes: u64, total_bytes: u64) -> Option<f64> {
    // Float division: a ratio, exact enough for comparing with a limit.
    #[allow(clippy::cast_precision_loss)]
    (total_bytes > 0).then(|| used_bytes as f64 / total_bytes as f64)
}

/// The pure verdict: `Ok` when an append may go ahead.
pub fn verdict(
    usage: FsUsage,
    store_bytes: u64,
    config: &DiskGuardConfig,
) -> Result<(), DiskGuardError> {
    let total_bytes = usage.total_bytes();
    let ratio = config.max_used_ratio.clamp(0.0, 1.0);
    // Float to integer: exact enough for a limit, and saturating by Rust's cast rules.
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let limit_bytes = (total_bytes as f64 * ratio) as u64;
    if usage.used_bytes > limit_bytes {
        return Err(DiskGuardError::DiskFull {
            used_bytes: usage.used_bytes,
            total_bytes,
            limit_bytes,
            cause: FullCause::UsedRatio,
        });
    }
    match config.quota_bytes {
        Some(quota_bytes) if store_bytes > quota_bytes => Err(DiskGuardError::DiskFull {
            used_bytes: store_bytes,
            total_bytes,
            limit_bytes: quota_bytes,
            cause: FullCause::StoreQuota,
        }),
        _ => Ok(()),
    }
}

/// The guard of one store directory: see the module documentation.
#[derive(Debug)]
pub struct DiskGuard {
    path: PathBuf,
    config: DiskGuardConfig,
    cached: Option<(Instant, FsUsage)>,
    /// Bytes the store wrote or allocated since the cached statvfs.
    written_since_bytes: u64,
    store_bytes: u64,
    statvfs_calls: u64,
}

impl DiskGuard {
    /// A guard for the filesystem holding `store_dir`. Nothing is checked until the first
    /// [`DiskGuard::check`].
    pub fn new(store_dir: impl Into<PathBuf>, config: DiskGuardConfig) -> Self {
        Self {
            path: store_dir.into(),
            config,
            cached: None,
            written_since_bytes: 0,
            store_bytes: 0,
            statvfs_calls: 0,
        }
    }

    /// `Ok` when an append may go ahead, else [`DiskGuardError::DiskFull`]. Runs statvfs
    /// only when the cached answer is older than `check_interval`.
    pub fn check(&mut self) -> Result<(), DiskGuardError> {
        self.check_at(Instant::now())
    }

    /// [`DiskGuard::check`] at a given time (the loop's clock, or tests).
    pub fn check_at(&mut self, now: Instant) -> Result<(), DiskGuardError> {
        let usage = match self.cached {
            Some((at, usage))
                if now.saturating_duration_since(at) < self.config.check_interval
                    && self.written_since_bytes <= self.config.margin_bytes =>
            {
                usage
            }
            _ => self.refresh_at(now)?,
        };
        let estimate = FsUsage {
            used_bytes: usage.used_bytes.saturating_add(self.written_since_bytes),
            available_bytes: usage
                .available_bytes
                .saturating_sub(self.written_since_bytes),
        };
        match verdict(estimate, self.store_bytes, &self.config) {
            // Refuse on a measured figure, never on an estimate: the writes counted may have
            // gone into preallocated space, or space may have been freed. Right after a
            // measurement nothing is counted, so a full disk refuses on the cached figure
            // without asking again until the interval or the margin says so.
            Err(_) if self.written_since_bytes > 0 => {
                let usage = self.refresh_at(now)?;
                verdict(usage, self.store_bytes, &self.config)
            }
            other => other,
        }
    }

    /// Counts `bytes` the store just appended or allocated against the cached statvfs.
    pub fn note_written(&mut self, bytes: u64) {
        self.written_since_bytes = self.written_since_bytes.saturating_add(bytes);
    }

    /// Runs statvfs now and caches the answer.
    pub fn refresh(&mut self) -> Result<FsUsage, DiskGuardError> {
        self.refresh_at(Instant::now())
    }

    fn refresh_at(&mut self, now: Instant) -> Result<FsUsage, DiskGuardError> {
        self.statvfs_calls += 1;
        let usage = FsUsage::of(&self.path).map_err(|source| DiskGuardError::Statvfs {
            path: self.path.clone(),
            source,
        })?;
        self.cached = Some((now, usage));
        self.written_since_bytes = 0;
        Ok(usage)
    }

    /// The store's own bytes, for the quota (segments and queue files it holds).
    pub fn set_store_bytes(&mut self, bytes: u64) {
        self.store_bytes = bytes;
    }

    /// The store's own bytes as last set.
    pub fn store_bytes(&self) -> u64 {
        self.store_bytes
    }

    /// The limits in force.
    pub fn config(&self) -> &DiskGuardConfig {
        &self.config
    }

    /// Changes the limits; the next check applies them (to the cached figures).
    pub fn set_config(&mut self, config: DiskGuardConfig) {
        self.config = config;
    }

    /// The last statvfs answer, if any.
    pub fn cached_usage(&self) -> Option<FsUsage> {
        self.cached.map(|(_, usage)| usage)
    }

    /// How many statvfs calls were made (to verify the cache).
    pub fn statvfs_calls(&self) -> u64 {
        self.statvfs_calls
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: u64 = 1 << 30;

    fn usage(used_gib: u64, available_gib: u64) -> FsUsage {
        FsUsage {
            used_bytes: used_gib * GIB,
            available_bytes: available_gib * GIB,
        }
    }

    fn ratio(max_used_ratio: f64) -> DiskGuardConfig {
        DiskGuardConfig {
            max_used_ratio,
            ..DiskGuardConfig::default()
        }
    }

    #[test]
    fn below_the_ratio_appends_go_ahead() {
        assert!(verdict(usage(89, 11), 0, &ratio(0.90)).is_ok());
        assert!(
            verdict(usage(90, 10), 0, &ratio(0.90)).is_ok(),
            "at the limit is not above it"
        );
    }

    #[test]
    fn above_the_ratio_is_disk_full_with_the_figures() {
        let err = verdict(usage(91, 9), 0, &ratio(0.90)).unwrap_err();
        match err {
            DiskGuardError::DiskFull {
                used_bytes,
                total_bytes,
                limit_bytes,
                cause,
            } => {
                assert_eq!(cause, FullCause::UsedRatio);
                assert_eq!(used_bytes, 91 * GIB);
                assert_eq!(total_bytes, 100 * GIB);
                assert_eq!(limit_bytes, 90 * GIB);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn ratio_zero_refuses_any_used_byte_and_ratio_one_refuses_nothing() {
        assert!(verdict(
            FsUsage {
                used_bytes: 1,
                available_bytes: GIB
            },
            0,
            &ratio(0.0)
        )
        .is_err());
        assert!(verdict(usage(100, 0), 0, &ratio(1.0)).is_ok());
    }

    #[test]
    fn bytes_written_since_the_statvfs_count_against_the_limit() {
        // A real statvfs of a temp dir, the limit set 256 MiB above what it reports.
        let dir = std::env::temp_dir();
        let usage = FsUsage::of(&dir).unwrap();
        #[allow(clippy::cast_precision_loss)]
        let ratio_above = (usage.used_bytes + 256 * (1 << 20)) as f64 / usage.total_bytes() as f64;
        let mut guard = DiskGuard::new(
            &dir,
            DiskGuardConfig {
                check_interval: Duration::from_secs(3600),
                margin_bytes: u64::MAX,
                ..ratio(ratio_above)
            },
        );
        let t0 = Instant::now();
        guard.check_at(t0).unwrap();
        guard.note_written(512 << 20);
        // The estimate is over the limit: the guard measures again instead of refusing,
        // and the bytes noted did not really land on this filesystem.
        assert!(guard.check_at(t0 + Duration::from_millis(1)).is_ok());
        assert_eq!(guard.statvfs_calls(), 2, "re-measured before refusing");
    }

    #[test]
    fn the_margin_forces_a_fresh_statvfs() {
        let dir = std::env::temp_dir();
        let mut guard = DiskGuard::new(
            &dir,
            DiskGuardConfig {
                check_interval: Duration::from_secs(3600),
                margin_bytes: 1000,
                ..ratio(1.0)
            },
        );
        guard.check().unwrap();
        guard.note_written(1000);
        guard.check().unwrap();
        assert_eq!(
            guard.statvfs_calls(),
            1,
            "within the margin the answer is reused"
        );
        guard.note_written(1);
        guard.check().unwrap();
        assert_eq!(
            guard.statvfs_calls(),
            2,
            "past the margin it is measured again"
        );
    }

    #[test]
    fn the_quota_counts_store_bytes() {
        let config = DiskGuardConfig {
            quota_bytes: Some(1000),
            ..ratio(1.0)
        };
        assert!(verdict(usage(1, 1), 1000, &config).is_ok());
        let err = verdict(usage(1, 1), 1001, &config).unwrap_err();
        assert!(matches!(
            err,
            DiskGuardError::DiskFull {
                cause: FullCause::StoreQuota,
                used_bytes: 1001,
                limit_bytes: 1000,
                ..
            }
        ));
    }
}
