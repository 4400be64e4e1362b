//! Tests: Nomad's corpus of policies, the expansion tables and merge rules of acl/policy.go and
//! acl/acl.go (cases mirror Nomad's acl_test.go / policy_test.go), and the errors bad input gets.

use crate::capability as cap;
use crate::glob::{glob_difference, glob_match};
use crate::{parse, parse_lenient, Acl, AclClaim, Policy, PolicyError};
use std::path::Path;

fn acl_of(rules: &str) -> Acl {
    let policy = parse(rules).unwrap_or_else(|e| panic!("{rules}\n{e}"));
    Acl::from_policies(&[policy])
}

fn parse_err(rules: &str) -> PolicyError {
    match parse(rules) {
        Ok(p) => panic!("expected an error for {rules:?}, parsed {p:?}"),
        Err(e) => e,
    }
}

fn strings(xs: &[&str]) -> Vec<String> {
    xs.iter().map(|s| s.to_string()).collect()
}

// ---------------------------------------------------------------------------------------------
// Corpus

/// Corpus files that are not policies Nomad accepts, with why.
const CORPUS_REJECTED: &[(&str, &str)] = &[
    (
        "website__content__docs__concepts__variables.mdx__L94.hcl",
        "a template: namespace \"$namespace\" is a placeholder, and '$' is not allowed in a name",
    ),
    (
        "website__content__docs__upgrade__upgrade-specific.mdx__L637.hcl",
        "the upgrade guide's example of a namespace block without a label, which Nomad now rejects",
    ),
];

#[test]
fn corpus_acl_policies_parse() {
    let dir = Path::new("/work/shared/corpus/other");
    let Ok(entries) = std::fs::read_dir(dir) else {
        println!("skipped: corpus directory {} is missing", dir.display());
        return;
    };
    // Files named like ACL policies, plus those INDEX.tsv classifies as acl-policy.
    let mut files: Vec<String> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| {
            let l = n.to_ascii_lowercase();
            l.contains("acl") || l.contains("policy")
        })
        .collect();
    if let Ok(index) = std::fs::read_to_string(dir.join("../INDEX.tsv")) {
        for line in index.lines() {
            let cols: Vec<&str> = line.split('\t').collect();
            if cols.len() > 2 && cols[2] == "acl-policy" {
                if let Some(name) = cols[0].strip_prefix("other/") {
                    files.push(name.to_string());
                }
            }
        }
    }
    files.sort();
    files.dedup();
    assert!(files.len() >= 30, "only {} policy files found", files.len());

    let mut failures = Vec::new();
    let mut parsed = 0;
    for name in &files {
        let text = std::fs::read_to_string(dir.join(name)).expect("read corpus file");
        let expected_rejection = CORPUS_REJECTED.iter().find(|(n, _)| n == name);
        match (parse(&text), expected_rejection) {
            (Ok(policy), None) => {
                assert!(!policy.is_empty(), "{name}: parsed to an empty policy");
                // The lenient parse of an accepted policy is the same policy.
                assert_eq!(parse_lenient(&text).as_ref(), Ok(&policy), "{name}");
                parsed += 1;
            }
            (Err(e), Some((_, why))) => println!("rejected as expected: {name}: {e} ({why})"),
            (Ok(_), Some((_, why))) => failures.push(format!("{name}: accepted, but {why}")),
            (Err(e), None) => failures.push(format!("{name}: {e}")),
        }
    }
    println!("{parsed} corpus ACL policies parsed");
    assert!(
        failures.is_empty(),
        "corpus failures:\n{}",
        failures.join("\n")
    );
}

/// A few corpus policies (from Nomad's docs) checked for what they grant, not only that they
/// parse.
#[test]
fn docs_examples_grant_what_the_docs_say() {
    // acl-policy.mdx: "*-web" denied, every other namespace writable.
    let acl = acl_of(
        r#"namespace "*-web" { policy = "deny" }
           namespace "*" { policy = "write" }"#,
    );
    assert!(!acl.allow_namespace_operation("prod-web", cap::READ_JOB));
    assert!(!acl.allow_namespace("prod-web"));
    assert!(acl.allow_namespace_operation("prod-api", cap::SUBMIT_JOB));
    assert!(acl.allow_namespace_operation("default", cap::READ_LOGS));

    // policies/index.mdx: production-* read, production-api write, production-web deny.
    let acl = acl_of(
        r#"namespace "production-*" { policy = "read" }
           namespace "production-api" { policy = "write" }
           namespace "production-web" { policy = "deny" }"#,
    );
    assert!(acl.allow_namespace_operation("production-db", cap::READ_JOB));
    assert!(!acl.allow_namespace_operation("production-db", cap::SUBMIT_JOB));
    assert!(acl.allow_namespace_operation("production-api", cap::SUBMIT_JOB));
    assert!(!acl.allow_namespace("production-web"));
    assert!(!acl.allow_namespace("staging"));

    // acl-policy.mdx host volumes: prod-* denied, except prod-ca-certificates read only.
    let acl = acl_of(
        r#"host_volume "*" { policy = "write" }
           host_volume "prod-*" { policy = "deny" }
           host_volume "prod-ca-certificates" { policy = "read" }"#,
    );
    assert!(acl.allow_host_volume_operation("scratch", cap::MOUNT_READWRITE));
    assert!(!acl.allow_host_volume_operation("prod-db", cap::MOUNT_READONLY));
    assert!(acl.allow_host_volume_operation("prod-ca-certificates", cap::MOUNT_READONLY));
    assert!(!acl.allow_host_volume_operation("prod-ca-certificates", cap::MOUNT_READWRITE));

    // variables.mdx: list nomad/jobs everywhere, deny below it.
    let acl = acl_of(
        r#"namespace "*" {
             variables {
               path "nomad/jobs" { capabilities = ["list"] }
               path "nomad/jobs/*" { capabilities = ["deny"] }
             }
           }"#,
    );
    assert!(acl.allow_variable_operation("default", "nomad/jobs", cap::VAR_LIST));
    assert!(!acl.allow_variable_operation("default", "nomad/jobs", cap::VAR_READ));
    assert!(!acl.allow_variable_operation("dev", "nomad/jobs/example", cap::VAR_LIST));
}

// ---------------------------------------------------------------------------------------------
// Expansion tables, checked against Nomad's acl/policy.go lists (in Nomad's order).

#[test]
fn namespace_policy_expansion_matches_nomad() {
    let read = [
        "list-jobs",
        "parse-job",
        "read-job",
        "csi-list-volume",
        "csi-read-volume",
        "read-job-scaling",
        "list-scaling-policies",
        "read-scaling-policy",
        "host-volume-read",
    ];
    let mut write = read.to_vec();
    write.extend([
        "scale-job",
        "submit-job",
        "dispatch-job",
        "read-logs",
        "read-fs",
        "alloc-exec",
        "alloc-lifecycle",
        "csi-mount-volume",
        "csi-write-volume",
        "submit-recommendation",
        "host-volume-create",
    ]);
    let scale = [
        "list-scaling-policies",
        "read-scaling-policy",
        "read-job-scaling",
        "scale-job",
        "read-job",
        "submit-recommendation",
    ];
    assert_eq!(cap::expand_namespace_policy("read"), read);
    assert_eq!(cap::expand_namespace_policy("write"), write);
    assert_eq!(cap::expand_namespace_policy("scale"), scale);
    assert_eq!(cap::expand_namespace_policy("deny"), ["deny"]);
    assert!(cap::expand_namespace_policy("list").is_empty());

    // Parsing appends the expansion after the listed capabilities, then the implied ones.
    let p = parse(r#"namespace "default" { policy = "read" }"#).unwrap();
    assert_eq!(p.namespaces[0].capabilities, strings(&read));
    let p = parse(
        r#"namespace "default" {
             policy = "write"
             capabilities = ["alloc-node-exec"]
           }"#,
    )
    .unwrap();
    let mut want = vec!["alloc-node-exec"];
    want.extend(&write);
    want.push("host-volume-read"); // implied by host-volume-create
    assert_eq!(p.namespaces[0].capabilities, strings(&want));
}

#[test]
fn host_volume_capabilities_imply_narrower_ones() {
    let p = parse(r#"namespace "a" { capabilities = ["host-volume-write"] }"#).unwrap();
    assert_eq!(
        p.namespaces[0].capabilities,
        strings(&[
            "host-volume-write",
            "host-volume-register",
            "host-volume-create",
            "host-volume-delete",
            "host-volume-read",
        ])
    );
    let acl = Acl::from_policies(&[p]);
    for c in [
        cap::HOST_VOLUME_REGISTER,
        cap::HOST_VOLUME_CREATE,
        cap::HOST_VOLUME_DELETE,
        cap::HOST_VOLUME_READ,
    ] {
        assert!(acl.allow_namespace_operation("a", c), "{c}");
    }
    let acl = acl_of(r#"namespace "a" { capabilities = ["host-volume-register"] }"#);
    assert!(acl.allow_namespace_operation("a", cap::HOST_VOLUME_CREATE));
    assert!(acl.allow_namespace_operation("a", cap::HOST_VOLUME_READ));
    assert!(!acl.allow_namespace_operation("a", cap::HOST_VOLUME_DELETE));
    // Merging read with nothing grants no host volume registration (Nomad's TestACLMerge).
    let acl = acl_of(r#"namespace "default" { policy = "read" }"#);
    assert!(!acl.allow_namespace_operation("default", cap::HOST_VOLUME_REGISTER));
    assert!(!acl.allow_namespace_operation("default", cap::HOST_VOLUME_CREATE));
}

#[test]
fn other_policy_expansions_match_nomad() {
    assert_eq!(cap::expand_node_pool_policy("read"), ["read"]);
    assert_eq!(
        cap::expand_node_pool_policy("write"),
        ["delete", "read", "write"]
    );
    assert_eq!(cap::expand_node_pool_policy("deny"), ["deny"]);
    assert!(cap::expand_node_pool_policy("scale").is_empty());
    assert_eq!(cap::expand_host_volume_policy("read"), ["mount-readonly"]);
    assert_eq!(
        cap::expand_host_volume_policy("write"),
        ["mount-readonly", "mount-readwrite"]
    );
    assert_eq!(cap::expand_host_volume_policy("deny"), ["deny"]);
    assert_eq!(
        cap::expand_operator_policy("read"),
        ["license-read", "keyring-read"]
    );
    assert_eq!(
        cap::expand_operator_policy("write"),
        [
            "snapshot-save",
            "license-read",
            "keyring-rotate",
            "keyring-read",
            "keyring-delete"
        ]
    );
    assert_eq!(
        cap::expand_sentinel_policy("write"),
        ["sentinel-read", "sentinel-submit", "sentinel-delete"]
    );

    // Variables: read brings list, deny stands alone, write implies nothing.
    let p = parse(
        r#"namespace "apps" {
             variables {
               path "jobs/write-does-not-imply-read-or-delete" { capabilities = ["write"] }
               path "project/read-implies-list" { capabilities = ["read"] }
               path "project/explicit" { capabilities = ["read", "list", "destroy"] }
               path "project/denied" { capabilities = ["read", "deny"] }
             }
           }"#,
    )
    .unwrap();
    let paths = p.namespaces[0].variables.as_ref().unwrap();
    let caps: Vec<(&str, Vec<String>)> = paths
        .iter()
        .map(|p| (p.path.as_str(), p.capabilities.clone()))
        .collect();
    assert_eq!(
        caps,
        vec![
            (
                "jobs/write-does-not-imply-read-or-delete",
                strings(&["write"])
            ),
            ("project/read-implies-list", strings(&["read", "list"])),
            ("project/explicit", strings(&["read", "list", "destroy"])),
            ("project/denied", strings(&["deny"])),
        ]
    );
    // The namespace itself has no rule beyond the variables.
    assert!(p.namespaces[0].capabilities.is_empty());
}

#[test]
fn every_namespace_capability_nomad_has_is_accepted() {
    // Nomad's NamespaceCapability* constants (acl/policy.go).
    let nomad = [
        "deny",
        "list-jobs",
        "parse-job",
        "read-job",
        "submit-job",
        "dispatch-job",
        "read-logs",
        "read-fs",
        "alloc-exec",
        "alloc-node-exec",
        "alloc-lifecycle",
        "sentinel-override",
        "csi-register-plugin",
        "csi-write-volume",
        "csi-read-volume",
        "csi-list-volume",
        "csi-mount-volume",
        "host-volume-create",
        "host-volume-register",
        "host-volume-read",
        "host-volume-write",
        "host-volume-delete",
        "list-scaling-policies",
        "read-scaling-policy",
        "read-job-scaling",
        "scale-job",
        "submit-recommendation",
        "register-job",
        "revert-job",
        "deregister-job",
        "purge-job",
        "evaluate-job",
        "plan-job",
        "tag-job-version",
        "stable-job",
        "fail-deployment",
        "pause-deployment",
        "promote-deployment",
        "unblock-deployment",
        "cancel-deployment",
        "set-alloc-health-deployment",
        "gc-allocation",
        "pause-allocation",
        "force-periodic-job",
        "delete-service-registration",
    ];
    let mut ours = cap::NAMESPACE_CAPABILITIES.to_vec();
    ours.sort_unstable();
    let mut theirs = nomad.to_vec();
    theirs.sort_unstable();
    assert_eq!(ours, theirs);
    for c in nomad {
        let rules = format!("namespace \"default\" {{ capabilities = [\"{c}\"] }}");
        assert!(parse(&rules).is_ok(), "{c}");
    }
}

#[test]
fn submit_job_grants_the_fine_grained_job_capabilities() {
    let acl = acl_of(r#"namespace "default" { capabilities = ["submit-job"] }"#);
    for c in [
        cap::REGISTER_JOB,
        cap::REVERT_JOB,
        cap::DEREGISTER_JOB,
        cap::PURGE_JOB,
        cap::EVALUATE_JOB,
        cap::PLAN_JOB,
        cap::TAG_JOB_VERSION,
        cap::STABLE_JOB,
        cap::FAIL_DEPLOYMENT,
        cap::PAUSE_DEPLOYMENT,
        cap::PROMOTE_DEPLOYMENT,
        cap::UNBLOCK_DEPLOYMENT,
        cap::CANCEL_DEPLOYMENT,
        cap::SET_ALLOC_HEALTH_DEPLOYMENT,
        cap::GC_ALLOCATION,
        cap::PAUSE_ALLOCATION,
        cap::FORCE_PERIODIC_JOB,
        cap::DELETE_SERVICE_REGISTRATION,
    ] {
        assert!(acl.allow_namespace_operation("default", c), "{c}");
        assert!(acl.allow_namespace_operation("*", c), "* {c}");
    }
    // The reverse does not hold: a fine-grained capability grants only itself.
    let acl = acl_of(r#"namespace "default" { capabilities = ["register-job"] }"#);
    assert!(acl.allow_namespace_operation("default", cap::REGISTER_JOB));
    assert!(!acl.allow_namespace_operation("default", cap::SUBMIT_JOB));
    assert!(!acl.allow_namespace_operation("default", cap::REVERT_JOB));
    // purge-job covers deregistering; dispatch-job covers forcing a periodic launch.
    let acl = acl_of(r#"namespace "default" { capabilities = ["purge-job", "dispatch-job"] }"#);
    assert!(acl.allow_namespace_operation("default", cap::DEREGISTER_JOB));
    assert!(acl.allow_namespace_operation("default", cap::FORCE_PERIODIC_JOB));
    assert!(!acl.allow_namespace_operation("default", cap::REGISTER_JOB));
    assert!(acl.allow_namespace_operation_any_of("default", &[cap::SUBMIT_JOB, cap::PURGE_JOB]));
    // A deny wins over an implying capability too.
    let acl = acl_of(r#"namespace "default" { capabilities = ["submit-job", "deny"] }"#);
    assert!(!acl.allow_namespace_operation("default", cap::REGISTER_JOB));
}

// ---------------------------------------------------------------------------------------------
// Merging (Nomad's TestACLMerge and friends)

const READ_ALL: &str = r#"
namespace "default" { policy = "read" }
node_pool "my-pool" { policy = "read" }
agent { policy = "read" }
node { policy = "read" }
operator { policy = "read" }
quota { policy = "read" }
"#;

const WRITE_ALL: &str = r#"
namespace "default" { policy = "write" }
node_pool "my-pool" { policy = "write" }
agent { policy = "write" }
node { policy = "write" }
operator { policy = "write" }
quota { policy = "write" }
"#;

const DENY_ALL: &str = r#"
namespace "default" { policy = "deny" }
node_pool "my-pool" { policy = "deny" }
agent { policy = "deny" }
node { policy = "deny" }
operator { policy = "deny" }
quota { policy = "deny" }
"#;

#[test]
fn management_allows_everything_and_deny_all_nothing() {
    let m = Acl::management();
    assert!(m.is_management());
    assert!(m.allow_namespace_operation("anything", cap::SUBMIT_JOB));
    assert!(m.allow_namespace("foo"));
    assert!(m.allow_node_pool_operation("my-pool", cap::POOL_WRITE));
    assert!(m.allow_host_volume_operation("v", cap::MOUNT_READWRITE));
    assert!(m.allow_variable_operation("ns", "a/b", cap::VAR_DESTROY));
    assert!(m.allow_agent_write() && m.allow_node_write() && m.allow_operator_write());
    assert!(m.allow_quota_write() && m.allow_plugin_read() && m.allow_plugin_list());

    for acl in [Acl::deny_all(), Acl::from_policies(&[])] {
        assert!(!acl.is_management());
        assert!(!acl.allow_namespace_operation("default", cap::LIST_JOBS));
        assert!(!acl.allow_namespace("default"));
        assert!(!acl.allow_namespace("*"));
        assert!(!acl.allow_node_pool_operation("default", cap::POOL_READ));
        assert!(!acl.allow_host_volume_operation("v", cap::MOUNT_READONLY));
        assert!(!acl.allow_variable_operation("default", "a", cap::VAR_READ));
        assert!(!acl.allow_agent_read() && !acl.allow_node_read() && !acl.allow_operator_read());
        assert!(!acl.allow_quota_read() && !acl.allow_plugin_read() && !acl.allow_plugin_list());
    }
}

#[test]
fn merge_read_and_write_takes_the_most_privileged() {
    let acl = Acl::from_policies(&[parse(READ_ALL).unwrap(), parse(WRITE_ALL).unwrap()]);
    assert!(acl.allow_namespace_operation("default", cap::LIST_JOBS));
    assert!(acl.allow_namespace_operation("default", cap::SUBMIT_JOB));
    assert!(acl.allow_namespace("default"));
    assert!(!acl.allow_namespace_operation("foo", cap::LIST_JOBS));
    assert!(!acl.allow_namespace("foo"));
    assert!(acl.allow_node_pool_operation("my-pool", cap::POOL_READ));
    assert!(acl.allow_node_pool_operation("my-pool", cap::POOL_WRITE));
    assert!(acl.allow_node_pool("my-pool"));
    assert!(!acl.allow_node_pool("other-pool"));
    assert!(!acl.is_management());
    assert!(acl.allow_agent_read() && acl.allow_agent_write());
    assert!(acl.allow_node_read() && acl.allow_node_write());
    assert!(acl.allow_operator_read() && acl.allow_operator_write());
    assert!(acl.allow_quota_read() && acl.allow_quota_write());

    // read + the empty policy: only read.
    let acl = Acl::from_policies(&[parse(READ_ALL).unwrap(), parse("").unwrap()]);
    assert!(acl.allow_namespace_operation("default", cap::LIST_JOBS));
    assert!(!acl.allow_namespace_operation("default", cap::SUBMIT_JOB));
    assert!(acl.allow_node_pool_operation("my-pool", cap::POOL_READ));
    assert!(!acl.allow_node_pool_operation("my-pool", cap::POOL_WRITE));
    assert!(acl.allow_agent_read() && !acl.allow_agent_write());
    assert!(acl.allow_node_read() && !acl.allow_node_write());
    assert!(acl.allow_operator_read() && !acl.allow_operator_write());
    assert!(acl.allow_quota_read() && !acl.allow_quota_write());
}

#[test]
fn deny_wins_over_read_and_write_in_any_order() {
    for order in [
        [READ_ALL, DENY_ALL],
        [DENY_ALL, READ_ALL],
        [WRITE_ALL, DENY_ALL],
    ] {
        let policies: Vec<Policy> = order.iter().map(|r| parse(r).unwrap()).collect();
        let acl = Acl::from_policies(&policies);
        assert!(!acl.allow_namespace_operation("default", cap::LIST_JOBS));
        assert!(!acl.allow_namespace_operation("default", cap::SUBMIT_JOB));
        assert!(!acl.allow_namespace("default"));
        assert!(!acl.allow_node_pool_operation("my-pool", cap::POOL_READ));
        assert!(!acl.allow_node_pool("my-pool"));
        assert!(!acl.allow_agent_read() && !acl.allow_agent_write());
        assert!(!acl.allow_node_read() && !acl.allow_node_write());
        assert!(!acl.allow_operator_read() && !acl.allow_operator_write());
        assert!(!acl.allow_quota_read() && !acl.allow_quota_write());
    }
    // Capabilities union across policies and within one (two blocks for one namespace).
    let acl = Acl::from_policies(&[
        parse(r#"namespace "a" { capabilities = ["read-logs"] }"#).unwrap(),
        parse(
            r#"namespace "a" { capabilities = ["read-fs"] }
               namespace "a" { capabilities = ["alloc-exec"] }"#,
        )
        .unwrap(),
    ]);
    for c in [cap::READ_LOGS, cap::READ_FS, cap::ALLOC_EXEC] {
        assert!(acl.allow_namespace_operation("a", c), "{c}");
    }
    assert!(!acl.allow_namespace_operation("a", cap::SUBMIT_JOB));
    // deny among the capabilities of one block denies all of them.
    let acl = acl_of(r#"namespace "secret" { capabilities = ["deny", "read-logs"] }"#);
    assert!(!acl.allow_namespace_operation("secret", cap::READ_LOGS));
    assert!(!acl.allow_namespace("secret"));
    // Host volumes and variables: deny wins across policies too.
    let acl = Acl::from_policies(&[
        parse(r#"host_volume "v" { policy = "write" }"#).unwrap(),
        parse(r#"host_volume "v" { capabilities = ["deny"] }"#).unwrap(),
    ]);
    assert!(!acl.allow_host_volume_operation("v", cap::MOUNT_READONLY));
    assert!(!acl.allow_host_volume("v"));
    let acl = Acl::from_policies(&[
        parse(r#"namespace "ns" { variables { path "a" { capabilities = ["read"] } } }"#).unwrap(),
        parse(r#"namespace "ns" { variables { path "a" { capabilities = ["deny"] } } }"#).unwrap(),
    ]);
    assert!(!acl.allow_variable_operation("ns", "a", cap::VAR_READ));
    assert!(!acl.allow_variable_operation("ns", "a", cap::VAR_LIST));
}

#[test]
fn allow_namespace_needs_a_non_deny_capability() {
    // Nomad's TestAllowNamespace.
    let cases = [
        (r#"namespace "foo" {}"#, "foo", false),
        (r#"namespace "foo" { policy = "deny" }"#, "foo", false),
        (
            r#"namespace "foo" { capabilities = ["deny"] }"#,
            "foo",
            false,
        ),
        (
            r#"namespace "foo" { capabilities = ["list-jobs"] }"#,
            "foo",
            true,
        ),
        (r#"namespace "foo" { policy = "read" }"#, "foo", true),
        (r#"namespace "foo" {}"#, "*", false),
        (r#"namespace "foo" { policy = "deny" }"#, "*", false),
        (r#"namespace "foo" { capabilities = ["deny"] }"#, "*", false),
        (
            r#"namespace "foo" { capabilities = ["list-jobs"] }"#,
            "*",
            true,
        ),
        (r#"namespace "foo" { policy = "read" }"#, "*", true),
        (r#"agent { policy = "read" }"#, "*", false),
    ];
    for (rules, ns, want) in cases {
        assert_eq!(acl_of(rules).allow_namespace(ns), want, "{rules} in {ns}");
    }
    // The all-namespaces sentinel asks whether any namespace allows the operation.
    let acl = acl_of(
        r#"namespace "a" { policy = "read" }
           namespace "b" { policy = "write" }"#,
    );
    assert!(acl.allow_namespace_operation("*", cap::SUBMIT_JOB));
    assert!(!acl.allow_namespace_operation("*", cap::ALLOC_NODE_EXEC));
}

// ---------------------------------------------------------------------------------------------
// Globs

#[test]
fn glob_matching_follows_go_glob() {
    let cases = [
        ("*", "anything", true),
        ("*", "", true),
        ("", "", true),
        ("", "a", false),
        ("prod-*", "prod-api", true),
        ("prod-*", "prod-", true),
        ("prod-*", "dev-prod-api", false),
        ("*-api", "prod-api", true),
        ("*-api", "prod-api-x", false),
        ("*admin*", "production-admin-api", true),
        ("a*b*c", "aXbYc", true),
        ("a*b*c", "aXcYb", false),
        ("a*a", "a", false),
        ("a*a", "aa", true),
        ("prod-api", "prod-api", true),
        ("prod-api", "prod-api-services", false),
        ("ns\0foo/*", "ns\0foo/bar", true),
        ("ns\0foo/*", "ns*\0bar", false),
    ];
    for (pattern, subject, want) in cases {
        assert_eq!(
            glob_match(pattern, subject),
            want,
            "{pattern:?} ~ {subject:?}"
        );
    }
    // Nomad's TestACL_matchingCapabilitySet_difference.
    assert_eq!(glob_difference("production-*", "production-api"), 3);
    assert_eq!(glob_difference("production-*", "production-admin-api"), 9);
    assert_eq!(glob_difference("production-**", "production-admin-api"), 9);
    assert_eq!(glob_difference("*", "production-admin-api"), 20);
    assert_eq!(glob_difference("*admin*", "production-admin-api"), 15);
}

#[test]
fn namespace_lookup_prefers_exact_then_closest_glob() {
    // Nomad's TestWildcardNamespaceMatching.
    let cases = [
        (
            r#"namespace "prod-api-*" { policy = "write" }"#,
            "prod-api-services",
            true,
        ),
        (
            r#"namespace "prod-api" { policy = "write" }"#,
            "prod-api-services",
            false,
        ),
        (
            r#"namespace "prod-api-services" { policy = "deny" }
               namespace "prod-api-*" { policy = "write" }"#,
            "prod-api-services",
            false,
        ),
        (
            r#"namespace "prod-api-*" { policy = "deny" }
               namespace "prod-api-services" { policy = "write" }"#,
            "prod-api-services",
            true,
        ),
        (
            r#"namespace "*-api-services" { policy = "deny" }
               namespace "prod-api-*" { policy = "write" }"#,
            "prod-api-services",
            false,
        ),
        (
            r#"namespace "prod-api-*" { policy = "write" }
               namespace "*-api-services" { policy = "deny" }"#,
            "prod-api-services",
            false,
        ),
        (
            r#"namespace "prod-api-*" { policy = "deny" }
               namespace "prod-api-services" { policy = "write" }"#,
            "*",
            true,
        ),
    ];
    for (rules, ns, want) in cases {
        assert_eq!(acl_of(rules).allow_namespace(ns), want, "{rules} in {ns}");
    }
    // An empty exact rule still shadows the globs.
    let acl = acl_of(
        r#"namespace "*" { policy = "write" }
           namespace "quiet" {}"#,
    );
    assert!(!acl.allow_namespace("quiet"));
    assert!(acl.allow_namespace("loud"));
    // Equally close globs: the last in byte order ("a-*" after "*-b") wins, as in Nomad, whatever
    // the policies say and even over a deny.
    let acl = acl_of(
        r#"namespace "a-*" { policy = "read" }
           namespace "*-b" { policy = "deny" }"#,
    );
    assert!(acl.allow_namespace("a-b"));
    let acl = acl_of(
        r#"namespace "a-*" { policy = "deny" }
           namespace "*-b" { policy = "read" }"#,
    );
    assert!(!acl.allow_namespace("a-b"));
}

#[test]
fn node_pool_rules_match_nomad() {
    // Nomad's TestNodePool: (rules, pool, allowed ops, denied ops, allow_node_pool).
    let all = [cap::POOL_READ, cap::POOL_WRITE, cap::POOL_DELETE];
    let cases: [(&str, &str, &[&str], bool); 10] = [
        (
            r#"node_pool "my-pool" { policy = "read" }"#,
            "my-pool",
            &["read"],
            true,
        ),
        (
            r#"node_pool "my-pool" { policy = "write" }"#,
            "my-pool",
            &all,
            true,
        ),
        (
            r#"node_pool "my-pool" { capabilities = ["write"] }"#,
            "my-pool",
            &["write"],
            true,
        ),
        (
            r#"node_pool "my-pool" { capabilities = ["read", "delete"] }"#,
            "my-pool",
            &["read", "delete"],
            true,
        ),
        (
            r#"node_pool "my-pool" {
                 policy = "deny"
                 capabilities = ["write", "delete"]
               }"#,
            "my-pool",
            &[],
            false,
        ),
        (
            r#"node_pool "my-pool" { capabilities = ["write", "delete", "deny"] }"#,
            "my-pool",
            &[],
            false,
        ),
        (
            r#"node_pool "*" { policy = "read" }"#,
            "my-pool",
            &["read"],
            true,
        ),
        (
            r#"node_pool "my-pool-*" { policy = "read" }"#,
            "my-pool-1",
            &["read"],
            true,
        ),
        (
            r#"node_pool "my-pool-*" { policy = "read" }"#,
            "your-pool-1",
            &[],
            false,
        ),
        (
            r#"node_pool "my-pool-dev-*" { policy = "read" }
               node_pool "my-pool-*" { policy = "write" }
               node_pool "*" { policy = "deny" }"#,
            "my-pool-dev-1",
            &["read"],
            true,
        ),
    ];
    for (rules, pool, allowed, allow_pool) in cases {
        let acl = acl_of(rules);
        for op in all {
            assert_eq!(
                acl.allow_node_pool_operation(pool, op),
                allowed.contains(&op),
                "{rules}: {op} on {pool}"
            );
        }
        assert_eq!(acl.allow_node_pool(pool), allow_pool, "{rules}: {pool}");
    }
    assert!(acl_of(r#"node_pool "a" { policy = "read" }"#).allow_node_pool_search());
    assert!(!acl_of(r#"node_pool "a" { policy = "deny" }"#).allow_node_pool_search());
    // Node pool names may hold '_', unlike namespaces.
    assert!(parse(r#"node_pool "my_pool" { policy = "read" }"#).is_ok());
    assert!(parse(r#"namespace "my_ns" { policy = "read" }"#).is_err());
}

#[test]
fn host_volume_rules_match_nomad() {
    // Nomad's TestWildcardHostVolumeMatching, all asked about "prod-api-services".
    let cases = [
        (r#"host_volume "prod-api-*" { policy = "write" }"#, true),
        (r#"host_volume "prod-api" { policy = "write" }"#, false),
        (
            r#"host_volume "prod-api-services" { policy = "deny" }
               host_volume "prod-api-*" { policy = "write" }"#,
            false,
        ),
        (
            r#"host_volume "prod-api-*" { policy = "deny" }
               host_volume "prod-api-services" { policy = "write" }"#,
            true,
        ),
        (
            r#"host_volume "*-api-services" { policy = "deny" }
               host_volume "prod-api-*" { policy = "write" }"#,
            false,
        ),
        (
            r#"host_volume "prod-api-*" { policy = "write" }
               host_volume "*-api-services" { policy = "deny" }"#,
            false,
        ),
    ];
    for (rules, want) in cases {
        assert_eq!(
            acl_of(rules).allow_host_volume("prod-api-services"),
            want,
            "{rules}"
        );
    }
    let acl = acl_of(r#"host_volume "production-tls-*" { capabilities = ["mount-readonly"] }"#);
    assert!(acl.allow_host_volume_operation("production-tls-a", cap::MOUNT_READONLY));
    assert!(!acl.allow_host_volume_operation("production-tls-a", cap::MOUNT_READWRITE));
}

#[test]
fn variables_paths_match_nomad() {
    // Nomad's TestVariablesMatching: (rules, ns, path, op, claim, allowed).
    let claim = AclClaim {
        namespace: "ns".into(),
        job: "example".into(),
        group: "foo".into(),
        task: "bar".into(),
    };
    type Case<'a> = (
        &'a str,
        &'a str,
        &'a str,
        &'a str,
        Option<&'a AclClaim>,
        bool,
    );
    let cases: Vec<Case> = vec![
        (
            r#"path "foo/bar" { capabilities = ["read"] }"#,
            "ns",
            "foo/bar",
            "read",
            None,
            true,
        ),
        (
            r#"path "foo/bar" { capabilities = ["read"] }"#,
            "ns",
            "foo/bar",
            "list",
            None,
            true,
        ),
        (
            r#"path "foo/*" { capabilities = ["read"] }"#,
            "ns",
            "foo/bar",
            "read",
            None,
            true,
        ),
        (
            r#"path "*/bar" { capabilities = ["read"] }"#,
            "ns",
            "foo/bar",
            "read",
            None,
            true,
        ),
        (
            r#"path "*/bar" { capabilities = ["list"] }
               path "foo/*" { capabilities = ["write"] }"#,
            "ns",
            "foo/bar",
            "write",
            None,
            true,
        ),
        (
            r#"path "*/bar" { capabilities = ["list"] }
               path "foo/*" { capabilities = ["write"] }"#,
            "ns",
            "foo/bar",
            "list",
            None,
            false,
        ),
        (
            r#"path "*" { capabilities = ["read"] }
               path "foo/*" { capabilities = ["read"] }
               path "foo/bar" { capabilities = ["list"] }"#,
            "ns",
            "foo/bar",
            "read",
            None,
            false,
        ),
        (
            r#"path "bar" { capabilities = ["read"] }"#,
            "ns",
            "foo/bar",
            "read",
            None,
            false,
        ),
        (
            r#"path "*/foo" { capabilities = ["read"] }"#,
            "ns",
            "foo/bar",
            "read",
            None,
            false,
        ),
        (
            r#"path "foo/bar" { capabilities = ["read"] }"#,
            "ns",
            "*",
            "read",
            None,
            false,
        ),
        (
            r#"path "foo/bar" { capabilities = ["read"] }"#,
            "ns*",
            "bar",
            "read",
            None,
            false,
        ),
        (
            r#"path "*" { capabilities = ["list"] }
               path "system/*" { capabilities = ["deny"] }"#,
            "ns",
            "system/not-allowed",
            "list",
            None,
            false,
        ),
        (
            r#"path "nomad/jobs/example" { capabilities = ["deny"] }"#,
            "ns",
            "nomad/jobs/example",
            "read",
            Some(&claim),
            false,
        ),
        (
            r#"path "nomad/jobs" { capabilities = ["deny"] }"#,
            "ns",
            "nomad/jobs/example",
            "read",
            Some(&claim),
            true,
        ),
        (
            r#"path "nomad/jobs/*" { capabilities = ["deny"] }"#,
            "ns",
            "nomad/jobs/example",
            "read",
            Some(&claim),
            true,
        ),
    ];
    for (paths, ns, path, op, claim, want) in cases {
        let rules = format!("namespace \"ns\" {{ variables {{ {paths} }} }}");
        let acl = acl_of(&rules);
        assert_eq!(
            acl.allow_variable_operation_with_claim(ns, path, op, claim),
            want,
            "{paths}: {op} {ns}/{path}"
        );
        if claim.is_none() {
            assert_eq!(acl.allow_variable_operation(ns, path, op), want);
        }
    }
    // Wildcard namespaces.
    let acl =
        acl_of(r#"namespace "*" { variables { path "foo/bar" { capabilities = ["read"] } } }"#);
    assert!(acl.allow_variable_operation("ns", "foo/bar", "read"));
    assert!(!acl.allow_variable_operation("ns", "bar", "read"));
    // Overlapping paths in two namespaces do not leak into each other.
    let acl = acl_of(
        r#"namespace "ns" {
             variables {
               path "*" { capabilities = ["list"] }
               path "system/*" { capabilities = ["deny"] }
             }
           }
           namespace "prod" { variables { path "*" { capabilities = ["list"] } } }"#,
    );
    assert!(acl.allow_variable_operation("prod", "system/is-allowed", "list"));
    assert!(!acl.allow_variable_operation("ns", "system/x", "list"));
    assert!(acl.allow_variable_search("ns"));
    assert!(acl.allow_variable_search("*"));
    assert!(!acl.allow_variable_search("no-access"));
    // A claim for another namespace grants nothing.
    let acl = Acl::deny_all();
    assert!(acl.allow_variable_operation_with_claim(
        "ns",
        "nomad/jobs/example",
        "read",
        Some(&claim)
    ));
    assert!(!acl.allow_variable_operation_with_claim(
        "ns",
        "nomad/jobs/example",
        "write",
        Some(&claim)
    ));
    assert!(!acl.allow_variable_operation_with_claim(
        "other",
        "nomad/jobs/example",
        "read",
        Some(&claim)
    ));
}

// ---------------------------------------------------------------------------------------------
// Coarse levels

#[test]
fn operator_capabilities_match_nomad() {
    // Nomad's TestAllowOperatorOperation.
    let cases = [
        (r#"operator { policy = "write" }"#, "snapshot-save", true),
        (r#"operator { policy = "write" }"#, "keyring-delete", true),
        (r#"operator { policy = "read" }"#, "license-read", true),
        (r#"operator { policy = "read" }"#, "keyring-read", true),
        (r#"operator { policy = "read" }"#, "snapshot-save", false),
        (r#"operator { policy = "read" }"#, "keyring-rotate", false),
        (
            r#"operator {
                 policy = "deny"
                 capabilities = ["license-read"]
               }"#,
            "license-read",
            false,
        ),
        (
            r#"operator {
                 policy = "read"
                 capabilities = ["snapshot-save"]
               }"#,
            "snapshot-save",
            true,
        ),
        (
            r#"operator { capabilities = ["license-read"] }"#,
            "license-read",
            true,
        ),
        (
            r#"operator { capabilities = ["snapshot-save"] }"#,
            "keyring-rotate",
            false,
        ),
        (
            r#"operator { capabilities = ["deny"] }"#,
            "snapshot-save",
            false,
        ),
        (
            r#"operator { capabilities = ["snapshot-save", "deny"] }"#,
            "snapshot-save",
            false,
        ),
        (r#"agent { policy = "read" }"#, "license-read", false),
    ];
    for (rules, op, want) in cases {
        assert_eq!(
            acl_of(rules).allow_operator_operation(op),
            want,
            "{rules}: {op}"
        );
    }
    // Capabilities alone give no operator read level.
    let acl = acl_of(r#"operator { capabilities = ["snapshot-save", "license-read"] }"#);
    assert!(!acl.allow_operator_read());
}

#[test]
fn plugin_and_scale_levels_follow_nomad() {
    let acl = acl_of(r#"plugin { policy = "list" }"#);
    assert!(acl.allow_plugin_list() && !acl.allow_plugin_read());
    let acl = acl_of(r#"plugin { policy = "read" }"#);
    assert!(acl.allow_plugin_list() && acl.allow_plugin_read());
    // Nomad's AllowPluginRead/List count only read and list.
    let acl = acl_of(r#"plugin { policy = "write" }"#);
    assert!(!acl.allow_plugin_list() && !acl.allow_plugin_read());
    // list merges below read; deny wins.
    let acl = Acl::from_policies(&[
        parse(r#"plugin { policy = "list" }"#).unwrap(),
        parse(r#"plugin { policy = "read" }"#).unwrap(),
    ]);
    assert!(acl.allow_plugin_read());
    let acl = Acl::from_policies(&[
        parse(r#"plugin { policy = "read" }"#).unwrap(),
        parse(r#"plugin { policy = "deny" }"#).unwrap(),
    ]);
    assert!(!acl.allow_plugin_list());
    // "scale" is accepted for agent/node/quota but grants nothing there.
    let acl = acl_of(r#"agent { policy = "scale" }"#);
    assert!(!acl.allow_agent_read());
    // A namespace "scale" policy is the autoscaler's set.
    let acl = acl_of(r#"namespace "default" { policy = "scale" }"#);
    assert!(acl.allow_namespace_operation("default", cap::SCALE_JOB));
    assert!(acl.allow_namespace_operation("default", cap::READ_JOB));
    assert!(!acl.allow_namespace_operation("default", cap::SUBMIT_JOB));
    assert!(!acl.allow_namespace_operation("default", cap::LIST_JOBS));
}

// ---------------------------------------------------------------------------------------------
// Syntax forms

#[test]
fn json_policies_parse_like_hcl() {
    let hcl = parse(
        r#"namespace "default" {
             policy = "read"
             capabilities = ["submit-job"]
             variables { path "a/*" { capabilities = ["read"] } }
           }
           namespace "other" { policy = "write" }
           node_pool "p" { policy = "read" }
           host_volume "v" { policy = "write" }
           agent { policy = "read" }
           operator { policy = "read" capabilities = ["snapshot-save"] }
           plugin { policy = "list" }"#,
    )
    .unwrap();
    let json_list = parse(
        r#"{
          "namespace": [
            {"default": {"policy": "read", "capabilities": ["submit-job"],
                         "variables": {"path": {"a/*": {"capabilities": ["read"]}}}}},
            {"other": {"policy": "write"}}
          ],
          "node_pool": [{"p": {"policy": "read"}}],
          "host_volume": {"v": {"policy": "write"}},
          "agent": {"policy": "read"},
          "operator": {"policy": "read", "capabilities": ["snapshot-save"]},
          "plugin": [{"policy": "list"}]
        }"#,
    )
    .unwrap();
    assert_eq!(hcl, json_list);
    let json_map = parse(
        r#"  {"namespace": {"default": {"policy": "read", "capabilities": ["submit-job"],
                                      "variables": [{"path": [{"a/*": {"capabilities": ["read"]}}]}]},
                          "other": {"policy": "write"}},
            "node_pool": {"p": {"policy": "read"}},
            "host_volume": [{"v": {"policy": "write"}}],
            "agent": [{"policy": "read"}],
            "operator": {"policy": "read", "capabilities": ["snapshot-save"]},
            "plugin": {"policy": "list"}}"#,
    )
    .unwrap();
    assert_eq!(hcl, json_map);
}

#[test]
fn empty_rules_grant_nothing_but_text_without_rules_is_an_error() {
    // Nomad's Parse returns an empty policy for "" and refuses text that defines no rule.
    assert!(parse("").unwrap().is_empty());
    for rules in ["  \n", "# just a comment\n", "{}"] {
        let e = parse_err(rules);
        assert!(
            e.message.starts_with("Invalid policy: no rules defined"),
            "{e}"
        );
        assert_eq!(e.line, None);
        assert!(parse_lenient(rules).is_err());
    }
    // Nomad's JSON-envelope mistake: the API payload instead of its rules.
    let e = parse_err(r#"{"Name": "my-policy", "Description": "great", "Rules": "anything"}"#);
    assert!(
        e.message.starts_with("Invalid policy: no rules defined"),
        "{e}"
    );
    assert!(e.message.contains("Description, Name, Rules"), "{e}");
    assert_eq!((e.line, e.column), (Some(1), Some(2)));
}

// ---------------------------------------------------------------------------------------------
// Bad input

#[test]
fn syntax_errors_name_line_and_column() {
    let e = parse_err(
        "namespace \"default\" {\n  policy = \"read\"\n  capabilities = [\"a\" \"b\"]\n}\n",
    );
    assert_eq!((e.line, e.column), (Some(3), Some(23)), "{e}");
    assert!(
        e.to_string()
            .starts_with("Failed to parse ACL policy: 3:23: "),
        "{e}"
    );

    let e = parse_err("namespace \"default\" {\n  policy = \"read\"\n");
    assert!(e.line.is_some() && e.column.is_some(), "{e}");
    assert!(e.message.contains("'}'"), "{e}");

    let e = parse_err("{\"namespace\": {\"default\": {\"policy\": \"read\"}}");
    assert!(e.line == Some(1) && e.column.is_some(), "{e}");

    assert!(parse("namespace \"\\500\" {}").is_err());
}

#[test]
fn unknown_keys_are_errors_when_strict_and_ignored_when_lenient() {
    // Nomad's TestParse_ExtraKeys: unknown and repeated top-level keys, listed sorted.
    let rules = r#"
namespace "foo" {
  policy = "write"
  variables {
    path "project/*" { capabilities = ["read", "write"] }
  }
}
namespace "bar" { policy = "write" }
bogus { policy = "read" }
anotherbogus { policy = "write" }
node { policy = "read" }
node { policy = "write" }
agent { policy = "read" }
agent { policy = "write" }
operator { policy = "read" }
operator { policy = "write" }
quota { policy = "read" }
quota { policy = "write" }
host_volume "volume-read-only" { policy = "read" }
host_volume "volume-read-write" { policy = "write" }
plugin { policy = "read" }
plugin { policy = "write" }
node_pool "pool-read-only" { policy = "read" }
node_pool "pool-read-write" { policy = "write" }
"#;
    let e = parse_err(rules);
    assert_eq!(
        e.message,
        "Invalid or duplicate policy keys: agent, anotherbogus, bogus, node, operator, plugin, quota"
    );
    assert_eq!((e.line, e.column), (Some(9), Some(1)));
    // Lenient: the last of repeated blocks counts.
    let p = parse_lenient(rules).unwrap();
    assert_eq!(p.node.as_deref(), Some("write"));
    assert_eq!(p.plugin.as_deref(), Some("write"));
    assert_eq!(p.namespaces.len(), 2);

    // Unknown keys inside a block.
    let e = parse_err("namespace \"default\" {\n  polcy = \"read\"\n}\n");
    assert_eq!((e.line, e.column), (Some(2), Some(3)));
    assert!(
        e.message
            .contains("unknown key \"polcy\" in namespace \"default\""),
        "{e}"
    );
    let p = parse_lenient("namespace \"default\" {\n  polcy = \"read\"\n}\n").unwrap();
    assert!(p.namespaces[0].capabilities.is_empty());
    let e = parse_err(r#"agent { policy = "read" level = "x" }"#);
    assert!(
        e.message
            .contains("unknown key \"level\" in the agent block"),
        "{e}"
    );
    let e = parse_err(
        r#"namespace "a" { variables { path "x" { capabilities = ["read"] policy = "read" } } }"#,
    );
    assert!(
        e.message
            .contains("unknown key \"policy\" in variables path \"x\""),
        "{e}"
    );
    // Keys are case-sensitive, as Nomad's documentation says.
    let e = parse_err(r#"namespace "a" { Policy = "read" }"#);
    assert!(e.message.contains("unknown key \"Policy\""), "{e}");
    // Two variables blocks in one namespace.
    let e = parse_err(
        r#"namespace "a" {
             variables { path "x" { capabilities = ["read"] } }
             variables { path "y" { capabilities = ["read"] } }
           }"#,
    );
    assert!(e.message.contains("duplicate variables block"), "{e}");
}

#[test]
fn invalid_capabilities_and_policies_are_refused_with_their_position() {
    let e = parse_err("namespace \"default\" {\n  capabilities = [\"deny\", \"foo\"]\n}\n");
    assert_eq!(
        e.message,
        "Invalid namespace capability 'foo' in namespace \"default\""
    );
    assert_eq!((e.line, e.column), (Some(2), Some(27)));

    let e = parse_err("namespace \"default\" {\n  policy = \"foo\"\n}\n");
    assert!(
        e.message.starts_with("Invalid namespace policy \"foo\""),
        "{e}"
    );
    assert_eq!((e.line, e.column), (Some(2), Some(12)));
    // "list" is for plugins only.
    assert!(parse(r#"namespace "default" { policy = "list" }"#).is_err());

    let cases = [
        (
            r#"agent { policy = "foo" }"#,
            "Invalid agent policy \"foo\"",
        ),
        (r#"agent {}"#, "Invalid agent policy \"\""),
        (r#"node { policy = "foo" }"#, "Invalid node policy"),
        (r#"operator { policy = "foo" }"#, "Invalid operator policy"),
        (r#"quota { policy = "foo" }"#, "Invalid quota policy"),
        (r#"plugin { policy = "reader" }"#, "Invalid plugin policy"),
        (r#"plugin { policy = "scale" }"#, "Invalid plugin policy"),
        (
            r#"sentinel { policy = "invalid" }"#,
            "Invalid sentinel policy",
        ),
        (
            r#"sentinel { capabilities = ["invalid-capability"] }"#,
            "Invalid sentinel capability",
        ),
        (
            r#"operator { capabilities = ["snapshot-restore"] }"#,
            "Invalid operator capability",
        ),
        (
            r#"node_pool "my-pool" { capabilities = ["read", "invalid"] }"#,
            "Invalid node pool capability",
        ),
        (
            r#"node_pool "my-pool" { policy = "list" }"#,
            "Invalid node pool policy",
        ),
        (
            r#"host_volume "v" { capabilities = ["mount"] }"#,
            "Invalid host volume capability",
        ),
        (
            r#"host_volume "v" { policy = "mount" }"#,
            "Invalid host volume policy",
        ),
        (
            r#"namespace "dev" { variables { path "a" { capabilities = ["read", "admin"] } } }"#,
            "Invalid variable capability 'admin' in namespace dev",
        ),
        (
            r#"namespace "a" { policy = 1 }"#,
            "policy in namespace \"a\": expected a string",
        ),
        (
            r#"namespace "a" { capabilities = "read-job" }"#,
            "capabilities in namespace \"a\": expected a list of strings, found a string",
        ),
        (
            r#"namespace "a" { capabilities = [1] }"#,
            "expected a list of strings, found an integer",
        ),
        (
            r#"agent "x" { policy = "read" }"#,
            "the agent block takes no label",
        ),
        (
            r#"namespace = "default""#,
            "namespace: expected a block, found a string",
        ),
    ];
    for (rules, want) in cases {
        let e = parse_err(rules);
        assert!(
            e.message.starts_with(want) || e.message.contains(want),
            "{rules}: {e}"
        );
        assert!(e.line.is_some(), "{rules}: {e}");
    }
    // Sentinel override is an accepted namespace capability (Enterprise).
    assert!(parse(r#"namespace "default" { capabilities = ["sentinel-override"] }"#).is_ok());
}

#[test]
fn bad_names_are_refused() {
    let cases = [
        (r#"namespace "has a space" { policy = "read" }"#, "Invalid namespace name \"has a space\""),
        (r#"namespace { policy = "read" }"#, "Invalid namespace name \"\""),
        (r#"namespace {}"#, "Invalid namespace name \"\""),
        (r#"namespace "" { policy = "read" }"#, "Invalid namespace name \"\""),
        (r#"{"namespace": [{"": {"policy": "read"}}]}"#, "Invalid namespace name \"\""),
        (r#"namespace "$namespace" { policy = "read" }"#, "Invalid namespace name"),
        (r#"node_pool "" {}"#, "Invalid node pool name ''"),
        (r#"node_pool "pool%" {}"#, "Invalid node pool name 'pool%'"),
        (r#"node_pool { policy = "read" }"#, "Invalid node pool name"),
        (r#"host_volume "volume has a space" { policy = "read" }"#, "Invalid host volume name"),
        (r#"host_volume { policy = "read" }"#, "Invalid host volume name"),
        (r#"{"host_volume": [{"": {"policy": "read"}}]}"#, "Invalid host volume name"),
        (r#"namespace "a" "b" { policy = "read" }"#, "a namespace block takes one label"),
        (
            r#"namespace "dev" { variables "*" { capabilities = ["read"] } }"#,
            "Invalid variable policy: no variable paths in namespace dev",
        ),
        (
            r#"namespace "dev" { variables {} }"#,
            "Invalid variable policy: no variable paths in namespace dev",
        ),
        (
            r#"namespace "dev" { variables { path "/nomad/job" { capabilities = ["read"] } } }"#,
            "Invalid variable path \"/nomad/job\" in namespace dev: cannot start with a leading '/'",
        ),
        (
            r#"namespace "dev" {
                 policy = "read"
                 variables {
                   path {}
                   path "nomad/jobs/example" { capabilities = ["read"] }
                 }
               }"#,
            "Invalid missing variable path in namespace dev",
        ),
    ];
    for (rules, want) in cases {
        let e = parse_err(rules);
        assert!(e.message.starts_with(want), "{rules}: {e}");
    }
    let long = "a".repeat(129);
    assert!(parse(&format!("namespace \"{long}\" {{}}")).is_err());
    assert!(parse(&format!("namespace \"{}\" {{}}", &long[..128])).is_ok());
    let e = parse_err("\n\nnamespace \"bad name\" {\n}\n");
    assert_eq!((e.line, e.column), (Some(3), Some(11)));
}

#[test]
fn error_display_has_the_nomad_prefix() {
    let e = PolicyError {
        line: Some(3),
        column: Some(7),
        message: "boom".into(),
    };
    assert_eq!(e.to_string(), "Failed to parse ACL policy: 3:7: boom");
    let e = PolicyError {
        line: None,
        column: None,
        message: "boom".into(),
    };
    assert_eq!(e.to_string(), "Failed to parse ACL policy: boom");
}
