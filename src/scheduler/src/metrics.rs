//! Placement metrics, recorded the way Nomad's `AllocMetric` does: nodes evaluated, filtered
//! (by class and constraint) and exhausted (by dimension), per-scorer scores, and the top
//! scoring nodes.

use caravan_structs::{AllocMetric, Node, NodeScoreMeta, TaskGroup};
use std::collections::BTreeMap;
use std::sync::Arc;

/// How many of the best nodes `score_meta_data` keeps.
const TOP_K: usize = 5;

/// One scored node, kept while it is among the best [`TOP_K`]; its strings are only made
/// when the attempt finishes.
#[derive(Debug)]
struct Scored {
    node: Arc<Node>,
    scores: Vec<(&'static str, f64)>,
    norm: f64,
}

/// Collects one placement attempt's metrics.
#[derive(Debug, Default)]
pub struct Metrics {
    pub m: AllocMetric,
    /// The best scored nodes so far, best first (equal scores in the order they came).
    top: Vec<Scored>,
}

/// Adds one to `map[key]`, allocating the key only the first time it is seen.
fn bump(map: &mut BTreeMap<String, u64>, key: &str) {
    match map.get_mut(key) {
        Some(c) => *c += 1,
        None => {
            map.insert(key.to_string(), 1);
        }
    }
}

impl Metrics {
    pub fn evaluate_node(&mut self) {
        self.m.nodes_evaluated += 1;
    }

    pub fn filter_node(&mut self, node: &Node, reason: &str) {
        self.m.nodes_filtered += 1;
        if !node.node_class.is_empty() {
            bump(&mut self.m.class_filtered, &node.node_class);
        }
        if !reason.is_empty() {
            bump(&mut self.m.constraint_filtered, reason);
        }
    }

    pub fn exhausted_node(&mut self, node: &Node, dimension: &str) {
        self.m.nodes_exhausted += 1;
        if !node.node_class.is_empty() {
            bump(&mut self.m.class_exhausted, &node.node_class);
        }
        if !dimension.is_empty() {
            bump(&mut self.m.dimension_exhausted, dimension);
        }
    }

    /// Records every scorer's score for a ranked node, and its normalized score. Only the
    /// [`TOP_K`] best nodes are kept (Nomad's `ScoreMetaData`).
    pub fn score_node(&mut self, node: &Arc<Node>, scores: &[(&'static str, f64)], norm: f64) {
        // After every kept node with a score at least as high: a stable order.
        let pos = self.top.iter().take_while(|s| s.norm >= norm).count();
        if pos >= TOP_K {
            return;
        }
        self.top.insert(
            pos,
            Scored {
                node: node.clone(),
                scores: scores.to_vec(),
                norm,
            },
        );
        self.top.truncate(TOP_K);
    }

    /// Finishes: the top scoring nodes in `score_meta_data` and the elapsed time. Like
    /// Nomad since 0.9 (`AllocMetric.ScoreNode`), the older flat `scores` map stays empty.
    pub fn finish(mut self, elapsed_nanos: i64) -> AllocMetric {
        for s in self.top {
            self.m.score_meta_data.push(NodeScoreMeta {
                node_id: s.node.id.clone(),
                scores: s
                    .scores
                    .into_iter()
                    .map(|(name, v)| (name.to_string(), v))
                    .collect(),
                norm_score: s.norm,
            });
        }
        self.m.allocation_time = elapsed_nanos;
        self.m
    }
}

/// Notes which of the group's task resources ran out (Nomad's `ExhaustResources`).
pub fn exhaust_resources(m: &mut AllocMetric, tg: &TaskGroup) {
    let cpu = m.dimension_exhausted.contains_key("cpu");
    let mem = m.dimension_exhausted.contains_key("memory");
    if !cpu && !mem {
        return;
    }
    for t in &tg.tasks {
        let mut v = serde_json_map();
        if cpu {
            v.insert("CPU".into(), t.resources.cpu.into());
        }
        if mem {
            v.insert("MemoryMB".into(), t.resources.memory_mb.into());
        }
        m.resources_exhausted
            .insert(t.name.clone(), serde_json::Value::Object(v));
    }
}

fn serde_json_map() -> serde_json::Map<String, serde_json::Value> {
    serde_json::Map::new()
}
