//! Linux capabilities for exec tasks: names and numbers, Nomad's default set, and the
//! computation of a task's set from the plugin's `allow_caps` and the task's
//! `cap_add`/`cap_drop` (Nomad's `capabilities.Calculate`).

use std::fmt;

/// Capability names in kernel order (`CAP_CHOWN` is 0), without the `CAP_` prefix.
const NAMES: &[&str] = &[
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// Nomad's default capabilities for exec tasks (Docker's defaults without `NET_RAW`).
pub const NOMAD_DEFAULTS: &[&str] = &[
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];

/// The set Nomad gives tasks that run as `root` (its "legacy" set), whatever `cap_add`,
/// `cap_drop` and `allow_caps` say.
const LEGACY_ROOT: &[&str] = &[
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
];

/// A set of capabilities as a bit mask (bit n = capability number n), the form
/// `/proc/<pid>/status` prints (`CapEff`) and `capset(2)` takes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CapSet(pub u64);

impl CapSet {
    /// Every capability this kernel knows (`/proc/sys/kernel/cap_last_cap`).
    pub fn supported() -> CapSet {
        let last = last_cap();
        CapSet(if last >= 63 {
            u64::MAX
        } else {
            (1u64 << (last + 1)) - 1
        })
    }

    /// Parses names such as `CAP_CHOWN`, `chown` or `all` (every supported capability).
    pub fn parse<S: AsRef<str>>(names: &[S]) -> Result<CapSet, String> {
        let mut set = CapSet::default();
        for n in names {
            let norm = normalize(n.as_ref());
            if norm == "ALL" {
                set.0 |= CapSet::supported().0;
                continue;
            }
            let idx = NAMES.iter().position(|c| *c == norm).ok_or_else(|| {
                format!(
                    "unknown capability {:?}; use names such as \"chown\", \"net_raw\" or \"all\"",
                    n.as_ref()
                )
            })?;
            set.0 |= 1 << idx;
        }
        Ok(set)
    }

    /// Nomad's default exec set.
    pub fn nomad_defaults() -> CapSet {
        // The names are constants known to be valid.
        CapSet::parse(NOMAD_DEFAULTS).unwrap_or_default()
    }

    /// The set for tasks running as root (Nomad's legacy set, limited to this kernel).
    pub fn legacy_root() -> CapSet {
        CapSet(CapSet::parse(LEGACY_ROOT).unwrap_or_default().0 & CapSet::supported().0)
    }

    pub fn contains(self, cap: u32) -> bool {
        cap < 64 && self.0 & (1 << cap) != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Lower-case names without prefix, in kernel order.
    pub fn names(self) -> Vec<String> {
        (0..64u32)
            .filter(|c| self.contains(*c))
            .map(|c| {
                NAMES
                    .get(c as usize)
                    .map(|n| n.to_ascii_lowercase())
                    .unwrap_or_else(|| format!("cap_{c}"))
            })
            .collect()
    }
}

impl fmt::Display for CapSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.names().join(", "))
    }
}

fn normalize(name: &str) -> String {
    let up = name.trim().to_ascii_uppercase();
    up.strip_prefix("CAP_").map(str::to_string).unwrap_or(up)
}

/// The highest capability number the kernel supports.
pub fn last_cap() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40)
        .min(63)
}

/// A task's capabilities as Nomad computes them: the defaults allowed by the plugin's
/// `allow_caps`, minus `cap_drop` (`"all"` drops everything), plus `cap_add`. Adding a
/// capability that `allow_caps` does not allow is an error.
pub fn calculate(
    allow_caps: &[String],
    cap_add: &[String],
    cap_drop: &[String],
) -> Result<CapSet, String> {
    let allow = CapSet::parse(allow_caps)?;
    let add = CapSet::parse(cap_add)?;
    let missing = CapSet(add.0 & !allow.0);
    if !missing.is_empty() {
        return Err(format!(
            "driver does not allow the following capabilities: {missing}; add them to the \
             exec plugin's allow_caps"
        ));
    }
    let mut result = CapSet(CapSet::nomad_defaults().0 & allow.0);
    let drop_all = cap_drop.iter().any(|c| normalize(c) == "ALL");
    if drop_all {
        result = CapSet::default();
    } else {
        result.0 &= !CapSet::parse(cap_drop)?.0;
    }
    Ok(CapSet(result.0 | add.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn defaults_have_thirteen_caps_and_no_net_raw() {
        let d = CapSet::nomad_defaults();
        assert_eq!(d.0.count_ones(), 13);
        assert!(!d.contains(13), "net_raw");
        assert!(d.contains(0), "chown");
        // Bits of Docker's default set without NET_RAW (as /proc/<pid>/status prints it).
        assert_eq!(d.0, 0xa80425fb & !(1 << 13));
    }

    #[test]
    fn parse_accepts_prefixes_and_case() {
        assert_eq!(CapSet::parse(&["CAP_CHOWN", "kill"]).unwrap().0, 1 | 1 << 5);
        assert!(CapSet::parse(&["cap_nonsense"]).is_err());
        assert_eq!(CapSet::parse(&["all"]).unwrap(), CapSet::supported());
    }

    #[test]
    fn calculate_follows_nomad() {
        let allow = s(NOMAD_DEFAULTS);
        assert_eq!(
            calculate(&allow, &[], &[]).unwrap(),
            CapSet::nomad_defaults()
        );
        let r = calculate(&allow, &s(&["chown"]), &s(&["all"])).unwrap();
        assert_eq!(r.0, 1);
        let r = calculate(&allow, &[], &s(&["CAP_KILL"])).unwrap();
        assert!(!r.contains(5) && r.contains(0));
        let e = calculate(&allow, &s(&["net_raw"]), &[]).unwrap_err();
        assert!(e.contains("net_raw"), "{e}");
        // allow_caps narrower than the defaults narrows the task too.
        let r = calculate(&s(&["chown"]), &[], &[]).unwrap();
        assert_eq!(r.0, 1);
        let r = calculate(&s(&["all"]), &s(&["sys_admin"]), &[]).unwrap();
        assert!(r.contains(21));
    }
}
