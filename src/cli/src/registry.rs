//! The command table: every command path (`job run`), its one-line synopsis, its argument
//! synopsis and its flags; the top-level aliases (`run` → `job run`); and the usage texts
//! built from them. Dispatch, help and shell completion all read this one table.

use crate::flags::FlagSpec;

/// One command.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CommandSpec {
    /// Space-separated path, e.g. `job run`.
    pub name: &'static str,
    pub synopsis: &'static str,
    /// What follows `[options]` in the usage line, e.g. `<path>`.
    pub args: &'static str,
    pub flags: &'static [FlagSpec],
}

/// Flags every command takes.
pub const GLOBAL_FLAGS: &[FlagSpec] = &[
    FlagSpec::value("address"),
    FlagSpec::value("region"),
    FlagSpec::value("namespace"),
    FlagSpec::value("token"),
    FlagSpec::bool("no-color"),
];

const FMT: [FlagSpec; 2] = [FlagSpec::bool("json"), FlagSpec::value("t")];

macro_rules! flags {
    ($($f:expr),* $(,)?) => { &[$($f),*] };
}

use FlagSpec as F;

pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec {
        name: "version",
        synopsis: "Prints the Caravan version",
        args: "",
        flags: flags![],
    },
    CommandSpec {
        name: "status",
        synopsis: "Display the status output for a resource",
        args: "[identifier]",
        flags: flags![F::bool("verbose"), FMT[0], FMT[1]],
    },
    CommandSpec {
        name: "job init",
        synopsis: "Create an example job file",
        args: "[filename]",
        flags: flags![F::bool("short"), F::bool("connect")],
    },
    CommandSpec {
        name: "job run",
        synopsis: "Run a new job or update an existing job",
        args: "<path>",
        flags: flags![
            F::bool("detach"),
            F::bool("output"),
            F::bool("verbose"),
            F::multi("var"),
            F::multi("var-file"),
            F::value("check-index"),
            F::bool("policy-override"),
            F::bool("preserve-counts"),
            F::value("eval-priority"),
            F::bool("hcl2-strict")
        ],
    },
    CommandSpec {
        name: "job plan",
        synopsis: "Dry-run a job update to determine its effects",
        args: "<path>",
        flags: flags![
            F::bool("diff"),
            F::bool("verbose"),
            F::multi("var"),
            F::multi("var-file"),
            F::bool("policy-override"),
            FMT[0],
            FMT[1],
            F::bool("hcl2-strict")
        ],
    },
    CommandSpec {
        name: "job validate",
        synopsis: "Checks if a given job specification is valid",
        args: "<path>",
        flags: flags![
            F::multi("var"),
            F::multi("var-file"),
            F::bool("hcl2-strict")
        ],
    },
    CommandSpec {
        name: "job status",
        synopsis: "Display status information about a job",
        args: "[job]",
        flags: flags![
            F::bool("verbose"),
            F::bool("short"),
            F::bool("evals"),
            F::bool("all-allocs"),
            FMT[0],
            FMT[1]
        ],
    },
    CommandSpec {
        name: "job inspect",
        synopsis: "Inspect a submitted job",
        args: "<job>",
        flags: flags![F::value("version"), FMT[0], FMT[1]],
    },
    CommandSpec {
        name: "job stop",
        synopsis: "Stop a running job",
        args: "<job>",
        flags: flags![
            F::bool("purge"),
            F::bool("detach"),
            F::bool("yes"),
            F::bool("verbose"),
            F::bool("global")
        ],
    },
    CommandSpec {
        name: "job history",
        synopsis: "Display all tracked versions of a job",
        args: "<job>",
        flags: flags![
            F::bool("p"),
            F::bool("full"),
            F::value("version"),
            FMT[0],
            FMT[1]
        ],
    },
    CommandSpec {
        name: "job allocs",
        synopsis: "List allocations for a job",
        args: "<job>",
        flags: flags![F::bool("verbose"), F::bool("all"), FMT[0], FMT[1]],
    },
    CommandSpec {
        name: "job deployments",
        synopsis: "List deployments for a job",
        args: "<job>",
        flags: flags![
            F::bool("verbose"),
            F::bool("latest"),
            F::bool("all"),
            FMT[0],
            FMT[1]
        ],
    },
    CommandSpec {
        name: "job eval",
        synopsis: "Force an evaluation for the job",
        args: "<job>",
        flags: flags![
            F::bool("force-reschedule"),
            F::bool("detach"),
            F::bool("verbose")
        ],
    },
    CommandSpec {
        name: "job revert",
        synopsis: "Revert to a prior version of the job",
        args: "<job> <version>",
        flags: flags![F::bool("detach"), F::bool("verbose")],
    },
    CommandSpec {
        name: "job scale",
        synopsis: "Change the count of a job's task group",
        args: "<job> [<group>] <count>",
        flags: flags![
            F::value("check-index"),
            F::bool("detach"),
            F::bool("verbose")
        ],
    },
    CommandSpec {
        name: "job dispatch",
        synopsis: "Dispatch an instance of a parameterized job",
        args: "<parameterized job> [input source]",
        flags: flags![
            F::multi("meta"),
            F::bool("detach"),
            F::bool("verbose"),
            F::value("id-prefix-template"),
            F::value("priority")
        ],
    },
    CommandSpec {
        name: "alloc status",
        synopsis: "Display allocation status information and metadata",
        args: "<allocation>",
        flags: flags![
            F::bool("verbose"),
            F::bool("short"),
            F::bool("stats"),
            FMT[0],
            FMT[1]
        ],
    },
    CommandSpec {
        name: "alloc logs",
        synopsis: "Streams the logs of a task",
        args: "<allocation> [<task>]",
        flags: flags![
            F::bool("stderr"),
            F::bool("stdout"),
            F::bool("f"),
            F::bool("tail"),
            F::value("n"),
            F::value("c"),
            F::bool("verbose"),
            F::value("task")
        ],
    },
    CommandSpec {
        name: "alloc fs",
        synopsis: "Inspect the contents of an allocation directory",
        args: "<allocation> [<path>]",
        flags: flags![
            F::bool("stat"),
            F::bool("H"),
            F::bool("verbose"),
            F::value("task")
        ],
    },
    CommandSpec {
        name: "alloc stop",
        synopsis: "Stop and reschedule a running allocation",
        args: "<allocation>",
        flags: flags![
            F::bool("detach"),
            F::bool("verbose"),
            F::bool("no-shutdown-delay")
        ],
    },
    CommandSpec {
        name: "alloc restart",
        synopsis: "Restart a running allocation",
        args: "<allocation> [<task>]",
        flags: flags![F::bool("all-tasks"), F::value("task"), F::bool("verbose")],
    },
    CommandSpec {
        name: "alloc signal",
        synopsis: "Signal a running allocation",
        args: "<allocation> [<task>]",
        flags: flags![F::value("s"), F::value("task"), F::bool("verbose")],
    },
    CommandSpec {
        name: "alloc exec",
        synopsis: "Execute commands in task",
        args: "<allocation> <command> [<args>...]",
        flags: flags![
            F::value("task"),
            F::bool("job"),
            F::bool("i"),
            F::bool("t"),
            F::bool("verbose")
        ],
    },
    CommandSpec {
        name: "eval status",
        synopsis: "Display evaluation status and placement failure reasons",
        args: "<evaluation>",
        flags: flags![F::bool("verbose"), F::bool("monitor"), FMT[0], FMT[1]],
    },
    CommandSpec {
        name: "eval list",
        synopsis: "List the set of evaluations processed by Caravan",
        args: "",
        flags: flags![
            F::bool("verbose"),
            F::value("job"),
            F::value("status"),
            F::value("per-page"),
            FMT[0],
            FMT[1]
        ],
    },
    CommandSpec {
        name: "node status",
        synopsis: "Display status information about nodes",
        args: "[node]",
        flags: flags![
            F::bool("verbose"),
            F::bool("self"),
            F::bool("short"),
            F::bool("os"),
            F::bool("allocs"),
            F::bool("quiet"),
            FMT[0],
            FMT[1]
        ],
    },
    CommandSpec {
        name: "node eligibility",
        synopsis: "Toggle scheduling eligibility for a given node",
        args: "<node>",
        flags: flags![F::bool("enable"), F::bool("disable"), F::bool("self")],
    },
    CommandSpec {
        name: "node drain",
        synopsis: "Toggle drain mode on a given node",
        args: "<node>",
        flags: flags![
            F::bool("enable"),
            F::bool("disable"),
            F::bool("self"),
            F::value("deadline"),
            F::bool("ignore-system"),
            F::bool("keep-ineligible"),
            F::bool("detach"),
            F::bool("yes"),
            F::bool("force"),
            F::bool("no-deadline")
        ],
    },
    CommandSpec {
        name: "node pool apply",
        synopsis: "Create or update a node pool",
        args: "<path>",
        flags: flags![F::bool("json")],
    },
    CommandSpec {
        name: "node pool list",
        synopsis: "List node pools",
        args: "",
        flags: flags![FMT[0], FMT[1]],
    },
    CommandSpec {
        name: "node pool info",
        synopsis: "Fetch information on an existing node pool",
        args: "<node-pool>",
        flags: flags![FMT[0], FMT[1]],
    },
    CommandSpec {
        name: "node pool nodes",
        synopsis: "Fetch a list of nodes in a node pool",
        args: "<node-pool>",
        flags: flags![F::bool("verbose"), FMT[0], FMT[1]],
    },
    CommandSpec {
        name: "node pool jobs",
        synopsis: "Fetch a list of jobs in a node pool",
        args: "<node-pool>",
        flags: flags![FMT[0], FMT[1]],
    },
    CommandSpec {
        name: "node pool delete",
        synopsis: "Delete a node pool",
        args: "<node-pool>",
        flags: flags![],
    },
    CommandSpec {
        name: "namespace apply",
        synopsis: "Create or update a namespace",
        args: "<input>",
        flags: flags![F::value("description"), F::value("quota"), F::bool("json")],
    },
    CommandSpec {
        name: "namespace list",
        synopsis: "List namespaces",
        args: "",
        flags: flags![FMT[0], FMT[1]],
    },
    CommandSpec {
        name: "namespace status",
        synopsis: "Display a namespace's status",
        args: "<namespace>",
        flags: flags![FMT[0], FMT[1]],
    },
    CommandSpec {
        name: "namespace delete",
        synopsis: "Delete a namespace",
        args: "<namespace>",
        flags: flags![],
    },
    CommandSpec {
        name: "service list",
        synopsis: "List service registrations",
        args: "",
        flags: flags![FMT[0], FMT[1]],
    },
    CommandSpec {
        name: "service info",
        synopsis: "Display an individual service registration",
        args: "<service_name>",
        flags: flags![F::bool("verbose"), FMT[0], FMT[1]],
    },
    CommandSpec {
        name: "service delete",
        synopsis: "Deregister a service registration",
        args: "<service_name> <service_id>",
        flags: flags![],
    },
    CommandSpec {
        name: "server members",
        synopsis: "Display a list of known servers and their status",
        args: "",
        flags: flags![F::bool("verbose"), F::bool("detailed"), FMT[0], FMT[1]],
    },
    CommandSpec {
        name: "deployment status",
        synopsis: "Display the status of a deployment",
        args: "<deployment>",
        flags: flags![F::bool("verbose"), F::bool("monitor"), FMT[0], FMT[1]],
    },
    CommandSpec {
        name: "deployment fail",
        synopsis: "Manually fail a deployment",
        args: "<deployment id>",
        flags: flags![F::bool("detach"), F::bool("verbose")],
    },
    CommandSpec {
        name: "deployment pause",
        synopsis: "Pause a deployment",
        args: "<deployment id>",
        flags: flags![F::bool("verbose")],
    },
    CommandSpec {
        name: "deployment resume",
        synopsis: "Resume a paused deployment",
        args: "<deployment id>",
        flags: flags![F::bool("detach"), F::bool("verbose")],
    },
    CommandSpec {
        name: "deployment promote",
        synopsis: "Promote canaries in a deployment",
        args: "<deployment id>",
        flags: flags![F::multi("group"), F::bool("detach"), F::bool("verbose")],
    },
    CommandSpec {
        name: "deployment list",
        synopsis: "List all deployments",
        args: "",
        flags: flags![F::bool("verbose"), FMT[0], FMT[1]],
    },
    CommandSpec {
        name: "operator api",
        synopsis: "Query the Caravan HTTP API",
        args: "<path>",
        flags: flags![
            F::value("X"),
            F::multi("H"),
            F::bool("verbose"),
            F::value("filter")
        ],
    },
    CommandSpec {
        name: "operator scheduler get-config",
        synopsis: "Display the current scheduler configuration",
        args: "",
        flags: flags![FMT[0], FMT[1]],
    },
    CommandSpec {
        name: "operator scheduler set-config",
        synopsis: "Modify the current scheduler configuration",
        args: "",
        flags: flags![
            F::value("check-index"),
            F::value("scheduler-algorithm"),
            F::value("memory-oversubscription"),
            F::value("reject-job-registration"),
            F::value("pause-eval-broker"),
            F::value("preempt-system-scheduler"),
            F::value("preempt-service-scheduler"),
            F::value("preempt-batch-scheduler"),
            F::value("preempt-sysbatch-scheduler")
        ],
    },
    CommandSpec {
        name: "monitor",
        synopsis: "Stream logs from a Caravan agent",
        args: "",
        flags: flags![
            F::value("log-level"),
            F::value("node-id"),
            F::value("server-id"),
            F::bool("json"),
            F::bool("log-include-location")
        ],
    },
    CommandSpec {
        name: "agent-info",
        synopsis: "Display status information about the local agent",
        args: "",
        flags: flags![FMT[0], FMT[1]],
    },
    CommandSpec {
        name: "system gc",
        synopsis: "Run the system garbage collection process",
        args: "",
        flags: flags![],
    },
    CommandSpec {
        name: "system reconcile summaries",
        synopsis: "Reconciles the summaries of all registered jobs",
        args: "",
        flags: flags![],
    },
    CommandSpec {
        name: "operator snapshot save",
        synopsis: "Saves a snapshot of the state of the servers to a file",
        args: "<file>",
        flags: flags![F::bool("stale")],
    },
    CommandSpec {
        name: "operator snapshot restore",
        synopsis: "Restores the state of the servers from a snapshot file",
        args: "<file>",
        flags: flags![],
    },
    CommandSpec {
        name: "operator snapshot inspect",
        synopsis: "Displays information about a snapshot file",
        args: "<file>",
        flags: flags![FMT[0], FMT[1]],
    },
    CommandSpec {
        name: "operator root keyring list",
        synopsis: "Lists the root encryption keys",
        args: "",
        flags: flags![F::bool("verbose"), FMT[0], FMT[1]],
    },
    CommandSpec {
        name: "operator root keyring rotate",
        synopsis: "Rotates the root encryption key",
        args: "",
        flags: flags![F::bool("full"), F::bool("verbose"), FMT[0], FMT[1]],
    },
    CommandSpec {
        name: "operator root keyring remove",
        synopsis: "Removes an inactive root encryption key",
        args: "<key ID>",
        flags: flags![],
    },
    CommandSpec {
        name: "setup vault",
        synopsis: "Prints (or with -apply writes) the Vault JWT auth method, role and policy for workload identities",
        args: "",
        flags: flags![F::value("jwks-url"), F::bool("apply")],
    },
    CommandSpec {
        name: "acl bootstrap",
        synopsis: "Bootstrap the ACL system for initial token",
        args: "[<path>]",
        flags: flags![FMT[0], FMT[1]],
    },
    CommandSpec {
        name: "acl policy apply",
        synopsis: "Create or update an ACL policy",
        args: "<name> <path>",
        flags: flags![
            F::value("description"),
            F::value("job"),
            F::value("group"),
            F::value("task")
        ],
    },
    CommandSpec {
        name: "acl policy list",
        synopsis: "List ACL policies",
        args: "",
        flags: flags![FMT[0], FMT[1]],
    },
    CommandSpec {
        name: "acl policy info",
        synopsis: "Fetch info on an existing ACL policy",
        args: "<name>",
        flags: flags![FMT[0], FMT[1]],
    },
    CommandSpec {
        name: "acl policy delete",
        synopsis: "Delete an existing ACL policy",
        args: "<name>",
        flags: flags![],
    },
    CommandSpec {
        name: "acl token create",
        synopsis: "Create a new ACL token",
        args: "",
        flags: flags![
            F::value("name"),
            F::value("type"),
            F::multi("policy"),
            F::multi("role-id"),
            F::multi("role-name"),
            F::bool("global"),
            F::value("ttl"),
            FMT[0],
            FMT[1]
        ],
    },
    CommandSpec {
        name: "acl token list",
        synopsis: "List ACL tokens",
        args: "",
        flags: flags![FMT[0], FMT[1]],
    },
    CommandSpec {
        name: "acl token info",
        synopsis: "Fetch information on an existing ACL token",
        args: "<token_accessor_id>",
        flags: flags![FMT[0], FMT[1]],
    },
    CommandSpec {
        name: "acl token self",
        synopsis: "Lookup self ACL token",
        args: "",
        flags: flags![FMT[0], FMT[1]],
    },
    CommandSpec {
        name: "acl token update",
        synopsis: "Update an existing ACL token",
        args: "<token_accessor_id>",
        flags: flags![
            F::value("name"),
            F::multi("policy"),
            F::multi("role-id"),
            F::multi("role-name"),
            FMT[0],
            FMT[1]
        ],
    },
    CommandSpec {
        name: "acl token delete",
        synopsis: "Delete an existing ACL token",
        args: "<token_accessor_id>",
        flags: flags![],
    },
    CommandSpec {
        name: "acl role create",
        synopsis: "Create a new ACL role",
        args: "",
        flags: flags![
            F::value("name"),
            F::value("description"),
            F::multi("policy"),
            FMT[0],
            FMT[1]
        ],
    },
    CommandSpec {
        name: "acl role list",
        synopsis: "List ACL roles",
        args: "",
        flags: flags![FMT[0], FMT[1]],
    },
    CommandSpec {
        name: "acl role info",
        synopsis: "Fetch information on an existing ACL role",
        args: "<acl_role_id>",
        flags: flags![F::bool("by-name"), FMT[0], FMT[1]],
    },
    CommandSpec {
        name: "acl role update",
        synopsis: "Update an existing ACL role",
        args: "<acl_role_id>",
        flags: flags![
            F::value("name"),
            F::value("description"),
            F::multi("policy"),
            FMT[0],
            FMT[1]
        ],
    },
    CommandSpec {
        name: "acl role delete",
        synopsis: "Delete an existing ACL role",
        args: "<acl_role_id>",
        flags: flags![],
    },
    CommandSpec {
        name: "var put",
        synopsis: "Create or update a variable",
        args: "<path> [<key>=<value>]...",
        flags: flags![
            F::value("check-index"),
            F::bool("force"),
            F::value("in"),
            F::value("out"),
            F::bool("verbose"),
            FMT[0],
            FMT[1]
        ],
    },
    CommandSpec {
        name: "var get",
        synopsis: "Read a variable",
        args: "<path>",
        flags: flags![F::value("item"), F::value("out"), FMT[0], FMT[1]],
    },
    CommandSpec {
        name: "var list",
        synopsis: "List variables",
        args: "[<prefix>]",
        flags: flags![F::value("out"), FMT[0], FMT[1]],
    },
    CommandSpec {
        name: "var purge",
        synopsis: "Purge a variable",
        args: "<path>",
        flags: flags![F::value("check-index")],
    },
    CommandSpec {
        name: "var lock",
        synopsis: "Hold a variable lock while a command runs",
        args: "<path> [--] <command> [<args>...]",
        flags: flags![F::value("ttl"), F::value("delay"), F::bool("verbose")],
    },
];

/// Command groups and what they are for.
pub const GROUPS: &[(&str, &str)] = &[
    ("job", "Interact with jobs"),
    ("alloc", "Interact with allocations"),
    ("eval", "Interact with evaluations"),
    ("node", "Interact with nodes"),
    ("node pool", "Interact with node pools"),
    ("namespace", "Interact with namespaces"),
    ("server", "Interact with servers"),
    ("service", "Interact with registered services"),
    ("deployment", "Interact with deployments"),
    (
        "operator",
        "Provides cluster-level tools for Caravan operators",
    ),
    ("system", "Interact with the system API"),
    (
        "operator scheduler",
        "Provides access to the scheduler configuration",
    ),
    ("system reconcile", "Perform system reconciliation tasks"),
    ("operator root", "Provides access to root encryption keys"),
    (
        "operator snapshot",
        "Saves, restores and inspects snapshots of the servers' state",
    ),
    (
        "operator root keyring",
        "Manages the root encryption keys of workload identities and Variables",
    ),
    ("acl", "Interact with ACL policies and tokens"),
    ("acl policy", "Interact with ACL policies"),
    ("acl token", "Interact with ACL tokens"),
    ("acl role", "Interact with ACL roles"),
    ("var", "Interact with variables"),
    (
        "setup",
        "Sets up Vault to trust Caravan's workload identities",
    ),
];

/// Top-level shortcuts, as Nomad has them.
pub const ALIASES: &[(&str, &str)] = &[
    ("run", "job run"),
    ("stop", "job stop"),
    ("plan", "job plan"),
    ("validate", "job validate"),
    ("inspect", "job inspect"),
    ("init", "job init"),
    ("logs", "alloc logs"),
    ("fs", "alloc fs"),
    ("alloc-status", "alloc status"),
    ("eval-status", "eval status"),
    ("node-status", "node status"),
    ("node-drain", "node drain"),
    ("server-members", "server members"),
];

pub fn find(name: &str) -> Option<&'static CommandSpec> {
    COMMANDS.iter().find(|c| c.name == name)
}

pub fn is_group(name: &str) -> bool {
    GROUPS.iter().any(|(g, _)| *g == name)
}

/// What the words at the front of `args` name: a command (with how many words it used), a
/// group (with nothing more), or nothing known.
#[derive(Debug, Clone, PartialEq)]
pub enum Resolved {
    Command(&'static CommandSpec, usize),
    Group(&'static str),
    Unknown(String),
}

pub fn resolve(args: &[String]) -> Resolved {
    let Some(first) = args.first() else {
        return Resolved::Unknown(String::new());
    };
    if let Some((_, target)) = ALIASES.iter().find(|(a, _)| a == first) {
        if let Some(spec) = find(target) {
            return Resolved::Command(spec, 1);
        }
    }
    // The longest command or group the words name (`operator root keyring list` is four).
    for n in (1..=args.len().min(4)).rev() {
        let words = args[..n].join(" ");
        if let Some(spec) = find(&words) {
            return Resolved::Command(spec, n);
        }
        if let Some((g, _)) = GROUPS.iter().find(|(g, _)| *g == words) {
            return Resolved::Group(g);
        }
    }
    Resolved::Unknown(first.clone())
}

/// The main usage text.
pub fn main_usage() -> String {
    let mut s =
        String::from("Usage: caravan [-version] [-help] <command> [args]\n\nCommon commands:\n");
    let common: &[(&str, &str)] = &[
        ("run", "Run a new job or update an existing job"),
        ("stop", "Stop a running job"),
        ("status", "Display the status output for a resource"),
        ("alloc", "Interact with allocations"),
        ("job", "Interact with jobs"),
        ("node", "Interact with nodes"),
        ("agent", "Runs a Caravan agent"),
    ];
    for (n, d) in common {
        s.push_str(&format!("    {n:<12}{d}\n"));
    }
    s.push_str("\nOther commands:\n");
    let mut other: Vec<(&str, &str)> = GROUPS
        .iter()
        .filter(|(g, _)| !matches!(*g, "job" | "alloc" | "node") && !g.contains(' '))
        .copied()
        .collect();
    other.push((
        "agent-info",
        "Display status information about the local agent",
    ));
    other.push(("monitor", "Stream logs from a Caravan agent"));
    other.push(("version", "Prints the Caravan version"));
    other.push(("plan", "Dry-run a job update to determine its effects"));
    other.push(("logs", "Streams the logs of a task"));
    other.sort();
    for (n, d) in other {
        s.push_str(&format!("    {n:<12}{d}\n"));
    }
    s
}

/// The usage text of a group: its subcommands.
pub fn group_usage(group: &str) -> String {
    let desc = GROUPS
        .iter()
        .find(|(g, _)| *g == group)
        .map(|(_, d)| *d)
        .unwrap_or("");
    let mut s = format!(
        "Usage: caravan {group} <subcommand> [options] [args]\n\n  {desc}.\n\nSubcommands:\n"
    );
    let prefix = format!("{group} ");
    for c in COMMANDS.iter().filter(|c| c.name.starts_with(&prefix)) {
        let sub = &c.name[prefix.len()..];
        s.push_str(&format!("    {sub:<14}{}\n", c.synopsis));
    }
    s
}

/// The usage text of one command.
pub fn command_usage(spec: &CommandSpec) -> String {
    let mut s = format!(
        "Usage: caravan {} [options] {}\n\n  {}.\n\nGeneral Options:\n\n",
        spec.name, spec.args, spec.synopsis
    );
    s.push_str("  -address=<addr>\n    The address of the Caravan server (CARAVAN_ADDR, NOMAD_ADDR; default http://127.0.0.1:4646).\n\n");
    s.push_str("  -region=<region>\n  -namespace=<namespace>\n  -token=<secret-id>\n");
    if !spec.flags.is_empty() {
        s.push_str("\nCommand Options:\n\n");
        for f in spec.flags {
            match f.kind {
                crate::flags::FlagKind::Bool => s.push_str(&format!("  -{}\n", f.name)),
                _ => s.push_str(&format!("  -{}=<value>\n", f.name)),
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn resolves_three_word_commands_and_nested_groups() {
        assert!(matches!(
            resolve(&v(&["system", "reconcile", "summaries"])),
            Resolved::Command(c, 3) if c.name == "system reconcile summaries"
        ));
        assert!(
            matches!(resolve(&v(&["system", "gc"])), Resolved::Command(c, 2) if c.name == "system gc")
        );
        assert_eq!(
            resolve(&v(&["system", "reconcile"])),
            Resolved::Group("system reconcile")
        );
        assert_eq!(resolve(&v(&["system"])), Resolved::Group("system"));
    }

    #[test]
    fn resolves_commands_groups_and_aliases() {
        assert!(
            matches!(resolve(&v(&["job", "run", "x"])), Resolved::Command(c, 2) if c.name == "job run")
        );
        assert!(
            matches!(resolve(&v(&["run", "x"])), Resolved::Command(c, 1) if c.name == "job run")
        );
        assert!(
            matches!(resolve(&v(&["alloc-status", "x"])), Resolved::Command(c, 1) if c.name == "alloc status")
        );
        assert!(matches!(resolve(&v(&["status"])), Resolved::Command(c, 1) if c.name == "status"));
        assert_eq!(resolve(&v(&["job"])), Resolved::Group("job"));
        assert_eq!(resolve(&v(&["job", "bogus"])), Resolved::Group("job"));
        assert_eq!(resolve(&v(&["bogus"])), Resolved::Unknown("bogus".into()));
    }

    #[test]
    fn every_command_belongs_to_a_known_group() {
        for c in COMMANDS {
            if let Some((g, _)) = c.name.split_once(' ') {
                assert!(is_group(g), "{} has no group", c.name);
            }
        }
        for (_, target) in ALIASES {
            assert!(find(target).is_some(), "alias to missing {target}");
        }
    }
}
