//! Parsing a policy's rules into a [`Policy`], with Nomad's validation (`acl.Parse`): names,
//! policy values and capabilities are checked, the `policy` shorthand is expanded into
//! capabilities, and every error names the line and column it is about.

use crate::capability as cap;
use crate::PolicyError;
use caravan_hcl1::{Item, Key, Node, Pos, Value};

/// A parsed ACL policy. Capabilities are stored as Nomad stores them after parsing: the listed
/// ones, then those the `policy` shorthand expands to, then those implied (host volume ones).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    pub namespaces: Vec<NamespaceRule>,
    pub node_pools: Vec<NodePoolRule>,
    pub host_volumes: Vec<HostVolumeRule>,
    /// `agent { policy = ... }`: the level.
    pub agent: Option<String>,
    /// `node { policy = ... }`: the level.
    pub node: Option<String>,
    pub operator: Option<CapabilityRule>,
    /// Sentinel (an Enterprise feature): parsed so such policies load, never consulted.
    pub sentinel: Option<CapabilityRule>,
    /// `quota { policy = ... }`: the level.
    pub quota: Option<String>,
    /// `plugin { policy = ... }`: the level (`deny`, `read`, `list` or `write`).
    pub plugin: Option<String>,
}

impl Policy {
    /// Whether the policy has no rule at all (what Nomad's `IsEmpty` checks).
    pub fn is_empty(&self) -> bool {
        self.namespaces.is_empty()
            && self.node_pools.is_empty()
            && self.host_volumes.is_empty()
            && self.agent.is_none()
            && self.node.is_none()
            && self.operator.is_none()
            && self.sentinel.is_none()
            && self.quota.is_none()
            && self.plugin.is_none()
    }
}

/// `namespace "<name or glob>" { policy capabilities variables { path ... } }`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NamespaceRule {
    pub name: String,
    /// The `policy` value as written; empty when absent.
    pub policy: String,
    /// Listed, expanded and implied capabilities.
    pub capabilities: Vec<String>,
    /// The `variables` block's paths, when there is one.
    pub variables: Option<Vec<VariablePathRule>>,
}

/// `path "<glob>" { capabilities = [...] }` inside a namespace's `variables` block.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VariablePathRule {
    pub path: String,
    /// As granted: `["deny"]` alone when deny is listed, `list` added when `read` is.
    pub capabilities: Vec<String>,
}

/// A labeled rule with a policy and capabilities: `node_pool "<glob>" {}` or
/// `host_volume "<glob>" {}`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NamedRule {
    pub name: String,
    /// The `policy` value as written; empty when absent.
    pub policy: String,
    /// Listed capabilities, then those `policy` expands to.
    pub capabilities: Vec<String>,
}

pub type NodePoolRule = NamedRule;
pub type HostVolumeRule = NamedRule;

/// An unlabeled rule with a policy and capabilities: `operator {}` or `sentinel {}`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CapabilityRule {
    /// The `policy` value as written; empty when absent.
    pub policy: String,
    /// Listed capabilities, then those `policy` expands to.
    pub capabilities: Vec<String>,
}

/// Parses a policy's rules strictly, as Nomad does when a policy is written: unknown or duplicate
/// keys, invalid policy values or capabilities, and bad namespace, node pool, host volume or
/// variable path names are errors. Rules starting with `{` are JSON, anything else HCL v1.
///
/// Like Nomad, the empty string is a policy that grants nothing, while text with no rule in it
/// (only comments, say) is an error.
pub fn parse(rules: &str) -> Result<Policy, PolicyError> {
    parse_rules(rules, true)
}

/// Parses a policy the way Nomad does when it evaluates a stored one (`PolicyParseLenient`):
/// unknown keys are ignored, and of repeated `agent`, `node`, `operator`, `quota`, `plugin` or
/// `sentinel` blocks the last one counts; everything else is validated as in [`parse`].
pub fn parse_lenient(rules: &str) -> Result<Policy, PolicyError> {
    parse_rules(rules, false)
}

fn parse_rules(rules: &str, strict: bool) -> Result<Policy, PolicyError> {
    if rules.is_empty() {
        return Ok(Policy::default());
    }
    // hcl v1 reads a document as JSON when its first non-space character is '{'.
    let root = if rules.trim_start().starts_with('{') {
        caravan_hcl1::parse_json("policy", rules)?
    } else {
        caravan_hcl1::parse("policy", rules)?
    };
    let mut p = Parser {
        strict,
        extra_keys: Vec::new(),
    };
    let mut policy = Policy::default();
    for item in root.items() {
        let Some(key) = item.keys.first() else {
            continue;
        };
        match key.name.as_str() {
            "namespace" => {
                for block in labeled_blocks(item, "namespace")? {
                    policy.namespaces.push(p.namespace(block)?);
                }
            }
            "node_pool" => {
                for block in labeled_blocks(item, "node_pool")? {
                    policy.node_pools.push(p.node_pool(block)?);
                }
            }
            "host_volume" => {
                for block in labeled_blocks(item, "host_volume")? {
                    policy.host_volumes.push(p.host_volume(block)?);
                }
            }
            "agent" => p.level_rule(item, &mut policy.agent, cap::is_valid_policy)?,
            "node" => p.level_rule(item, &mut policy.node, cap::is_valid_policy)?,
            "quota" => p.level_rule(item, &mut policy.quota, cap::is_valid_policy)?,
            "plugin" => p.level_rule(item, &mut policy.plugin, cap::is_valid_plugin_policy)?,
            "operator" => p.capability_rule(
                item,
                &mut policy.operator,
                cap::OPERATOR_CAPABILITIES,
                cap::expand_operator_policy,
            )?,
            "sentinel" => p.capability_rule(
                item,
                &mut policy.sentinel,
                cap::SENTINEL_CAPABILITIES,
                cap::expand_sentinel_policy,
            )?,
            _ => p.extra_keys.push(key.clone()),
        }
    }

    if policy.is_empty() {
        // Nomad: "Invalid policy: <rules>". Name what was there instead, if anything.
        let found = names(&p.extra_keys);
        return Err(match p.extra_keys.first() {
            Some(first) => PolicyError::at(
                &first.pos,
                format!(
                    "Invalid policy: no rules defined (found only unknown keys: {found}; rules are \
                     namespace, node_pool, host_volume, agent, node, operator, quota, plugin and \
                     sentinel blocks)"
                ),
            ),
            None => PolicyError::whole(
                "Invalid policy: no rules defined (only comments or white space)",
            ),
        });
    }
    if strict {
        if let Some(first) = p.extra_keys.first() {
            return Err(PolicyError::at(
                &first.pos,
                format!("Invalid or duplicate policy keys: {}", names(&p.extra_keys)),
            ));
        }
    }
    Ok(policy)
}

/// Sorted, deduplicated key names, as Nomad lists unknown keys.
fn names(keys: &[Key]) -> String {
    let mut names: Vec<&str> = keys.iter().map(|k| k.name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    names.join(", ")
}

/// One block of a labeled rule kind. `label` is `None` where the block has no label.
struct Block<'a> {
    label: Option<&'a Key>,
    /// Where the block starts (its label, or its keyword when it has none).
    pos: &'a Pos,
    body: &'a [Item],
}

/// The blocks an item of a labeled kind stands for: `namespace "a" { }` in HCL; in JSON (and HCL's
/// `namespace = { a = { } }`) an object of label to body, or a list of such objects.
fn labeled_blocks<'a>(item: &'a Item, what: &str) -> Result<Vec<Block<'a>>, PolicyError> {
    let key = &item.keys[0];
    let mut out = Vec::new();
    match item.keys.len() {
        1 => label_map(&item.value, key, what, &mut out)?,
        2 => {
            let label = &item.keys[1];
            for body in bodies(&item.value, what)? {
                out.push(Block {
                    label: Some(label),
                    pos: &label.pos,
                    body,
                });
            }
        }
        _ => {
            return Err(PolicyError::at(
                &item.keys[2].pos,
                format!(
                    "a {what} block takes one label, found a second one: {:?}",
                    item.keys[2].name
                ),
            ))
        }
    }
    Ok(out)
}

fn label_map<'a>(
    value: &'a Node,
    key: &'a Key,
    what: &str,
    out: &mut Vec<Block<'a>>,
) -> Result<(), PolicyError> {
    match &value.value {
        Value::List(elems) => {
            for e in elems {
                label_map(e, key, what, out)?;
            }
            Ok(())
        }
        Value::Object(items) => {
            if items.is_empty() || !items.iter().all(|i| is_block(&i.value)) {
                // `namespace { policy = "read" }`: a body without its label.
                out.push(Block {
                    label: None,
                    pos: &key.pos,
                    body: items,
                });
                return Ok(());
            }
            for inner in items {
                if let Some(extra) = inner.keys.get(1) {
                    return Err(PolicyError::at(
                        &extra.pos,
                        format!(
                            "a {what} block takes one label, found a second one: {:?}",
                            extra.name
                        ),
                    ));
                }
                let label = &inner.keys[0];
                for body in bodies(&inner.value, what)? {
                    out.push(Block {
                        label: Some(label),
                        pos: &label.pos,
                        body,
                    });
                }
            }
            Ok(())
        }
        other => Err(PolicyError::at(
            &value.pos,
            format!("{what}: expected a block, found {}", other.kind()),
        )),
    }
}

fn is_block(n: &Node) -> bool {
    match &n.value {
        Value::Object(_) => true,
        Value::List(xs) => !xs.is_empty() && xs.iter().all(|x| matches!(x.value, Value::Object(_))),
        _ => false,
    }
}

/// The bodies a block value holds: one object, or (JSON) a list of objects.
fn bodies<'a>(value: &'a Node, what: &str) -> Result<Vec<&'a [Item]>, PolicyError> {
    match &value.value {
        Value::Object(items) => Ok(vec![items.as_slice()]),
        Value::List(xs) if xs.iter().all(|x| matches!(x.value, Value::Object(_))) => {
            Ok(xs.iter().map(|x| x.items()).collect())
        }
        other => Err(PolicyError::at(
            &value.pos,
            format!("{what}: expected a block, found {}", other.kind()),
        )),
    }
}

/// The `policy` and `capabilities` of a rule body, with where each value is.
#[derive(Default)]
struct Fields<'a> {
    policy: Option<(&'a str, &'a Pos)>,
    capabilities: Vec<(&'a str, &'a Pos)>,
}

struct Parser {
    strict: bool,
    /// Unknown or repeated top-level keys, in source order.
    extra_keys: Vec<Key>,
}

impl Parser {
    fn unknown(&self, key: &Key, within: &str, expected: &str) -> Result<(), PolicyError> {
        if self.strict {
            return Err(PolicyError::at(
                &key.pos,
                format!(
                    "unknown key {:?} in {within} (expected {expected})",
                    key.name
                ),
            ));
        }
        Ok(())
    }

    /// Reads `policy` and `capabilities` from a body; any other key goes to `other`.
    fn fields<'a>(
        &self,
        body: &'a [Item],
        within: &str,
        expected: &str,
        mut other: impl FnMut(&'a Item) -> Result<bool, PolicyError>,
    ) -> Result<Fields<'a>, PolicyError> {
        let mut f = Fields::default();
        for item in body {
            let key = &item.keys[0];
            match key.name.as_str() {
                "policy" => f.policy = Some(string_value(item, within)?),
                "capabilities" => f.capabilities.extend(string_list(item, within)?),
                _ => {
                    if !other(item)? {
                        self.unknown(key, within, expected)?;
                    }
                }
            }
        }
        Ok(f)
    }

    fn namespace(&mut self, b: Block<'_>) -> Result<NamespaceRule, PolicyError> {
        let name = b.label.map(|k| k.name.as_str()).unwrap_or_default();
        if !valid_name(name, false) {
            return Err(PolicyError::at(
                b.pos,
                format!(
                    "Invalid namespace name {name:?}: a namespace rule needs a label of 1 to 128 \
                     letters, digits, '-' or '*'"
                ),
            ));
        }
        let within = format!("namespace {name:?}");
        let mut variables: Option<&Item> = None;
        let mut repeated_variables: Option<&Key> = None;
        let f = self.fields(
            b.body,
            &within,
            "policy, capabilities or variables",
            |item| {
                if item.keys[0].name != "variables" {
                    return Ok(false);
                }
                if variables.is_some() && repeated_variables.is_none() {
                    repeated_variables = Some(&item.keys[0]);
                }
                variables = Some(item);
                Ok(true)
            },
        )?;
        if let (true, Some(k)) = (self.strict, repeated_variables) {
            return Err(PolicyError::at(
                &k.pos,
                format!("duplicate variables block in {within}: write all paths in one block"),
            ));
        }

        let policy = f.policy.map(|(p, _)| p).unwrap_or_default();
        if let Some((p, pos)) = f.policy {
            if !p.is_empty() && !cap::is_valid_policy(p) {
                return Err(PolicyError::at(
                    pos,
                    format!(
                        "Invalid namespace policy {p:?} in {within} (expected \"deny\", \"read\", \
                         \"write\" or \"scale\")"
                    ),
                ));
            }
        }
        let mut capabilities = Vec::new();
        for (c, pos) in &f.capabilities {
            if !cap::NAMESPACE_CAPABILITIES.contains(c) {
                return Err(PolicyError::at(
                    pos,
                    format!("Invalid namespace capability '{c}' in {within}"),
                ));
            }
            capabilities.push(c.to_string());
        }
        if !policy.is_empty() {
            capabilities.extend(
                cap::expand_namespace_policy(policy)
                    .into_iter()
                    .map(String::from),
            );
        }
        let implied: Vec<String> = capabilities
            .iter()
            .flat_map(|c| {
                cap::expand_namespace_capability(c)
                    .iter()
                    .map(|s| s.to_string())
            })
            .collect();
        capabilities.extend(implied);

        let variables = match variables {
            Some(item) => Some(self.variables(item, name)?),
            None => None,
        };
        Ok(NamespaceRule {
            name: name.to_string(),
            policy: policy.to_string(),
            capabilities,
            variables,
        })
    }

    fn variables(&self, item: &Item, ns: &str) -> Result<Vec<VariablePathRule>, PolicyError> {
        if let Some(label) = item.keys.get(1) {
            return Err(PolicyError::at(
                &label.pos,
                format!(
                    "Invalid variable policy: no variable paths in namespace {ns} (the variables \
                     block takes no label; write variables {{ path \"<glob>\" {{ ... }} }})"
                ),
            ));
        }
        let within = format!("the variables block of namespace {ns:?}");
        let mut paths = Vec::new();
        for body in bodies(&item.value, "variables")? {
            for it in body {
                if it.keys[0].name != "path" {
                    self.unknown(&it.keys[0], &within, "path blocks")?;
                    continue;
                }
                for block in labeled_blocks(it, "path")? {
                    paths.push(self.variable_path(block, ns)?);
                }
            }
        }
        if paths.is_empty() {
            return Err(PolicyError::at(
                &item.keys[0].pos,
                format!("Invalid variable policy: no variable paths in namespace {ns}"),
            ));
        }
        Ok(paths)
    }

    fn variable_path(&self, b: Block<'_>, ns: &str) -> Result<VariablePathRule, PolicyError> {
        let path = b.label.map(|k| k.name.as_str()).unwrap_or_default();
        if path.is_empty() {
            return Err(PolicyError::at(
                b.pos,
                format!("Invalid missing variable path in namespace {ns}"),
            ));
        }
        if path.starts_with('/') {
            return Err(PolicyError::at(
                b.pos,
                format!(
                    "Invalid variable path {path:?} in namespace {ns}: cannot start with a leading \
                     '/'"
                ),
            ));
        }
        let within = format!("variables path {path:?} of namespace {ns:?}");
        let mut caps = Vec::new();
        for item in b.body {
            let key = &item.keys[0];
            if key.name == "capabilities" {
                caps.extend(string_list(item, &within)?);
            } else {
                self.unknown(key, &within, "capabilities")?;
            }
        }
        let mut capabilities = Vec::new();
        for (c, pos) in caps {
            if !cap::VARIABLE_CAPABILITIES.contains(&c) {
                return Err(PolicyError::at(
                    pos,
                    format!(
                        "Invalid variable capability '{c}' in namespace {ns} (expected \"list\", \
                         \"read\", \"write\", \"destroy\" or \"deny\")"
                    ),
                ));
            }
            capabilities.push(c.to_string());
        }
        Ok(VariablePathRule {
            path: path.to_string(),
            capabilities: cap::expand_variable_capabilities(capabilities),
        })
    }

    fn node_pool(&self, b: Block<'_>) -> Result<NamedRule, PolicyError> {
        let name = b.label.map(|k| k.name.as_str()).unwrap_or_default();
        if !valid_name(name, true) {
            return Err(PolicyError::at(
                b.pos,
                format!(
                    "Invalid node pool name '{name}': a node_pool rule needs a label of 1 to 128 \
                     letters, digits, '-', '_' or '*'"
                ),
            ));
        }
        let within = format!("node_pool {name:?}");
        let f = self.fields(b.body, &within, "policy or capabilities", |_| Ok(false))?;
        let policy = f.policy.map(|(p, _)| p).unwrap_or_default();
        if let Some((p, pos)) = f.policy {
            if !p.is_empty() && !cap::is_valid_policy(p) {
                return Err(PolicyError::at(
                    pos,
                    format!(
                        "Invalid node pool policy '{p}' for '{name}' (expected \"deny\", \"read\", \
                         \"write\" or \"scale\")"
                    ),
                ));
            }
        }
        let mut capabilities = Vec::new();
        for (c, pos) in &f.capabilities {
            if !cap::NODE_POOL_CAPABILITIES.contains(c) {
                return Err(PolicyError::at(
                    pos,
                    format!(
                        "Invalid node pool capability '{c}' for '{name}' (expected \"read\", \
                         \"write\", \"delete\" or \"deny\")"
                    ),
                ));
            }
            capabilities.push(c.to_string());
        }
        capabilities.extend(
            cap::expand_node_pool_policy(policy)
                .into_iter()
                .map(String::from),
        );
        Ok(NamedRule {
            name: name.to_string(),
            policy: policy.to_string(),
            capabilities,
        })
    }

    fn host_volume(&self, b: Block<'_>) -> Result<NamedRule, PolicyError> {
        let name = b.label.map(|k| k.name.as_str()).unwrap_or_default();
        if !valid_name(name, false) {
            return Err(PolicyError::at(
                b.pos,
                format!(
                    "Invalid host volume name {name:?}: a host_volume rule needs a label of 1 to \
                     128 letters, digits, '-' or '*'"
                ),
            ));
        }
        let within = format!("host_volume {name:?}");
        let f = self.fields(b.body, &within, "policy or capabilities", |_| Ok(false))?;
        let policy = f.policy.map(|(p, _)| p).unwrap_or_default();
        if let Some((p, pos)) = f.policy {
            if !p.is_empty() && !cap::is_valid_policy(p) {
                return Err(PolicyError::at(
                    pos,
                    format!(
                        "Invalid host volume policy {p:?} in {within} (expected \"deny\", \"read\", \
                         \"write\" or \"scale\")"
                    ),
                ));
            }
        }
        let mut capabilities = Vec::new();
        for (c, pos) in &f.capabilities {
            if !cap::HOST_VOLUME_CAPABILITIES.contains(c) {
                return Err(PolicyError::at(
                    pos,
                    format!(
                        "Invalid host volume capability '{c}' in {within} (expected \
                         \"mount-readonly\", \"mount-readwrite\" or \"deny\")"
                    ),
                ));
            }
            capabilities.push(c.to_string());
        }
        capabilities.extend(
            cap::expand_host_volume_policy(policy)
                .into_iter()
                .map(String::from),
        );
        Ok(NamedRule {
            name: name.to_string(),
            policy: policy.to_string(),
            capabilities,
        })
    }

    /// The bodies of an unlabeled rule (`agent { }`, or JSON lists of bodies), noting a repeat.
    fn singleton_bodies<'a>(
        &mut self,
        item: &'a Item,
        seen: bool,
    ) -> Result<Vec<&'a [Item]>, PolicyError> {
        let key = &item.keys[0];
        if let Some(label) = item.keys.get(1) {
            return Err(PolicyError::at(
                &label.pos,
                format!(
                    "the {} block takes no label, found {:?}",
                    key.name, label.name
                ),
            ));
        }
        let bodies = bodies(&item.value, &key.name)?;
        if seen || bodies.len() > 1 {
            // Nomad reports a repeated block among the unknown keys when parsing strictly.
            self.extra_keys.push(key.clone());
        }
        Ok(bodies)
    }

    /// `agent`, `node`, `quota` and `plugin`: a required `policy` level and nothing else.
    fn level_rule(
        &mut self,
        item: &Item,
        slot: &mut Option<String>,
        valid: fn(&str) -> bool,
    ) -> Result<(), PolicyError> {
        let key = &item.keys[0];
        let what = key.name.as_str();
        let expected = if what == "plugin" {
            "\"deny\", \"read\", \"list\" or \"write\""
        } else {
            "\"deny\", \"read\", \"write\" or \"scale\""
        };
        for body in self.singleton_bodies(item, slot.is_some())? {
            let mut level: Option<(&str, &Pos)> = None;
            for it in body {
                if it.keys[0].name == "policy" {
                    level = Some(string_value(it, what)?);
                } else {
                    self.unknown(&it.keys[0], &format!("the {what} block"), "policy")?;
                }
            }
            let (level, pos) = level.unwrap_or(("", &key.pos));
            if !valid(level) {
                return Err(PolicyError::at(
                    pos,
                    format!("Invalid {what} policy {level:?} (expected {expected})"),
                ));
            }
            *slot = Some(level.to_string());
        }
        Ok(())
    }

    /// `operator` and `sentinel`: an optional `policy` level and `capabilities`.
    fn capability_rule(
        &mut self,
        item: &Item,
        slot: &mut Option<CapabilityRule>,
        valid_caps: &[&str],
        expand: fn(&str) -> Vec<&'static str>,
    ) -> Result<(), PolicyError> {
        let what = item.keys[0].name.clone();
        for body in self.singleton_bodies(item, slot.is_some())? {
            let within = format!("the {what} block");
            let f = self.fields(body, &within, "policy or capabilities", |_| Ok(false))?;
            let policy = f.policy.map(|(p, _)| p).unwrap_or_default();
            if let Some((p, pos)) = f.policy {
                if !p.is_empty() && !cap::is_valid_policy(p) {
                    return Err(PolicyError::at(
                        pos,
                        format!(
                            "Invalid {what} policy {p:?} (expected \"deny\", \"read\", \"write\" \
                             or \"scale\")"
                        ),
                    ));
                }
            }
            let mut capabilities = Vec::new();
            for (c, pos) in &f.capabilities {
                if !valid_caps.contains(c) {
                    return Err(PolicyError::at(
                        pos,
                        format!(
                            "Invalid {what} capability '{c}' (expected one of {})",
                            valid_caps.join(", ")
                        ),
                    ));
                }
                capabilities.push(c.to_string());
            }
            capabilities.extend(expand(policy).into_iter().map(String::from));
            *slot = Some(CapabilityRule {
                policy: policy.to_string(),
                capabilities,
            });
        }
        Ok(())
    }
}

/// `key = "string"`.
fn string_value<'a>(item: &'a Item, within: &str) -> Result<(&'a str, &'a Pos), PolicyError> {
    let key = &item.keys[0];
    if item.keys.len() > 1 {
        return Err(PolicyError::at(
            &item.keys[1].pos,
            format!("{} in {within}: expected a string, found a block", key.name),
        ));
    }
    match &item.value.value {
        Value::String(s) => Ok((s.as_str(), &item.value.pos)),
        other => Err(PolicyError::at(
            &item.value.pos,
            format!(
                "{} in {within}: expected a string, found {}",
                key.name,
                other.kind()
            ),
        )),
    }
}

/// `key = ["a", "b"]` (JSON `null` reads as no elements).
fn string_list<'a>(item: &'a Item, within: &str) -> Result<Vec<(&'a str, &'a Pos)>, PolicyError> {
    let key = &item.keys[0];
    if item.keys.len() > 1 {
        return Err(PolicyError::at(
            &item.keys[1].pos,
            format!(
                "{} in {within}: expected a list of strings, found a block",
                key.name
            ),
        ));
    }
    match &item.value.value {
        Value::Null => Ok(Vec::new()),
        Value::List(elems) => elems
            .iter()
            .map(|e| match &e.value {
                Value::String(s) => Ok((s.as_str(), &e.pos)),
                other => Err(PolicyError::at(
                    &e.pos,
                    format!(
                        "{} in {within}: expected a list of strings, found {} in it",
                        key.name,
                        other.kind()
                    ),
                )),
            })
            .collect(),
        other => Err(PolicyError::at(
            &item.value.pos,
            format!(
                "{} in {within}: expected a list of strings, found {}",
                key.name,
                other.kind()
            ),
        )),
    }
}

/// Nomad's validNamespace / validVolume (`^[a-zA-Z0-9-*]{1,128}$`) and, with `underscore`,
/// validNodePool (`^[a-zA-Z0-9-_*]{1,128}$`).
fn valid_name(name: &str, underscore: bool) -> bool {
    (1..=128).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '*' || (underscore && c == '_'))
}
