//! Which I/O backend the shards run on, and why (design.md §2).
//!
//! compio falls back to epoll silently when io_uring cannot be set up, so before the
//! shards start we probe io_uring ourselves with one `io_uring_setup` call and read
//! `/proc/sys/kernel/io_uring_disabled`, to print a reason a user can act on.

use std::fmt;

/// Result of probing io_uring on this machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IoUringProbe {
    Available,
    /// `kernel.io_uring_disabled` is 2 (disabled for everyone) or 1 and we are not in the
    /// allowed group: setup fails with EPERM.
    DisabledBySysctl {
        value: String,
    },
    /// A seccomp filter (containers often have one) or an LSM refused the syscall.
    PermissionDenied,
    /// The kernel has no io_uring (ENOSYS): too old or built without it.
    NotInKernel,
    /// Any other failure, with the OS error.
    Failed {
        error: String,
    },
}

impl fmt::Display for IoUringProbe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IoUringProbe::Available => write!(f, "io_uring available"),
            IoUringProbe::DisabledBySysctl { value } => write!(
                f,
                "io_uring disabled by sysctl kernel.io_uring_disabled={value} \
                 (set it to 0 to use io_uring)"
            ),
            IoUringProbe::PermissionDenied => write!(
                f,
                "io_uring_setup refused with EPERM (a seccomp profile or security module \
                 blocks io_uring; e.g. run the container with a profile that allows it)"
            ),
            IoUringProbe::NotInKernel => {
                write!(f, "io_uring_setup: ENOSYS (kernel without io_uring)")
            }
            IoUringProbe::Failed { error } => write!(f, "io_uring_setup failed: {error}"),
        }
    }
}

/// Probes io_uring with a one-entry ring that is closed at once.
pub fn probe_io_uring() -> IoUringProbe {
    let sysctl = std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled")
        .map(|s| s.trim().to_owned())
        .ok();
    // The kernel's struct io_uring_params is 120 bytes; zeroed means "no flags".
    let mut params = [0u8; 120];
    // SAFETY: io_uring_setup reads and writes exactly sizeof(struct io_uring_params) = 120
    // bytes at the pointer we pass, which points to a live, writable 120-byte buffer.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_io_uring_setup,
            1u32,
            params.as_mut_ptr() as *mut libc::c_void,
        )
    };
    if fd >= 0 {
        // SAFETY: fd is a file descriptor the kernel just returned to us and nothing else owns.
        unsafe { libc::close(fd as libc::c_int) };
        return IoUringProbe::Available;
    }
    let error = std::io::Error::last_os_error();
    match error.raw_os_error() {
        Some(libc::ENOSYS) => IoUringProbe::NotInKernel,
        Some(libc::EPERM) => match sysctl {
            Some(value) if value != "0" => IoUringProbe::DisabledBySysctl { value },
            _ => IoUringProbe::PermissionDenied,
        },
        _ => IoUringProbe::Failed {
            error: error.to_string(),
        },
    }
}

/// What a shard's runtime reports once it is built.
pub fn describe_driver(driver: compio::driver::DriverType) -> &'static str {
    match driver {
        compio::driver::DriverType::IoUring => "io_uring",
        compio::driver::DriverType::Poll => "epoll (fallback)",
        compio::driver::DriverType::IOCP => "iocp",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_agrees_with_the_runtime_compio_builds() {
        let probe = probe_io_uring();
        let runtime = compio::runtime::RuntimeBuilder::new().build().unwrap();
        let driver = runtime.driver_type();
        assert_eq!(
            probe == IoUringProbe::Available,
            driver == compio::driver::DriverType::IoUring,
            "probe says {probe}, compio built {driver:?}"
        );
    }
}
