//! The standard `process_*` metrics (as every Prometheus client library names them), read
//! from `/proc/self` at each scrape: CPU time, resident and virtual memory, open and allowed
//! file descriptors, start time. Where `/proc` is not there (not Linux), none are written.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

/// Clock ticks per second of `/proc/self/stat` (`USER_HZ`): 100 on every architecture
/// Linux runs this binary on (x86, arm, riscv, ppc, s390).
const USER_HZ: f64 = 100.0;

/// What one scrape reads of the process.
#[derive(Debug, Default, PartialEq)]
pub struct ProcessStats {
    pub cpu_seconds: f64,
    pub resident_bytes: f64,
    pub virtual_bytes: f64,
    pub open_fds: f64,
    pub max_fds: f64,
    pub start_time_seconds: f64,
}

/// Parses `/proc/self/stat` (after the command name in parentheses, which may hold spaces):
/// user and system time and the start time, in ticks since boot.
fn parse_stat(stat: &str) -> Option<(f64, f64)> {
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    // Fields from the 3rd (state) on; utime is the 14th, stime the 15th, starttime the 22nd.
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let tick = |n: usize| fields.get(n - 3)?.parse::<f64>().ok();
    Some((tick(14)? + tick(15)?, tick(22)?))
}

/// A `kB` line of `/proc/self/status` (`VmRSS:   1234 kB`), in bytes.
fn status_kb(status: &str, key: &str) -> Option<f64> {
    let line = status.lines().find(|l| l.starts_with(key))?;
    let kb: f64 = line
        .get(key.len()..)?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(kb * 1024.0)
}

/// The soft limit of `Max open files` in `/proc/self/limits`.
fn max_open_files(limits: &str) -> Option<f64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.get("Max open files".len()..)?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The boot time (`btime`) of `/proc/stat`, Unix seconds.
fn boot_time(stat: &str) -> Option<f64> {
    stat.lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()
}

/// Reads the process's figures; `None` where `/proc/self` cannot be read.
pub fn read() -> Option<ProcessStats> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let (cpu_ticks, start_ticks) = parse_stat(&stat)?;
    let boot = std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| boot_time(&s))
        .unwrap_or(0.0);
    let open_fds = std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count() as f64)
        .unwrap_or(0.0);
    let max_fds = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|l| max_open_files(&l))
        .unwrap_or(0.0);
    Some(ProcessStats {
        cpu_seconds: cpu_ticks / USER_HZ,
        resident_bytes: status_kb(&status, "VmRSS:").unwrap_or(0.0),
        virtual_bytes: status_kb(&status, "VmSize:").unwrap_or(0.0),
        open_fds,
        max_fds,
        start_time_seconds: boot + start_ticks / USER_HZ,
    })
}

/// Writes the `process_*` metrics at each scrape (registered at the registry's root, so
/// they carry no product prefix, as dashboards expect).
#[derive(Debug)]
pub struct ProcessCollector;

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(p) = read() else {
            return Ok(());
        };
        let cpu = ConstCounter::new(p.cpu_seconds);
        cpu.encode(encoder.encode_descriptor(
            "process_cpu_seconds",
            "Total user and system CPU time spent in seconds.",
            None,
            cpu.metric_type(),
        )?)?;
        for (name, help, value) in [
            (
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
                p.resident_bytes,
            ),
            (
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes.",
                p.virtual_bytes,
            ),
            (
                "process_open_fds",
                "Number of open file descriptors.",
                p.open_fds,
            ),
            (
                "process_max_fds",
                "Maximum number of open file descriptors.",
                p.max_fds,
            ),
            (
                "process_start_time_seconds",
                "Start time of the process since unix epoch in seconds.",
                p.start_time_seconds,
            ),
        ] {
            let g = ConstGauge::new(value);
            g.encode(encoder.encode_descriptor(name, help, None, g.metric_type())?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_files_parse_into_the_process_figures() {
        let stat = "4242 (gitea nats) x) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 50 0 0 20 0 9 0 12345 1000000 2000 18446744073709551615";
        assert_eq!(parse_stat(stat), Some((300.0, 12345.0)));
        let status = "Name:\tx\nVmSize:\t  20480 kB\nVmRSS:\t    1024 kB\n";
        assert_eq!(status_kb(status, "VmRSS:"), Some(1024.0 * 1024.0));
        assert_eq!(status_kb(status, "VmSize:"), Some(20480.0 * 1024.0));
        let limits = "Limit                     Soft Limit           Hard Limit           Units\nMax open files            1024                 524288               files\n";
        assert_eq!(max_open_files(limits), Some(1024.0));
        assert_eq!(boot_time("cpu 1 2 3\nbtime 1700000000\n"), Some(1.7e9));
    }

    #[test]
    fn this_process_reads_itself() {
        let p = read().expect("/proc/self is readable on Linux");
        assert!(p.resident_bytes > 0.0, "{p:?}");
        assert!(p.open_fds >= 3.0, "{p:?}");
        assert!(p.max_fds >= p.open_fds, "{p:?}");
        assert!(p.start_time_seconds > 1.6e9, "{p:?}");
    }
}
