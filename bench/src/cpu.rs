//! CPU time spent during the measured phase, by the broker (every process given with
//! `--broker-pid`, from `/proc/<pid>/stat`) and by the bench itself (`/proc/self/stat`):
//! user + system time of all their threads. Divided by the messages of the run it is the
//! CPU cost per message, steadier than msgs/s on a shared machine.

use std::time::Duration;

use anyhow::Context;

/// User + system CPU time of a process, all threads, from `/proc/<pid>/stat`'s text.
/// `clock_ticks_per_sec` is the kernel's USER_HZ (`getconf CLK_TCK`).
pub fn parse_stat_cpu(stat: &str, clock_ticks_per_sec: u64) -> Option<Duration> {
    // The command name (field 2) is in parentheses and may hold spaces or ')': the fields
    // after it start past the last ')'. There, field 3 (state) is index 0, so utime (14)
    // and stime (15) are indexes 11 and 12.
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    let ticks = utime.checked_add(stime)?;
    let per_sec = clock_ticks_per_sec.max(1);
    Some(
        Duration::from_secs(ticks / per_sec)
            + Duration::from_nanos((ticks % per_sec) * 1_000_000_000 / per_sec),
    )
}

/// USER_HZ: 100 on every Linux architecture ringmq runs on (the kernel exports process
/// times in these units whatever its internal HZ).
const CLOCK_TICKS_PER_SEC: u64 = 100;

fn process_cpu(pid: &str) -> anyhow::Result<Duration> {
    let path = format!("/proc/{pid}/stat");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    parse_stat_cpu(&text, CLOCK_TICKS_PER_SEC).with_context(|| format!("parsing {path}"))
}

/// CPU times at the start of the measured phase.
#[derive(Debug)]
pub struct CpuMeter {
    broker_pids: Vec<u32>,
    broker_start: Duration,
    bench_start: Duration,
}

/// CPU time used between [`CpuMeter::start`] and [`CpuMeter::stop`].
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuUsed {
    /// Summed over the broker processes; `None` when no `--broker-pid` was given or one of
    /// them could not be read at the end (it exited).
    pub broker: Option<Duration>,
    /// The bench process.
    pub bench: Option<Duration>,
}

impl CpuMeter {
    /// Samples now. Fails if a broker process cannot be read (a wrong pid is a usage error).
    pub fn start(broker_pids: &[u32]) -> anyhow::Result<CpuMeter> {
        let mut broker_start = Duration::ZERO;
        for pid in broker_pids {
            broker_start += process_cpu(&pid.to_string())
                .with_context(|| format!("--broker-pid {pid}: is the broker running?"))?;
        }
        Ok(CpuMeter {
            broker_pids: broker_pids.to_vec(),
            broker_start,
            bench_start: process_cpu("self").unwrap_or_default(),
        })
    }

    /// The CPU time used since [`CpuMeter::start`].
    pub fn stop(&self) -> CpuUsed {
        let broker = if self.broker_pids.is_empty() {
            None
        } else {
            self.broker_pids
                .iter()
                .map(|pid| process_cpu(&pid.to_string()).ok())
                .sum::<Option<Duration>>()
                .map(|end| end.saturating_sub(self.broker_start))
        };
        let bench = process_cpu("self")
            .ok()
            .map(|end| end.saturating_sub(self.bench_start));
        CpuUsed { broker, bench }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stat_line_gives_user_plus_system_time() {
        // pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime ...
        let stat = "1234 (ringmq server) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 9 0";
        assert_eq!(
            parse_stat_cpu(stat, 100),
            Some(Duration::from_millis(3_250))
        );
    }

    #[test]
    fn a_command_name_with_a_parenthesis_does_not_shift_the_fields() {
        let stat = "7 (a) b) R 1 7 7 0 -1 0 0 0 0 0 3 4 0 0 20 0 1 0";
        assert_eq!(parse_stat_cpu(stat, 100), Some(Duration::from_millis(70)));
    }

    #[test]
    fn a_truncated_line_is_none() {
        assert_eq!(parse_stat_cpu("7 (a) R 1 7", 100), None);
        assert_eq!(parse_stat_cpu("no parenthesis", 100), None);
    }

    #[test]
    fn this_process_can_be_read() {
        assert!(process_cpu("self").is_ok());
    }
}
