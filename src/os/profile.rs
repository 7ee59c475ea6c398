//! Reading a profile: a built-in name, or a TOML file on disk (`model::profile` parses and resolves it).

use crate::error::Result;
use crate::model::profile::{resolve, Profile};

/// The profile `name_or_path` names, as `model::profile::resolve` says, with the file read from disk.
pub fn load(name_or_path: &str) -> Result<(String, Profile)> {
    resolve(name_or_path, &|p| std::fs::read_to_string(p))
}
