//! The control socket: one request per connection, answered as one reply.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

use super::cluster::Sup;
use super::control::{Reply, Request, WireError};
use super::replies::{
    Answer, LinksReply, PingReply, RecordReply, ReloadReply, SetLinksReply, ShutdownReply, StatusReply, StopReply,
    TraceReply,
};
use super::{links, proxy};
use crate::error::{Error, Result};
use crate::model::timeline::{Event, Kind};
use crate::os::state::StopReason;

/// The largest request line read (the largest real one, a `set_links` of many rules, is a few kB): a longer
/// one is dropped unread rather than held in memory.
const MAX_REQUEST: u64 = 1 << 20;
/// How long a request line may take to arrive: a client that connects and says nothing is dropped.
const REQUEST_WITHIN: Duration = Duration::from_secs(10);

impl Sup {
    pub(super) async fn serve(self: Arc<Self>, stream: UnixStream) {
        let (read, mut write) = stream.into_split();
        let mut line = String::new();
        // At most MAX_REQUEST bytes, within REQUEST_WITHIN; a line cut off at the limit is dropped (one that
        // ends at the client's end of stream without a newline is still a request).
        let mut reader = BufReader::new(read.take(MAX_REQUEST));
        match tokio::time::timeout(REQUEST_WITHIN, reader.read_line(&mut line)).await {
            Ok(Ok(n)) if (n as u64) < MAX_REQUEST || line.ends_with('\n') => {}
            _ => return,
        }
        let mut shutdown = false;
        let result = match serde_json::from_str::<Request>(&line) {
            Err(e) => Err(Error::usage(format!("not a request this supervisor understands: {e}"))),
            Ok(req) => {
                shutdown = matches!(req, Request::Shutdown { .. });
                self.handle(req).await
            }
        };
        let reply = match &result {
            Ok(data) => Reply {
                ok: true,
                data: data.clone(),
                error: None,
            },
            Err(e) => Reply {
                ok: false,
                data: Value::Null,
                error: Some(WireError::from(e)),
            },
        };
        let mut text = serde_json::to_vec(&reply).expect("replies serialise");
        text.push(b'\n');
        let _ = write.write_all(&text).await;
        let _ = write.shutdown().await;
        if shutdown && result.is_ok() {
            self.shutdown.notify_one();
        }
    }

    pub(super) fn proxies_or_refuse(&self) -> Result<&proxy::Proxies> {
        self.proxies.as_ref().ok_or_else(|| links::not_proxied(&self.spec()))
    }

    pub(super) async fn handle(self: &Arc<Self>, req: Request) -> Result<Value> {
        if !matches!(req, Request::Ping | Request::Status | Request::Trace { .. }) {
            self.active();
        }
        match req {
            Request::Ping => Ok(PingReply {
                pid: std::process::id(),
            }
            .encode()),
            Request::Status => {
                let view = self.view.lock().expect("view").clone();
                match view {
                    Some((status, at)) => Ok(StatusReply {
                        status,
                        age_ms: at.elapsed().as_millis() as u64,
                        interval_ms: self.interval.as_millis() as u64,
                        idle_interval_ms: self.idle_interval.as_millis() as u64,
                        pid: std::process::id(),
                    }
                    .encode()),
                    None => Err(Error::failed("the supervisor has not looked at the ensemble yet")),
                }
            }
            Request::Start { ids, cause } => Ok(self.start(&ids, &cause).await?.encode()),
            Request::Stop { ids, grace_ms, cause } => {
                let _g = self.lock_nodes(&ids).await?;
                let (stopped, needed_sigkill) = self
                    .stop_locked(&ids, Duration::from_millis(grace_ms), &cause, StopReason::Stopped)
                    .await?;
                Ok(StopReply {
                    stopped,
                    needed_sigkill,
                }
                .encode())
            }
            Request::Signal { ids, signal, cause } => Ok(self.signal(&ids, signal, &cause).await?.encode()),
            Request::Record { message, cause, action } => {
                let kind = if action.is_some() { Kind::Action } else { Kind::Note };
                let mut ev = Event::new(kind, message);
                ev.action = action;
                ev.cause = Some(cause);
                Ok(RecordReply {
                    seq: self.record(ev).seq,
                }
                .encode())
            }
            Request::Links => {
                let p = self.proxies_or_refuse()?;
                Ok(LinksReply {
                    rules: p.table().rules,
                    links: p.live(),
                    unbound: p.unbound(),
                }
                .encode())
            }
            Request::SetLinks {
                heal_all,
                heal_pairs,
                rules,
                reset,
                action,
                message,
                cause,
            } => {
                let p = self.proxies_or_refuse()?;
                let mut table = p.table();
                if heal_all {
                    table.heal(None);
                }
                for pair in &heal_pairs {
                    table.heal(Some(*pair));
                }
                table.apply(&rules);
                links::save(&self.paths, &table)?;
                p.update(table.clone(), reset.clone());
                let mut ev = Event::new(Kind::Action, format!("{message}, asked by `{cause}`"));
                ev.action = Some(action);
                ev.cause = Some(cause);
                ev.detail = Some(if table.rules.is_empty() {
                    "every link healthy".to_string()
                } else {
                    format!("links now: {}", links::describe_rules(&table.rules))
                });
                let ev = self.record(ev);
                Ok(SetLinksReply {
                    seq: ev.seq,
                    mono_ms: ev.mono_ms,
                    rules: table.rules,
                }
                .encode())
            }
            Request::Trace { cursor, max } => Ok(TraceReply {
                page: self.proxies_or_refuse()?.trace(cursor, max),
            }
            .encode()),
            Request::Dashboard { port } => Ok(self.open_dashboard(port).await?.encode()),
            Request::Disk { ids, fault, cause } => Ok(self.set_disk(&ids, fault, &cause)?.encode()),
            Request::PowerCut {
                ids,
                torn,
                writeback_ms,
                cause,
            } => Ok(self.power_cut(&ids, torn, writeback_ms, &cause).await?.encode()),
            Request::Reload { action, message, cause } => {
                let spec = self.reload_spec();
                let forgotten = self.forget_nodes_not_in(&spec);
                let mut ev = Event::new(Kind::Action, format!("{message}, asked by `{cause}`"));
                ev.action = Some(action);
                ev.cause = Some(cause);
                ev.nodes = spec.ids();
                let ev = self.record(ev);
                Ok(ReloadReply {
                    seq: ev.seq,
                    nodes: spec.ids(),
                    forgotten,
                }
                .encode())
            }
            Request::Shutdown { grace_ms, cause } => {
                let ids = self.spec().ids();
                let _g = self.lock_nodes(&ids).await?;
                let (stopped, needed_sigkill) = self
                    .stop_locked(&ids, Duration::from_millis(grace_ms), &cause, StopReason::Stopped)
                    .await?;
                let mut ev = Event::new(
                    Kind::SupervisorStopped,
                    format!("supervisor stopped, asked by `{cause}`"),
                );
                ev.pid = Some(std::process::id() as i32);
                ev.cause = Some(cause);
                self.record(ev);
                Ok(ShutdownReply {
                    stopped,
                    needed_sigkill,
                }
                .encode())
            }
        }
    }
}
