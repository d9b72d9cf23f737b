//! The cluster view of `GET /v1/cluster`: every node's `admin.Status`, asked in parallel.
//!
//! Nodes are the configured ones plus any member a reachable node lists (learners added after
//! the gateway started included). A node that does not answer is listed as `unreachable`; its
//! id comes from another node's member list when one names its address, else 0.

use std::collections::BTreeMap;
use std::time::Duration;

use proto::admin::admin_client::AdminClient;
use proto::admin::{StatusReply, StatusRequest};
use proto::MemberRole;
use serde::Serialize;
use utoipa::ToSchema;

use super::Cluster;

/// How long one node may take to report its status: a status call reads only memory.
const STATUS_TIMEOUT: Duration = Duration::from_millis(1_000);
/// Most nodes asked in one view; membership is a handful of nodes, this bounds a bogus list.
const MAX_NODES: usize = 32;

#[derive(Debug, Serialize, PartialEq, Eq, ToSchema)]
#[schema(as = Cluster)]
pub struct ClusterView {
    /// `null` while no leader is known.
    #[schema(required = true)]
    pub leader: Option<u64>,
    pub term: u64,
    pub nodes: Vec<NodeView>,
}

#[derive(Debug, Serialize, PartialEq, Eq, ToSchema)]
#[schema(as = ClusterNode)]
pub struct NodeView {
    pub id: u64,
    pub addr: String,
    #[schema(schema_with = crate::openapi::field_schemas::node_role)]
    pub role: &'static str,
    pub last_log_index: u64,
    pub last_applied: u64,
    pub reachable: bool,
}

impl Cluster {
    async fn status_of(&self, addr: String) -> (String, Option<StatusReply>) {
        let Some(channel) = self.pool().channel(&addr) else {
            return (addr, None);
        };
        let mut client = AdminClient::new(channel);
        let mut request = tonic::Request::new(StatusRequest {});
        request.set_timeout(STATUS_TIMEOUT);
        let reply = tokio::time::timeout(STATUS_TIMEOUT, client.status(request)).await;
        match reply {
            Ok(Ok(r)) => (addr, Some(r.into_inner())),
            _ => (addr, None),
        }
    }

    pub async fn view(&self) -> ClusterView {
        let mut asked: Vec<String> = self.nodes().iter().take(MAX_NODES).cloned().collect();
        let mut replies: Vec<(String, Option<StatusReply>)> =
            futures::future::join_all(asked.iter().cloned().map(|a| self.status_of(a))).await;
        // Members the configuration does not list (e.g. a learner added later).
        let extra: Vec<String> = replies
            .iter()
            .filter_map(|(_, r)| r.as_ref())
            .flat_map(|r| r.members.iter().map(|m| m.addr.clone()))
            .filter(|a| !a.is_empty())
            .fold(Vec::new(), |mut acc, a| {
                if !asked.contains(&a) && !acc.contains(&a) {
                    acc.push(a);
                }
                acc
            });
        let room = MAX_NODES.saturating_sub(asked.len());
        let extra: Vec<String> = extra.into_iter().take(room).collect();
        asked.extend(extra.iter().cloned());
        replies
            .extend(futures::future::join_all(extra.into_iter().map(|a| self.status_of(a))).await);
        build_view(replies)
    }
}

/// Builds the view from each asked address and its reply, if any.
fn build_view(replies: Vec<(String, Option<StatusReply>)>) -> ClusterView {
    let members: BTreeMap<String, (u64, bool)> = replies
        .iter()
        .filter_map(|(_, r)| r.as_ref())
        .flat_map(|r| r.members.iter().map(|m| (m.addr.clone(), (m.id, m.voter))))
        .collect();
    let term = replies
        .iter()
        .filter_map(|(_, r)| r.as_ref().map(|r| r.term))
        .max()
        .unwrap_or(0);
    // A node that calls itself leader at the highest term is the best witness; otherwise
    // the leader id reported at the highest term.
    let leader = replies
        .iter()
        .filter_map(|(_, r)| r.as_ref())
        .filter(|r| r.term == term && MemberRole::reports_leader(&r.role))
        .map(|r| r.node_id)
        .next()
        .or_else(|| {
            replies
                .iter()
                .filter_map(|(_, r)| r.as_ref())
                .filter(|r| r.term == term)
                .find_map(|r| r.leader_id)
        });
    let mut nodes: Vec<NodeView> = replies
        .into_iter()
        .map(|(addr, reply)| match reply {
            Some(r) if MemberRole::parse(&r.role) != Some(MemberRole::Shutdown) => {
                let voter = members.get(&addr).map(|(_, v)| *v);
                NodeView {
                    id: r.node_id,
                    role: MemberRole::seen(&r.role, voter).api().as_str(),
                    addr,
                    last_log_index: r.last_log_index,
                    last_applied: r.last_applied,
                    reachable: true,
                }
            }
            other => NodeView {
                id: other
                    .map(|r| r.node_id)
                    .or_else(|| members.get(&addr).map(|(id, _)| *id))
                    .unwrap_or(0),
                addr,
                role: MemberRole::Unreachable.as_str(),
                last_log_index: 0,
                last_applied: 0,
                reachable: false,
            },
        })
        .collect();
    nodes.sort_by(|a, b| (a.id, &a.addr).cmp(&(b.id, &b.addr)));
    ClusterView {
        leader,
        term,
        nodes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::admin::Member;

    fn reply(id: u64, role: &str, term: u64, leader: Option<u64>) -> StatusReply {
        StatusReply {
            node_id: id,
            addr: format!("n{id}:1"),
            role: role.into(),
            term,
            leader_id: leader,
            last_log_index: 10 * id,
            last_applied: 9 * id,
            members: vec![
                Member {
                    id: 1,
                    addr: "n1:1".into(),
                    voter: true,
                },
                Member {
                    id: 2,
                    addr: "n2:1".into(),
                    voter: true,
                },
                Member {
                    id: 3,
                    addr: "n3:1".into(),
                    voter: true,
                },
                Member {
                    id: 4,
                    addr: "n4:1".into(),
                    voter: false,
                },
            ],
            ..Default::default()
        }
    }

    #[test]
    fn unreachable_nodes_take_their_id_from_members() {
        let view = build_view(vec![
            ("n1:1".into(), Some(reply(1, "Leader", 3, Some(1)))),
            ("n2:1".into(), Some(reply(2, "Candidate", 3, None))),
            ("n3:1".into(), None),
            ("n4:1".into(), Some(reply(4, "Follower", 3, Some(1)))),
            ("n9:1".into(), None),
        ]);
        assert_eq!(view.leader, Some(1));
        assert_eq!(view.term, 3);
        let roles: Vec<(u64, &str, bool)> = view
            .nodes
            .iter()
            .map(|n| (n.id, n.role, n.reachable))
            .collect();
        assert_eq!(
            roles,
            vec![
                (0, "unreachable", false),
                (1, "leader", true),
                (2, "follower", true),
                (3, "unreachable", false),
                (4, "learner", true),
            ]
        );
        let json = serde_json::to_value(&view).unwrap();
        assert_eq!(json["nodes"][1]["last_log_index"], 10);
    }

    #[test]
    fn a_voter_still_reporting_learner_is_shown_as_a_follower() {
        // Node 3 was just promoted (the members list says voter) but has not applied it.
        let view = build_view(vec![
            ("n1:1".into(), Some(reply(1, "Leader", 3, Some(1)))),
            ("n3:1".into(), Some(reply(3, "Learner", 3, Some(1)))),
        ]);
        assert_eq!(view.nodes[1].role, "follower");
    }

    #[test]
    fn no_reachable_node_means_no_leader() {
        let view = build_view(vec![("n1:1".into(), None)]);
        assert_eq!(view.leader, None);
        assert_eq!(view.term, 0);
        assert_eq!(view.nodes[0].role, "unreachable");
    }
}
