//! What a ZooKeeper server says about itself, as types: its mode and its zxid. Compared and matched as
//! values everywhere, never as strings.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A server's mode, as `srvr` reports it (plus `looking` for a server that answers but is not serving).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    Leader,
    Follower,
    Observer,
    Standalone,
    ReadOnly,
    /// Electing, or syncing with a new leader: up but not serving.
    Looking,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Leader => "leader",
            Mode::Follower => "follower",
            Mode::Observer => "observer",
            Mode::Standalone => "standalone",
            Mode::ReadOnly => "read-only",
            Mode::Looking => "looking",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Mode, String> {
        Ok(match s.trim() {
            "leader" => Mode::Leader,
            "follower" => Mode::Follower,
            "observer" => Mode::Observer,
            "standalone" => Mode::Standalone,
            "read-only" | "readonly" => Mode::ReadOnly,
            "looking" => Mode::Looking,
            other => return Err(format!("unknown server mode `{other}`")),
        })
    }
}

/// A ZooKeeper transaction id: the epoch in the high 32 bits, a counter in the low 32. Printed (and
/// serialised) as ZooKeeper prints it: `0x` and hex digits, no padding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Zxid(pub u64);

impl Zxid {
    pub fn epoch(self) -> u32 {
        (self.0 >> 32) as u32
    }
    pub fn counter(self) -> u32 {
        (self.0 & 0xffff_ffff) as u32
    }

    /// A zxid typed by a person: `0x...` is hex, plain digits are decimal (4294967323 = 0x10000001b). Hex
    /// digits without `0x` are refused with the fix, since `100` would mean two different zxids. (Parsing a
    /// zxid as ZooKeeper prints it, always hex, is `FromStr`.)
    pub fn from_typed(s: &str) -> Result<Zxid, String> {
        let t = s.trim();
        if let Some(hex) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
            return u64::from_str_radix(hex, 16)
                .map(Zxid)
                .map_err(|_| format!("`{s}` is not a zxid: after 0x come up to 16 hex digits"));
        }
        if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
            return t
                .parse()
                .map(Zxid)
                .map_err(|_| format!("`{s}` is not a zxid: a decimal zxid is at most {}", u64::MAX));
        }
        if !t.is_empty() && t.len() <= 16 && t.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!(
                "`{s}` is not a zxid: plain digits are decimal; for hex write 0x{t}"
            ));
        }
        Err(format!(
            "`{s}` is not a zxid: give 0x and hex digits, or a decimal number"
        ))
    }
}

impl fmt::Display for Zxid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

impl FromStr for Zxid {
    type Err = String;
    fn from_str(s: &str) -> Result<Zxid, String> {
        let t = s.trim();
        let hex = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")).unwrap_or(t);
        u64::from_str_radix(hex, 16)
            .map(Zxid)
            .map_err(|_| format!("`{s}` is not a zxid (0x and hex digits)"))
    }
}

impl Serialize for Zxid {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Zxid {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Zxid, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_typed_zxid_is_hex_with_0x_and_decimal_without() {
        assert_eq!(Zxid::from_typed("4294967323"), Ok(Zxid(0x1_0000_001b)));
        assert_eq!(Zxid::from_typed("0x10000001b"), Ok(Zxid(0x1_0000_001b)));
        assert_eq!(Zxid::from_typed(" 0X10000001B "), Ok(Zxid(0x1_0000_001b)));
        assert_eq!(Zxid::from_typed("0"), Ok(Zxid(0)));
        let e = Zxid::from_typed("10000001b").unwrap_err();
        assert!(e.contains("0x10000001b"), "{e}");
        assert!(Zxid::from_typed("18446744073709551616")
            .unwrap_err()
            .contains("at most"));
        assert!(Zxid::from_typed("0x").is_err());
        assert!(Zxid::from_typed("").is_err());
        assert!(Zxid::from_typed("epoch5").unwrap_err().contains("decimal number"));
        // ZooKeeper's own printing stays hex, with or without 0x.
        assert_eq!("10000001b".parse::<Zxid>(), Ok(Zxid(0x1_0000_001b)));
    }

    #[test]
    fn a_zxid_is_an_epoch_and_a_counter_in_hex() {
        let z: Zxid = "0x100000003".parse().unwrap();
        assert_eq!((z.epoch(), z.counter()), (1, 3));
        assert_eq!(z.to_string(), "0x100000003");
        assert_eq!(Zxid(0).to_string(), "0x0");
        assert_eq!(serde_json::to_string(&z).unwrap(), "\"0x100000003\"");
        assert_eq!(serde_json::from_str::<Zxid>("\"0x2a\"").unwrap(), Zxid(42));
        assert!("0xzz".parse::<Zxid>().is_err());
        assert!(Zxid(0x2_0000_0000) > Zxid(0x1_ffff_ffff));
    }

    #[test]
    fn modes_read_and_print_as_the_server_writes_them() {
        for m in ["leader", "follower", "observer", "standalone", "read-only", "looking"] {
            let mode: Mode = m.parse().unwrap();
            assert_eq!(mode.to_string(), m);
            assert_eq!(serde_json::to_string(&mode).unwrap(), format!("\"{m}\""));
        }
        assert!("leading".parse::<Mode>().is_err());
    }
}
