//! The kinds of workload `chaos` and `run` drive: register, sequential, queue, zk.

use serde::Serialize;

/// Which workload `chaos` and `run` drive (`commands::workload` runs them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Register,
    Sequential,
    Queue,
    /// ZooKeeper's own model: reads without sync, watches, ephemerals, moves (`model::zkmodel`).
    Zk,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Register => "register",
            Kind::Sequential => "sequential",
            Kind::Queue => "queue",
            Kind::Zk => "zk",
        }
    }

    pub fn parse(text: &str) -> std::result::Result<Kind, String> {
        match text.trim() {
            "register" => Ok(Kind::Register),
            "sequential" => Ok(Kind::Sequential),
            "queue" => Ok(Kind::Queue),
            "zk" => Ok(Kind::Zk),
            other => Err(format!(
                "`{other}` is not a workload: give register, sequential, queue or zk"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scenarios_and_chaos_name_the_zk_workload_by_the_same_kind() {
        for k in [Kind::Register, Kind::Sequential, Kind::Queue, Kind::Zk] {
            assert_eq!(Kind::parse(k.as_str()), Ok(k));
        }
        assert_eq!(
            Kind::parse("zoo").unwrap_err(),
            "`zoo` is not a workload: give register, sequential, queue or zk"
        );
    }
}
