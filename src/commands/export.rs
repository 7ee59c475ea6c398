//! `zkdev export k8s|compose|hosts`: the current cluster (or one described by flags) for several machines.

use super::{new_spec, Ctx, NewCluster};
use crate::cli::{ExportCmd, ExportShape};
use crate::error::{Error, Result};
use crate::model::export;
use crate::model::spec::ClusterSpec;

pub fn run(ctx: &Ctx, cmd: ExportCmd) -> Result<()> {
    let (files, shape) = match cmd {
        ExportCmd::K8s { shape, namespace } => {
            if !namespace
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                || namespace.is_empty()
            {
                return Err(Error::usage(format!(
                    "--namespace `{namespace}`: lowercase letters, digits and `-`"
                )));
            }
            (export::k8s(&spec_for(ctx, &shape)?, &namespace)?, shape)
        }
        ExportCmd::Compose { shape } => (export::compose(&spec_for(ctx, &shape)?)?, shape),
        ExportCmd::Hosts { hosts, shape } => (export::hosts(&spec_for(ctx, &shape)?, &hosts)?, shape),
    };
    match &shape.out {
        Some(dir) => {
            for (rel, text) in &files {
                let path = dir.join(rel);
                crate::os::state::write_atomic(&path, text.as_bytes())?;
                if rel.ends_with(".sh") {
                    use std::os::unix::fs::PermissionsExt;
                    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
                        .map_err(|e| Error::io("cannot make executable", &path, e))?;
                }
            }
            crate::outln!(
                "wrote {} under {}",
                crate::model::words::count(files.len(), "file"),
                dir.display()
            );
        }
        None if files.len() == 1 => crate::out!("{}", files[0].1),
        None => {
            for (rel, text) in &files {
                crate::outln!("==> {rel} <==");
                crate::out!("{text}");
                crate::outln!();
            }
        }
    }
    Ok(())
}

/// The current cluster when no shape flag is given and it exists; otherwise a new spec from the flags.
fn spec_for(ctx: &Ctx, shape: &ExportShape) -> Result<ClusterSpec> {
    let flags_given =
        shape.nodes.is_some() || shape.observers.is_some() || shape.profile.is_some() || shape.dist.is_some();
    if !flags_given && ctx.paths().exists() {
        return ctx.paths().load_spec();
    }
    let flags = || NewCluster {
        profile: shape.profile.as_deref(),
        port_offset: None,
        addresses: None,
        address_base: None,
        zk_home: None,
        dist: shape.dist.as_deref(),
        voters: shape.nodes.unwrap_or(3),
        observers: shape.observers.unwrap_or(0),
        tls: false,
        net: false,
        net_port_base: None,
        reconfig: false,
    };
    match new_spec(ctx, flags()) {
        Ok(spec) => Ok(spec),
        // An export runs nothing here: a version that is not installed locally is fine (it names an image).
        Err(Error::Env(_)) if shape.dist.is_some() => {
            let version = shape.dist.clone().expect("checked");
            crate::dist::fetch::validate_version(&version)?;
            let mut spec = new_spec(ctx, NewCluster { dist: None, ..flags() }).or_else(|_| placeholder(ctx, shape))?;
            spec.dist.version = version;
            Ok(spec)
        }
        Err(e) => Err(e),
    }
}

fn placeholder(ctx: &Ctx, shape: &ExportShape) -> Result<ClusterSpec> {
    let (origin, profile) = crate::os::profile::load(shape.profile.as_deref().unwrap_or("default"))?;
    ClusterSpec::build(
        &ctx.cluster,
        &origin,
        profile.settings(&origin)?,
        crate::dist::Dist::placeholder(),
        shape.nodes.unwrap_or(3),
        shape.observers.unwrap_or(0),
    )
}
