//! `spread` blocks: score nodes so a group's allocations spread over an attribute's values,
//! to target percentages or evenly (Nomad's `SpreadIterator`).

use crate::constraints::resolve_target;
use caravan_structs::{Job, Node, TaskGroup};
use std::collections::HashMap;

/// Target for values a spread does not list.
const IMPLICIT_TARGET: &str = "*";

#[derive(Debug, Clone)]
struct SpreadAttr {
    attribute: String,
    weight: i32,
    /// Desired allocation count per value; empty for an even spread.
    desired: HashMap<String, f64>,
    /// Current allocation count per value among the group's allocations.
    counts: HashMap<String, u64>,
}

/// The spread scorer of one task group.
#[derive(Debug, Clone)]
pub struct SpreadScorer {
    attrs: Vec<SpreadAttr>,
    sum_weights: i32,
    lowest_boost: f64,
}

impl SpreadScorer {
    /// `None` when neither the group nor the job has spreads.
    pub fn new(job: &Job, tg: &TaskGroup) -> Option<SpreadScorer> {
        let spreads: Vec<_> = tg.spreads.iter().chain(job.spreads.iter()).collect();
        if spreads.is_empty() {
            return None;
        }
        let total = tg.count.max(0) as f64;
        let mut attrs = Vec::new();
        let mut sum_weights = 0;
        for s in spreads {
            let mut desired = HashMap::new();
            let mut sum = 0.0;
            for t in &s.spread_target {
                let d = t.percent as f64 / 100.0 * total;
                desired.insert(t.value.clone(), d);
                sum += d;
            }
            if sum > 0.0 && sum < total {
                desired.insert(IMPLICIT_TARGET.to_string(), total - sum);
            }
            sum_weights += s.weight;
            attrs.push(SpreadAttr {
                attribute: s.attribute.clone(),
                weight: s.weight,
                desired,
                counts: HashMap::new(),
            });
        }
        Some(SpreadScorer {
            attrs,
            sum_weights,
            lowest_boost: -1.0,
        })
    }

    /// Counts an allocation of the group on `node` (existing or just placed).
    pub fn add(&mut self, node: &Node) {
        for a in &mut self.attrs {
            if let Some(v) = resolve_target(&a.attribute, node) {
                *a.counts.entry(v.to_string()).or_default() += 1;
            }
        }
    }

    /// Takes back an allocation (stopped by the plan).
    pub fn remove(&mut self, node: &Node) {
        for a in &mut self.attrs {
            if let Some(v) = resolve_target(&a.attribute, node) {
                if let Some(c) = a.counts.get_mut(v) {
                    *c = c.saturating_sub(1);
                }
            }
        }
    }

    /// The spread score of placing one more allocation on `node`; 0 means "no opinion".
    pub fn score(&mut self, node: &Node) -> f64 {
        let mut total = 0.0;
        for i in 0..self.attrs.len() {
            let a = &self.attrs[i];
            let Some(v) = resolve_target(&a.attribute, node) else {
                total -= 1.0;
                continue;
            };
            let used = a.counts.get(v).copied().unwrap_or(0) as f64 + 1.0;
            if a.desired.is_empty() {
                total += even_boost(&a.counts, v);
                continue;
            }
            let Some(desired) = a.desired.get(v).or_else(|| a.desired.get(IMPLICIT_TARGET)) else {
                total -= 1.0;
                continue;
            };
            let weight = if self.sum_weights != 0 {
                a.weight as f64 / self.sum_weights as f64
            } else {
                0.0
            };
            if *desired == 0.0 {
                total += self.lowest_boost;
                continue;
            }
            let boost = ((desired - used) / desired) * weight;
            total += boost;
            if boost < self.lowest_boost {
                self.lowest_boost = boost;
            }
        }
        total
    }
}

/// Even spread: favour values with the fewest allocations.
fn even_boost(counts: &HashMap<String, u64>, value: &str) -> f64 {
    let placed: Vec<u64> = counts.values().copied().filter(|c| *c > 0).collect();
    if placed.is_empty() {
        return 0.0;
    }
    let current = counts.get(value).copied().unwrap_or(0);
    let mut min = 0u64;
    let mut max = 0u64;
    for c in &placed {
        if min == 0 || *c < min {
            min = *c;
        }
        if max == 0 || *c > max {
            max = *c;
        }
    }
    if current != min {
        // current is above the minimum (or a value not used yet, below it).
        return (min as f64 - current as f64) / min as f64;
    }
    if min == max {
        return -1.0;
    }
    (max - min) as f64 / min as f64
}
