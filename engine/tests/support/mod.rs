//! Test support shared by the engine's integration tests.

use ringmq_engine::disk_guard::DiskGuardConfig;

/// The disk guard of a store under test: no used-ratio limit. Test stores live on the
/// machine's shared disk, and with the default limit (refuse appends above 90% used) every
/// append of every test fails whenever other users have filled that disk, as a CI machine's
/// was. Tests of the guard itself set their own limits (a quota, a small tmpfs).
pub fn unlimited_disk_guard() -> DiskGuardConfig {
    DiskGuardConfig {
        max_used_ratio: 1.0,
        ..DiskGuardConfig::default()
    }
}
