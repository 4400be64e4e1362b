//! Renders the task's `template` blocks (Nomad's `template_hook.go`) with `caravan-templates`:
//! every template is rendered once before the task starts (while Consul data is missing the
//! task gets Nomad's "Missing: kv.block(app/config)" events), then each Consul dependency is
//! watched with a blocking query and a change re-renders the templates; a template whose text
//! changed applies its `change_mode` (`restart`, `signal` with `change_signal`, `noop`).
//! Destinations and `source` files stay inside the allocation directory. `env = true` files
//! are merged into the task environment (again after a re-render, for the next start); `once`, `wait { min max }`
//! (quiescence before a re-render), `splay`, `perms`, `uid`/`gid` apply, with the client's
//! `template {}` settings (denylist, `file` sandbox, stale reads, blocking wait, default and
//! bounded `wait`, Consul retries: a dependency that keeps failing fails the task). Nomad
//! variables (`nomadVar`, `nomadVarExists`, `nomadVarList`) come from the servers, read with
//! the task's workload identity and watched the same way. Vault secrets (`secret`, `secrets`,
//! `pkiCert`) are read with the task's Vault token ([`super::template_vault`]) and renewed or
//! read again as their leases require; while Vault is unreachable the task keeps its last
//! secrets ([`crate::client::vault_outage`]). Files read with `file` are watched on disk, and,
//! beyond Nomad, so is a `source` file: a change renders the templates reading it again.
//! `restart { render_templates = true }` reads everything afresh when the task restarts.

use super::template_vault::{self, refused, FetchError, VaultSource};
use super::{HookContext, HookError, TaskControl, TaskHook};
use crate::client::allocdir::resolve_within;
use crate::client::rpc::ServerRpc;
use crate::client::template_settings::{self, Retry, SharedTemplateSettings};
use crate::client::vault_outage::{Staleness, VaultOutage};
use caravan_consul::{Consistency, ConsulClient, QueryMeta, QueryOptions};
use caravan_driver::async_trait;
use caravan_structs::TaskEvent;
use caravan_templates::{
    render_parsed, DataSource, Dependency, MapSource, RenderOptions, SourceKind, Template,
};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Nomad's event type while template data is missing, and on a re-render restart/signal.
pub const TASK_EVENT_TEMPLATE: &str = "Template";
/// At most one "Missing" event this often.
const MISSING_EVENT_EVERY: Duration = Duration::from_secs(3);
/// How long one first-render query blocks before the hook checks for a kill.
const FIRST_RENDER_WAIT: Duration = Duration::from_secs(1);

/// One `template` block, as the job's JSON carries it.
#[derive(Debug, Clone)]
struct Spec {
    data: Option<String>,
    source: Option<PathBuf>,
    dest: PathBuf,
    change_mode: String,
    change_signal: String,
    perms: u32,
    env: bool,
    left: String,
    right: String,
    error_on_missing_key: bool,
    /// Rendered once, never re-rendered (`once`).
    once: bool,
    /// Quiescence after a change (`wait { min max }`).
    wait: Option<(Duration, Duration)>,
    /// The most a change waits at random before its restart or signal (`splay`).
    splay: Duration,
    uid: Option<u32>,
    gid: Option<u32>,
    /// `change_script` for `change_mode = "script"`.
    script: Option<ChangeScript>,
}

/// A template's `change_script { command args timeout fail_on_error }`.
#[derive(Debug, Clone)]
struct ChangeScript {
    command: String,
    args: Vec<String>,
    timeout: Duration,
    fail_on_error: bool,
}

fn script_of(v: &Value) -> Option<ChangeScript> {
    let command = v.get("Command")?.as_str()?.to_string();
    if command.is_empty() {
        return None;
    }
    let timeout = nanos(&v["Timeout"]);
    Some(ChangeScript {
        command,
        args: v["Args"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default(),
        // Nomad's default.
        timeout: if timeout.is_zero() {
            Duration::from_secs(5)
        } else {
            timeout
        },
        fail_on_error: v["FailOnError"].as_bool().unwrap_or(false),
    })
}

fn spec_of(ctx: &HookContext, i: usize, t: &Value) -> Result<Spec, String> {
    let s = |k: &str| {
        t.get(k)
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_string()
    };
    let interp = |v: String| match &ctx.task_env {
        Some(env) => env.interpolate(&v),
        None => v,
    };
    let task_rel = |p: &str| format!("{}/{}", ctx.task.name, p.trim_start_matches('/'));
    let dest_raw = interp(s("DestPath"));
    if dest_raw.is_empty() {
        return Err(format!("template {i}: destination is required"));
    }
    let dest = resolve_within(&ctx.alloc_dir.root, &task_rel(&dest_raw))
        .map_err(|e| format!("template {i}: destination {dest_raw:?}: {e}"))?;
    let source = match interp(s("SourcePath")) {
        p if p.is_empty() => None,
        p => Some(
            resolve_within(&ctx.alloc_dir.root, &task_rel(&p))
                .map_err(|e| format!("template {i}: source {p:?}: {e}"))?,
        ),
    };
    let data = Some(s("EmbeddedTmpl")).filter(|d| !d.is_empty());
    if data.is_none() && source.is_none() {
        return Err(format!("template {i}: one of data or source is required"));
    }
    let perms_s = s("Perms");
    let perms = if perms_s.is_empty() {
        0o644
    } else {
        u32::from_str_radix(&perms_s, 8)
            .map_err(|_| format!("template {i}: perms {perms_s:?} is not an octal mode"))?
    };
    let mut change_mode = s("ChangeMode");
    if change_mode.is_empty() {
        change_mode = "restart".into();
    }
    Ok(Spec {
        data,
        source,
        dest,
        change_mode,
        change_signal: s("ChangeSignal"),
        perms,
        env: t.get("Envvars").and_then(|v| v.as_bool()).unwrap_or(false),
        left: s("LeftDelim"),
        right: s("RightDelim"),
        error_on_missing_key: t
            .get("ErrMissingKey")
            .and_then(|v| v.as_bool())
            .unwrap_or(false),
        once: t.get("Once").and_then(|v| v.as_bool()).unwrap_or(false),
        wait: t.get("Wait").filter(|w| w.is_object()).map(|w| {
            let min = nanos(&w["Min"]);
            (min, nanos(&w["Max"]).max(min))
        }),
        splay: nanos(&t["Splay"]),
        uid: id_of(&t["Uid"]),
        gid: id_of(&t["Gid"]),
        script: t.get("ChangeScript").and_then(script_of),
    })
}

fn nanos(v: &Value) -> Duration {
    Duration::from_nanos(v.as_u64().unwrap_or(0))
}

/// A `uid`/`gid`: unset, null and negative values mean "leave as is".
fn id_of(v: &Value) -> Option<u32> {
    v.as_i64().and_then(|i| u32::try_from(i).ok())
}

/// How one Consul read is made.
#[derive(Debug, Clone, Copy)]
struct ReadOptions {
    /// A blocking query from this index (0: answer at once).
    index: u64,
    wait: Duration,
    /// Any server may answer if it is at most this far behind the leader (consul-template's
    /// `max_stale`); zero reads from the leader.
    max_stale: Duration,
}

/// Reads one dependency from Consul: the value in the shape `caravan-templates` expects and
/// Consul's index. A stale answer from a server too far behind is read again from the leader.
async fn fetch(
    c: &ConsulClient,
    dep: &Dependency,
    opts: ReadOptions,
) -> Result<(Value, u64), caravan_consul::ConsulError> {
    if !opts.max_stale.is_zero() {
        let (v, meta) = read(c, dep, opts, Consistency::Stale).await?;
        if meta.last_contact <= opts.max_stale {
            return Ok((v, meta.last_index));
        }
    }
    let (v, meta) = read(c, dep, opts, Consistency::Default).await?;
    Ok((v, meta.last_index))
}

async fn read(
    c: &ConsulClient,
    dep: &Dependency,
    opts: ReadOptions,
    consistency: Consistency,
) -> Result<(Value, QueryMeta), caravan_consul::ConsulError> {
    let q = |dc: &Option<String>| QueryOptions {
        datacenter: dc.clone(),
        wait_index: opts.index,
        wait_time: Some(opts.wait),
        consistency,
        ..Default::default()
    };
    Ok(match dep {
        Dependency::Kv { key, dc, .. } => {
            let (pair, meta) = c.kv_get(key, &q(dc)).await?;
            let v = match pair {
                Some(p) => Value::String(p.value_str()),
                None => Value::Null,
            };
            (v, meta)
        }
        Dependency::KvList { prefix, dc } => {
            let (pairs, meta) = c.kv_list(prefix, &q(dc)).await?;
            let list = pairs
                .into_iter()
                .map(|p| {
                    json!({"Key": p.key, "CreateIndex": p.create_index, "ModifyIndex": p.modify_index,
                           "LockIndex": p.lock_index, "Flags": p.flags,
                           "Value": p.value_str()})
                })
                .collect();
            (Value::Array(list), meta)
        }
        Dependency::Service {
            name,
            tag,
            dc,
            passing,
        } => {
            let mut o = q(dc);
            o.tags = tag.iter().cloned().collect();
            let (entries, meta) = c.health_service(name, *passing, &o).await?;
            let list = entries
                .into_iter()
                .map(|e| {
                    let status = format!("{:?}", e.aggregated_status()).to_lowercase();
                    let addr = if e.service.address.is_empty() {
                        e.node.address.clone()
                    } else {
                        e.service.address.clone()
                    };
                    json!({"Node": e.node.node, "NodeID": e.node.id, "NodeAddress": e.node.address,
                           "NodeDatacenter": e.node.datacenter, "NodeMeta": e.node.meta,
                           "Address": addr, "ID": e.service.id, "Name": e.service.service,
                           "Tags": e.service.tags, "ServiceMeta": e.service.meta,
                           "Port": e.service.port, "Status": status})
                })
                .collect();
            (Value::Array(list), meta)
        }
        Dependency::Services { dc } => {
            let (m, meta) = c.catalog_services(&q(dc)).await?;
            (serde_json::to_value(m).unwrap_or(Value::Null), meta)
        }
        // Answered by the Nomad servers or Vault ([`fetch_from`]), never by Consul.
        Dependency::NomadVar { .. }
        | Dependency::NomadVarList { .. }
        | Dependency::NomadService { .. }
        | Dependency::NomadServices
        | Dependency::VaultRead { .. }
        | Dependency::VaultWrite { .. }
        | Dependency::VaultList { .. }
        | Dependency::VaultPki { .. }
        | Dependency::File { .. } => (Value::Null, QueryMeta::default()),
    })
}

/// Where a task's template data comes from: Consul (when the client has it), the Nomad
/// servers (variables, read with the task's workload identity) and Vault (with the task's
/// Vault token, when it has a `vault` block).
#[derive(Clone)]
struct Sources {
    consul: Option<ConsulClient>,
    nomad: Option<NomadSource>,
    vault: Option<Arc<VaultSource>>,
}

#[derive(Clone)]
struct NomadSource {
    rpc: Arc<dyn ServerRpc>,
    alloc_id: String,
    task: String,
}

impl Sources {
    fn can_read(&self, dep: &Dependency) -> bool {
        match dep.kind() {
            SourceKind::Consul => self.consul.is_some(),
            SourceKind::Nomad => self.nomad.is_some(),
            SourceKind::Vault => self.vault.is_some(),
            // Read at render time; watched on disk, not fetched.
            SourceKind::Local => false,
        }
    }
}

/// Who answers a dependency, in messages.
fn source_name(kind: SourceKind) -> &'static str {
    match kind {
        SourceKind::Consul => "Consul",
        SourceKind::Nomad => "the servers",
        SourceKind::Vault => "Vault",
        SourceKind::Local => "disk",
    }
}

/// The client `template {}` retry block for a source, in messages.
fn retry_name(kind: SourceKind) -> &'static str {
    match kind {
        SourceKind::Consul => "consul_retry",
        SourceKind::Nomad => "nomad_retry",
        SourceKind::Vault => "vault_retry",
        SourceKind::Local => "(none)",
    }
}

/// Reads one dependency from whichever side answers it.
async fn fetch_from(
    src: &Sources,
    dep: &Dependency,
    opts: ReadOptions,
) -> Result<(Value, u64), FetchError> {
    match dep.kind() {
        SourceKind::Vault => {
            let Some(v) = &src.vault else {
                return Err(refused("this task has no vault block"));
            };
            v.fetch(dep).await.map(|f| (f.value, 0))
        }
        SourceKind::Nomad => {
            let Some(n) = &src.nomad else {
                return Err(refused("this client cannot reach the Nomad servers"));
            };
            n.rpc
                .template_var(&n.alloc_id, &n.task, dep, opts.index, opts.wait)
                .await
                .map_err(|e| refused(e.to_string()))
        }
        SourceKind::Local => Err(refused(format!("{dep} is read at render time"))),
        SourceKind::Consul => {
            let Some(c) = &src.consul else {
                return Err(refused("this client has no consul block"));
            };
            fetch(c, dep, opts)
                .await
                .map_err(|e| refused(e.to_string()))
        }
    }
}

/// The templates of one task and the data they were last rendered from.
struct Renderer {
    specs: Vec<Spec>,
    opts: Vec<RenderOptions>,
    cache: MapSource,
    /// The text last written to each destination.
    written: Vec<Option<String>>,
    /// Each template parsed, with the text it was parsed from (a `source` file is parsed
    /// again when its text changes).
    parsed: Vec<Option<(String, Template)>>,
    /// The dependencies each template read at its last render.
    used: Vec<HashSet<Dependency>>,
}

/// What changed since the last pass: only templates that read one of these dependencies (or
/// read a `source` file, when one changed) are rendered again.
#[derive(Default)]
struct Changed {
    deps: HashSet<Dependency>,
    sources: bool,
}

/// What one pass over the templates found.
struct Pass {
    deps: Vec<Dependency>,
    missing: Vec<Dependency>,
    /// Indexes of the templates whose file changed.
    changed: Vec<usize>,
}

impl Renderer {
    fn new(specs: Vec<Spec>, opts: Vec<RenderOptions>) -> Renderer {
        let n = specs.len();
        Renderer {
            specs,
            opts,
            cache: MapSource::new(),
            written: vec![None; n],
            parsed: vec![None; n],
            used: vec![HashSet::new(); n],
        }
    }

    /// Whether template `i` must be rendered for `changed` (`None`: all of them).
    fn affected(&self, i: usize, changed: Option<&Changed>) -> bool {
        let Some(c) = changed else { return true };
        self.written[i].is_none()
            || (c.sources && self.specs[i].source.is_some())
            || self.used[i].iter().any(|d| c.deps.contains(d))
    }

    /// The parsed template `i`, parsing its text when it is new.
    fn template(&mut self, i: usize) -> Result<&Template, String> {
        let spec = &self.specs[i];
        let text = match (&spec.data, &spec.source) {
            (Some(d), _) => d.clone(),
            (None, Some(p)) => std::fs::read_to_string(p)
                .map_err(|e| format!("template {i}: reading source {}: {e}", p.display()))?,
            (None, None) => String::new(),
        };
        if self.parsed[i].as_ref().is_none_or(|(t, _)| *t != text) {
            let o = &self.opts[i];
            let t = Template::parse_delims(&o.name, &text, &o.left_delimiter, &o.right_delimiter)
                .map_err(|e| e.to_string().trim_start_matches("template: ").to_string())?;
            self.parsed[i] = Some((text, t));
        }
        match &self.parsed[i] {
            Some((_, t)) => Ok(t),
            None => Err(format!("template {i}: not parsed")),
        }
    }

    /// Renders the templates `changed` affects (all when `None`); writes those complete
    /// whose text changed.
    fn pass(
        &mut self,
        write_incomplete_too: bool,
        changed: Option<&Changed>,
    ) -> Result<Pass, String> {
        let mut out = Pass {
            deps: vec![],
            missing: vec![],
            changed: vec![],
        };
        let (mut seen, mut missing_seen) = (HashSet::new(), HashSet::new());
        let mut texts = vec![];
        for i in 0..self.specs.len() {
            if (self.specs[i].once && self.written[i].is_some()) || !self.affected(i, changed) {
                texts.push(None);
                continue;
            }
            let tmpl = self.template(i)?.clone();
            let r = render_parsed(&tmpl, &self.opts[i], &self.cache as &dyn DataSource)
                .map_err(|e| e.to_string().trim_start_matches("template: ").to_string())?;
            for d in &r.deps {
                if seen.insert(d.clone()) {
                    out.deps.push(d.clone());
                }
            }
            for d in &r.missing {
                if missing_seen.insert(d.clone()) {
                    out.missing.push(d.clone());
                }
            }
            self.used[i] = r.deps.iter().cloned().collect();
            texts.push(Some((r.complete(), r.text)));
        }
        // Nothing is written until every template has its data (consul-template's
        // all-or-nothing first render).
        if !out.missing.is_empty() && !write_incomplete_too {
            return Ok(out);
        }
        for (i, t) in texts.into_iter().enumerate() {
            let Some((complete, text)) = t else { continue };
            if !complete || self.written[i].as_deref() == Some(text.as_str()) {
                continue;
            }
            write_file(&self.specs[i], &text).map_err(|e| {
                format!(
                    "template {i}: writing {}: {e}",
                    self.specs[i].dest.display()
                )
            })?;
            self.written[i] = Some(text);
            out.changed.push(i);
        }
        Ok(out)
    }
}

fn write_file(spec: &Spec, text: &str) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let path: &Path = &spec.dest;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    // Written beside and renamed over, so the task never reads half a file.
    let tmp = path.with_extension(format!("caravan-tmp-{}", std::process::id()));
    std::fs::write(&tmp, text)?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(spec.perms))?;
    if spec.uid.is_some() || spec.gid.is_some() {
        nix::unistd::chown(
            &tmp,
            spec.uid.map(nix::unistd::Uid::from_raw),
            spec.gid.map(nix::unistd::Gid::from_raw),
        )
        .map_err(std::io::Error::from)?;
    }
    std::fs::rename(&tmp, path)
}

/// `KEY=value` lines of an `env = true` template (blank lines and `#` comments skipped).
fn parse_env(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let l = l.strip_prefix("export ").unwrap_or(l);
            let (k, v) = l.split_once('=')?;
            let v = v.trim();
            let v = v
                .strip_prefix('"')
                .and_then(|x| x.strip_suffix('"'))
                .unwrap_or(v);
            Some((k.trim().to_string(), v.to_string()))
        })
        .collect()
}

/// Nomad's "Missing: a, b, c, and N more" text.
fn missing_message(missing: &[Dependency]) -> String {
    let names: Vec<String> = missing.iter().take(3).map(|d| d.to_string()).collect();
    let mut msg = format!("Missing: {}", names.join(", "));
    if missing.len() > 3 {
        msg.push_str(&format!(", and {} more", missing.len() - 3));
    }
    msg
}

fn setup_failure(message: String) -> HookError {
    HookError {
        hook: "template",
        message,
        recoverable: false,
    }
}

pub struct TemplateHook {
    /// The client's `template {}` settings; read once, when the task first renders.
    settings: SharedTemplateSettings,
    watcher: Mutex<Option<tokio::task::JoinHandle<()>>>,
    renderer: Arc<tokio::sync::Mutex<Option<Renderer>>>,
    /// The servers, for `nomadVar*` (none: templates cannot read Nomad variables).
    rpc: Option<Arc<dyn ServerRpc>>,
    /// Where the task's templates read their data, once prestart set it up (for
    /// `restart { render_templates }`).
    sources: Mutex<Option<Sources>>,
}

impl TemplateHook {
    pub fn new(settings: SharedTemplateSettings) -> TemplateHook {
        TemplateHook {
            settings,
            watcher: Mutex::new(None),
            renderer: Default::default(),
            rpc: None,
            sources: Mutex::new(None),
        }
    }

    /// Lets the templates read Nomad variables through the servers.
    pub fn with_rpc(mut self, rpc: Arc<dyn ServerRpc>) -> TemplateHook {
        self.rpc = Some(rpc);
        self
    }
}

/// Whether any template re-reads its `source` file when it changes.
async fn r_has_sources(renderer: &tokio::sync::Mutex<Option<Renderer>>) -> bool {
    renderer
        .lock()
        .await
        .as_ref()
        .is_some_and(|r| r.specs.iter().any(|s| s.source.is_some() && !s.once))
}

/// Consecutive failed reads of Consul: backs off between them and says when the client's
/// `consul_retry { attempts }` are used up.
struct Failures {
    retry: Retry,
    count: u32,
    backoff: caravan_consul::blocking::Backoff,
}

impl Failures {
    fn new(retry: Retry) -> Failures {
        Failures {
            retry,
            count: 0,
            backoff: caravan_consul::blocking::Backoff::new(retry.backoff, retry.max_backoff),
        }
    }

    fn reset(&mut self) {
        self.count = 0;
        self.backoff.reset();
    }

    /// The delay before the next try of a failure that does not count (a Vault outage the
    /// client rides out).
    fn uncounted(&mut self) -> Duration {
        self.backoff.next_delay()
    }

    /// Counts a failure: the delay before the next read, or `None` once the attempts are
    /// used up.
    fn failed(&mut self) -> Option<Duration> {
        self.count += 1;
        if self.retry.exhausted(self.count) {
            return None;
        }
        Some(self.backoff.next_delay())
    }
}

#[async_trait]
impl TaskHook for TemplateHook {
    fn name(&self) -> &'static str {
        "template"
    }

    async fn prestart(&self, ctx: &mut HookContext) -> Result<(), HookError> {
        if ctx.task.templates.is_empty() || self.renderer.lock().await.is_some() {
            return Ok(());
        }
        let settings = template_settings::current(&self.settings);
        let mut specs: Vec<Spec> = ctx
            .task
            .templates
            .iter()
            .enumerate()
            .map(|(i, t)| spec_of(ctx, i, t))
            .collect::<Result<_, _>>()
            .map_err(setup_failure)?;
        for s in &mut specs {
            s.wait = settings.wait_for(s.wait);
        }
        let env = ctx
            .task_env
            .as_ref()
            .map(|e| e.env.clone())
            .unwrap_or_default();
        let task_dir = ctx.alloc_dir.task_dir(&ctx.task.name);
        let opts = specs
            .iter()
            .enumerate()
            .map(|(i, s)| RenderOptions {
                // Errors name the template by its destination, as the job file does.
                name: ctx
                    .task
                    .templates
                    .get(i)
                    .and_then(|t| t.get("DestPath"))
                    .and_then(|v| v.as_str())
                    .filter(|d| !d.is_empty())
                    .map(String::from)
                    .unwrap_or_else(|| format!("template {i}")),
                left_delimiter: s.left.clone(),
                right_delimiter: s.right.clone(),
                error_on_missing_key: s.error_on_missing_key,
                env: env.clone(),
                file_root: (!settings.disable_file_sandbox).then(|| task_dir.clone()),
                denylist: settings.function_denylist.clone(),
            })
            .collect();
        let mut r = Renderer::new(specs, opts);
        let mut indexes: std::collections::HashMap<Dependency, u64> = Default::default();
        let mut last_event: Option<Instant> = None;
        let mut failures: std::collections::HashMap<SourceKind, Failures> = Default::default();
        let sources = Sources {
            consul: ctx.consul.as_ref().map(|c| c.client.clone()),
            nomad: self.rpc.clone().map(|rpc| NomadSource {
                rpc,
                alloc_id: ctx.alloc.id.clone(),
                task: ctx.task.name.clone(),
            }),
            vault: ctx
                .vault
                .clone()
                .map(|c| Arc::new(VaultSource::new(c, settings.vault_default_lease_duration))),
        };
        // First render: fetch what is missing until every template is complete.
        loop {
            let pass = r.pass(false, None).map_err(setup_failure)?;
            if pass.missing.is_empty() {
                break;
            }
            // Stopped while waiting for data: the task runner sees the kill and never starts
            // the task.
            if ctx.control.as_ref().is_some_and(|c| c.killed()) {
                return Ok(());
            }
            if let Some(dep) = pass.missing.iter().find(|d| !sources.can_read(d)) {
                let missing = missing_message(&pass.missing);
                return Err(setup_failure(match dep.kind() {
                    SourceKind::Nomad => format!(
                        "templates read Nomad variables ({missing}), but this client cannot reach the servers"
                    ),
                    SourceKind::Vault => format!(
                        "templates read Vault secrets ({missing}), but the task has no vault block"
                    ),
                    SourceKind::Consul | SourceKind::Local => format!(
                        "templates read Consul ({missing}), but this client has no consul block"
                    ),
                }));
            }
            if last_event.is_none_or(|t| t.elapsed() >= MISSING_EVENT_EVERY) {
                let ev = TaskEvent::new(TASK_EVENT_TEMPLATE, missing_message(&pass.missing));
                match &ctx.control {
                    Some(c) => c.event(ev),
                    None => ctx.events.push(ev),
                }
                last_event = Some(Instant::now());
            }
            for dep in &pass.missing {
                let opts = ReadOptions {
                    index: indexes.get(dep).copied().unwrap_or(0),
                    wait: FIRST_RENDER_WAIT,
                    max_stale: settings.max_stale,
                };
                let kind = dep.kind();
                let f = failures
                    .entry(kind)
                    .or_insert_with(|| Failures::new(settings.retry_for(kind)));
                match fetch_from(&sources, dep, opts).await {
                    Ok((v, idx)) => {
                        f.reset();
                        indexes.insert(dep.clone(), idx);
                        r.cache.set(dep.clone(), v);
                    }
                    Err(e) => {
                        let from = source_name(kind);
                        tracing::warn!(task = %ctx.task.name, "template: reading {dep} from {from}: {e}");
                        if e.outage && settings.vault_outage == VaultOutage::Keep {
                            // Vault is away: wait for it (client vault_outage = "keep").
                            tokio::time::sleep(f.uncounted()).await;
                            continue;
                        }
                        let Some(delay) = f.failed() else {
                            return Err(setup_failure(format!(
                                "Template failed: reading {dep} from {from} failed {} times \
                                 (client template {} attempts): {e}",
                                f.count,
                                retry_name(kind)
                            )));
                        };
                        tokio::time::sleep(delay).await;
                    }
                }
            }
        }
        for (i, spec) in r.specs.iter().enumerate() {
            if spec.env {
                if let Some(text) = &r.written[i] {
                    ctx.env.extend(parse_env(text));
                }
            }
        }
        let deps = r.pass(true, None).map_err(setup_failure)?.deps;
        *self.renderer.lock().await = Some(r);
        let watch_sources = r_has_sources(&self.renderer).await;
        if let Ok(mut g) = self.sources.lock() {
            *g = Some(sources.clone());
        }
        if let (true, Some(control)) = (
            deps.iter()
                .any(|d| sources.can_read(d) || d.kind() == SourceKind::Local)
                || watch_sources,
            ctx.control.clone(),
        ) {
            let renderer = self.renderer.clone();
            let task = ctx.task.name.clone();
            let coordination = settings
                .coordinated_restarts
                .then(|| self.rpc.clone())
                .flatten()
                .map(|rpc| Coordination {
                    rpc,
                    alloc_id: ctx.alloc.id.clone(),
                    min_healthy: min_healthy_time(ctx),
                });
            let handle = tokio::spawn(watch(
                sources,
                settings,
                renderer,
                control,
                deps,
                task,
                coordination,
            ));
            if let Ok(mut g) = self.watcher.lock() {
                *g = Some(handle);
            }
        }
        Ok(())
    }

    /// `restart { render_templates = true }`: every dependency is read afresh and the
    /// templates rendered again before the task starts again (Nomad's way to get new
    /// secrets on a restart before their lease says so). The client option
    /// `template { render_secrets_on_restart = true }` does the same for Vault secrets on
    /// every restart, whatever the job says.
    async fn restarting(&self, ctx: &mut HookContext) -> Result<(), HookError> {
        let policy = ctx.task.restart_policy.clone().or_else(|| {
            ctx.alloc
                .job
                .as_ref()
                .and_then(|j| j.lookup_group(&ctx.alloc.task_group))
                .and_then(|g| g.restart_policy.clone())
        });
        let settings = template_settings::current(&self.settings);
        let all = policy.is_some_and(|p| p.render_templates);
        if !all && !settings.render_secrets_on_restart {
            return Ok(());
        }
        let Some(sources) = self.sources.lock().ok().and_then(|g| g.clone()) else {
            return Ok(());
        };
        let mut g = self.renderer.lock().await;
        let Some(r) = g.as_mut() else { return Ok(()) };
        // `render_secrets_on_restart` alone: only what Vault answers.
        let deps: Vec<Dependency> = r
            .cache
            .values
            .keys()
            .filter(|d| all || d.kind() == SourceKind::Vault)
            .cloned()
            .collect();
        if deps.is_empty() {
            return Ok(());
        }
        for dep in deps.into_iter().filter(|d| sources.can_read(d)) {
            let opts = ReadOptions {
                index: 0,
                wait: FIRST_RENDER_WAIT,
                max_stale: settings.max_stale,
            };
            match fetch_from(&sources, &dep, opts).await {
                Ok((v, _)) => {
                    r.cache.set(dep, v);
                }
                Err(e) => ctx.events.push(TaskEvent::new(
                    TASK_EVENT_TEMPLATE,
                    format!("Template kept its last data for {dep} on restart: {e}"),
                )),
            }
        }
        if let Err(e) = r.pass(false, None) {
            ctx.events.push(TaskEvent::new(
                TASK_EVENT_TEMPLATE,
                format!("Template failed to render on restart: {e}"),
            ));
        }
        for (i, spec) in r.specs.iter().enumerate() {
            if let (true, Some(text)) = (spec.env, &r.written[i]) {
                ctx.env.extend(parse_env(text));
            }
        }
        Ok(())
    }

    async fn stop(&self, _ctx: &HookContext) -> Result<(), HookError> {
        if let Some(h) = self.watcher.lock().ok().and_then(|mut g| g.take()) {
            h.abort();
        }
        Ok(())
    }
}

/// What wakes the watcher: new data for a dependency, a `source` file that changed, or a
/// file read with `file` that changed.
enum Wake {
    Data(Dependency, Value),
    Source,
    File(Dependency),
}

/// Watches files on disk for the watcher (inotify through `notify`), by their directories so
/// a file replaced by a rename is seen too: the templates' `source` files (beyond Nomad,
/// which reads a source once) and files read with `file` (consul-template watches those).
struct FileWatch {
    watcher: Option<notify::RecommendedWatcher>,
    /// Watched files and what a change to each wakes.
    wanted: Arc<Mutex<std::collections::HashMap<PathBuf, Option<Dependency>>>>,
    dirs: HashSet<PathBuf>,
}

impl FileWatch {
    fn new(tx: mpsc::UnboundedSender<Wake>) -> FileWatch {
        let wanted: Arc<Mutex<std::collections::HashMap<PathBuf, Option<Dependency>>>> =
            Default::default();
        let w = wanted.clone();
        let handler = move |ev: notify::Result<notify::Event>| {
            let Ok(ev) = ev else { return };
            if ev.kind.is_access() {
                return;
            }
            let Ok(w) = w.lock() else { return };
            for p in &ev.paths {
                match w.get(p) {
                    Some(None) => {
                        let _ = tx.send(Wake::Source);
                    }
                    Some(Some(dep)) => {
                        let _ = tx.send(Wake::File(dep.clone()));
                    }
                    None => {}
                }
            }
        };
        let watcher = notify::recommended_watcher(handler)
            .map_err(|e| tracing::warn!("cannot watch template files: {e}"))
            .ok();
        FileWatch {
            watcher,
            wanted,
            dirs: HashSet::new(),
        }
    }

    /// Watches `path`; a change wakes with `dep` (`None`: a `source` file).
    fn watch(&mut self, path: PathBuf, dep: Option<Dependency>) {
        use notify::Watcher;
        let Some(w) = self.watcher.as_mut() else {
            return;
        };
        if let Some(dir) = path.parent() {
            if self.dirs.insert(dir.to_path_buf()) {
                if let Err(e) = w.watch(dir, notify::RecursiveMode::NonRecursive) {
                    tracing::warn!("cannot watch {} for template changes: {e}", dir.display());
                }
            }
        }
        if let Ok(mut g) = self.wanted.lock() {
            g.insert(path, dep);
        }
    }
}

/// Watches each dependency with blocking queries (and each `source` file); a change
/// re-renders and applies the templates' change modes.
async fn watch(
    sources: Sources,
    settings: template_settings::TemplateSettings,
    renderer: Arc<tokio::sync::Mutex<Option<Renderer>>>,
    control: Arc<dyn TaskControl>,
    deps: Vec<Dependency>,
    task: String,
    coordination: Option<Coordination>,
) {
    let (tx, mut rx) = mpsc::unbounded_channel::<Wake>();
    let sources_watched: Vec<PathBuf> = {
        let g = renderer.lock().await;
        g.as_ref()
            .map(|r| {
                r.specs
                    .iter()
                    .filter(|s| !s.once)
                    .filter_map(|s| s.source.clone())
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut files = FileWatch::new(tx.clone());
    for p in sources_watched {
        files.watch(p, None);
    }
    // A dependency whose reads failed more often in a row than `consul_retry` allows.
    let (fail_tx, mut fail_rx) = mpsc::unbounded_channel::<String>();
    let mut watched: HashSet<Dependency> = HashSet::new();
    let mut tasks = vec![];
    let stale = Staleness::new(Some(control.clone()));
    let spawn_watch = |dep: Dependency, tasks: &mut Vec<tokio::task::JoinHandle<()>>| {
        if !sources.can_read(&dep) {
            return;
        }
        let (sources, tx, fail_tx) = (sources.clone(), tx.clone(), fail_tx.clone());
        if let (SourceKind::Vault, Some(vault)) = (dep.kind(), sources.vault.clone()) {
            let w = VaultWatch {
                vault,
                failures: Failures::new(settings.vault_retry),
                outage: settings.vault_outage,
                stale: stale.clone(),
                fail_tx,
            };
            tasks.push(tokio::spawn(w.run(dep, tx)));
            return;
        }
        let (wait, max_stale) = (settings.block_query_wait, settings.max_stale);
        let mut failures = Failures::new(settings.retry_for(dep.kind()));
        tasks.push(tokio::spawn(async move {
            let mut index = 0u64;
            loop {
                let opts = ReadOptions {
                    index,
                    wait,
                    max_stale,
                };
                match fetch_from(&sources, &dep, opts).await {
                    Ok((v, idx)) => {
                        failures.reset();
                        index = caravan_consul::blocking::next_wait_index(index, idx);
                        if tx.send(Wake::Data(dep.clone(), v)).is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        tracing::debug!("template watch of {dep}: {e}");
                        let Some(delay) = failures.failed() else {
                            let _ = fail_tx.send(format!(
                                "reading {dep} from {} failed {} times \
                                 (client template {} attempts): {e}",
                                source_name(dep.kind()),
                                failures.count,
                                retry_name(dep.kind())
                            ));
                            return;
                        };
                        tokio::time::sleep(delay).await;
                    }
                }
            }
        }));
    };
    for d in deps {
        watched.insert(d.clone());
        if let Dependency::File { path } = &d {
            files.watch(PathBuf::from(path), Some(d.clone()));
        }
        spawn_watch(d, &mut tasks);
    }
    struct AbortAll(Vec<tokio::task::JoinHandle<()>>);
    impl Drop for AbortAll {
        fn drop(&mut self) {
            for t in &self.0 {
                t.abort();
            }
        }
    }
    let mut guard = AbortAll(tasks);
    loop {
        let wake = tokio::select! {
            got = rx.recv() => match got {
                Some(x) => x,
                None => return,
            },
            Some(why) = fail_rx.recv() => {
                control.fail(TaskEvent::new(
                    caravan_structs::TASK_EVENT_KILLING,
                    format!("Template failed: {why}"),
                ));
                return;
            }
        };
        let mut g = renderer.lock().await;
        let Some(r) = g.as_mut() else { return };
        let mut changed = Changed::default();
        match wake {
            Wake::Data(dep, v) => {
                if !r.cache.set(dep.clone(), v) {
                    continue;
                }
                changed.deps.insert(dep);
            }
            Wake::Source => changed.sources = true,
            Wake::File(dep) => {
                changed.deps.insert(dep);
            }
        }
        // `wait { min max }`: let the data settle (no change for `min`, at most `max`).
        if let Some((min, max)) = r.specs.iter().filter_map(|s| s.wait).max() {
            let deadline = Instant::now() + max;
            drop(g);
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                match tokio::time::timeout(min.min(left), rx.recv()).await {
                    Ok(Some(Wake::Data(d, v))) => {
                        if let Some(r) = renderer.lock().await.as_mut() {
                            if r.cache.set(d.clone(), v) {
                                changed.deps.insert(d);
                            }
                        }
                    }
                    Ok(Some(Wake::Source)) => changed.sources = true,
                    Ok(Some(Wake::File(dep))) => {
                        changed.deps.insert(dep);
                    }
                    Ok(None) => return,
                    Err(_) => break,
                }
            }
            g = renderer.lock().await;
        }
        let Some(r) = g.as_mut() else { return };
        // Take whatever else arrived meanwhile in the same pass.
        while let Ok(w) = rx.try_recv() {
            match w {
                Wake::Data(d, v) => {
                    if r.cache.set(d.clone(), v) {
                        changed.deps.insert(d);
                    }
                }
                Wake::Source => changed.sources = true,
                Wake::File(dep) => {
                    changed.deps.insert(dep);
                }
            }
        }
        let pass = match r.pass(false, Some(&changed)) {
            Ok(p) => p,
            Err(e) => {
                control.event(TaskEvent::new(
                    TASK_EVENT_TEMPLATE,
                    format!("Template failed: {e}"),
                ));
                continue;
            }
        };
        for d in pass.deps {
            if watched.insert(d.clone()) {
                if let Dependency::File { path } = &d {
                    files.watch(PathBuf::from(path), Some(d.clone()));
                }
                spawn_watch(d, &mut guard.0);
            }
        }
        if pass.changed.is_empty() || !control.is_running() {
            continue;
        }
        if pass.changed.iter().any(|&i| r.specs[i].env) {
            // The next start (a restart) gets the new variables.
            let mut env = BTreeMap::new();
            for (i, spec) in r.specs.iter().enumerate() {
                if let (true, Some(text)) = (spec.env, &r.written[i]) {
                    env.extend(parse_env(text));
                }
            }
            control.set_env(env);
        }
        let modes: Vec<Spec> = pass.changed.iter().map(|&i| r.specs[i].clone()).collect();
        drop(g);
        let splay = modes.iter().map(|s| s.splay).max().unwrap_or_default();
        if !splay.is_zero() {
            // A random share of `splay`, so that many tasks do not restart at once.
            let delay = splay.mul_f64(crate::util::jitter()).as_nanos();
            tokio::time::sleep(Duration::from_nanos(delay as u64)).await;
        }
        if modes.iter().any(|s| s.change_mode == "restart") {
            if let Some(c) = &coordination {
                if !c.acquire(&*control).await {
                    continue;
                }
            }
            let mut ev = TaskEvent::new(
                caravan_structs::TASK_EVENT_RESTART_SIGNAL,
                "Template with change_mode restart re-rendered",
            );
            ev.restart_reason = "Template with change_mode restart re-rendered".into();
            if let Err(e) = control.restart(ev) {
                tracing::warn!(%task, "template restart: {e}");
            }
            if let Some(c) = &coordination {
                tokio::spawn(c.clone().release_when_healthy(control.clone()));
            }
            continue;
        }
        let mut signals: Vec<String> = modes
            .iter()
            .filter(|s| s.change_mode == "signal")
            .map(|s| s.change_signal.clone())
            .collect();
        signals.dedup();
        for sig in signals {
            if let Err(e) = control.signal(&sig).await {
                control.event(TaskEvent::new(
                    TASK_EVENT_TEMPLATE,
                    format!("Template failed to send signal {sig}: {e}"),
                ));
            }
        }
        for script in modes
            .iter()
            .filter(|s| s.change_mode == "script")
            .filter_map(|s| s.script.clone())
        {
            if !run_change_script(&*control, &script).await {
                return;
            }
        }
    }
}

/// Coordinated restarts (client `template { coordinated_restarts = true }`): a template
/// restart first takes one of the group's `update.max_parallel` restart slots from the
/// servers, and gives it back once the task has run again for `update.min_healthy_time`.
#[derive(Clone)]
struct Coordination {
    rpc: Arc<dyn ServerRpc>,
    alloc_id: String,
    min_healthy: Duration,
}

/// The group's (else the job's, else Nomad's default) `update.min_healthy_time`.
fn min_healthy_time(ctx: &HookContext) -> Duration {
    let job = ctx.alloc.job.as_ref();
    let update = job
        .and_then(|j| j.lookup_group(&ctx.alloc.task_group))
        .and_then(|g| g.update.clone())
        .or_else(|| job.and_then(|j| j.update.clone()))
        .unwrap_or_default();
    Duration::from_nanos(update.min_healthy_time.max(0) as u64)
}

impl Coordination {
    /// Waits for a restart slot; false when the task stopped meanwhile.
    async fn acquire(&self, control: &dyn TaskControl) -> bool {
        let mut told = false;
        loop {
            if control.killed() || !control.is_running() {
                return false;
            }
            match self.rpc.restart_slot(&self.alloc_id, true).await {
                Ok(true) => return true,
                Ok(false) => {
                    if !told {
                        control.event(TaskEvent::new(
                            TASK_EVENT_TEMPLATE,
                            "Template re-rendered: waiting for a restart slot \
                             (other allocations of the group are restarting; update.max_parallel)",
                        ));
                        told = true;
                    }
                }
                Err(e) => tracing::warn!(alloc = %self.alloc_id, "asking for a restart slot: {e}"),
            }
            let pause = Duration::from_millis(500).mul_f64(1.0 + crate::util::jitter());
            tokio::time::sleep(pause).await;
        }
    }

    /// Gives the slot back once the restarted task has run for `min_healthy`.
    async fn release_when_healthy(self, control: Arc<dyn TaskControl>) {
        // The restart takes the task down first; wait for it to be up again.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let deadline = Instant::now() + Duration::from_secs(300);
        while !control.is_running() && !control.killed() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        tokio::time::sleep(self.min_healthy).await;
        if let Err(e) = self.rpc.restart_slot(&self.alloc_id, false).await {
            tracing::warn!(alloc = %self.alloc_id, "giving back the restart slot: {e}");
        }
    }
}

/// Keeps one Vault dependency fresh for the watcher: renews its lease or reads it again when
/// its lease says so ([`template_vault::next_check`]), and sends what it read.
struct VaultWatch {
    vault: Arc<VaultSource>,
    failures: Failures,
    outage: VaultOutage,
    stale: Arc<Staleness>,
    fail_tx: mpsc::UnboundedSender<String>,
}

impl VaultWatch {
    async fn run(mut self, dep: Dependency, tx: mpsc::UnboundedSender<Wake>) {
        let what = dep.to_string();
        loop {
            // The first render fetched it; a dependency new to a re-render is read now.
            let (lease, at) = self.vault.lease_of(&dep).unwrap_or_else(|| {
                (
                    Default::default(),
                    Instant::now() - self.vault.default_lease * 2,
                )
            });
            let due = at
                + template_vault::next_check(
                    &lease,
                    self.vault.default_lease,
                    crate::util::jitter(),
                );
            tokio::time::sleep_until(due.into()).await;
            let running = template_vault::expiry(&lease, at).is_some_and(|e| Instant::now() < e);
            if lease.renewable && running {
                match self.vault.renew_dep(&dep, &lease).await {
                    Ok(l) if !template_vault::near_max_ttl(&l) => {
                        self.fresh(&what);
                        continue;
                    }
                    Ok(l) => {
                        // It cannot be extended much longer: read a new one shortly before
                        // this one ends.
                        self.fresh(&what);
                        tokio::time::sleep(l.duration.mul_f64(0.85)).await;
                    }
                    Err(e) if e.outage => {
                        if !self.failed(&dep, &e).await {
                            return;
                        }
                        continue;
                    }
                    Err(e) => tracing::debug!("renewing the lease of {dep}: {e}; reading it again"),
                }
            }
            loop {
                match self.vault.fetch(&dep).await {
                    Ok(f) => {
                        self.fresh(&what);
                        if tx.send(Wake::Data(dep.clone(), f.value)).is_err() {
                            return;
                        }
                        break;
                    }
                    Err(e) => {
                        if !self.failed(&dep, &e).await {
                            return;
                        }
                    }
                }
            }
        }
    }

    fn fresh(&mut self, what: &str) {
        self.failures.reset();
        self.stale.fresh(what);
    }

    /// Waits before the next try; false once the failures used up `vault_retry` (the task
    /// is then failed). An outage the client rides out (`vault_outage = "keep"`) never does.
    async fn failed(&mut self, dep: &Dependency, e: &FetchError) -> bool {
        tracing::warn!("template: reading {dep} from Vault: {e}");
        if e.outage {
            self.stale.stale(&dep.to_string(), &e.message);
            if self.outage == VaultOutage::Keep {
                tokio::time::sleep(self.failures.uncounted()).await;
                return true;
            }
        }
        match self.failures.failed() {
            Some(delay) => {
                tokio::time::sleep(delay).await;
                true
            }
            None => {
                let _ = self.fail_tx.send(format!(
                    "reading {dep} from Vault failed {} times (client template vault_retry attempts): {e}",
                    self.failures.count
                ));
                false
            }
        }
    }
}

/// Runs a change script in the task, recording how it went as Nomad words it. Returns false
/// when it failed with `fail_on_error` (the task is then being killed).
async fn run_change_script(control: &dyn TaskControl, s: &ChangeScript) -> bool {
    let mut cmd = vec![s.command.clone()];
    cmd.extend(s.args.iter().cloned());
    let failure = match control.exec(cmd, s.timeout).await {
        Ok(r) if r.exit_code == 0 => {
            control.event(TaskEvent::new(
                TASK_EVENT_TEMPLATE,
                format!(
                    "Template successfully ran script {} with arguments: {:?}. Exit code: 0",
                    s.command, s.args
                ),
            ));
            return true;
        }
        Ok(r) => format!(
            "Template ran script {} with arguments {:?} on change but it exited with code code: {}",
            s.command, s.args, r.exit_code
        ),
        Err(e) => format!(
            "Template failed to run script {} with arguments {:?} on change: {e}",
            s.command, s.args
        ),
    };
    control.event(TaskEvent::new(TASK_EVENT_TEMPLATE, failure.clone()));
    if s.fail_on_error {
        control.fail(TaskEvent::new(
            caravan_structs::TASK_EVENT_KILLING,
            format!("Template script failed, task is being killed: {failure}"),
        ));
        return false;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_message_lists_three_then_counts() {
        let d = |k: &str| Dependency::Kv {
            key: k.into(),
            dc: None,
            block: true,
        };
        assert_eq!(missing_message(&[d("a")]), "Missing: kv.block(a)");
        assert_eq!(
            missing_message(&[d("a"), d("b"), d("c"), d("e"), d("f")]),
            "Missing: kv.block(a), kv.block(b), kv.block(c), and 2 more"
        );
    }

    #[test]
    fn a_change_renders_only_the_templates_that_read_it() {
        let dir = std::env::temp_dir().join(format!("caravan-tmpl-{}", caravan_structs::new_id()));
        let spec = |data: &str, dest: &str| Spec {
            data: Some(data.into()),
            source: None,
            dest: dir.join(dest),
            change_mode: "noop".into(),
            change_signal: String::new(),
            perms: 0o644,
            env: false,
            left: String::new(),
            right: String::new(),
            error_on_missing_key: false,
            once: false,
            wait: None,
            splay: Duration::ZERO,
            uid: None,
            gid: None,
            script: None,
        };
        let kv = |k: &str| Dependency::Kv {
            key: k.into(),
            dc: None,
            block: true,
        };
        let opts = RenderOptions {
            name: "t".into(),
            ..Default::default()
        };
        let mut r = Renderer::new(
            vec![spec("{{ key \"a\" }}", "a"), spec("{{ key \"b\" }}", "b")],
            vec![opts.clone(), opts],
        );
        // Nothing is written while b is missing.
        r.cache.set(kv("a"), json!("1"));
        let p = r.pass(false, None).unwrap();
        assert_eq!(p.missing, vec![kv("b")]);
        assert!(p.changed.is_empty());
        r.cache.set(kv("b"), json!("2"));
        assert_eq!(r.pass(false, None).unwrap().changed, vec![0, 1]);
        // a changes: only the template reading a is rendered (and written).
        r.cache.set(kv("a"), json!("3"));
        let changed = Changed {
            deps: [kv("a")].into(),
            sources: false,
        };
        let p = r.pass(false, Some(&changed)).unwrap();
        assert_eq!(p.deps, vec![kv("a")]);
        assert_eq!(p.changed, vec![0]);
        assert_eq!(read_to_string(dir.join("a")), "3");
        assert_eq!(read_to_string(dir.join("b")), "2");
        // A change nobody reads renders nothing.
        let none = Changed {
            deps: [kv("z")].into(),
            sources: false,
        };
        assert!(r.pass(false, Some(&none)).unwrap().deps.is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn read_to_string(p: PathBuf) -> String {
        std::fs::read_to_string(p).unwrap_or_default()
    }

    #[test]
    fn env_files_parse_like_nomad() {
        let e = parse_env("# c\nA=1\nexport B = \"two\"\n\nC=x=y\n");
        assert_eq!(e.get("A").map(String::as_str), Some("1"));
        assert_eq!(e.get("B").map(String::as_str), Some("two"));
        assert_eq!(e.get("C").map(String::as_str), Some("x=y"));
    }
}
