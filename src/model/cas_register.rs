//! The compare-and-set register of Knossos and Porcupine: `read` returns the value, `write v` sets it,
//! `cas [old new]` sets `new` if the register holds `old`. A history of it is checked by the general search
//! of `model::linearize` (Wing & Gong with Lowe's cache), as those tools check it: unlike zkdev's versioned
//! register, nothing in the answers fixes the order of the writes.
//!
//! Values are numbered (`Values`) so a state is one small number.

use std::collections::HashMap;

use super::history_formats::Value;
use super::linearize::Operation;

/// Values by number: the search's states are numbers, the excerpt shows the values.
#[derive(Debug, Default)]
pub struct Values {
    ids: HashMap<Value, u32>,
    all: Vec<Value>,
}

impl Values {
    pub fn id(&mut self, v: &Value) -> u32 {
        if let Some(&i) = self.ids.get(v) {
            return i;
        }
        let i = self.all.len() as u32;
        self.ids.insert(v.clone(), i);
        self.all.push(v.clone());
        i
    }

    pub fn value(&self, id: u32) -> &Value {
        &self.all[id as usize]
    }
}

/// What was asked, values by number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CasCall {
    /// A read that answered this value.
    Read(u32),
    Write(u32),
    Cas(u32, u32),
}

/// How it ended (operations that did not take place, and reads without an answer, are left out before).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CasEnd {
    Ok,
    /// A compare that found another value.
    Refused,
    /// No answer: took effect or not.
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CasOp {
    pub id: usize,
    pub call_us: u64,
    pub ret_us: Option<u64>,
    pub call: CasCall,
    pub end: CasEnd,
}

impl Operation for CasOp {
    type State = u32;

    fn id(&self) -> usize {
        self.id
    }

    fn call_us(&self) -> u64 {
        self.call_us
    }

    fn ret_us(&self) -> Option<u64> {
        self.ret_us
    }

    fn apply(&self, state: Option<u32>) -> Option<Option<u32>> {
        match (self.call, self.end, state) {
            (CasCall::Read(v), _, None) => Some(Some(v)),
            (CasCall::Read(v), _, Some(s)) => (s == v).then_some(Some(s)),
            // Linearized here, a write without an answer took effect (never taking effect is the same as
            // being linearized at the end, which the search also tries).
            (CasCall::Write(v), _, _) => Some(Some(v)),
            (CasCall::Cas(_, new), CasEnd::Ok, None) => Some(Some(new)),
            (CasCall::Cas(old, new), CasEnd::Ok, Some(s)) => (s == old).then_some(Some(new)),
            (CasCall::Cas(old, _), CasEnd::Refused, Some(s)) => (s != old).then_some(Some(s)),
            (CasCall::Cas(old, new), CasEnd::Unknown, Some(s)) => Some(Some(if s == old { new } else { s })),
            // From any state, a refused compare or one without an answer leaves "any state".
            (CasCall::Cas(..), _, None) => Some(None),
        }
    }

    fn unanswered(&self) -> Option<CasOp> {
        match self.call {
            CasCall::Read(_) => None,
            _ => Some(CasOp {
                ret_us: None,
                end: CasEnd::Unknown,
                ..self.clone()
            }),
        }
    }

    fn droppable(&self) -> bool {
        matches!(self.call, CasCall::Read(_)) || self.end == CasEnd::Refused
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::linearize::{check_by_search, Budget, Decision};

    fn op(id: usize, call_us: u64, ret_us: Option<u64>, call: CasCall, end: CasEnd) -> CasOp {
        CasOp {
            id,
            call_us,
            ret_us,
            call,
            end,
        }
    }

    #[test]
    fn a_read_concurrent_with_a_write_sees_either_side_but_nothing_else() {
        // nil = 0; write 4 overlaps a read.
        let good = vec![
            op(0, 0, Some(1), CasCall::Write(1), CasEnd::Ok),
            op(1, 2, Some(5), CasCall::Read(4), CasEnd::Ok),
            op(2, 3, Some(4), CasCall::Write(4), CasEnd::Ok),
        ];
        assert_eq!(check_by_search(&good, 0, Budget::default()).0, Decision::Linearizable);
        let mut bad = good.clone();
        bad[1].call = CasCall::Read(3);
        let (d, excerpt) = check_by_search(&bad, 0, Budget::default());
        assert_eq!(d, Decision::NotLinearizable);
        assert!(excerpt.contains(&1), "{excerpt:?}");
    }

    #[test]
    fn compare_and_set_refusals_and_unknowns() {
        let h = vec![
            op(0, 0, Some(1), CasCall::Write(1), CasEnd::Ok),
            op(1, 2, Some(3), CasCall::Cas(2, 3), CasEnd::Refused),
            op(2, 4, None, CasCall::Cas(1, 2), CasEnd::Unknown),
            op(3, 6, Some(7), CasCall::Read(2), CasEnd::Ok),
        ];
        assert_eq!(check_by_search(&h, 0, Budget::default()).0, Decision::Linearizable);
        // A refusal while the register held what it expected is a violation.
        let h = vec![
            op(0, 0, Some(1), CasCall::Write(1), CasEnd::Ok),
            op(1, 2, Some(3), CasCall::Cas(1, 3), CasEnd::Refused),
        ];
        assert_eq!(check_by_search(&h, 0, Budget::default()).0, Decision::NotLinearizable);
    }
}
