//! The agent's logs: one tracing layer formats each event once per format (text or JSON, as
//! Nomad's hclog writes them) and hands it to stderr, the `log_file` (rotated by size, age and
//! count), syslog, and every `/v1/agent/monitor` subscriber at that subscriber's own level.
//! The agent's level changes at run time (SIGHUP reload) without restarting anything.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

/// What the agent config says about logging.
#[derive(Debug, Clone, PartialEq)]
pub struct LogSettings {
    pub level: Level,
    /// `log_level = "OFF"`: nothing goes to the agent's own outputs.
    pub off: bool,
    pub json: bool,
    pub file: Option<PathBuf>,
    /// 0: no size limit.
    pub rotate_bytes: u64,
    pub rotate_duration: Duration,
    /// 0: keep every rotated file.
    pub rotate_max_files: usize,
    pub syslog: Option<String>,
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings {
            level: Level::INFO,
            off: false,
            json: false,
            file: None,
            rotate_bytes: 0,
            rotate_duration: Duration::from_secs(24 * 3600),
            rotate_max_files: 0,
            syslog: None,
        }
    }
}

/// Parses a Nomad log level (`TRACE`, `DEBUG`, `INFO`, `WARN`, `ERR`/`ERROR`, `OFF`); `None`
/// for `OFF`.
pub fn parse_level(s: &str) -> Result<Option<Level>, String> {
    match s.trim().to_ascii_uppercase().as_str() {
        "TRACE" => Ok(Some(Level::TRACE)),
        "DEBUG" => Ok(Some(Level::DEBUG)),
        "" | "INFO" => Ok(Some(Level::INFO)),
        "WARN" | "WARNING" => Ok(Some(Level::WARN)),
        "ERR" | "ERROR" => Ok(Some(Level::ERROR)),
        "OFF" => Ok(None),
        other => Err(format!(
            "invalid log level {other:?}: use TRACE, DEBUG, INFO, WARN, ERROR or OFF"
        )),
    }
}

fn level_code(l: Level) -> u8 {
    match l {
        Level::ERROR => 1,
        Level::WARN => 2,
        Level::INFO => 3,
        Level::DEBUG => 4,
        Level::TRACE => 5,
    }
}

/// Crates whose chatter stays out below WARN unless the level is TRACE.
const NOISY: &[&str] = &["hyper", "h2", "reqwest", "rustls", "tower", "mio", "want"];

fn noisy(target: &str) -> bool {
    NOISY
        .iter()
        .any(|n| target == *n || target.starts_with(&format!("{n}::")))
}

/// One monitor subscriber.
struct Monitor {
    level: u8,
    json: bool,
    tx: mpsc::Sender<String>,
}

struct Shared {
    /// The agent's level (0 = off).
    level: AtomicU8,
    /// The most verbose level anyone wants (agent or a monitor).
    max: AtomicU8,
    json: AtomicBool,
    stderr: bool,
    file: Mutex<Option<RotatingFile>>,
    syslog: Mutex<Option<Syslog>>,
    monitors: Mutex<Vec<Monitor>>,
    dropped: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

/// The handle the agent keeps: reload settings, subscribe monitors.
#[derive(Clone)]
pub struct Logs {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Logs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Logs")
            .field("level", &self.level())
            .finish()
    }
}

/// The tracing layer; install it with `tracing_subscriber::registry().with(layer)`.
pub struct LogLayer {
    shared: Arc<Shared>,
}

impl Logs {
    /// Builds the outputs `settings` names. `stderr` is false in tests.
    pub fn new(settings: &LogSettings, stderr: bool) -> std::io::Result<(Logs, LogLayer)> {
        let shared = Arc::new(Shared {
            level: AtomicU8::new(0),
            max: AtomicU8::new(0),
            json: AtomicBool::new(false),
            stderr,
            file: Mutex::new(None),
            syslog: Mutex::new(None),
            monitors: Mutex::new(Vec::new()),
            dropped: AtomicU64::new(0),
        });
        let logs = Logs {
            shared: shared.clone(),
        };
        logs.apply(settings)?;
        Ok((logs, LogLayer { shared }))
    }

    /// Applies new settings (SIGHUP): level, format, file and syslog outputs.
    pub fn apply(&self, s: &LogSettings) -> std::io::Result<()> {
        let file = match &s.file {
            Some(p) => Some(RotatingFile::open(
                p,
                s.rotate_bytes,
                s.rotate_duration,
                s.rotate_max_files,
            )?),
            None => None,
        };
        let syslog = match &s.syslog {
            Some(facility) => Some(Syslog::connect(facility)?),
            None => None,
        };
        {
            let mut cur = lock(&self.shared.file);
            // Keep the open file when it is the same one, so rotation state carries over.
            let same = matches!((&*cur, &file), (Some(a), Some(b)) if a.base == b.base);
            if !same {
                *cur = file;
            } else if let Some(f) = cur.as_mut() {
                f.max_bytes = s.rotate_bytes;
                f.max_age = s.rotate_duration;
                f.max_files = s.rotate_max_files;
            }
        }
        *lock(&self.shared.syslog) = syslog;
        self.shared.json.store(s.json, Ordering::Relaxed);
        let level = if s.off { 0 } else { level_code(s.level) };
        self.shared.level.store(level, Ordering::Relaxed);
        self.refresh_max();
        Ok(())
    }

    fn refresh_max(&self) {
        let mut monitors = lock(&self.shared.monitors);
        monitors.retain(|m| !m.tx.is_closed());
        let max = monitors
            .iter()
            .map(|m| m.level)
            .chain(std::iter::once(self.shared.level.load(Ordering::Relaxed)))
            .max()
            .unwrap_or(0);
        drop(monitors);
        if self.shared.max.swap(max, Ordering::Relaxed) != max {
            tracing::callsite::rebuild_interest_cache();
        }
    }

    /// A stream of log lines at `level` for `/v1/agent/monitor`. Lines are dropped (and
    /// counted) when the subscriber falls behind, never blocking the agent.
    pub fn monitor(&self, level: Level, json: bool) -> mpsc::Receiver<String> {
        let (tx, rx) = mpsc::channel(512);
        lock(&self.shared.monitors).push(Monitor {
            level: level_code(level),
            json,
            tx,
        });
        self.refresh_max();
        rx
    }

    /// Forgets monitors whose receivers are gone.
    pub fn prune(&self) {
        self.refresh_max();
    }

    /// Log lines dropped because a monitor fell behind.
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    /// The agent's current level, for `/v1/agent/self`.
    pub fn level(&self) -> &'static str {
        match self.shared.level.load(Ordering::Relaxed) {
            0 => "OFF",
            1 => "ERROR",
            2 => "WARN",
            3 => "INFO",
            4 => "DEBUG",
            _ => "TRACE",
        }
    }
}

#[derive(Default)]
struct Fields {
    message: String,
    pairs: Vec<(String, String)>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = value.to_string();
        } else {
            self.pairs
                .push((field.name().to_string(), value.to_string()));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let v = format!("{value:?}");
        if field.name() == "message" {
            self.message = v;
        } else {
            self.pairs.push((field.name().to_string(), v));
        }
    }
}

fn now_rfc3339_millis() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0);
    // rfc3339 gives nanoseconds; hclog shows milliseconds with the zone.
    let full = crate::util::rfc3339(nanos);
    match full.split_once('.') {
        Some((secs, frac)) => format!("{secs}.{}Z", &frac[..3.min(frac.len())]),
        None => full,
    }
}

fn level_name(l: &Level) -> &'static str {
    match *l {
        Level::ERROR => "ERROR",
        Level::WARN => "WARN",
        Level::INFO => "INFO",
        Level::DEBUG => "DEBUG",
        Level::TRACE => "TRACE",
    }
}

/// `2026-12-02T17:40:00.123Z [INFO]  client: starting allocation: alloc=...`
fn format_text(ts: &str, meta: &Metadata<'_>, f: &Fields) -> String {
    let mut s = format!("{ts} [{}] ", level_name(meta.level()));
    if level_name(meta.level()).len() == 4 {
        s.push(' ');
    }
    let module = meta.target().trim_start_matches("caravan::");
    let _ = write!(s, "{module}: {}", f.message);
    if !f.pairs.is_empty() {
        s.push(':');
        for (k, v) in &f.pairs {
            if v.contains(' ') {
                let _ = write!(s, " {k}=\"{v}\"");
            } else {
                let _ = write!(s, " {k}={v}");
            }
        }
    }
    s
}

/// hclog's JSON: `@level`, `@message`, `@module`, `@timestamp`, then the fields.
fn format_json(ts: &str, meta: &Metadata<'_>, f: &Fields) -> String {
    let mut m = serde_json::Map::new();
    m.insert(
        "@level".into(),
        level_name(meta.level()).to_ascii_lowercase().into(),
    );
    m.insert("@message".into(), f.message.clone().into());
    m.insert(
        "@module".into(),
        meta.target().trim_start_matches("caravan::").into(),
    );
    m.insert("@timestamp".into(), ts.into());
    for (k, v) in &f.pairs {
        m.insert(k.clone(), v.clone().into());
    }
    serde_json::Value::Object(m).to_string()
}

impl<S: Subscriber> Layer<S> for LogLayer {
    fn enabled(&self, meta: &Metadata<'_>, _: Context<'_, S>) -> bool {
        let max = self.shared.max.load(Ordering::Relaxed);
        let code = level_code(*meta.level());
        if code > max {
            return false;
        }
        !(noisy(meta.target()) && code > 2 && max < 5)
    }

    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        use tracing::level_filters::LevelFilter;
        Some(match self.shared.max.load(Ordering::Relaxed) {
            0 => LevelFilter::OFF,
            1 => LevelFilter::ERROR,
            2 => LevelFilter::WARN,
            3 => LevelFilter::INFO,
            4 => LevelFilter::DEBUG,
            _ => LevelFilter::TRACE,
        })
    }

    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let meta = event.metadata();
        let code = level_code(*meta.level());
        let mut fields = Fields::default();
        event.record(&mut fields);
        let ts = now_rfc3339_millis();
        let mut text: Option<String> = None;
        let mut json: Option<String> = None;
        let mut line = |as_json: bool| -> String {
            if as_json {
                json.get_or_insert_with(|| format_json(&ts, meta, &fields))
                    .clone()
            } else {
                text.get_or_insert_with(|| format_text(&ts, meta, &fields))
                    .clone()
            }
        };
        if code <= self.shared.level.load(Ordering::Relaxed) {
            let l = line(self.shared.json.load(Ordering::Relaxed));
            if self.shared.stderr {
                let _ = writeln!(std::io::stderr().lock(), "{l}");
            }
            if let Some(f) = lock(&self.shared.file).as_mut() {
                f.write_line(&l);
            }
            if let Some(s) = lock(&self.shared.syslog).as_ref() {
                s.send(*meta.level(), &format_text("", meta, &fields));
            }
        }
        let monitors = lock(&self.shared.monitors);
        for m in monitors.iter().filter(|m| code <= m.level) {
            if m.tx.try_send(line(m.json)).is_err() {
                self.shared.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// `log_file`: a directory (then `caravan-<unix time>.log` inside it) or a file path whose
/// rotated copies get the time stamp before the extension, as Nomad names them.
pub struct RotatingFile {
    base: PathBuf,
    current: PathBuf,
    file: std::fs::File,
    written: u64,
    opened: std::time::Instant,
    max_bytes: u64,
    max_age: Duration,
    max_files: usize,
}

impl RotatingFile {
    pub fn open(
        base: &Path,
        max_bytes: u64,
        max_age: Duration,
        max_files: usize,
    ) -> std::io::Result<RotatingFile> {
        let base = if base.is_dir() || base.to_string_lossy().ends_with('/') {
            base.join("caravan.log")
        } else {
            base.to_path_buf()
        };
        if let Some(parent) = base.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&base)
            .map_err(|e| {
                std::io::Error::new(e.kind(), format!("log_file {}: {e}", base.display()))
            })?;
        let written = file.metadata().map(|m| m.len()).unwrap_or(0);
        Ok(RotatingFile {
            current: base.clone(),
            base,
            file,
            written,
            opened: std::time::Instant::now(),
            max_bytes,
            max_age,
            max_files,
        })
    }

    fn write_line(&mut self, line: &str) {
        let len = line.len() as u64 + 1;
        let too_big = self.max_bytes > 0 && self.written > 0 && self.written + len > self.max_bytes;
        let too_old = !self.max_age.is_zero() && self.opened.elapsed() >= self.max_age;
        if too_big || too_old {
            if let Err(e) = self.rotate() {
                let _ = writeln!(std::io::stderr(), "log_file rotation failed: {e}");
            }
        }
        if writeln!(self.file, "{line}").is_ok() {
            self.written += len;
        }
    }

    /// Renames the current file to `<stem>-<unix nanos>.<ext>`, opens a fresh one and prunes
    /// old rotated files beyond `max_files`.
    fn rotate(&mut self) -> std::io::Result<()> {
        let stem = self
            .base
            .file_stem()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_else(|| "caravan".into());
        let ext = self
            .base
            .extension()
            .map(|e| format!(".{}", e.to_string_lossy()))
            .unwrap_or_default();
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let rotated = self.base.with_file_name(format!("{stem}-{nanos}{ext}"));
        std::fs::rename(&self.current, &rotated)?;
        self.file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.base)?;
        self.written = 0;
        self.opened = std::time::Instant::now();
        if self.max_files > 0 {
            let dir = self
                .base
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            let prefix = format!("{stem}-");
            let mut old: Vec<PathBuf> = std::fs::read_dir(dir)?
                .filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| {
                    let name = p
                        .file_name()
                        .map(|n| n.to_string_lossy().to_string())
                        .unwrap_or_default();
                    name.starts_with(&prefix) && name.ends_with(&ext) && *p != self.base
                })
                .collect();
            old.sort();
            while old.len() > self.max_files {
                let _ = std::fs::remove_file(old.remove(0));
            }
        }
        Ok(())
    }
}

/// RFC 3164 messages to the local syslog socket.
struct Syslog {
    socket: std::os::unix::net::UnixDatagram,
    facility: u8,
}

impl Syslog {
    fn connect(facility: &str) -> std::io::Result<Syslog> {
        let code = match facility.to_ascii_uppercase().as_str() {
            "KERN" => 0,
            "USER" => 1,
            "MAIL" => 2,
            "DAEMON" => 3,
            "AUTH" => 4,
            "SYSLOG" => 5,
            "LPR" => 6,
            "NEWS" => 7,
            "UUCP" => 8,
            "CRON" => 9,
            "AUTHPRIV" => 10,
            "FTP" => 11,
            "" | "LOCAL0" => 16,
            "LOCAL1" => 17,
            "LOCAL2" => 18,
            "LOCAL3" => 19,
            "LOCAL4" => 20,
            "LOCAL5" => 21,
            "LOCAL6" => 22,
            "LOCAL7" => 23,
            other => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!("syslog_facility {other:?} is not a syslog facility (LOCAL0..LOCAL7, DAEMON, USER, ...)"),
                ))
            }
        };
        let socket = std::os::unix::net::UnixDatagram::unbound()?;
        let mut last = None;
        for path in ["/dev/log", "/var/run/syslog", "/var/run/log"] {
            match socket.connect(path) {
                Ok(()) => {
                    return Ok(Syslog {
                        socket,
                        facility: code,
                    })
                }
                Err(e) => last = Some(e),
            }
        }
        Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!(
                "enable_syslog: no syslog socket (/dev/log): {}",
                last.map(|e| e.to_string()).unwrap_or_default()
            ),
        ))
    }

    fn send(&self, level: Level, msg: &str) {
        let severity = match level {
            Level::ERROR => 3,
            Level::WARN => 4,
            Level::INFO => 6,
            Level::DEBUG | Level::TRACE => 7,
        };
        let pri = self.facility * 8 + severity;
        let line = format!(
            "<{pri}>caravan[{}]: {}",
            std::process::id(),
            msg.trim_start()
        );
        let _ = self.socket.send(line.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::layer::SubscriberExt;

    fn tmpdir() -> PathBuf {
        let d =
            std::env::temp_dir().join(format!("caravan-log-test-{}", caravan_structs::new_id()));
        std::fs::create_dir_all(&d).expect("tmp");
        d
    }

    #[test]
    fn levels_parse_as_nomad_names_them() {
        assert_eq!(parse_level("debug"), Ok(Some(Level::DEBUG)));
        assert_eq!(parse_level("ERR"), Ok(Some(Level::ERROR)));
        assert_eq!(parse_level("off"), Ok(None));
        assert!(parse_level("loud")
            .unwrap_err()
            .contains("invalid log level"));
    }

    #[test]
    fn file_gets_text_or_json_and_the_level_changes_on_apply() {
        let dir = tmpdir();
        let file = dir.join("agent.log");
        let mut s = LogSettings {
            file: Some(file.clone()),
            ..Default::default()
        };
        let (logs, layer) = Logs::new(&s, false).expect("logs");
        let sub = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(sub, || {
            tracing::debug!("hidden at info");
            tracing::info!(alloc = "a1", "starting allocation");
            s.level = Level::DEBUG;
            s.json = true;
            logs.apply(&s).expect("apply");
            tracing::debug!(task = "t", "now visible");
        });
        let text = std::fs::read_to_string(&file).expect("read");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(
            lines[0].contains("[INFO]  ") && lines[0].ends_with("starting allocation: alloc=a1"),
            "{}",
            lines[0]
        );
        let j: serde_json::Value = serde_json::from_str(lines[1]).expect("json line");
        assert_eq!(j["@level"], "debug");
        assert_eq!(j["@message"], "now visible");
        assert_eq!(j["task"], "t");
        assert_eq!(logs.level(), "DEBUG");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn rotation_by_size_keeps_max_files() {
        let dir = tmpdir();
        let mut f = RotatingFile::open(&dir, 100, Duration::from_secs(3600), 2).expect("open");
        for i in 0..40 {
            f.write_line(&format!("line {i:03} with some padding text"));
        }
        let names: Vec<String> = std::fs::read_dir(&dir)
            .expect("dir")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().to_string())
            .collect();
        // The live file plus at most two rotated ones.
        assert!(names.contains(&"caravan.log".to_string()), "{names:?}");
        assert_eq!(names.len(), 3, "{names:?}");
        for n in &names {
            let len = std::fs::metadata(dir.join(n)).expect("meta").len();
            assert!(len <= 100, "{n} is {len} bytes");
        }
        let live = std::fs::read_to_string(dir.join("caravan.log")).expect("live");
        assert!(live.contains("line 039"), "{live}");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn monitors_get_their_own_level_and_leave_the_agent_level_alone() {
        let s = LogSettings {
            level: Level::WARN,
            ..Default::default()
        };
        let (logs, layer) = Logs::new(&s, false).expect("logs");
        let mut rx = logs.monitor(Level::DEBUG, false);
        let sub = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(sub, || {
            tracing::debug!("for the monitor");
            tracing::trace!("for nobody");
        });
        let line = rx.recv().await.expect("line");
        assert!(
            line.contains("[DEBUG] ") && line.contains("for the monitor"),
            "{line}"
        );
        assert!(rx.try_recv().is_err());
        assert_eq!(logs.level(), "WARN");
        drop(rx);
        logs.prune();
        assert_eq!(logs.shared.max.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn unknown_syslog_facility_is_an_error() {
        let err = Syslog::connect("LOCAL9").err().expect("refused");
        assert!(err.to_string().contains("not a syslog facility"), "{err}");
    }
}
