//! CPU seconds and memory of a process, or of every process in a group,
//! read from /proc (Linux only; elsewhere every reading is `None`).

use std::fs;

/// Clock ticks per second of /proc/PID/stat's times. Linux has fixed
/// USER_HZ at 100 on every architecture we run on, and reading it with
/// sysconf would need unsafe code.
const TICKS_PER_SEC: f64 = 100.0;

/// Whose usage to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Watched {
    /// Nothing: every reading is `None`.
    Nobody,
    /// One process.
    Pid(u32),
    /// Every process whose process group is this.
    Group(u32),
}

/// One reading.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Usage {
    /// User + system CPU seconds so far.
    pub cpu_s: f64,
    /// Resident memory in KiB (a group: the sum of PSS, so pages shared
    /// between its processes count once).
    pub mem_kb: u64,
}

impl Watched {
    /// Read the usage now; `None` if the process (or every member of the
    /// group) is gone or /proc is not there.
    pub fn read(&self) -> Option<Usage> {
        match *self {
            Watched::Nobody => None,
            Watched::Pid(pid) => {
                let (cpu_s, _) = stat(pid)?;
                let mem_kb = status_kb(pid, "VmRSS:").unwrap_or(0);
                Some(Usage { cpu_s, mem_kb })
            }
            Watched::Group(pgid) => {
                let mut total = Usage::default();
                let mut any = false;
                for entry in fs::read_dir("/proc").ok()?.flatten() {
                    let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
                        continue;
                    };
                    let Some((cpu_s, pgrp)) = stat(pid) else {
                        continue;
                    };
                    if pgrp != pgid {
                        continue;
                    }
                    any = true;
                    total.cpu_s += cpu_s;
                    total.mem_kb += pss_kb(pid).unwrap_or(0);
                }
                any.then_some(total)
            }
        }
    }
}

/// CPU seconds of this process (the load client itself).
pub fn own_cpu_s() -> Option<f64> {
    stat(std::process::id()).map(|(cpu, _)| cpu)
}

/// (utime + stime in seconds, process group) from /proc/PID/stat.
fn stat(pid: u32) -> Option<(f64, u32)> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces or ')': the
    // fields we want follow the last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After ')': state ppid pgrp session tty tpgid flags minflt cminflt
    // majflt cmajflt utime stime ...
    let pgrp = fields.get(2)?.parse().ok()?;
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some(((utime + stime) / TICKS_PER_SEC, pgrp))
}

fn status_kb(pid: u32, key: &str) -> Option<u64> {
    let text = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    kb_field(&text, key)
}

fn pss_kb(pid: u32) -> Option<u64> {
    match fs::read_to_string(format!("/proc/{pid}/smaps_rollup")) {
        Ok(text) => kb_field(&text, "Pss:"),
        Err(_) => status_kb(pid, "VmRSS:"),
    }
}

/// The number after `key` on its line, e.g. `VmRSS:   1234 kB`.
fn kb_field(text: &str, key: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process_and_its_group() {
        let me = Watched::Pid(std::process::id())
            .read()
            .expect("own /proc entry");
        assert!(me.mem_kb > 0);
        let (_, pgrp) = stat(std::process::id()).expect("own stat");
        let group = Watched::Group(pgrp).read().expect("own group");
        assert!(group.mem_kb > 0);
        assert!(Watched::Pid(u32::MAX).read().is_none());
        assert_eq!(kb_field("A: 1\nVmRSS:\t  42 kB\n", "VmRSS:"), Some(42));
    }
}
