//! links.json: the link rules of a `--net` cluster, kept on disk so a new supervisor restores them.

use crate::error::{Error, Result};
use crate::model::links::{LinkTable, Rule, LINKS_FORMAT};
use crate::os::state::ClusterPaths;

pub fn path(paths: &ClusterPaths) -> std::path::PathBuf {
    paths.root.join("links.json")
}

/// The saved rules; a damaged file is noted and treated as "every link healthy".
pub fn load(paths: &ClusterPaths, notes: &mut Vec<String>) -> LinkTable {
    let p = path(paths);
    let Ok(text) = std::fs::read_to_string(&p) else {
        return LinkTable::default();
    };
    match serde_json::from_str::<LinkTable>(&text) {
        Ok(t) if t.format == LINKS_FORMAT => t,
        _ => {
            notes.push(format!(
                "{} is not a link table this zkdev reads: every link starts healthy",
                p.display()
            ));
            LinkTable::default()
        }
    }
}

/// Read without noting anything (for `status` when no supervisor answers).
pub fn read(paths: &ClusterPaths) -> LinkTable {
    load(paths, &mut Vec::new())
}

pub fn save(paths: &ClusterPaths, table: &LinkTable) -> Result<()> {
    crate::os::state::write_atomic(
        &path(paths),
        serde_json::to_string_pretty(table).expect("serialises").as_bytes(),
    )
}

pub fn describe_rules(rules: &[Rule]) -> String {
    rules
        .iter()
        .map(|r| format!("{} {}", r.flow, r.fault.describe()))
        .collect::<Vec<_>>()
        .join("; ")
}

pub fn not_proxied(spec: &crate::model::spec::ClusterSpec) -> Error {
    Error::not_proxied(format!(
        "cluster `{}` was made without proxied links: its nodes dial each other directly, so there is no link to \
         break; {}",
        spec.name,
        spec.remake_advice(&["--net"])
    ))
}
