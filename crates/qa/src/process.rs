//! What this process has used so far, read from Linux's `/proc/self` (None elsewhere): CPU
//! time ([`cpu_seconds`]), peak and current resident memory ([`peak_resident_mb`],
//! [`resident_bytes`]). The parsers are pure functions over the files' text.

/// Linux's USER_HZ (clock ticks per second of `/proc/self/stat`): 100 on every architecture
/// we run on.
const CLOCK_TICKS_PER_S: f64 = 100.0;

/// Page size of `/proc/self/statm`, bytes.
const PAGE_BYTES: u64 = 4096;

/// Process CPU time (user + system, all threads), seconds, from `/proc/self/stat`.
pub fn cpu_seconds() -> Option<f64> {
    parse_cpu_seconds(&std::fs::read_to_string("/proc/self/stat").ok()?)
}

/// Peak resident memory of this process so far (`VmHWM` of `/proc/self/status`), MB.
pub fn peak_resident_mb() -> Option<f64> {
    parse_peak_resident_mb(&std::fs::read_to_string("/proc/self/status").ok()?)
}

/// Resident memory, bytes, from `/proc/self/statm`.
pub fn resident_bytes() -> Option<u64> {
    parse_resident_bytes(&std::fs::read_to_string("/proc/self/statm").ok()?)
}

/// CPU seconds (utime + stime) from the text of `/proc/<pid>/stat`.
pub fn parse_cpu_seconds(stat: &str) -> Option<f64> {
    // Fields after the command name (which may hold spaces and parentheses) start after the
    // last ')'; utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / CLOCK_TICKS_PER_S)
}

/// Peak resident memory, MB, from the text of `/proc/<pid>/status`.
pub fn parse_peak_resident_mb(status: &str) -> Option<f64> {
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Resident memory, bytes, from the text of `/proc/<pid>/statm`.
pub fn parse_resident_bytes(statm: &str) -> Option<u64> {
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * PAGE_BYTES)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_survives_a_command_name_with_spaces_and_parentheses() {
        let stat = "4242 (my (odd) cmd) S 1 4242 4242 0 -1 4194560 500 0 0 0 250 75 0 0 20 0 3 0";
        assert_eq!(parse_cpu_seconds(stat), Some(3.25));
        assert_eq!(parse_cpu_seconds("4242 (cmd) S 1"), None);
        assert_eq!(parse_cpu_seconds(""), None);
    }

    #[test]
    fn memory_figures() {
        let status = "Name:\tattune\nVmPeak:\t  9000 kB\nVmHWM:\t    2048 kB\n";
        assert_eq!(parse_peak_resident_mb(status), Some(2.0));
        assert_eq!(parse_peak_resident_mb("Name:\tx\n"), None);
        assert_eq!(parse_resident_bytes("100 25 3 1 0 10 0"), Some(25 * 4096));
    }

    #[test]
    fn this_process_has_used_some_cpu_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(cpu_seconds().is_some());
            assert!(peak_resident_mb().is_some_and(|m| m > 0.0));
            assert!(resident_bytes().is_some_and(|b| b > 0));
        }
    }
}
