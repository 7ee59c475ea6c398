//! The owner lease (`zkdev up --owner PID`): once the owner process has ended (even by SIGKILL, even as a
//! zombie its parent has not reaped), the supervisor journals it and runs `zkdev down --purge` for its
//! own cluster, which stops the nodes through this supervisor and then removes the cluster's directory
//! (that directory only, with `down`'s own checks). A cluster without an owner is never purged here.

use std::sync::Arc;
use std::time::Duration;

use super::cluster::Sup;
use crate::model::spec::Owner;
use crate::model::timeline::{Event, Kind};

/// How often the owner is looked at.
const EVERY: Duration = Duration::from_millis(250);

/// Is the owner still the process it was when the cluster was made?
pub fn owner_alive(owner: &Owner) -> bool {
    crate::os::process::proc_stat(owner.pid).is_some_and(|s| s.start_ticks == owner.start_ticks && s.state != 'Z')
}

impl Sup {
    pub(super) async fn lease_loop(self: Arc<Self>) {
        loop {
            let Some(owner) = self.spec().owner else { return };
            if !owner_alive(&owner) {
                break;
            }
            tokio::time::sleep(EVERY).await;
        }
        let owner = self.spec().owner.expect("checked above");
        let mut ev = Event::new(
            Kind::Action,
            format!(
                "the cluster's owner (pid {}) has ended: stopping the nodes and removing the cluster",
                owner.pid
            ),
        );
        ev.action = Some("owner-gone".into());
        ev.pid = Some(owner.pid);
        self.record(ev);
        let Some(clusters) = self.paths.root.parent() else {
            return;
        };
        let Some(home) = clusters.parent() else { return };
        let name = self.spec().name.clone();
        let Ok(exe) = std::env::current_exe() else { return };
        let mut cmd = std::process::Command::new(exe);
        cmd.arg("--home")
            .arg(home)
            .args(["--cluster", &name, "--quiet", "down", "--purge", "--grace", "2s"])
            .env_remove("ZKDEV_HOME")
            .env_remove("ZKDEV_CLUSTER")
            .current_dir("/")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        match cmd.spawn() {
            // Reaped in the background; `down` asks this supervisor to stop, then removes the directory.
            Ok(mut child) => {
                std::thread::spawn(move || child.wait());
            }
            Err(e) => {
                self.record(Event::new(
                    Kind::Note,
                    format!("could not run `zkdev down --purge` after the owner ended: {e}"),
                ));
            }
        }
    }
}
