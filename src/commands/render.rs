//! `zkdev render`: what `up` would write and run, without starting anything.

use super::{new_spec, Ctx, NewCluster};
use crate::cli::RenderArgs;
use crate::error::{Error, Result};
use crate::model::render;

pub fn run(ctx: &Ctx, args: RenderArgs) -> Result<()> {
    // No shape flags on an existing cluster: show that cluster, as its files on disk say.
    let asked_new = args.nodes.is_some()
        || args.observers.is_some()
        || args.profile.is_some()
        || args.port_offset.is_some()
        || args.addresses.is_some()
        || args.address_base.is_some()
        || args.zk_home.is_some()
        || args.dist.is_some()
        || args.tls;
    let existing = ctx.paths().exists() && !asked_new;
    let spec = if existing {
        ctx.existing()?.1
    } else {
        new_spec(
            ctx,
            NewCluster {
                profile: args.profile.as_deref(),
                port_offset: args.port_offset,
                addresses: args.addresses,
                address_base: args.address_base,
                zk_home: args.zk_home.as_deref(),
                dist: args.dist.as_deref(),
                voters: args.nodes.unwrap_or(3),
                observers: args.observers.unwrap_or(0),
                tls: args.tls,
                net: false,
                net_port_base: None,
                reconfig: false,
            },
        )?
    };
    if !ctx.quiet {
        if existing {
            eprintln!(
                "cluster `{}` exists: these are its files as they are on disk and the commands its nodes start with \
                 (with flags such as --nodes, render shows what a new cluster would get instead)",
                spec.name
            );
        } else if ctx.paths().exists() {
            eprintln!(
                "cluster `{}` exists, but this shows what `zkdev up` with these flags would write for a new cluster, \
                 not its files (`zkdev render` without flags shows those)",
                spec.name
            );
        }
    }
    super::warn_about(ctx, &spec, true);
    let paths = match &args.out {
        // Rendered under DIR as DIR/node<i>/...: pretend DIR is the cluster directory.
        Some(dir) => {
            let dir = if dir.is_absolute() {
                dir.clone()
            } else {
                std::env::current_dir()
                    .map_err(|e| Error::io("cannot read the current directory", ".", e))?
                    .join(dir)
            };
            crate::os::state::ClusterPaths {
                root: dir.clone(),
                lock: dir.join(".lock"),
                cds_dir: dir.join("cds"),
            }
        }
        None => ctx.paths(),
    };
    let ids = spec.ids();
    let nodes = render::render(&spec, &paths, &crate::dist::cds::plan(&spec, &paths, &ids))?;
    if args.out.is_some() {
        for n in &nodes {
            crate::os::zoo_cfg::write_files(n)?;
        }
        crate::os::state::write_atomic(&paths.spec_file(), spec.to_toml().as_bytes())?;
        crate::outln!(
            "wrote the files of {} under {}",
            crate::model::words::count(nodes.len(), "node"),
            paths.root.display()
        );
        return Ok(());
    }
    if existing {
        return show_on_disk(&paths, &nodes);
    }
    rewritten_note(&paths, &nodes);
    for n in &nodes {
        for (path, contents) in &n.files {
            crate::outln!("==> {} <==", path.display());
            crate::out!("{contents}");
            if !contents.ends_with('\n') {
                crate::outln!();
            }
            crate::outln!();
        }
        crate::outln!("==> node {} command <==", n.id);
        crate::outln!("{}\n", n.argv.join(" \\\n    "));
    }
    Ok(())
}

/// An existing cluster's files as they are on disk (ZooKeeper's dynamic membership file too, where it
/// keeps one), then each node's command as zkdev starts it.
fn show_on_disk(paths: &crate::os::state::ClusterPaths, nodes: &[render::NodeFiles]) -> Result<()> {
    for n in nodes {
        let mut shown: Vec<std::path::PathBuf> = n.files.iter().map(|(p, _)| p.clone()).collect();
        if let Some(dynamic) = crate::os::zoo_cfg::inspect(paths, n.id).dynamic() {
            shown.push(dynamic.to_path_buf());
        }
        for path in &shown {
            match std::fs::read_to_string(path) {
                Ok(contents) => {
                    crate::outln!("==> {} <==", path.display());
                    crate::out!("{contents}");
                    if !contents.ends_with('\n') {
                        crate::outln!();
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    crate::outln!("==> {} <==", path.display());
                    crate::outln!("(not on disk: written when the node starts)");
                }
                Err(e) => return Err(Error::io("cannot read", path, e)),
            }
            crate::outln!();
        }
        crate::outln!("==> node {} command <==", n.id);
        crate::outln!("{}\n", n.argv.join(" \\\n    "));
    }
    Ok(())
}

/// Say on stderr which nodes' zoo.cfg on disk differs from what is printed because ZooKeeper keeps their
/// servers (reconfigEnabled): rewritten by ZooKeeper, or written by zkdev pointing at ZooKeeper's dynamic file.
fn rewritten_note(paths: &crate::os::state::ClusterPaths, nodes: &[render::NodeFiles]) {
    use crate::os::zoo_cfg;
    for n in nodes {
        let on_disk = zoo_cfg::inspect(paths, n.id);
        let Some(dynamic) = on_disk.dynamic() else { continue };
        let how = if on_disk.rewritten_by_zookeeper() {
            "ZooKeeper rewrote it (reconfigEnabled)"
        } else {
            "zkdev wrote it for ZooKeeper's membership (reconfigEnabled)"
        };
        let next = if zoo_cfg::in_membership(dynamic, n.id) == Some(false) {
            format!(
                "node {} is not in it (removed by a reconfig), so a start writes the settings below with those \
                 members plus the node itself, as a joiner",
                n.id
            )
        } else {
            format!(
                "a start of the node writes the settings below without server lines, with dynamicConfigFile={}",
                dynamic.display()
            )
        };
        eprintln!(
            "note: node {}'s zoo.cfg on disk ({}) differs from the one below: {how}; its servers are in {}; {next}",
            n.id,
            paths.zoo_cfg(n.id).display(),
            dynamic.display(),
        );
    }
}
