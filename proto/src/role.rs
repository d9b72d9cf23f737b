//! A member's role: what a node reports about itself in `StatusReply.role`, and what the
//! CLI's `status`, the gateway's `/v1/cluster` and the launcher show and test. One enum, so
//! no caller compares strings of its own and none can drift from the others.

use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MemberRole {
    Leader,
    Follower,
    Candidate,
    Learner,
    /// The node is stopping.
    Shutdown,
    /// The node did not answer.
    Unreachable,
}

impl MemberRole {
    pub const ALL: [MemberRole; 6] = [
        MemberRole::Leader,
        MemberRole::Follower,
        MemberRole::Candidate,
        MemberRole::Learner,
        MemberRole::Shutdown,
        MemberRole::Unreachable,
    ];

    /// The roles API.md's `/v1/cluster` knows, in its order.
    pub const API: [MemberRole; 4] = [
        MemberRole::Leader,
        MemberRole::Follower,
        MemberRole::Learner,
        MemberRole::Unreachable,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MemberRole::Leader => "leader",
            MemberRole::Follower => "follower",
            MemberRole::Candidate => "candidate",
            MemberRole::Learner => "learner",
            MemberRole::Shutdown => "shutdown",
            MemberRole::Unreachable => "unreachable",
        }
    }

    /// A role as a node wrote it (`StatusReply.role`), any case; `None` for a word no
    /// version of the node writes.
    pub fn parse(wire: &str) -> Option<MemberRole> {
        MemberRole::ALL
            .into_iter()
            .find(|r| r.as_str().eq_ignore_ascii_case(wire))
    }

    /// Whether a node's own report says it leads.
    pub fn reports_leader(wire: &str) -> bool {
        MemberRole::parse(wire) == Some(MemberRole::Leader)
    }

    /// The role the cluster gives a member: its own report, corrected by the membership the
    /// cluster holds (`voter`, when known). A node promoted a moment ago still reports
    /// `learner` until it applies the change, yet it already votes: it is a follower. A
    /// member that is not a voter is a learner whatever it reports.
    pub fn seen(reported: &str, voter: Option<bool>) -> MemberRole {
        match (MemberRole::parse(reported), voter) {
            (Some(MemberRole::Shutdown), _) => MemberRole::Unreachable,
            (Some(MemberRole::Leader), _) => MemberRole::Leader,
            (_, Some(false)) => MemberRole::Learner,
            (Some(MemberRole::Learner), Some(true)) => MemberRole::Follower,
            (Some(role), _) => role,
            (None, _) => MemberRole::Follower,
        }
    }

    /// The role in API.md's terms: a candidate is a voter that does not lead, a follower.
    pub fn api(self) -> MemberRole {
        match self {
            MemberRole::Candidate => MemberRole::Follower,
            MemberRole::Shutdown => MemberRole::Unreachable,
            other => other,
        }
    }
}

impl fmt::Display for MemberRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_role_parses_back_from_its_word_in_any_case() {
        for role in MemberRole::ALL {
            assert_eq!(MemberRole::parse(role.as_str()), Some(role));
            assert_eq!(MemberRole::parse(&role.as_str().to_uppercase()), Some(role));
        }
        assert_eq!(MemberRole::parse("boss"), None);
    }

    #[test]
    fn the_membership_corrects_what_a_node_reports() {
        use MemberRole::*;
        let cases = [
            ("leader", Some(true), Leader),
            ("follower", Some(true), Follower),
            ("candidate", Some(true), Candidate),
            // Promoted, not yet applied: it votes already.
            ("learner", Some(true), Follower),
            ("learner", Some(false), Learner),
            // Removed from the voters, not yet applied: it no longer votes.
            ("follower", Some(false), Learner),
            ("learner", None, Learner),
            ("shutdown", Some(true), Unreachable),
        ];
        for (reported, voter, want) in cases {
            assert_eq!(
                MemberRole::seen(reported, voter),
                want,
                "{reported} {voter:?}"
            );
        }
    }

    #[test]
    fn api_roles_are_the_four_api_md_names() {
        for role in [
            MemberRole::Candidate,
            MemberRole::Shutdown,
            MemberRole::Learner,
        ] {
            assert!(MemberRole::API.contains(&role.api()), "{role}");
        }
        assert_eq!(MemberRole::Candidate.api(), MemberRole::Follower);
    }
}
