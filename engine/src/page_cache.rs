//! Page-cache estimator: is the data a pull is about to read in memory ("hot") or would
//! it come from the disk ("cold")? (design.md §8, protocol.md §4.3, §9.1.)
//!
//! Two opinions, combined:
//! - **RocketMQ's rule** ([`rule_says_hot`]), pure arithmetic: the unread backlog
//!   `max_physical_offset - physical_offset` is hot while it is at most
//!   `total_ram_bytes × ratio_percent / 100` (ratio default 40). Its negation is RocketMQ's
//!   `suggestPullingFromSlave`, and the same threshold picks the in-memory or on-disk
//!   transfer limits of §4.3.
//! - **The kernel's answer** ([`Estimator::kernel_residency`]): how many pages of the byte
//!   range `[file_offset, file_offset + len)` are in the page cache, by `cachestat(2)`
//!   (Linux 6.5+, one syscall, nothing mapped), or where that returns ENOSYS by `mincore(2)`
//!   on a temporary read-only mapping of the range. The first ENOSYS switches the estimator
//!   to mincore for good.
//!
//! **Hot means both agree the data is in memory**: the rule says the backlog fits the
//! memory share, and every page of the range is resident. The rule is checked first, so a
//! lagging consumer costs no syscall. If the kernel probe fails for another reason the rule
//! alone decides (logged at debug): the estimate steers reads, it never fails them.
//!
//! The range should lie inside the file (CommitLog segments are preallocated, so any
//! record range does): pages past the end of a file are never resident and read as cold.
//! No state on disk; nothing for a crash to leave behind.

use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// `accessMessageInMemoryMaxRatio` unless configured.
pub const DEFAULT_RATIO_PERCENT: u64 = 40;

/// `cachestat(2)`: the same number on x86_64 and aarch64 (the unified syscall table).
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
const SYS_CACHESTAT: libc::c_long = 451;

/// Hot or cold, see the module documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Temperature {
    /// In memory: the rule and the kernel agree.
    Hot,
    /// Probably on disk: the rule says the backlog is too large, or the kernel says some
    /// page of the range is not cached.
    Cold,
}

/// How much of a byte range is in the page cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Residency {
    /// Pages of the range in the page cache.
    pub resident_pages: u64,
    /// Pages the range touches.
    pub total_pages: u64,
}

impl Residency {
    /// Every page of the range is cached (an empty range trivially is).
    pub fn is_fully_resident(&self) -> bool {
        self.resident_pages >= self.total_pages
    }
}

/// Which kernel interface answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// `cachestat(2)`.
    Cachestat,
    /// `mincore(2)` on a mapping.
    Mincore,
}

/// RocketMQ's rule: hot while `max_physical_offset - physical_offset ≤ total_ram_bytes ×
/// ratio_percent / 100`. A negative backlog (the offset is past the end) counts as 0.
pub fn rule_says_hot(
    max_physical_offset: i64,
    physical_offset: i64,
    total_ram_bytes: u64,
    ratio_percent: u64,
) -> bool {
    let backlog_bytes =
        u128::try_from(max_physical_offset.saturating_sub(physical_offset)).unwrap_or(0);
    let memory_bytes = u128::from(total_ram_bytes) * u128::from(ratio_percent) / 100;
    backlog_bytes <= memory_bytes
}

/// Physical RAM of the machine, from `sysinfo(2)`.
pub fn total_ram_bytes() -> io::Result<u64> {
    // SAFETY: `sysinfo` is plain old data; all-zero is a valid value of it.
    let mut info: libc::sysinfo = unsafe { std::mem::zeroed() };
    // SAFETY: `info` is a valid, exclusively borrowed struct the kernel fills.
    let rc = unsafe { libc::sysinfo(&mut info) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // Field widths differ between targets; u64 holds them.
    #[allow(clippy::useless_conversion)]
    let (total, unit) = (u64::from(info.totalram), u64::from(info.mem_unit));
    Ok(total.saturating_mul(unit.max(1)))
}

/// Page size of the machine.
fn page_size_bytes() -> u64 {
    // SAFETY: sysconf has no memory-safety preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(size).ok().filter(|s| *s > 0).unwrap_or(4096)
}

/// Pages touched by `[offset, offset + len)`, and the page-aligned start.
fn page_span(offset: u64, len: u64, page_bytes: u64) -> (u64, u64) {
    if len == 0 {
        return (offset - offset % page_bytes, 0);
    }
    let first = offset / page_bytes;
    let last = offset.saturating_add(len - 1) / page_bytes;
    (first * page_bytes, last - first + 1)
}

/// `cachestat(2)` of `[offset, offset + len)`. ENOSYS (kernel before 6.5) comes back as an
/// error of kind [`io::ErrorKind::Unsupported`] with raw OS error `ENOSYS`.
pub fn cachestat_residency(file: &impl AsFd, offset: u64, len: u64) -> io::Result<Residency> {
    let (_, total_pages) = page_span(offset, len, page_size_bytes());
    if total_pages == 0 {
        return Ok(Residency {
            resident_pages: 0,
            total_pages: 0,
        });
    }
    cachestat_pages(file.as_fd().as_raw_fd(), offset, len).map(|resident_pages| Residency {
        resident_pages: resident_pages.min(total_pages),
        total_pages,
    })
}

#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
fn cachestat_pages(fd: libc::c_int, offset: u64, len: u64) -> io::Result<u64> {
    /// `struct cachestat_range` of the kernel's uapi.
    #[repr(C)]
    struct CachestatRange {
        off: u64,
        len: u64,
    }
    /// `struct cachestat` of the kernel's uapi.
    #[repr(C)]
    #[derive(Default)]
    struct Cachestat {
        nr_cache: u64,
        nr_dirty: u64,
        nr_writeback: u64,
        nr_evicted: u64,
        nr_recently_evicted: u64,
    }
    let range = CachestatRange { off: offset, len };
    let mut stat = Cachestat::default();
    // SAFETY: `fd` is open for the duration (borrowed by the caller); `range` and `stat`
    // are live, correctly laid-out uapi structs; flags must be 0. The kernel only reads
    // `range` and writes `stat`.
    let rc = unsafe {
        libc::syscall(
            SYS_CACHESTAT,
            fd,
            &range as *const CachestatRange,
            &mut stat as *mut Cachestat,
            0,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(stat.nr_cache)
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn cachestat_pages(_fd: libc::c_int, _offset: u64, _len: u64) -> io::Result<u64> {
    Err(io::Error::from_raw_os_error(libc::ENOSYS))
}

/// `mincore(2)` of `[offset, offset + len)` through a temporary read-only shared mapping
/// of the range (unmapped before returning). Touches no page, so nothing is read in.
pub fn mincore_residency(file: &impl AsFd, offset: u64, len: u64) -> io::Result<Residency> {
    let page_bytes = page_size_bytes();
    let (start, total_pages) = page_span(offset, len, page_bytes);
    if total_pages == 0 {
        return Ok(Residency {
            resident_pages: 0,
            total_pages: 0,
        });
    }
    let map_len = usize::try_from(total_pages.saturating_mul(page_bytes))
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let map_offset =
        libc::off_t::try_from(start).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let mapping = Mapping::read_only(file.as_fd().as_raw_fd(), map_len, map_offset)?;
    let mut vec = vec![0_u8; usize::try_from(total_pages).unwrap_or(0)];
    // SAFETY: `mapping` covers `map_len` bytes from a page-aligned address; `vec` has one
    // byte per page of that length, as mincore writes.
    let rc = unsafe { libc::mincore(mapping.addr, map_len, vec.as_mut_ptr()) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    let resident_pages = vec.iter().filter(|b| **b & 1 == 1).count() as u64;
    Ok(Residency {
        resident_pages,
        total_pages,
    })
}

/// A mapping unmapped on drop.
struct Mapping {
    addr: *mut libc::c_void,
    len: usize,
}

impl Mapping {
    fn read_only(fd: libc::c_int, len: usize, offset: libc::off_t) -> io::Result<Self> {
        // SAFETY: a fresh mapping at an address of the kernel's choice aliases nothing of
        // ours; `offset` is page-aligned; PROT_READ + MAP_SHARED never writes the file.
        let addr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_SHARED,
                fd,
                offset,
            )
        };
        if addr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Self { addr, len })
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `addr`/`len` are exactly what mmap returned and nothing else refers to
        // the mapping (it never leaves this module).
        unsafe {
            libc::munmap(self.addr, self.len);
        }
    }
}

/// The estimator of one broker: RAM size and ratio, and which kernel probe works.
#[derive(Debug)]
pub struct Estimator {
    total_ram_bytes: u64,
    /// Changeable while the broker runs (UPDATE_BROKER_CONFIG): read once per rule check.
    ratio_percent: AtomicU64,
    ask_kernel: bool,
    /// Set after cachestat said ENOSYS: use mincore from then on.
    cachestat_missing: AtomicBool,
}

impl Estimator {
    /// An estimator for `total_ram_bytes` of RAM and `ratio_percent` (tests and config).
    pub fn new(total_ram_bytes: u64, ratio_percent: u64) -> Self {
        Self {
            total_ram_bytes,
            ratio_percent: AtomicU64::new(ratio_percent),
            ask_kernel: true,
            cachestat_missing: AtomicBool::new(false),
        }
    }

    /// An estimator for this machine's RAM (read once, here).
    pub fn for_this_machine(ratio_percent: u64) -> io::Result<Self> {
        Ok(Self::new(total_ram_bytes()?, ratio_percent))
    }

    /// Whether [`Estimator::is_hot`] consults the kernel (default true); without it the
    /// rule alone decides, as in RocketMQ.
    pub fn with_kernel_probe(mut self, ask_kernel: bool) -> Self {
        self.ask_kernel = ask_kernel;
        self
    }

    /// Skips cachestat and asks mincore directly (`Probe::Mincore`), or restores the
    /// default order (`Probe::Cachestat`): for kernels whose cachestat misbehaves, and to
    /// exercise the fallback.
    pub fn with_probe(self, probe: Probe) -> Self {
        self.cachestat_missing
            .store(probe == Probe::Mincore, Ordering::Relaxed);
        self
    }

    /// RAM size used by the rule.
    pub fn total_ram_bytes(&self) -> u64 {
        self.total_ram_bytes
    }

    /// Ratio used by the rule.
    pub fn ratio_percent(&self) -> u64 {
        self.ratio_percent.load(Ordering::Relaxed)
    }

    /// Changes the rule's ratio for the checks that follow (an operator's runtime change).
    pub fn set_ratio_percent(&self, ratio_percent: u64) {
        self.ratio_percent.store(ratio_percent, Ordering::Relaxed);
    }

    /// [`rule_says_hot`] with this estimator's RAM and ratio.
    pub fn rule_says_hot(&self, max_physical_offset: i64, physical_offset: i64) -> bool {
        rule_says_hot(
            max_physical_offset,
            physical_offset,
            self.total_ram_bytes,
            self.ratio_percent(),
        )
    }

    /// Hot when the rule says the backlog from `physical_offset` fits in memory and the
    /// kernel has every page of `[file_offset, file_offset + len)` of `file` cached.
    pub fn is_hot(
        &self,
        max_physical_offset: i64,
        physical_offset: i64,
        file: &impl AsFd,
        file_offset: u64,
        len: u64,
    ) -> Temperature {
        if !self.rule_says_hot(max_physical_offset, physical_offset) {
            return Temperature::Cold;
        }
        if !self.ask_kernel {
            return Temperature::Hot;
        }
        match self.kernel_residency(file, file_offset, len) {
            Ok((residency, _)) if residency.is_fully_resident() => Temperature::Hot,
            Ok(_) => Temperature::Cold,
            Err(error) => {
                tracing::debug!(%error, "page-cache probe failed; the rule decides");
                Temperature::Hot
            }
        }
    }

    /// The kernel's answer for the range, and which probe gave it: cachestat, or mincore
    /// once cachestat has said ENOSYS.
    pub fn kernel_residency(
        &self,
        file: &impl AsFd,
        offset: u64,
        len: u64,
    ) -> io::Result<(Residency, Probe)> {
        if !self.cachestat_missing.load(Ordering::Relaxed) {
            match cachestat_residency(file, offset, len) {
                Ok(residency) => return Ok((residency, Probe::Cachestat)),
                Err(error) if error.raw_os_error() == Some(libc::ENOSYS) => {
                    tracing::info!("cachestat(2) missing; page-cache probe uses mincore(2)");
                    self.cachestat_missing.store(true, Ordering::Relaxed);
                }
                Err(error) => return Err(error),
            }
        }
        mincore_residency(file, offset, len).map(|residency| (residency, Probe::Mincore))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: u64 = 1 << 30;

    #[test]
    fn a_backlog_within_the_memory_share_is_hot() {
        // 10 GiB of RAM at 40%: 4 GiB of backlog is the limit.
        assert!(rule_says_hot(4 * GIB as i64, 0, 10 * GIB, 40));
        assert!(!rule_says_hot(4 * GIB as i64 + 1, 0, 10 * GIB, 40));
    }

    #[test]
    fn ratio_zero_makes_any_backlog_cold() {
        assert!(!rule_says_hot(1001, 1000, 64 * GIB, 0));
        assert!(
            rule_says_hot(1000, 1000, 64 * GIB, 0),
            "no backlog at all is still hot"
        );
    }

    #[test]
    fn ratio_hundred_makes_a_backlog_up_to_all_ram_hot() {
        assert!(rule_says_hot(8 * GIB as i64, 0, 8 * GIB, 100));
        assert!(!rule_says_hot(8 * GIB as i64 + 1, 0, 8 * GIB, 100));
    }

    #[test]
    fn an_offset_past_the_end_counts_as_no_backlog() {
        assert!(rule_says_hot(10, 500, 1, 0));
    }

    #[test]
    fn the_rule_does_not_overflow_on_extreme_values() {
        assert!(rule_says_hot(i64::MAX, 0, u64::MAX, 100));
        assert!(!rule_says_hot(i64::MAX, i64::MIN, 1, 100));
    }

    #[test]
    fn page_span_counts_the_pages_a_range_touches() {
        assert_eq!(page_span(0, 4096, 4096), (0, 1));
        assert_eq!(page_span(4095, 2, 4096), (0, 2));
        assert_eq!(page_span(8192 + 10, 4096, 4096), (8192, 2));
        assert_eq!(page_span(100, 0, 4096), (0, 0));
    }

    #[test]
    fn a_changed_ratio_applies_to_the_next_check() {
        let estimator = Estimator::new(10 * GIB, 0).with_kernel_probe(false);
        assert!(!estimator.rule_says_hot(1000, 0));
        estimator.set_ratio_percent(40);
        assert!(estimator.rule_says_hot(1000, 0));
        assert_eq!(estimator.ratio_percent(), 40);
    }

    #[test]
    fn this_machine_has_some_ram() {
        assert!(total_ram_bytes().unwrap() > 0);
    }
}
