//! Selection: Nomad's generic stack as one small pipeline per placement. Nodes (ready, in the
//! job's datacenters and pool, shuffled once per run) are pulled round-robin from where the
//! previous placement stopped; each is checked for feasibility, fitted (resources, ports) and
//! scored; a limit of scored options (with Nomad's skip of low scores) is collected and the
//! best one wins.

use crate::constraints::{datacenter_matches, node_pool_matches, resolve_target, RegexCache};
use crate::fasthash::FxHashMap;
use crate::feasible::{distinct_properties, node_schedulable, DistinctProperty, GroupChecks};
use crate::metrics::Metrics;
use crate::network::{assign_ports, PortOffer};
use crate::rank::{job_anti_affinity, normalize, score_fit, Affinities, BINPACK_MAX_FIT_SCORE};
use crate::snapshot::StateSnapshot;
use crate::spread::SpreadScorer;
use crate::usage::UsageIndex;
use crate::{Algorithm, SchedulerConfig};
use caravan_structs::{
    AllocMetric, AllocatedCpuResources, AllocatedMemoryResources, AllocatedResources,
    AllocatedSharedResources, AllocatedTaskResources, Allocation, ComparableResources, Job, Node,
    TaskGroup,
};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

/// Options scoring at or below this are skipped while better ones may follow.
const SKIP_SCORE_THRESHOLD: f64 = 0.0;
/// At most this many options are skipped.
const MAX_SKIP: usize = 3;
/// How many nodes are scored when affinities or spreads need a wider look.
const NODE_LIMIT_FOR_SCORING: usize = 100;

/// A node chosen for a placement.
#[derive(Debug, Clone)]
pub struct Ranked {
    pub node: Arc<Node>,
    pub score: f64,
    pub offer: Option<PortOffer>,
}

/// What the stack keeps per task group.
struct GroupCtx {
    checks: GroupChecks,
    /// Per node position: 0 unknown, 1 feasible, n >= 2 infeasible with `reasons[n - 2]`.
    feasible: Vec<u32>,
    /// The same answer per computed node class, when the group's checks read only what the
    /// class covers ([`GroupChecks::class_safe`]): nodes of one class share it.
    class_feasible: Option<FxHashMap<String, u32>>,
    reasons: Vec<String>,
    affinities: Affinities,
    spread: Option<SpreadScorer>,
    distinct: Vec<DistinctProperty>,
    ask: ComparableResources,
    count: i32,
}

/// The placement stack for one job in one scheduling run.
pub struct Stack<'a> {
    state: &'a dyn StateSnapshot,
    job: Arc<Job>,
    algorithm: Algorithm,
    memory_oversubscription: bool,
    nodes: Vec<Arc<Node>>,
    by_dc: BTreeMap<String, u64>,
    offset: usize,
    base_limit: usize,
    usage: UsageIndex,
    /// Per node position, its slot in `usage` (`u32::MAX`: not visited yet).
    usage_slot: Vec<u32>,
    regex: RegexCache,
    groups: HashMap<String, GroupCtx>,
    rng: StdRng,
    /// The job's non-terminal allocations in the snapshot.
    job_allocs: Vec<Arc<Allocation>>,
    /// Placements made so far in this run: (node, group).
    placed: Vec<(Arc<Node>, String)>,
    node_cache: HashMap<String, Option<Arc<Node>>>,
}

/// FNV-1a, to seed the shuffle from an eval ID.
fn fnv(s: &str) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in s.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

impl<'a> Stack<'a> {
    pub fn new(
        state: &'a dyn StateSnapshot,
        job: Arc<Job>,
        job_allocs: &[Arc<Allocation>],
        cfg: &SchedulerConfig,
        eval_id: &str,
    ) -> Self {
        let mut nodes: Vec<Arc<Node>> = state
            .nodes()
            .into_iter()
            .filter(|n| {
                node_schedulable(n) && datacenter_matches(&job, n) && node_pool_matches(&job, n)
            })
            .collect();
        nodes.sort_by(|a, b| a.id.cmp(&b.id));
        let seed = cfg.rng_seed.unwrap_or_else(|| fnv(eval_id)) ^ state.index();
        let mut rng = StdRng::seed_from_u64(seed);
        nodes.shuffle(&mut rng);
        let mut by_dc = BTreeMap::new();
        for n in &nodes {
            *by_dc.entry(n.datacenter.clone()).or_insert(0u64) += 1;
        }
        let batch = job.job_type == caravan_structs::JOB_TYPE_BATCH;
        let base_limit = if batch || nodes.is_empty() {
            2
        } else {
            ((nodes.len() as f64).log2().ceil() as usize).max(2)
        };
        Stack {
            state,
            usage: UsageIndex::new(&job.namespace, &job.id, job_allocs),
            usage_slot: vec![u32::MAX; nodes.len()],
            algorithm: cfg.algorithm,
            memory_oversubscription: cfg.memory_oversubscription,
            nodes,
            by_dc,
            offset: 0,
            base_limit,
            regex: RegexCache::default(),
            groups: HashMap::new(),
            rng,
            job_allocs: job_allocs
                .iter()
                .filter(|a| !a.terminal())
                .cloned()
                .collect(),
            placed: Vec::new(),
            node_cache: HashMap::new(),
            job,
        }
    }

    /// How many nodes the job may be placed on.
    pub fn nodes_in_pool(&self) -> usize {
        self.nodes.len()
    }

    fn lookup_node(&mut self, id: &str) -> Option<Arc<Node>> {
        if let Some(n) = self.node_cache.get(id) {
            return n.clone();
        }
        let n = self.state.node(id);
        self.node_cache.insert(id.to_string(), n.clone());
        n
    }

    fn build_group(&mut self, tg: &TaskGroup) -> GroupCtx {
        let job = self.job.clone();
        let mut ask = ComparableResources {
            disk_mb: tg.ephemeral_disk.size_mb,
            ..Default::default()
        };
        for t in &tg.tasks {
            ask.cpu_shares += t.resources.cpu;
            ask.memory_mb += t.resources.memory_mb;
        }
        let checks = GroupChecks::new(&job, tg);
        let mut g = GroupCtx {
            class_feasible: checks.class_safe().then(FxHashMap::default),
            checks,
            feasible: vec![0; self.nodes.len()],
            reasons: Vec::new(),
            affinities: Affinities::new(&job, tg),
            spread: SpreadScorer::new(&job, tg),
            distinct: distinct_properties(&job, tg),
            ask,
            count: tg.count,
        };
        if g.spread.is_some() || !g.distinct.is_empty() {
            let allocs: Vec<Arc<Allocation>> = self
                .job_allocs
                .iter()
                .filter(|a| !self.usage.is_stopped(&a.id))
                .cloned()
                .collect();
            let mut entries: Vec<(Arc<Node>, String)> = Vec::new();
            for a in allocs {
                if let Some(n) = self.lookup_node(&a.node_id) {
                    entries.push((n, a.task_group.clone()));
                }
            }
            entries.extend(self.placed.iter().cloned());
            for (node, group) in &entries {
                count_into(&mut g, &tg.name, node, group, true);
            }
        }
        g
    }

    /// The group's cached checks (taken out of the cache; put them back when done) and fresh
    /// metrics for one selection.
    fn begin_select(&mut self, tg: &TaskGroup) -> (GroupCtx, Metrics) {
        let g = match self.groups.remove(&tg.name) {
            Some(g) => g,
            None => self.build_group(tg),
        };
        let mut metrics = Metrics::default();
        metrics.m.nodes_available = self.by_dc.clone();
        metrics.m.nodes_in_pool = self.nodes.len() as u64;
        (g, metrics)
    }

    /// As [`Stack::select`], trying `node_id` first (a sticky ephemeral disk's previous node):
    /// when it can take the allocation it is chosen, otherwise every node is considered.
    pub fn select_preferring(
        &mut self,
        tg: &TaskGroup,
        node_id: &str,
        penalty: &HashSet<String>,
    ) -> (Option<Ranked>, AllocMetric) {
        if let Some(idx) = self.nodes.iter().position(|n| n.id == node_id) {
            let start = Instant::now();
            let (mut g, mut metrics) = self.begin_select(tg);
            metrics.evaluate_node();
            let ranked = self.rank_node(idx, tg, &mut g, penalty, &mut metrics);
            self.groups.insert(tg.name.clone(), g);
            if ranked.is_some() {
                let elapsed = start.elapsed().as_nanos() as i64;
                return (ranked, metrics.finish(elapsed));
            }
        }
        self.select(tg, penalty)
    }

    /// Picks a node for one allocation of `tg`, avoiding `penalty` nodes where possible.
    /// Returns the choice (if any) and the metrics of the attempt.
    pub fn select(
        &mut self,
        tg: &TaskGroup,
        penalty: &HashSet<String>,
    ) -> (Option<Ranked>, AllocMetric) {
        let start = Instant::now();
        let (mut g, mut metrics) = self.begin_select(tg);

        let limit = if !g.affinities.is_empty() || g.spread.is_some() {
            (tg.count.max(0) as usize).max(NODE_LIMIT_FOR_SCORING)
        } else {
            self.base_limit
        };
        let mut visited = 0usize;
        let mut seen = 0usize;
        let mut skipped: Vec<Ranked> = Vec::new();
        let mut skipped_idx = 0usize;
        let mut best: Option<Ranked> = None;

        loop {
            if seen == limit {
                break;
            }
            let mut opt = self.next_ranked(tg, &mut g, penalty, &mut metrics, &mut visited);
            if opt.is_none() && skipped_idx < skipped.len() {
                opt = Some(skipped[skipped_idx].clone());
                skipped_idx += 1;
            }
            if opt.is_none() {
                break;
            }
            while skipped.len() < MAX_SKIP
                && opt
                    .as_ref()
                    .is_some_and(|o| o.score <= SKIP_SCORE_THRESHOLD)
            {
                if let Some(o) = opt.take() {
                    skipped.push(o);
                }
                opt = self.next_ranked(tg, &mut g, penalty, &mut metrics, &mut visited);
            }
            seen += 1;
            if opt.is_none() && skipped_idx < skipped.len() {
                opt = Some(skipped[skipped_idx].clone());
                skipped_idx += 1;
            }
            let Some(o) = opt else { break };
            if best.as_ref().is_none_or(|b| o.score > b.score) {
                best = Some(o);
            }
        }
        self.groups.insert(tg.name.clone(), g);
        let elapsed = start.elapsed().as_nanos() as i64;
        (best, metrics.finish(elapsed))
    }

    /// Pulls nodes until one is feasible and fits, and scores it.
    fn next_ranked(
        &mut self,
        tg: &TaskGroup,
        g: &mut GroupCtx,
        penalty: &HashSet<String>,
        metrics: &mut Metrics,
        visited: &mut usize,
    ) -> Option<Ranked> {
        let n = self.nodes.len();
        while *visited < n {
            let idx = self.offset;
            self.offset = (idx + 1) % n;
            *visited += 1;
            metrics.evaluate_node();
            if let Some(r) = self.rank_node(idx, tg, g, penalty, metrics) {
                return Some(r);
            }
        }
        None
    }

    fn rank_node(
        &mut self,
        idx: usize,
        tg: &TaskGroup,
        g: &mut GroupCtx,
        penalty: &HashSet<String>,
        metrics: &mut Metrics,
    ) -> Option<Ranked> {
        let node = self.nodes[idx].clone();
        // Static feasibility, cached per node for the group.
        if g.feasible[idx] == 0 {
            let by_class = g
                .class_feasible
                .as_ref()
                .filter(|_| !node.computed_class.is_empty())
                .and_then(|c| c.get(&node.computed_class).copied());
            g.feasible[idx] = match by_class {
                Some(v) => v,
                None => {
                    let v = match g.checks.check(&mut self.regex, &node) {
                        Ok(()) => 1,
                        Err(reason) => {
                            let pos = match g.reasons.iter().position(|r| *r == reason) {
                                Some(p) => p,
                                None => {
                                    g.reasons.push(reason);
                                    g.reasons.len() - 1
                                }
                            };
                            pos as u32 + 2
                        }
                    };
                    if let Some(c) = g.class_feasible.as_mut() {
                        if !node.computed_class.is_empty() {
                            c.insert(node.computed_class.clone(), v);
                        }
                    }
                    v
                }
            };
        }
        if g.feasible[idx] >= 2 {
            let reason = &g.reasons[(g.feasible[idx] - 2) as usize];
            metrics.filter_node(&node, reason);
            return None;
        }
        let slot = match self.usage_slot[idx] {
            u32::MAX => {
                let s = self.usage.slot(self.state, &node);
                self.usage_slot[idx] = s as u32;
                s
            }
            s => s as usize,
        };
        let usage = self.usage.at(slot);
        let group_allocs = usage.job_groups.get(&tg.name).copied().unwrap_or(0);
        if (g.checks.distinct_hosts_job && usage.job_total > 0)
            || (g.checks.distinct_hosts_group && group_allocs > 0)
        {
            metrics.filter_node(&node, crate::constraints::OP_DISTINCT_HOSTS);
            return None;
        }
        for dp in &g.distinct {
            if let Err(reason) = dp.check(&node) {
                metrics.filter_node(&node, &reason);
                return None;
            }
        }
        // Fit: ports first, then cpu, memory and disk.
        if usage.collision {
            metrics.exhausted_node(&node, "network: port collision");
            return None;
        }
        let offer = match tg.networks.first() {
            Some(ask) => match assign_ports(ask, &node, &usage.ports, &mut self.rng) {
                Ok(o) => Some(o),
                Err(e) => {
                    metrics.exhausted_node(&node, &format!("network: {e}"));
                    return None;
                }
            },
            None => None,
        };
        let mut proposed = usage.used;
        proposed.add(&g.ask);
        if let Some(dim) = node.comparable_capacity().superset(&proposed) {
            metrics.exhausted_node(&node, dim);
            return None;
        }

        // Scores (fixed arrays: this runs for every candidate of every placement).
        let mut named: [(&'static str, f64); 5] = [("", 0.0); 5];
        let mut n_named = 0usize;
        let mut applied = [0.0f64; 5];
        let mut n_applied = 0usize;
        let mut push = |name: &'static str, score: f64, applies: bool| {
            named[n_named] = (name, score);
            n_named += 1;
            if applies {
                applied[n_applied] = score;
                n_applied += 1;
            }
        };
        let fit = score_fit(self.algorithm, &node, &proposed) / BINPACK_MAX_FIT_SCORE;
        push("binpack", fit, true);
        match job_anti_affinity(group_allocs, g.count) {
            Some(p) => push("job-anti-affinity", p, true),
            None => push("job-anti-affinity", 0.0, false),
        }
        if penalty.contains(&node.id) {
            push("node-reschedule-penalty", -1.0, true);
        } else {
            push("node-reschedule-penalty", 0.0, false);
        }
        if g.affinities.is_empty() {
            push("node-affinity", 0.0, false);
        } else {
            let s = g.affinities.score(&mut self.regex, &node);
            push("node-affinity", s, true);
        }
        if let Some(sp) = &mut g.spread {
            let s = sp.score(&node);
            if s != 0.0 {
                push("allocation-spread", s, true);
            }
        }
        let score = normalize(&applied[..n_applied]);
        metrics.score_node(&node, &named[..n_named], score);
        Some(Ranked { node, score, offer })
    }

    /// What an allocation of `tg` gets, with the ports of `offer`.
    pub fn allocated_resources(
        &self,
        tg: &TaskGroup,
        offer: Option<&PortOffer>,
    ) -> AllocatedResources {
        let mut r = AllocatedResources {
            shared: AllocatedSharedResources {
                disk_mb: tg.ephemeral_disk.size_mb,
                ..Default::default()
            },
            ..Default::default()
        };
        for t in &tg.tasks {
            r.tasks.insert(
                t.name.clone(),
                AllocatedTaskResources {
                    cpu: AllocatedCpuResources {
                        cpu_shares: t.resources.cpu,
                        reserved_cores: vec![],
                    },
                    memory: AllocatedMemoryResources {
                        memory_mb: t.resources.memory_mb,
                        memory_max_mb: if self.memory_oversubscription {
                            t.resources.memory_max_mb
                        } else {
                            0
                        },
                    },
                    networks: vec![],
                    devices: vec![],
                },
            );
            r.task_lifecycles
                .insert(t.name.clone(), t.lifecycle.clone());
        }
        if let Some(o) = offer {
            r.shared.networks = vec![o.network.clone()];
            r.shared.ports = o.ports.clone();
        }
        r
    }

    /// Records a placement the plan made.
    pub fn commit(&mut self, node: &Arc<Node>, alloc: &Allocation) {
        self.usage.place(alloc);
        for (name, g) in self.groups.iter_mut() {
            count_into(g, name, node, &alloc.task_group, true);
        }
        self.placed.push((node.clone(), alloc.task_group.clone()));
    }

    /// The plan stops `alloc`: free its resources.
    pub fn stop(&mut self, alloc: &Allocation) {
        if alloc.terminal() || self.usage.is_stopped(&alloc.id) {
            return;
        }
        self.usage.stop(alloc);
        if alloc.job_id == self.job.id
            && alloc.namespace == self.job.namespace
            && !self.groups.is_empty()
        {
            if let Some(node) = self.lookup_node(&alloc.node_id) {
                for (name, g) in self.groups.iter_mut() {
                    count_into(g, name, &node, &alloc.task_group, false);
                }
            }
        }
    }

    /// Takes back a stop whose replacement could not be placed.
    pub fn undo_stop(&mut self, alloc: &Allocation) {
        if !self.usage.is_stopped(&alloc.id) {
            return;
        }
        self.usage.undo_stop(alloc);
        if alloc.job_id == self.job.id
            && alloc.namespace == self.job.namespace
            && !self.groups.is_empty()
        {
            if let Some(node) = self.lookup_node(&alloc.node_id) {
                for (name, g) in self.groups.iter_mut() {
                    count_into(g, name, &node, &alloc.task_group, true);
                }
            }
        }
    }
}

/// Adds (or removes) one allocation of `alloc_group` on `node` to a group's spread and
/// distinct-property counts.
fn count_into(g: &mut GroupCtx, group: &str, node: &Node, alloc_group: &str, add: bool) {
    if alloc_group == group {
        if let Some(sp) = &mut g.spread {
            if add {
                sp.add(node);
            } else {
                sp.remove(node);
            }
        }
    }
    for dp in &mut g.distinct {
        if dp.group_level && alloc_group != group {
            continue;
        }
        if let Some(v) = resolve_target(&dp.target, node) {
            let c = dp.counts.entry(v.to_string()).or_default();
            if add {
                *c += 1;
            } else {
                *c = c.saturating_sub(1);
            }
        }
    }
}
