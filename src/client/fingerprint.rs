//! Node fingerprinting under Nomad's attribute names: kernel, OS, CPU, memory, host name,
//! network address, and the versions Caravan reports.

use std::collections::BTreeMap;

pub struct HostFacts {
    pub attributes: BTreeMap<String, String>,
    /// Total CPU in MHz (cores × MHz), Nomad's `cpu.totalcompute`.
    pub cpu_total_mhz: i64,
    pub cpu_cores: u16,
    pub memory_mb: i64,
    pub disk_mb: i64,
}

pub fn fingerprint(data_dir: &std::path::Path, network_ip: &str) -> HostFacts {
    let mut a = BTreeMap::new();
    let uts = nix::sys::utsname::uname().ok();
    let kernel_name = uts
        .as_ref()
        .map(|u| u.sysname().to_string_lossy().to_lowercase())
        .unwrap_or_else(|| "linux".into());
    let kernel_release = uts
        .as_ref()
        .map(|u| u.release().to_string_lossy().to_string())
        .unwrap_or_default();
    a.insert("kernel.name".into(), kernel_name);
    a.insert(
        "kernel.version".into(),
        kernel_release.split('-').next().unwrap_or("").to_string(),
    );
    a.insert("kernel.release".into(), kernel_release);
    a.insert("kernel.arch".into(), std::env::consts::ARCH.into());
    a.insert("cpu.arch".into(), go_arch(std::env::consts::ARCH).into());
    a.insert("arch".into(), go_arch(std::env::consts::ARCH).into());

    let os_release = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    let field = |k: &str| {
        os_release
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .map(|v| v.trim_matches('"').to_string())
    };
    if let Some(id) = field("ID") {
        a.insert("os.name".into(), id);
    }
    if let Some(v) = field("VERSION_ID") {
        a.insert("os.version".into(), v);
    }
    a.insert("os.signals".into(), "SIGABRT,SIGALRM,SIGBUS,SIGCHLD,SIGCONT,SIGFPE,SIGHUP,SIGILL,SIGINT,SIGIO,SIGKILL,SIGPIPE,SIGPROF,SIGQUIT,SIGSEGV,SIGSTOP,SIGSYS,SIGTERM,SIGTRAP,SIGTSTP,SIGTTIN,SIGTTOU,SIGURG,SIGUSR1,SIGUSR2,SIGWINCH,SIGXCPU,SIGXFSZ".into());

    let cores = std::thread::available_parallelism()
        .map(|n| n.get() as u16)
        .unwrap_or(1);
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let mhz = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("cpu MHz").and_then(|r| r.split(':').nth(1)))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .unwrap_or(1000.0)
        .round() as i64;
    let model = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .and_then(|r| r.split(':').nth(1))
        })
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    let total = mhz * cores as i64;
    a.insert("cpu.numcores".into(), cores.to_string());
    a.insert("cpu.frequency".into(), mhz.to_string());
    a.insert("cpu.totalcompute".into(), total.to_string());
    a.insert("cpu.usablecompute".into(), total.to_string());
    a.insert("cpu.reservablecores".into(), cores.to_string());
    if !model.is_empty() {
        a.insert("cpu.modelname".into(), model);
    }

    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kb = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<i64>().ok())
        .unwrap_or(0);
    a.insert("memory.totalbytes".into(), (mem_kb * 1024).to_string());

    let disk_mb = nix::sys::statvfs::statvfs(data_dir)
        .map(|s| (s.blocks_available() as i64 * s.fragment_size() as i64) / (1024 * 1024))
        .unwrap_or(0);
    a.insert(
        "unique.storage.volume".into(),
        data_dir.to_string_lossy().into(),
    );
    a.insert(
        "unique.storage.bytesfree".into(),
        (disk_mb * 1024 * 1024).to_string(),
    );

    let host = nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().to_string())
        .unwrap_or_else(|_| "localhost".into());
    a.insert("unique.hostname".into(), host);
    a.insert("unique.network.ip-address".into(), network_ip.into());

    a.insert(
        "nomad.version".into(),
        caravan_structs::NOMAD_API_VERSION.into(),
    );
    a.insert("nomad.revision".into(), "caravan".into());
    a.insert(
        "caravan.version".into(),
        caravan_structs::CARAVAN_VERSION.into(),
    );

    HostFacts {
        attributes: a,
        cpu_total_mhz: total,
        cpu_cores: cores,
        memory_mb: mem_kb / 1024,
        disk_mb,
    }
}

/// Rust's architecture names as Go (and so Nomad job files) spell them.
fn go_arch(a: &str) -> &str {
    match a {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn reports_nomad_names() {
        let f = super::fingerprint(std::path::Path::new("/"), "127.0.0.1");
        for k in [
            "kernel.name",
            "kernel.version",
            "cpu.arch",
            "cpu.numcores",
            "cpu.totalcompute",
            "memory.totalbytes",
            "unique.hostname",
            "unique.network.ip-address",
            "nomad.version",
            "caravan.version",
        ] {
            assert!(f.attributes.contains_key(k), "missing {k}");
        }
        assert!(f.cpu_total_mhz > 0);
        assert!(f.memory_mb > 0);
    }
}
