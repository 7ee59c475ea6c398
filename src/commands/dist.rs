//! `zkdev dist list|add|install|remove`: the ZooKeeper installations zkdev can run.

use serde::Serialize;

use super::Ctx;
use crate::cli::DistCmd;
use crate::dist::fetch;
use crate::dist::{self, Known, Source};
use crate::error::{Error, Result};
use crate::os::interrupt;
use crate::output;

#[derive(Serialize)]
struct Row {
    version: String,
    source: Source,
    layout: dist::Layout,
    path: String,
}

pub fn run(ctx: &Ctx, cmd: DistCmd) -> Result<()> {
    let home = &ctx.home.root;
    let java = dist::find_java(None).unwrap_or_else(|_| "java".into());
    match cmd {
        DistCmd::List => {
            let rows: Vec<Row> = dist::known(home, &java).into_iter().map(row).collect();
            if ctx.json {
                output::print_json(&rows);
            } else if rows.is_empty() {
                crate::outln!(
                    "no ZooKeeper installation known; `zkdev dist install VERSION` or `{}`",
                    dist::INSTALL_ZOOKEEPER
                );
            } else {
                let table: Vec<Vec<String>> = rows
                    .iter()
                    .map(|r| {
                        vec![
                            r.version.clone(),
                            format!("{:?}", r.source).to_lowercase(),
                            r.layout.words().to_string(),
                            r.path.clone(),
                        ]
                    })
                    .collect();
                crate::out!("{}", output::table(&["VERSION", "SOURCE", "LAYOUT", "PATH"], &table));
            }
            Ok(())
        }
        DistCmd::Add { path } => {
            let path = std::path::absolute(&path).map_err(|e| Error::io("cannot resolve", &path, e))?;
            let found = dist::known(home, &java);
            let d = dist::detect(Some(&path.to_string_lossy()), None, None, home)?;
            let mut added = dist::added_paths(home);
            if !added.contains(&path) && !found.iter().any(|k| k.dist.zk_home == d.zk_home) {
                added.push(path.clone());
                let text = serde_json::to_string_pretty(&added).expect("paths serialise");
                crate::os::state::write_atomic(&dist::added_file(home), text.as_bytes())?;
            }
            crate::outln!(
                "ZooKeeper {} ({} layout) at {}",
                d.version,
                d.layout.words(),
                d.zk_home.display()
            );
            Ok(())
        }
        DistCmd::Install {
            version,
            mirror,
            profile,
        } => {
            fetch::validate_version(&version)?;
            let dest = dist::dists_dir(home).join(&version);
            if dest.exists() {
                crate::outln!("ZooKeeper {version} is already installed at {}", dest.display());
                return Ok(());
            }
            let from_profile = match &profile {
                Some(p) => crate::os::profile::load(p)?.1.dist.mirror,
                None => None,
            };
            let mirror = mirror
                .or(std::env::var("ZKDEV_MIRROR").ok().filter(|m| !m.is_empty()))
                .or(from_profile)
                .unwrap_or_else(|| fetch::DEFAULT_MIRROR.to_string());
            interrupt::install();
            let t0 = std::time::Instant::now();
            let mut bar = DownloadBar::new(!ctx.quiet && crate::output::stderr_is_tty());
            fetch::install(&mirror, &version, &dist::dists_dir(home), &dest, &mut bar)?;
            match dist::known(home, &java).into_iter().find(|k| k.dist.zk_home == dest) {
                Some(k) if k.dist.version == version => {
                    crate::outln!(
                        "installed ZooKeeper {version} ({} layout, checksum verified) in {} at {}",
                        k.dist.layout.words(),
                        output::secs(t0.elapsed()),
                        dest.display()
                    );
                    Ok(())
                }
                other => {
                    let _ = std::fs::remove_dir_all(&dest);
                    Err(Error::failed(format!(
                        "the release unpacked, but {} ; removed it again",
                        match other {
                            Some(k) => format!("it holds ZooKeeper {}, not {version}", k.dist.version),
                            None => "it is not a ZooKeeper installation zkdev understands".to_string(),
                        }
                    )))
                }
            }
        }
        DistCmd::Remove { version } => {
            fetch::validate_version(&version)?;
            let dest = dist::dists_dir(home).join(&version);
            if dest.is_dir() {
                std::fs::remove_dir_all(&dest).map_err(|e| Error::io("cannot remove", &dest, e))?;
                crate::outln!("removed ZooKeeper {version} from the cache ({})", dest.display());
                return Ok(());
            }
            let mut added = dist::added_paths(home);
            let before = added.len();
            added.retain(|p| {
                dist::detect(Some(&p.to_string_lossy()), None, None, home).map_or(true, |d| d.version != version)
            });
            if added.len() == before {
                return Err(Error::usage(format!(
                    "ZooKeeper {version} is neither in the cache nor added; `zkdev dist list` shows what is known \
                     (Debian's package is removed with apt)"
                )));
            }
            let text = serde_json::to_string_pretty(&added).expect("paths serialise");
            crate::os::state::write_atomic(&dist::added_file(home), text.as_bytes())?;
            crate::outln!("forgot the added ZooKeeper {version} (its files were not touched)");
            Ok(())
        }
    }
}

fn row(k: Known) -> Row {
    Row {
        version: k.dist.version,
        source: k.source,
        layout: k.dist.layout,
        path: k.dist.zk_home.display().to_string(),
    }
}

/// A download's progress as a bar on stderr (only when it is a terminal and `--quiet` is not given).
struct DownloadBar {
    shown: bool,
    bar: Option<indicatif::ProgressBar>,
}

impl DownloadBar {
    fn new(shown: bool) -> DownloadBar {
        DownloadBar { shown, bar: None }
    }
}

impl fetch::Progress for DownloadBar {
    fn start(&mut self, file: &str, total: Option<u64>) {
        self.bar = self.shown.then(|| {
            let b = indicatif::ProgressBar::new(total.unwrap_or(0));
            b.set_style(
                indicatif::ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}")
                    .expect("valid template")
                    .progress_chars("=> "),
            );
            b.set_message(format!("downloading {file}"));
            b
        });
    }

    fn advance(&mut self, got: u64) {
        if let Some(b) = &self.bar {
            b.set_position(got);
        }
    }

    fn finish(&mut self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}
