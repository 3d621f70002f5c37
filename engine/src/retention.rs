//! CommitLog retention policy: which of a shard's oldest segments to delete now, and why
//! (RocketMQ's `CleanCommitLogService`, better behaved). Pure: facts in, decisions out; the
//! store's retention task (`store::retention`) gathers the facts and does the deleting.
//!
//! **Rules.** A round deletes nothing unless one trigger holds: the local hour is one of
//! `deleteWhen` (default 04), or the store's filesystem is fuller than
//! `diskMaxUsedSpaceRatio` (75 %, the *cleanup* ratio), or fuller than
//! `diskSpaceCleanForciblyRatio` (85 %, the *forced* ratio). Then, oldest first:
//! - a segment last written more than `fileReservedTime` (72 h) ago is *expired* and
//!   deleted ([`DeleteReason::Expired`] at `deleteWhen`, else
//!   [`DeleteReason::DiskOverCleanupRatio`]);
//! - above the forced ratio, younger segments are deleted too
//!   ([`DeleteReason::DiskOverForcedRatio`]), but only while the filesystem, counting the
//!   segments already chosen as freed, is still above that ratio: it frees what the limit
//!   needs, not a fixed batch (RocketMQ deletes up to ten files a round whatever they free).
//!
//! The first segment that is not deleted ends the round: deletions are always a prefix of
//! the log, so the log stays one contiguous range and its min offset is its first
//! segment's start. At most `max_segments_per_round` go per round. The caller passes only
//! segments that may go at all: never the active (last) one, never one holding bytes the
//! checkpoint does not cover (recovery may need them).
//!
//! Sends are refused above a third ratio, `diskSpaceWarningLevelRatio` (90 %); that is the
//! disk guard's job ([`crate::disk_guard`]), not this module's. Nothing here is persisted.

use std::time::{Duration, SystemTime};

use crate::disk_guard::{used_ratio, FsUsage};

/// `fileReservedTime` unless configured: 72 hours.
pub const DEFAULT_FILE_RESERVED_TIME: Duration = Duration::from_secs(72 * 3600);
/// `diskMaxUsedSpaceRatio` unless configured: expired segments go at any hour above it.
pub const DEFAULT_CLEANUP_USED_RATIO: f64 = 0.75;
/// `diskSpaceCleanForciblyRatio` unless configured: the oldest segments go whatever their age.
pub const DEFAULT_FORCED_USED_RATIO: f64 = 0.85;
/// `cleanResourceInterval` unless configured: 10 s between rounds.
pub const DEFAULT_CHECK_INTERVAL: Duration = Duration::from_secs(10);
/// `deleteFileBatchMax`: at most this many segments per round.
pub const DEFAULT_MAX_SEGMENTS_PER_ROUND: usize = 10;

/// The hours of the day (local time) when expired segments are deleted: RocketMQ's
/// `deleteWhen`, `"04"` or `"01;02;03"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeleteWhen {
    /// Bit `h` set: hour `h` (0..=23) is a deletion hour.
    hours_mask: u32,
}

/// A `deleteWhen` value that is not a `;`-separated list of hours 0..=23.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "deleteWhen {value:?}: expected hours 00..23 separated by ';' (e.g. \"04\" or \"01;02;03\")"
)]
pub struct BadDeleteWhen {
    /// The value given.
    pub value: String,
}

impl DeleteWhen {
    /// Parses `"04"` or `"01;02;03"` (surrounding spaces and empty items ignored).
    pub fn parse(value: &str) -> Result<Self, BadDeleteWhen> {
        let bad = || BadDeleteWhen {
            value: value.to_owned(),
        };
        let mut hours_mask = 0u32;
        for item in value.split(';').map(str::trim).filter(|s| !s.is_empty()) {
            let hour: u8 = item.parse().map_err(|_| bad())?;
            if hour > 23 {
                return Err(bad());
            }
            hours_mask |= 1 << hour;
        }
        if hours_mask == 0 {
            return Err(bad());
        }
        Ok(DeleteWhen { hours_mask })
    }

    /// Every hour of the day (tests, and operators who want expiry enforced at once).
    pub fn every_hour() -> Self {
        DeleteWhen {
            hours_mask: (1 << 24) - 1,
        }
    }

    /// Whether `hour` (0..=23) is a deletion hour.
    pub fn contains(&self, hour: u8) -> bool {
        hour < 24 && self.hours_mask & (1 << hour) != 0
    }
}

impl Default for DeleteWhen {
    fn default() -> Self {
        DeleteWhen { hours_mask: 1 << 4 }
    }
}

impl std::fmt::Display for DeleteWhen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hours: Vec<String> = (0..24u8)
            .filter(|h| self.contains(*h))
            .map(|h| format!("{h:02}"))
            .collect();
        f.write_str(&hours.join(";"))
    }
}

/// Retention limits; [`RetentionConfig::default`] holds RocketMQ's defaults.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetentionConfig {
    /// A segment last written longer ago than this is expired (`fileReservedTime`, 72 h).
    pub file_reserved_time: Duration,
    /// Hours when expired segments go whatever the disk (`deleteWhen`, 04).
    pub delete_when: DeleteWhen,
    /// Above this used ratio, expired segments go at any hour (`diskMaxUsedSpaceRatio`, 0.75).
    pub cleanup_used_ratio: f64,
    /// Above this used ratio, the oldest segments go whatever their age
    /// (`diskSpaceCleanForciblyRatio`, 0.85).
    pub forced_used_ratio: f64,
    /// Time between rounds (`cleanResourceInterval`, 10 s).
    pub check_interval: Duration,
    /// Most segments deleted per round (10).
    pub max_segments_per_round: usize,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            file_reserved_time: DEFAULT_FILE_RESERVED_TIME,
            delete_when: DeleteWhen::default(),
            cleanup_used_ratio: DEFAULT_CLEANUP_USED_RATIO,
            forced_used_ratio: DEFAULT_FORCED_USED_RATIO,
            check_interval: DEFAULT_CHECK_INTERVAL,
            max_segments_per_round: DEFAULT_MAX_SEGMENTS_PER_ROUND,
        }
    }
}

/// What the policy needs to know of one segment that may be deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentFacts {
    /// Its start (byte offset in the shard's log).
    pub start_offset: u64,
    /// Bytes its deletion frees.
    pub size_bytes: u64,
    /// When it was last written (its newest record or closing blank).
    pub last_modified: SystemTime,
}

/// Why a segment is deleted: which limit was hit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum DeleteReason {
    /// Older than `fileReservedTime`, and the hour is one of `deleteWhen`.
    Expired {
        /// The local hour of the round.
        hour: u8,
        /// `fileReservedTime`.
        file_reserved_time: Duration,
    },
    /// Older than `fileReservedTime`, and the disk is over `diskMaxUsedSpaceRatio`.
    DiskOverCleanupRatio {
        /// The filesystem's used ratio at the start of the round.
        used_ratio: f64,
        /// `diskMaxUsedSpaceRatio`.
        limit_ratio: f64,
        /// `fileReservedTime`.
        file_reserved_time: Duration,
    },
    /// The disk is over `diskSpaceCleanForciblyRatio`: deleted whatever its age.
    DiskOverForcedRatio {
        /// The filesystem's used ratio at the start of the round.
        used_ratio: f64,
        /// `diskSpaceCleanForciblyRatio`.
        limit_ratio: f64,
    },
}

impl std::fmt::Display for DeleteReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeleteReason::Expired {
                hour,
                file_reserved_time,
            } => write!(
                f,
                "expired (last written over fileReservedTime {}s ago) at deleteWhen hour {hour:02}",
                file_reserved_time.as_secs()
            ),
            DeleteReason::DiskOverCleanupRatio {
                used_ratio,
                limit_ratio,
                file_reserved_time,
            } => write!(
                f,
                "expired (last written over fileReservedTime {}s ago) and disk {:.1}% used, over diskMaxUsedSpaceRatio {:.0}%",
                file_reserved_time.as_secs(),
                used_ratio * 100.0,
                limit_ratio * 100.0
            ),
            DeleteReason::DiskOverForcedRatio {
                used_ratio,
                limit_ratio,
            } => write!(
                f,
                "forced: disk {:.1}% used, over diskSpaceCleanForciblyRatio {:.0}%",
                used_ratio * 100.0,
                limit_ratio * 100.0
            ),
        }
    }
}

/// One segment to delete.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Deletion {
    /// The segment's start offset.
    pub start_offset: u64,
    /// Why.
    pub reason: DeleteReason,
}

/// What one round sees.
#[derive(Debug, Clone, Copy)]
pub struct RoundFacts<'a> {
    /// The segments that may be deleted, oldest first (never the active one).
    pub candidates: &'a [SegmentFacts],
    /// Now (wall clock: segment ages are wall-clock times).
    pub now: SystemTime,
    /// The local hour now, 0..=23.
    pub local_hour: u8,
    /// The store filesystem's space; `None` if statvfs failed (then only `deleteWhen` acts).
    pub usage: Option<FsUsage>,
}

/// The segments to delete this round, oldest first (a prefix of `facts.candidates`). Pure.
pub fn plan_round(facts: &RoundFacts<'_>, config: &RetentionConfig) -> Vec<Deletion> {
    let total_bytes = facts.usage.map_or(0, |u| u.total_bytes());
    let mut used_bytes = facts.usage.map_or(0, |u| u.used_bytes);
    let ratio_at_start = used_ratio(used_bytes, total_bytes).unwrap_or(0.0);
    let time_up = config.delete_when.contains(facts.local_hour);
    let over_cleanup = ratio_at_start > config.cleanup_used_ratio;
    let over_forced = ratio_at_start > config.forced_used_ratio;
    if !(time_up || over_cleanup || over_forced) {
        return Vec::new();
    }
    let mut out = Vec::new();
    for segment in facts.candidates.iter().take(config.max_segments_per_round) {
        let expired = segment
            .last_modified
            .checked_add(config.file_reserved_time)
            .is_some_and(|live_until| facts.now >= live_until);
        let still_over_forced = used_ratio(used_bytes, total_bytes)
            .is_some_and(|ratio| ratio > config.forced_used_ratio);
        let reason = if expired && time_up {
            DeleteReason::Expired {
                hour: facts.local_hour,
                file_reserved_time: config.file_reserved_time,
            }
        } else if expired && over_cleanup {
            DeleteReason::DiskOverCleanupRatio {
                used_ratio: ratio_at_start,
                limit_ratio: config.cleanup_used_ratio,
                file_reserved_time: config.file_reserved_time,
            }
        } else if over_forced && still_over_forced {
            DeleteReason::DiskOverForcedRatio {
                used_ratio: ratio_at_start,
                limit_ratio: config.forced_used_ratio,
            }
        } else {
            // Never a hole in the middle of the log.
            break;
        };
        out.push(Deletion {
            start_offset: segment.start_offset,
            reason,
        });
        used_bytes = used_bytes.saturating_sub(segment.size_bytes);
    }
    debug_assert!(out.len() <= config.max_segments_per_round);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);
    const SEG: u64 = 1 << 30;

    fn now() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)
    }

    /// Segments 0, 1, 2 (GiB), last written `ages_h` hours ago.
    fn segments(ages_h: &[u64]) -> Vec<SegmentFacts> {
        ages_h
            .iter()
            .enumerate()
            .map(|(i, age)| SegmentFacts {
                start_offset: i as u64 * SEG,
                size_bytes: SEG,
                last_modified: now() - HOUR * u32::try_from(*age).unwrap(),
            })
            .collect()
    }

    /// A filesystem of 100 GiB with `percent` used.
    fn disk(percent: u64) -> Option<FsUsage> {
        Some(FsUsage {
            used_bytes: percent * SEG,
            available_bytes: (100 - percent) * SEG,
        })
    }

    fn round(candidates: &[SegmentFacts], hour: u8, usage: Option<FsUsage>) -> Vec<Deletion> {
        plan_round(
            &RoundFacts {
                candidates,
                now: now(),
                local_hour: hour,
                usage,
            },
            &RetentionConfig::default(),
        )
    }

    fn starts(deletions: &[Deletion]) -> Vec<u64> {
        deletions.iter().map(|d| d.start_offset / SEG).collect()
    }

    #[test]
    fn expired_segments_go_at_the_delete_hour_and_not_before() {
        let segs = segments(&[100, 80, 10]);
        assert!(round(&segs, 3, disk(50)).is_empty());
        let deleted = round(&segs, 4, disk(50));
        assert_eq!(starts(&deleted), vec![0, 1]);
        assert!(matches!(
            deleted[0].reason,
            DeleteReason::Expired { hour: 4, .. }
        ));
        assert_eq!(
            deleted[0].reason.to_string(),
            "expired (last written over fileReservedTime 259200s ago) at deleteWhen hour 04"
        );
    }

    #[test]
    fn over_the_cleanup_ratio_expired_segments_go_at_any_hour() {
        let segs = segments(&[100, 80, 10]);
        let deleted = round(&segs, 15, disk(76));
        assert_eq!(starts(&deleted), vec![0, 1]);
        assert!(matches!(
            deleted[0].reason,
            DeleteReason::DiskOverCleanupRatio { .. }
        ));
    }

    #[test]
    fn over_the_forced_ratio_young_segments_go_until_the_disk_is_below_it() {
        // 88 % used: freeing 3 GiB of 100 brings it to 85 %, not above the limit.
        let segs = segments(&[1, 1, 1, 1, 1]);
        let deleted = round(&segs, 15, disk(88));
        assert_eq!(starts(&deleted), vec![0, 1, 2]);
        assert!(deleted
            .iter()
            .all(|d| matches!(d.reason, DeleteReason::DiskOverForcedRatio { .. })));
        assert_eq!(
            deleted[0].reason.to_string(),
            "forced: disk 88.0% used, over diskSpaceCleanForciblyRatio 85%"
        );
    }

    #[test]
    fn a_young_segment_stops_the_round_so_the_log_never_gets_a_hole() {
        let segs = segments(&[100, 10, 100]);
        assert_eq!(starts(&round(&segs, 4, disk(50))), vec![0]);
    }

    #[test]
    fn a_round_deletes_at_most_the_batch_limit() {
        let segs = segments(&[100; 25]);
        assert_eq!(
            round(&segs, 4, disk(50)).len(),
            DEFAULT_MAX_SEGMENTS_PER_ROUND
        );
    }

    #[test]
    fn without_statvfs_only_the_delete_hour_acts() {
        let segs = segments(&[100]);
        assert!(round(&segs, 15, None).is_empty());
        assert_eq!(round(&segs, 4, None).len(), 1);
    }

    #[test]
    fn delete_when_parses_rocketmq_values() {
        let one = DeleteWhen::parse("04").unwrap();
        assert!(one.contains(4) && !one.contains(3));
        let three = DeleteWhen::parse("01;02;03").unwrap();
        assert!(three.contains(1) && three.contains(3) && !three.contains(4));
        assert_eq!(three.to_string(), "01;02;03");
        assert!(DeleteWhen::parse("24").is_err());
        assert!(DeleteWhen::parse("").is_err());
        assert!(DeleteWhen::parse("4am").is_err());
        assert_eq!(DeleteWhen::every_hour().to_string().split(';').count(), 24);
    }
}
