//! `[actions.NAME]`: what to run when a jail bans or lifts a ban (fail2ban's action.d, without
//! a shell): a command as an argument list, or a webhook. Opt-in: none runs unless a jail
//! names it in `actions = [...]`.
//!
//! Off the hot path: the core only queues a job (a bounded queue; a full one drops the job and
//! counts it), a few worker threads run them, each with a timeout. A placeholder is replaced
//! inside one argument, never splitting it, and no shell ever reads the result: nothing a log
//! line holds can become a command.

use std::{
    collections::BTreeMap,
    io::Read as _,
    process::{Command, Stdio},
    sync::{
        atomic::{AtomicU64, Ordering},
        mpsc, Arc, Mutex,
    },
    thread,
    time::{Duration, Instant},
};

use serde_json::json;

use super::Subscriber;
use crate::bans::{BanEvent, Cause};

/// The placeholders an action may use.
pub const PLACEHOLDERS: [&str; 6] = [
    "{ip}",
    "{jail}",
    "{blocktype}",
    "{bantime}",
    "{failures}",
    "{matches}",
];

/// Jobs waiting at most; more are dropped (and counted) rather than slow the core.
const QUEUE: usize = 1024;
/// Actions running at once.
const WORKERS: usize = 4;
/// Bytes of an action's stderr kept for the log.
const STDERR_HEAD: usize = 512;

/// One `[actions.NAME]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActionConfig {
    pub name: String,
    /// argv, placeholders replaced per ban.
    pub on_ban: Vec<String>,
    pub on_unban: Vec<String>,
    /// A webhook: a JSON POST with the same fields on ban and unban.
    pub url: Option<String>,
    pub timeout: Duration,
}

/// An argument list's unknown placeholder, if any (`{ip}` and the rest are known).
pub fn unknown_placeholder(arg: &str) -> Option<String> {
    let mut rest = arg;
    while let Some(start) = rest.find('{') {
        let tail = &rest[start..];
        let end = tail.find('}')?;
        let word = &tail[..=end];
        if !PLACEHOLDERS.contains(&word) {
            return Some(word.to_string());
        }
        rest = &tail[end + 1..];
    }
    None
}

/// What a job knows of its ban.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fields {
    pub event: &'static str,
    pub ip: String,
    pub jail: String,
    pub blocktype: String,
    pub bantime: String,
    pub failures: String,
    pub matches: String,
}

impl Fields {
    fn of(event: &BanEvent) -> Option<Self> {
        let (kind, ban, cause) = match event {
            BanEvent::Banned { ban, cause } => ("ban", ban, Some(cause)),
            BanEvent::Unbanned { ban, .. } => ("unban", ban, None),
            BanEvent::Expired { ban } => ("unban", ban, None),
            _ => return None,
        };
        let empty = Cause::default();
        let cause = cause.unwrap_or(&empty);
        let bantime = match ban.expires_at {
            None => "permanent".to_string(),
            Some(t) => t
                .duration_since(ban.banned_at)
                .unwrap_or_default()
                .as_secs()
                .to_string(),
        };
        Some(Self {
            event: kind,
            ip: ban.target.to_string(),
            jail: ban.jail.to_string(),
            blocktype: ban.blocktype.to_string(),
            bantime,
            failures: cause.failures.to_string(),
            matches: cause
                .lines
                .iter()
                .map(|l| l.as_ref())
                .collect::<Vec<_>>()
                .join("\n"),
        })
    }

    /// `arg` with its placeholders replaced; one argument in, one out.
    pub fn fill(&self, arg: &str) -> String {
        arg.replace("{ip}", &self.ip)
            .replace("{jail}", &self.jail)
            .replace("{blocktype}", &self.blocktype)
            .replace("{bantime}", &self.bantime)
            .replace("{failures}", &self.failures)
            .replace("{matches}", &self.matches)
    }

    fn json(&self) -> String {
        json!({
            "event": self.event,
            "ip": self.ip,
            "jail": self.jail,
            "blocktype": self.blocktype,
            "bantime": self.bantime,
            "failures": self.failures,
            "matches": self.matches,
        })
        .to_string()
    }
}

/// One thing to do.
#[derive(Debug)]
enum Job {
    Run {
        action: String,
        argv: Vec<String>,
        timeout: Duration,
    },
    Post {
        action: String,
        url: String,
        body: String,
        timeout: Duration,
    },
}

/// Counts of what the actions did, for `status` and the tests.
#[derive(Debug, Default)]
pub struct ActionStats {
    pub done: AtomicU64,
    pub failed: AtomicU64,
    pub dropped: AtomicU64,
}

/// The subscriber that queues the jails' actions, and its workers.
pub struct Actions {
    /// Jail name -> its actions.
    by_jail: BTreeMap<String, Vec<ActionConfig>>,
    queue: mpsc::SyncSender<Job>,
    pub stats: Arc<ActionStats>,
}

impl Actions {
    pub fn start() -> std::io::Result<Self> {
        let (queue, jobs) = mpsc::sync_channel::<Job>(QUEUE);
        let jobs = Arc::new(Mutex::new(jobs));
        let stats = Arc::new(ActionStats::default());
        for i in 0..WORKERS {
            let jobs = Arc::clone(&jobs);
            let stats = Arc::clone(&stats);
            thread::Builder::new()
                .name(format!("banner-action-{i}"))
                .spawn(move || loop {
                    let job = match jobs.lock() {
                        Ok(rx) => rx.recv(),
                        Err(_) => return,
                    };
                    let Ok(job) = job else {
                        return;
                    };
                    match run(&job) {
                        Ok(()) => stats.done.fetch_add(1, Ordering::Relaxed),
                        Err(why) => {
                            log::warn!("{why}");
                            stats.failed.fetch_add(1, Ordering::Relaxed)
                        }
                    };
                })?;
        }
        Ok(Self {
            by_jail: BTreeMap::new(),
            queue,
            stats,
        })
    }

    /// Which jails run which actions (on start and reload).
    pub fn configure(&mut self, by_jail: BTreeMap<String, Vec<ActionConfig>>) {
        self.by_jail = by_jail;
    }

    fn enqueue(&mut self, job: Job) {
        if let Err(mpsc::TrySendError::Full(job)) = self.queue.try_send(job) {
            let n = self.stats.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if n.is_power_of_two() {
                log::warn!("actions: the queue is full; dropped {n} so far (this one: {job:?})");
            }
        }
    }
}

impl Subscriber for Actions {
    fn on_event(&mut self, event: &BanEvent) {
        let Some(actions) = self.by_jail.get(event.jail().as_str()) else {
            return;
        };
        let Some(fields) = Fields::of(event) else {
            return;
        };
        let jobs: Vec<Job> = actions
            .iter()
            .flat_map(|a| {
                let argv = if fields.event == "ban" {
                    &a.on_ban
                } else {
                    &a.on_unban
                };
                let run = (!argv.is_empty()).then(|| Job::Run {
                    action: a.name.clone(),
                    argv: argv.iter().map(|arg| fields.fill(arg)).collect(),
                    timeout: a.timeout,
                });
                let post = a.url.as_ref().map(|url| Job::Post {
                    action: a.name.clone(),
                    url: url.clone(),
                    body: fields.json(),
                    timeout: a.timeout,
                });
                run.into_iter().chain(post)
            })
            .collect();
        for job in jobs {
            self.enqueue(job);
        }
    }
}

/// Run one job to its end or its timeout. The error says what to log.
fn run(job: &Job) -> Result<(), String> {
    match job {
        Job::Run {
            action,
            argv,
            timeout,
        } => {
            let Some((program, args)) = argv.split_first() else {
                return Ok(());
            };
            let mut child = Command::new(program)
                .args(args)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .map_err(|e| format!("action {action}: cannot run {program}: {e}"))?;
            // Read stderr on the side, so a talkative command never blocks on a full pipe.
            let stderr = child.stderr.take().map(|mut e| {
                thread::spawn(move || {
                    let mut all = Vec::new();
                    let _ = e.read_to_end(&mut all);
                    all.truncate(STDERR_HEAD);
                    String::from_utf8_lossy(&all).trim().to_string()
                })
            });
            let deadline = Instant::now() + *timeout;
            let status = loop {
                match child.try_wait() {
                    Ok(Some(status)) => break Some(status),
                    Ok(None) if Instant::now() >= deadline => {
                        let _ = child.kill();
                        let _ = child.wait();
                        break None;
                    }
                    Ok(None) => thread::sleep(Duration::from_millis(20)),
                    Err(e) => return Err(format!("action {action}: waiting for {program}: {e}")),
                }
            };
            let said = stderr
                .and_then(|h| h.join().ok())
                .filter(|s| !s.is_empty())
                .map(|s| format!(": {s}"))
                .unwrap_or_default();
            match status {
                None => Err(format!(
                    "action {action}: {program} still ran after {}s and was killed{said}",
                    timeout.as_secs()
                )),
                Some(s) if s.success() => Ok(()),
                Some(s) => Err(format!("action {action}: {program} failed ({s}){said}")),
            }
        }
        Job::Post {
            action,
            url,
            body,
            timeout,
        } => {
            let agent: ureq::Agent = ureq::Agent::config_builder()
                .timeout_global(Some(*timeout))
                .http_status_as_error(false)
                .build()
                .into();
            let answer = agent
                .post(url)
                .header("Content-Type", "application/json")
                .send(body.as_str())
                .map_err(|e| format!("action {action}: POST {url}: {e}"))?;
            let status = answer.status().as_u16();
            if (200..300).contains(&status) {
                Ok(())
            } else {
                Err(format!(
                    "action {action}: POST {url} answered HTTP {status}"
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;
    use crate::model::{Ban, BlockType};

    fn banned(lines: &[&str]) -> BanEvent {
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        BanEvent::Banned {
            ban: Ban {
                target: "198.18.0.7".parse().unwrap(),
                jail: "sshd".into(),
                blocktype: BlockType::Tarpit,
                banned_at: at,
                expires_at: Some(at + Duration::from_secs(3600)),
                count: 1,
                scope: None,
            },
            cause: Cause {
                failures: 3,
                lines: lines.iter().map(|l| Arc::from(*l)).collect(),
                user: None,
            },
        }
    }

    #[test]
    fn placeholders_fill_one_argument_and_never_split_it() {
        let hostile = "x; rm -rf / `reboot` $(id) \"quoted\" {ip}";
        let f = Fields::of(&banned(&[hostile])).unwrap();
        assert_eq!(f.fill("{ip}"), "198.18.0.7");
        assert_eq!(
            f.fill("--jail={jail}/{blocktype}/{bantime}s/{failures}"),
            "--jail=sshd/tarpit/3600s/3"
        );
        // The log line arrives whole, as one argument, with `{ip}` in it left as text.
        assert_eq!(f.fill("{matches}"), hostile);
        assert_eq!(
            unknown_placeholder("{ip} and {nope}"),
            Some("{nope}".into())
        );
        assert_eq!(unknown_placeholder("{ip}-{jail}"), None);
        assert_eq!(unknown_placeholder("no braces"), None);
    }

    #[test]
    fn a_command_gets_its_arguments_as_given_and_failures_are_told() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("args");
        let f = Fields::of(&banned(&["a; touch /tmp/banner-pwned"])).unwrap();
        let job = Job::Run {
            action: "record".into(),
            argv: vec![
                "sh".into(),
                "-c".into(),
                "printf '%s\\n' \"$@\" > \"$0\"".into(),
                out.display().to_string(),
                f.fill("{ip}"),
                f.fill("{matches}"),
            ],
            timeout: Duration::from_secs(5),
        };
        run(&job).unwrap();
        let text = std::fs::read_to_string(&out).unwrap();
        assert_eq!(text, "198.18.0.7\na; touch /tmp/banner-pwned\n");
        assert!(!std::path::Path::new("/tmp/banner-pwned").exists());

        let failing = Job::Run {
            action: "fails".into(),
            argv: vec!["sh".into(), "-c".into(), "echo nope >&2; exit 3".into()],
            timeout: Duration::from_secs(5),
        };
        let why = run(&failing).unwrap_err();
        assert!(
            why.contains("exit status: 3") && why.contains("nope"),
            "{why}"
        );

        let slow = Job::Run {
            action: "slow".into(),
            argv: vec!["sleep".into(), "30".into()],
            timeout: Duration::from_millis(200),
        };
        let started = Instant::now();
        let why = run(&slow).unwrap_err();
        assert!(why.contains("killed"), "{why}");
        assert!(started.elapsed() < Duration::from_secs(10));
    }
}
