//! Placement metrics, recorded the way Nomad's `AllocMetric` does: nodes evaluated, filtered
//! (by class and constraint) and exhausted (by dimension), per-scorer scores, and the top
//! scoring nodes.

use caravan_structs::{AllocMetric, Node, NodeScoreMeta, TaskGroup};
use std::collections::BTreeMap;

/// How many of the best nodes `score_meta_data` keeps.
const TOP_K: usize = 5;
pub const NORM_SCORER: &str = "normalized-score";

/// Collects one placement attempt's metrics.
#[derive(Debug, Default)]
pub struct Metrics {
    pub m: AllocMetric,
    metas: Vec<NodeScoreMeta>,
}

impl Metrics {
    pub fn evaluate_node(&mut self) {
        self.m.nodes_evaluated += 1;
    }

    pub fn filter_node(&mut self, node: &Node, reason: &str) {
        self.m.nodes_filtered += 1;
        if !node.node_class.is_empty() {
            *self
                .m
                .class_filtered
                .entry(node.node_class.clone())
                .or_default() += 1;
        }
        if !reason.is_empty() {
            *self
                .m
                .constraint_filtered
                .entry(reason.to_string())
                .or_default() += 1;
        }
    }

    pub fn exhausted_node(&mut self, node: &Node, dimension: &str) {
        self.m.nodes_exhausted += 1;
        if !node.node_class.is_empty() {
            *self
                .m
                .class_exhausted
                .entry(node.node_class.clone())
                .or_default() += 1;
        }
        if !dimension.is_empty() {
            *self
                .m
                .dimension_exhausted
                .entry(dimension.to_string())
                .or_default() += 1;
        }
    }

    /// Records every scorer's score for a ranked node, and its normalized score.
    pub fn score_node(&mut self, node: &Node, scores: &[(&'static str, f64)], norm: f64) {
        let mut meta = NodeScoreMeta {
            node_id: node.id.clone(),
            scores: BTreeMap::new(),
            norm_score: norm,
        };
        for (name, s) in scores {
            self.m.scores.insert(format!("{}.{}", node.id, name), *s);
            meta.scores.insert((*name).to_string(), *s);
        }
        self.m
            .scores
            .insert(format!("{}.{}", node.id, NORM_SCORER), norm);
        self.metas.push(meta);
    }

    /// Finishes: keeps the top scoring nodes and the elapsed time.
    pub fn finish(mut self, elapsed_nanos: i64) -> AllocMetric {
        self.metas.sort_by(|a, b| {
            b.norm_score
                .partial_cmp(&a.norm_score)
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        self.metas.truncate(TOP_K);
        self.m.score_meta_data = self.metas;
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
