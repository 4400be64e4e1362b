//! Ranking: the scores Nomad's rank iterators give a feasible node that fits — bin-pack or
//! spread fit, job anti-affinity, the node-rescheduling penalty and `affinity` blocks — and
//! their normalization (the average of the scores that apply).

use crate::constraints::{check_operand, resolve_target, RegexCache};
use crate::Algorithm;
use caravan_structs::{Affinity, ComparableResources, Job, Node, TaskGroup};

/// The best possible fit score, used to normalize it to [0, 1].
pub const BINPACK_MAX_FIT_SCORE: f64 = 18.0;

fn free_fraction(node: &Node, util: &ComparableResources) -> (f64, f64) {
    let cap = node.comparable_capacity();
    let free = |used: i64, cap: i64| {
        if cap <= 0 {
            0.0
        } else {
            1.0 - used as f64 / cap as f64
        }
    };
    (
        free(util.cpu_shares, cap.cpu_shares),
        free(util.memory_mb, cap.memory_mb),
    )
}

/// Nomad's `ScoreFitBinPack` (fuller is better) or `ScoreFitSpread` (emptier is better),
/// in [0, 18], for the node's utilization including the placement.
pub fn score_fit(algorithm: Algorithm, node: &Node, util: &ComparableResources) -> f64 {
    let (cpu, mem) = free_fraction(node, util);
    let total = 10f64.powf(cpu) + 10f64.powf(mem);
    let score = match algorithm {
        Algorithm::Binpack => 20.0 - total,
        Algorithm::Spread => total - 2.0,
    };
    score.clamp(0.0, BINPACK_MAX_FIT_SCORE)
}

/// Penalty for co-locating with `collisions` allocations of the same job and group.
pub fn job_anti_affinity(collisions: u32, desired_count: i32) -> Option<f64> {
    if collisions == 0 {
        return None;
    }
    let desired = desired_count.max(1) as f64;
    Some(-(collisions as f64 + 1.0) / desired)
}

/// The job's, group's and tasks' affinities, combined.
#[derive(Debug, Clone, Default)]
pub struct Affinities {
    list: Vec<Affinity>,
    sum_weight: f64,
}

impl Affinities {
    pub fn new(job: &Job, tg: &TaskGroup) -> Self {
        let list: Vec<Affinity> = job
            .affinities
            .iter()
            .chain(tg.affinities.iter())
            .chain(tg.tasks.iter().flat_map(|t| t.affinities.iter()))
            .cloned()
            .collect();
        let sum_weight = list.iter().map(|a| (a.weight as f64).abs()).sum();
        Affinities { list, sum_weight }
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Sum of the weights of the matching affinities over the sum of all weights' magnitudes,
    /// in [-1, 1].
    pub fn score(&self, cache: &mut RegexCache, node: &Node) -> f64 {
        if self.sum_weight == 0.0 {
            return 0.0;
        }
        let mut total = 0.0;
        for a in &self.list {
            let l = resolve_target(&a.l_target, node);
            let r = resolve_target(&a.r_target, node);
            if check_operand(cache, &a.operand, l, r) {
                total += a.weight as f64;
            }
        }
        total / self.sum_weight
    }
}

/// Nomad's `ScoreNormalizationIterator`: the average of the scores that apply.
pub fn normalize(scores: &[f64]) -> f64 {
    if scores.is_empty() {
        0.0
    } else {
        scores.iter().sum::<f64>() / scores.len() as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binpack_prefers_fuller_nodes() {
        let mut n = Node::default();
        n.node_resources.cpu.cpu_shares = 1000;
        n.node_resources.memory.memory_mb = 1000;
        let light = ComparableResources {
            cpu_shares: 100,
            memory_mb: 100,
            disk_mb: 0,
        };
        let heavy = ComparableResources {
            cpu_shares: 900,
            memory_mb: 900,
            disk_mb: 0,
        };
        assert!(
            score_fit(Algorithm::Binpack, &n, &heavy) > score_fit(Algorithm::Binpack, &n, &light)
        );
        assert!(
            score_fit(Algorithm::Spread, &n, &heavy) < score_fit(Algorithm::Spread, &n, &light)
        );
        assert_eq!(job_anti_affinity(0, 3), None);
        assert_eq!(job_anti_affinity(1, 4), Some(-0.5));
    }
}
