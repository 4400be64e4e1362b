//! The finite state machine: applies one [`Command`] at one index to the state store. This is
//! the only writer of server state, and the function the Raft state machine calls; it publishes
//! the entry's events (the event stream) to the server's [`EventBroker`].

use super::command::Command;
use super::events::EventBroker;
use crate::state::{StateStore, Tables};
use caravan_structs::*;

pub fn apply(store: &StateStore, events: &EventBroker, index: u64, cmd: &Command) {
    apply_at(store, events, index, 0, cmd)
}

/// Applies an entry with the time it carries (`now`, Unix nanoseconds; 0: read the clock),
/// so replaying a log sets the same timestamps as the first apply did.
pub fn apply_at(store: &StateStore, events: &EventBroker, index: u64, now: i64, cmd: &Command) {
    let now = if now > 0 { now } else { time::now_nanos() };
    if !events.enabled() {
        store.write(index, |t| apply_with_services(t, index, now, cmd));
        return;
    }
    // Events come from what the entry changed: the tables before and after it.
    let before = store.snapshot();
    store.write(index, |t| apply_with_services(t, index, now, cmd));
    events.publish(super::events::from_apply(
        &before,
        &store.snapshot(),
        index,
        cmd,
    ));
}

/// Applies the entry, then drops the service registrations it made stale.
fn apply_with_services(t: &mut Tables, index: u64, now: i64, cmd: &Command) {
    apply_tables(t, index, now, cmd);
    super::services::prune_after(t, index, cmd);
}

fn apply_tables(t: &mut Tables, index: u64, now: i64, cmd: &Command) {
    match cmd {
        Command::Acl(c) => super::acl::apply(t, index, c),
        Command::Keyring(c) => super::keyring::apply(t, index, c),
        Command::Variables(c) => super::variables::apply(t, index, c),
        Command::RestartSlot(c) => crate::state::restarts::apply(t, now, c),
        Command::Services(c) => crate::state::services::apply(t, index, c),
        Command::NodeRegister { node } => {
            let mut node = node.clone();
            if let Some(old) = t.nodes.get(&node.id) {
                // Eligibility and drain are the operator's, not the client's.
                node.scheduling_eligibility = old.scheduling_eligibility.clone();
                node.drain = old.drain;
                node.drain_strategy = old.drain_strategy.clone();
                let mut events = old.events.clone();
                if old.status != node.status {
                    events.push(node_event("Node re-registered", index, now));
                }
                node.events = events;
            } else {
                node.events = vec![node_event("Node registered", index, now)];
            }
            node.compute_class();
            // Nomad creates the pool a node registers into when nobody has yet.
            t.ensure_node_pool(index, &node.node_pool);
            t.upsert_node(index, node);
        }
        Command::NodeStatusUpdate {
            node_id,
            status,
            updated_at,
            evals,
        } => {
            if let Some(old) = t.nodes.get(node_id).cloned() {
                let mut n = (*old).clone();
                if n.status != *status {
                    n.events.push(node_event(
                        &format!("Node status changed to {status}"),
                        index,
                        now,
                    ));
                    n.events = tail(n.events, 10);
                }
                n.status = status.clone();
                n.status_updated_at = *updated_at;
                t.upsert_node(index, n);
                if status == NODE_STATUS_DOWN {
                    // Allocations on a down node are lost.
                    for a in t.allocs_by_node(node_id) {
                        if !a.terminal() {
                            let mut a = (*a).clone();
                            a.client_status = ALLOC_CLIENT_LOST.into();
                            a.client_description = "alloc is lost since its node is down".into();
                            a.modify_time = now;
                            t.upsert_alloc(index, a);
                        }
                    }
                }
            }
            for e in evals {
                t.upsert_eval(index, e.clone());
            }
        }
        Command::NodeEligibilityUpdate {
            node_id,
            eligibility,
            evals,
        } => {
            if let Some(old) = t.nodes.get(node_id).cloned() {
                let mut n = (*old).clone();
                n.scheduling_eligibility = eligibility.clone();
                n.events.push(node_event(
                    &format!("Node marked as {eligibility}"),
                    index,
                    now,
                ));
                n.events = tail(n.events, 10);
                t.upsert_node(index, n);
            }
            for e in evals {
                t.upsert_eval(index, e.clone());
            }
        }
        Command::JobRegister { job, eval } => {
            let mut job = job.clone();
            if job.submit_time == 0 {
                job.submit_time = now;
            }
            t.upsert_job(index, job.clone());
            if let Some(e) = eval {
                let mut e = e.clone();
                if let Some(j) = t.job(&job.namespace, &job.id) {
                    e.job_modify_index = j.job_modify_index;
                }
                t.upsert_eval(index, e);
            }
            t.refresh_job_status(index, &job.namespace, &job.id);
        }
        Command::JobDeregister {
            namespace,
            job_id,
            purge,
            eval,
        } => {
            if *purge {
                t.delete_job(index, namespace, job_id);
            } else if let Some(j) = t.job(namespace, job_id) {
                let mut j = (*j).clone();
                j.stop = true;
                t.upsert_job(index, j);
            }
            if let Some(e) = eval {
                t.upsert_eval(index, e.clone());
            }
            t.refresh_job_status(index, namespace, job_id);
        }
        Command::EvalUpsert { evals } => {
            for e in evals {
                t.upsert_eval(index, e.clone());
                t.refresh_job_status(index, &e.namespace, &e.job_id);
            }
        }
        Command::ApplyPlanResults {
            allocs,
            deployment,
            deployment_updates,
            eval_id: _,
        } => {
            if let Some(d) = deployment {
                t.upsert_deployment(index, d.clone());
            }
            for u in deployment_updates {
                if let Some(d) = t.deployments.get(&u.deployment_id).cloned() {
                    let mut d = (*d).clone();
                    d.status = u.status.clone();
                    d.status_description = u.status_description.clone();
                    d.modify_time = now;
                    t.upsert_deployment(index, d);
                }
            }
            let mut jobs = std::collections::BTreeSet::new();
            for a in allocs {
                let mut a = a.clone();
                if let Some(old) = t.allocs.get(&a.id).cloned() {
                    // The client owns client status and task states; the plan only changes
                    // desired state (and, for lost allocs, marks them lost).
                    if a.client_status != ALLOC_CLIENT_LOST {
                        a.client_status = old.client_status.clone();
                        a.client_description = old.client_description.clone();
                    }
                    a.task_states = old.task_states.clone();
                    a.deployment_status = old.deployment_status.clone();
                    if a.job_version() != old.job_version()
                        || a.desired_status != old.desired_status
                    {
                        a.alloc_modify_index = index;
                    } else {
                        a.alloc_modify_index = old.alloc_modify_index;
                    }
                } else if a.create_time == 0 {
                    a.create_time = now;
                }
                a.modify_time = now;
                // Link a replacement to the alloc it replaces.
                if !a.previous_allocation.is_empty() {
                    if let Some(prev) = t.allocs.get(&a.previous_allocation).cloned() {
                        if prev.next_allocation != a.id {
                            let mut p = (*prev).clone();
                            p.next_allocation = a.id.clone();
                            t.upsert_alloc(index, p);
                        }
                    }
                }
                jobs.insert((a.namespace.clone(), a.job_id.clone()));
                t.upsert_alloc(index, a);
            }
            for (ns, id) in jobs {
                t.refresh_job_status(index, &ns, &id);
            }
        }
        Command::AllocClientUpdate { allocs, evals } => {
            let mut jobs = std::collections::BTreeSet::new();
            for upd in allocs {
                let Some(old) = t.allocs.get(&upd.id).cloned() else {
                    continue;
                };
                let mut a = (*old).clone();
                a.client_status = upd.client_status.clone();
                a.client_description = upd.client_description.clone();
                a.task_states = upd.task_states.clone();
                if upd.deployment_status.is_some() {
                    let mut ds = upd.deployment_status.clone().unwrap_or_default();
                    ds.modify_index = index;
                    a.deployment_status = Some(ds);
                }
                a.modify_time = now;
                jobs.insert((a.namespace.clone(), a.job_id.clone()));
                t.upsert_alloc(index, a);
            }
            for e in evals {
                t.upsert_eval(index, e.clone());
            }
            for (ns, id) in jobs {
                t.refresh_job_status(index, &ns, &id);
            }
        }
        Command::AllocDesiredStop { alloc_id, eval } => {
            if let Some(old) = t.allocs.get(alloc_id).cloned() {
                let mut a = (*old).clone();
                a.desired_transition.migrate = Some(true);
                a.modify_time = now;
                t.upsert_alloc(index, a);
            }
            t.upsert_eval(index, eval.clone());
        }
        Command::NodeDrainUpdate {
            node_id,
            drain_strategy,
            mark_eligible,
            completed,
        } => {
            if let Some(old) = t.nodes.get(node_id).cloned() {
                let mut n = (*old).clone();
                n.drain = drain_strategy.is_some();
                n.drain_strategy = drain_strategy.clone();
                let msg = if n.drain {
                    n.scheduling_eligibility = NODE_INELIGIBLE.into();
                    "Node drain strategy set"
                } else {
                    if *mark_eligible {
                        n.scheduling_eligibility = NODE_ELIGIBLE.into();
                    }
                    if *completed {
                        "Node drain complete"
                    } else {
                        "Node drain strategy unset"
                    }
                };
                n.events.push(node_event(msg, index, now));
                n.events = tail(n.events, 10);
                t.upsert_node(index, n);
            }
        }
        Command::AllocsMigrate { alloc_ids, evals } => {
            for id in alloc_ids {
                if let Some(old) = t.allocs.get(id).cloned() {
                    let mut a = (*old).clone();
                    a.desired_transition.migrate = Some(true);
                    a.modify_time = now;
                    t.upsert_alloc(index, a);
                }
            }
            for e in evals {
                t.upsert_eval(index, e.clone());
            }
        }
        Command::GcDelete { plan } => {
            for id in &plan.allocs {
                t.delete_alloc(index, id);
            }
            for id in &plan.evals {
                t.delete_eval(index, id);
            }
            for id in &plan.deployments {
                t.delete_deployment(index, id);
            }
            for (ns, id) in &plan.jobs {
                t.delete_job(index, ns, id);
            }
            for id in &plan.nodes {
                t.delete_node(index, id);
            }
        }
        Command::SchedulerSetConfig { config } => t.set_scheduler_config(index, config.clone()),
        Command::JobStability {
            namespace,
            job_id,
            version,
            stable,
        } => t.set_job_stability(index, namespace, job_id, *version, *stable),
        Command::ScalingEventRegister {
            namespace,
            job_id,
            task_group,
            event,
        } => t.add_scaling_event(index, namespace, job_id, task_group, event.clone()),
        Command::Partition { op } => super::partitions::apply(t, index, op),
        Command::DeploymentUpsert { deployment, evals } => {
            let mut d = deployment.clone();
            d.modify_time = now;
            t.upsert_deployment(index, d);
            for e in evals {
                t.upsert_eval(index, e.clone());
            }
        }
    }
}

fn node_event(msg: &str, index: u64, now: i64) -> NodeEvent {
    NodeEvent {
        message: msg.into(),
        subsystem: "Cluster".into(),
        timestamp: crate::util::rfc3339(now),
        create_index: index,
        ..Default::default()
    }
}

fn tail<T>(mut v: Vec<T>, n: usize) -> Vec<T> {
    if v.len() > n {
        v.drain(..v.len() - n);
    }
    v
}
