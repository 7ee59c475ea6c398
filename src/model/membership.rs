//! The membership ZooKeeper committed (dynamic reconfiguration): parsed from what a server answers (`conf`,
//! `/zookeeper/config`, a dynamic file), the server strings zkdev gives to `reconfig`, and the quorum
//! arithmetic of a proposed change. Pure.

use std::collections::BTreeMap;
use std::fmt;

use crate::error::{Error, Result};
use crate::model::spec::{ClusterSpec, Role};

/// One `server.N=host:quorum:election[:role][;client]` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub id: u32,
    pub role: Role,
    /// The line as ZooKeeper wrote it, without `server.N=`.
    pub address: String,
}

/// A committed configuration: its members and its version (ZooKeeper's zxid of the change, in hex).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Membership {
    pub members: BTreeMap<u32, Member>,
    pub version: Option<u64>,
}

/// A configuration version as ZooKeeper writes it (`version=100000003`, the file suffix): hex, no `0x`.
pub struct Version(pub Option<u64>);

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(v) => write!(f, "{v:x}"),
            None => f.write_str("-"),
        }
    }
}

impl Membership {
    /// From `conf` output, `/zookeeper/config` or a dynamic file: every `server.N=` line and `version=`.
    /// None when the text lists no server.
    pub fn parse(text: &str) -> Option<Membership> {
        let mut m = Membership::default();
        for line in text.lines().map(str::trim) {
            if let Some(v) = line.strip_prefix("version=") {
                m.version = u64::from_str_radix(v.trim(), 16).ok();
                continue;
            }
            let Some(rest) = line.strip_prefix("server.") else {
                continue;
            };
            let Some((id, address)) = rest.split_once('=') else {
                continue;
            };
            let Ok(id) = id.trim().parse::<u32>() else { continue };
            let peer = address.split(';').next().unwrap_or_default();
            let role = if peer.trim().ends_with(":observer") {
                Role::Observer
            } else {
                Role::Participant
            };
            m.members.insert(
                id,
                Member {
                    id,
                    role,
                    address: address.trim().to_string(),
                },
            );
        }
        (!m.members.is_empty()).then_some(m)
    }

    pub fn ids(&self) -> Vec<u32> {
        self.members.keys().copied().collect()
    }

    pub fn voters(&self) -> Vec<u32> {
        (self.members.values())
            .filter(|m| m.role == Role::Participant)
            .map(|m| m.id)
            .collect()
    }

    pub fn role(&self, id: u32) -> Option<Role> {
        self.members.get(&id).map(|m| m.role)
    }

    /// Is this the configuration a `reconfig` of `before` asked for: a newer version, without `leaving`, with
    /// every `joining` server line's node in that line's role? (Said of what a member answers after the
    /// connection to it was lost mid-change: an older or lagging member's answer is not the change.)
    pub fn reflects(&self, before: &Membership, joining: &[String], leaving: &[u32]) -> bool {
        let newer = matches!((self.version, before.version), (Some(a), Some(b)) if a > b)
            || (self.version.is_some() && before.version.is_none());
        let asked = Membership::parse(&joining.join("\n")).unwrap_or_default();
        newer
            && leaving.iter().all(|id| !self.members.contains_key(id))
            && (asked.members.values()).all(|m| self.role(m.id) == Some(m.role))
    }

    /// `1,2,3 + observer 4`: who is in it, for messages.
    pub fn describe(&self) -> String {
        let list = |ids: Vec<u32>| ids.iter().map(u32::to_string).collect::<Vec<_>>().join(",");
        let observers: Vec<u32> = (self.members.values())
            .filter(|m| m.role == Role::Observer)
            .map(|m| m.id)
            .collect();
        match observers.len() {
            0 => format!("voters {}", list(self.voters())),
            _ => format!("voters {}, observers {}", list(self.voters()), list(observers)),
        }
    }
}

/// The server string `reconfig` is given for node `id` of `spec` in `role`:
/// `server.4=127.0.0.1:2884:3884:participant;127.0.0.1:2184`, the peer ports every member's dynamic file
/// has for it, and its client address (ZooKeeper refuses a `reconfig` server without one: "each server
/// should have 3 ports specified"); the same client address as the node's zoo.cfg, which it must match.
pub fn server_string(spec: &ClusterSpec, id: u32, role: Role) -> Result<String> {
    let n = spec
        .node(id)
        .ok_or_else(|| Error::usage(format!("cluster `{}` has no node {id}", spec.name)))?;
    // On a --net cluster the host is a name each member resolves to its proxy of the link (see `NetSpec`).
    let host = if spec.link_addresses() {
        crate::model::spec::link_host(id)
    } else {
        n.address.to_string()
    };
    Ok(format!(
        "server.{id}={host}:{}:{}:{};{}",
        n.ports.quorum,
        n.ports.election,
        role.as_str(),
        n.client_addr()
    ))
}

/// A proposed change: the voters it leaves, and how many of them are up and in sync now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeQuorum {
    pub voters: Vec<u32>,
    pub up: Vec<u32>,
}

impl ChangeQuorum {
    /// `voters_after`: the new configuration's voters; `serving`: nodes serving now (in sync with a leader).
    pub fn new(voters_after: &[u32], serving: &[u32]) -> ChangeQuorum {
        ChangeQuorum {
            voters: voters_after.to_vec(),
            up: voters_after.iter().copied().filter(|id| serving.contains(id)).collect(),
        }
    }

    pub fn needed(&self) -> usize {
        self.voters.len() / 2 + 1
    }

    /// ZooKeeper commits a new configuration only once a quorum of it has acknowledged it.
    pub fn holds(&self) -> bool {
        !self.voters.is_empty() && self.up.len() >= self.needed()
    }

    pub fn describe(&self) -> String {
        if self.voters.is_empty() {
            return "the new configuration would have no voter at all".to_string();
        }
        let list = |ids: &[u32]| ids.iter().map(u32::to_string).collect::<Vec<_>>().join(",");
        format!(
            "the new configuration's voters would be {} ({} of them serving: {}); a quorum of it needs {}",
            list(&self.voters),
            self.up.len(),
            if self.up.is_empty() {
                "none".to_string()
            } else {
                list(&self.up)
            },
            self.needed()
        )
    }
}

/// Refuse (unless forced) a change whose new configuration could not form a quorum from the nodes up now.
pub fn guard(q: &ChangeQuorum, what: &str, force: bool) -> Result<()> {
    if q.voters.is_empty() {
        return Err(Error::usage(format!(
            "refusing to {what}: {}; an ensemble needs at least one voter (add or promote one first)",
            q.describe()
        )));
    }
    if !q.holds() && !force {
        return Err(Error::quorum_guard(format!(
            "refusing to {what}: {}, so ZooKeeper could not commit it (it would answer NewConfigNoQuorum) or the \
             ensemble would be left without a quorum. Start the voters that are down first, or pass --force to \
             ask ZooKeeper anyway",
            q.describe()
        )));
    }
    Ok(())
}

/// What a ZooKeeper error code from `reconfig` means, and what to do.
pub fn explain(code: i32, what: &str) -> String {
    match code {
        -13 => format!(
            "ZooKeeper refused to {what}: NewConfigNoQuorum (no quorum of the new configuration is connected and in \
             sync with the leader, so it cannot be committed); the ensemble is unchanged. Check that the voters of \
             the new configuration are running and serving (`zkdev status`)"
        ),
        -14 => format!(
            "ZooKeeper refused to {what}: ReconfigInProgress (another reconfiguration is being committed); try again \
             in a moment"
        ),
        -123 => format!(
            "ZooKeeper refused to {what}: reconfiguration is disabled (reconfigEnabled=false); make the cluster with \
             `zkdev up --reconfig`"
        ),
        -102 => format!(
            "ZooKeeper refused to {what}: not authorised (only the super user may reconfigure); the digest in the \
             nodes' command line and the password in the cluster directory disagree: restart the nodes \
             (`zkdev rolling-restart`)"
        ),
        -8 => format!(
            "ZooKeeper refused to {what}: bad arguments (it rejected a server string, or the change would leave \
             the configuration as it is); the leader's log says which (`zkdev logs`)"
        ),
        other => format!("ZooKeeper refused to {what}: error code {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_asked_for_newer_configuration_reflects_a_change() {
        let before = Membership::parse(
            "server.1=a:1:2:participant;c1\nserver.2=a:3:4:participant;c2\nserver.3=a:5:6:observer;c3\nversion=100000002",
        )
        .unwrap();
        let promote = vec!["server.3=a:5:6:participant;c3".to_string()];
        let promoted = Membership::parse(
            "server.1=a:1:2:participant;c1\nserver.2=a:3:4:participant;c2\nserver.3=a:5:6:participant;c3\nversion=100000005",
        )
        .unwrap();
        assert!(promoted.reflects(&before, &promote, &[]));
        // The old configuration, or a newer one without the change, is not it.
        assert!(!before.reflects(&before, &promote, &[]));
        let mut other = before.clone();
        other.version = Some(0x100000007);
        assert!(!other.reflects(&before, &promote, &[]));
        // A removal: newer and without the node.
        let mut removed = before.clone();
        removed.members.remove(&2);
        removed.version = Some(0x100000009);
        assert!(removed.reflects(&before, &[], &[2]));
        assert!(!other.reflects(&before, &[], &[2]));
    }

    const CONF: &str = "clientPort=2181\nmembership: \nserver.1=127.0.0.1:26881:27881:participant\n\
        server.2=127.0.0.1:26882:27882:participant;127.0.0.1:26182\nserver.4=127.0.0.1:26884:27884:observer\n\
        version=100000003";

    #[test]
    fn parses_conf_and_dynamic_files() {
        let m = Membership::parse(CONF).unwrap();
        assert_eq!(m.ids(), vec![1, 2, 4]);
        assert_eq!(m.voters(), vec![1, 2]);
        assert_eq!(m.role(4), Some(Role::Observer));
        assert_eq!(m.version, Some(0x1_0000_0003));
        assert_eq!(Version(m.version).to_string(), "100000003");
        assert_eq!(m.describe(), "voters 1,2, observers 4");
        assert_eq!(Membership::parse("clientPort=2181\n"), None);
    }

    #[test]
    fn a_change_needs_a_serving_quorum_of_its_new_voters() {
        // 3 -> 5 with both new nodes synced: 5 of 5.
        assert!(ChangeQuorum::new(&[1, 2, 3, 4, 5], &[1, 2, 3, 4, 5]).holds());
        // 3 -> 5 with only the old three serving: 3 of 5 is still a quorum.
        assert!(ChangeQuorum::new(&[1, 2, 3, 4, 5], &[1, 2, 3]).holds());
        // Removing 3 while 2 is down leaves 1 of {1,2}: refused.
        let q = ChangeQuorum::new(&[1, 2], &[1, 3]);
        assert!(!q.holds());
        let e = guard(&q, "remove node 3", false).unwrap_err().to_string();
        assert!(
            e.contains("voters would be 1,2 (1 of them serving: 1); a quorum of it needs 2"),
            "{e}"
        );
        assert!(guard(&q, "remove node 3", true).is_ok());
        // The last voter never goes, forced or not.
        assert!(guard(&ChangeQuorum::new(&[], &[1]), "remove node 1", true).is_err());
    }
}
