//! banner as a CrowdSec watcher: each ban its own jails decide goes to LAPI as an alert
//! (`POST /v1/alerts`) carrying the decision, so every bouncer of the fleet enforces it. The
//! jail is the scenario (`banner/sshd`), the triggering log lines are the events. Bans that
//! came from LAPI, or were made by hand, are never pushed.
//!
//! The core hands events to [`Pusher`], a subscriber that only queues (bounded: a LAPI that
//! is down never holds up bans); a thread of its own logs in and posts.

use std::{
    sync::mpsc,
    thread,
    time::{Duration, SystemTime},
};

use serde_json::{json, Value};

use super::lapi::LapiError;
use crate::{bans::BanEvent, clock::rfc3339, subscribers::Subscriber};

/// A watcher's login (`cscli machines add NAME --password PW`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    pub login: String,
    pub password: String,
}

/// Alerts waiting to be posted, at most: beyond, new ones are counted and dropped.
const QUEUE: usize = 10_000;
/// Alerts per request.
const BATCH: usize = 100;
const BACKOFF_FIRST: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(60);

/// The alert LAPI's model asks for, for one ban a jail decided. None for any other event.
pub fn alert_of(event: &BanEvent) -> Option<Value> {
    let (BanEvent::Banned { ban, cause } | BanEvent::Extended { ban, cause }) = event else {
        return None;
    };
    if !ban.jail.is_jail() {
        return None;
    }
    let (scope, value) = if ban.target.is_host() {
        ("Ip", ban.target.addr().to_string())
    } else {
        ("Range", ban.target.to_string())
    };
    let scenario = format!("banner/{}", ban.jail);
    let at = rfc3339(ban.banned_at);
    let duration = match ban.expires_at {
        Some(t) => format!(
            "{}s",
            t.duration_since(ban.banned_at)
                .unwrap_or_default()
                .as_secs()
        ),
        // CrowdSec has no permanent decision: ten years stands for one.
        None => format!("{}h", 24 * 3650),
    };
    let events: Vec<Value> = cause
        .lines
        .iter()
        .map(|l| json!({"timestamp": at, "meta": [{"key": "log_line", "value": &**l}]}))
        .collect();
    let mut source = json!({"scope": scope, "value": value});
    if scope == "Ip" {
        source["ip"] = json!(value);
    } else {
        source["range"] = json!(value);
    }
    Some(json!({
        "scenario": scenario,
        "scenario_hash": "",
        "scenario_version": env!("CARGO_PKG_VERSION"),
        "message": event.describe(),
        "capacity": i32::try_from(cause.failures).unwrap_or(i32::MAX),
        "events_count": i32::try_from(cause.failures.max(1)).unwrap_or(i32::MAX),
        "leakspeed": "0s",
        "simulated": false,
        "remediation": true,
        "start_at": at,
        "stop_at": at,
        "source": source,
        "events": events,
        "decisions": [{
            "origin": "crowdsec",
            "type": "ban",
            "scope": scope,
            "value": value,
            "duration": duration,
            "scenario": scenario,
        }],
    }))
}

/// The subscriber: queues the alerts of jail bans for the push thread.
pub struct Pusher {
    queue: mpsc::SyncSender<Value>,
    dropped: u64,
}

impl Subscriber for Pusher {
    fn on_event(&mut self, event: &BanEvent) {
        let Some(alert) = alert_of(event) else {
            return;
        };
        if self.queue.try_send(alert).is_err() {
            self.dropped += 1;
            if self.dropped.is_power_of_two() {
                log::warn!(
                    "CrowdSec: {} bans not pushed: LAPI takes them slower than they come",
                    self.dropped
                );
            }
        }
    }
}

/// Start the push thread; the subscriber that feeds it is returned. It ends when the
/// subscriber is dropped.
pub fn start(
    base: String,
    credentials: Credentials,
    tls: ureq::tls::TlsConfig,
) -> std::io::Result<Pusher> {
    let (queue, alerts) = mpsc::sync_channel::<Value>(QUEUE);
    thread::Builder::new()
        .name("banner-cs-push".into())
        .spawn(move || push_loop(&base, &credentials, tls, &alerts))?;
    Ok(Pusher { queue, dropped: 0 })
}

/// POST `body` as JSON to `base` + `path`: the status and at most 64 KiB of the answer.
fn post_json(
    agent: &ureq::Agent,
    base: &str,
    path: &str,
    bearer: Option<&str>,
    body: String,
) -> Result<(u16, String), LapiError> {
    let mut request = agent
        .post(&format!("{base}{path}"))
        .header("Content-Type", "application/json");
    if let Some(token) = bearer {
        request = request.header("Authorization", &format!("Bearer {token}"));
    }
    let mut answer = request
        .send(body)
        .map_err(|e| super::lapi::unreachable(base, e))?;
    let status = answer.status().as_u16();
    let text = answer
        .body_mut()
        .with_config()
        .limit(64 * 1024)
        .read_to_string()
        .unwrap_or_default();
    Ok((status, text))
}

/// Log in: the JWT to post alerts with.
pub fn login(agent: &ureq::Agent, base: &str, c: &Credentials) -> Result<String, LapiError> {
    let body = json!({"machine_id": c.login, "password": c.password, "scenarios": []});
    let (status, text) = post_json(agent, base, "/v1/watchers/login", None, body.to_string())?;
    match status {
        200 => serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v.get("token")?.as_str().map(str::to_string))
            .ok_or_else(|| LapiError::Refused("the login answer holds no token".into())),
        401 | 403 => Err(LapiError::Refused(format!(
            "LAPI refused the watcher login `{}` (HTTP {status}): check [crowdsec] login and password (`cscli machines add`)",
            c.login
        ))),
        _ => Err(LapiError::Status {
            status,
            body: text.chars().take(200).collect(),
        }),
    }
}

/// Post alerts; Ok(false) when the token is no longer taken.
fn post(agent: &ureq::Agent, base: &str, token: &str, alerts: &[Value]) -> Result<bool, LapiError> {
    let body = Value::Array(alerts.to_vec()).to_string();
    let (status, text) = post_json(agent, base, "/v1/alerts", Some(token), body)?;
    match status {
        200 | 201 => Ok(true),
        401 => Ok(false),
        _ => Err(LapiError::Status {
            status,
            body: text.chars().take(200).collect(),
        }),
    }
}

fn push_loop(
    base: &str,
    credentials: &Credentials,
    tls: ureq::tls::TlsConfig,
    alerts: &mpsc::Receiver<Value>,
) {
    let agent = super::lapi::agent(Duration::from_secs(30), tls);
    let mut token: Option<String> = None;
    let mut backoff = BACKOFF_FIRST;
    let mut down: Option<String> = None;
    let mut batch: Vec<Value> = Vec::new();
    loop {
        if batch.is_empty() {
            match alerts.recv() {
                Ok(a) => batch.push(a),
                Err(_) => return,
            }
        }
        while batch.len() < BATCH {
            match alerts.try_recv() {
                Ok(a) => batch.push(a),
                Err(_) => break,
            }
        }
        let result = match &token {
            Some(t) => post(&agent, base, t, &batch),
            None => login(&agent, base, credentials).and_then(|t| {
                let ok = post(&agent, base, &t, &batch);
                token = Some(t);
                ok
            }),
        };
        match result {
            Ok(true) => {
                if down.take().is_some() {
                    log::info!("CrowdSec: pushing bans to LAPI again");
                }
                log::debug!("CrowdSec: pushed {} bans", batch.len());
                batch.clear();
                backoff = BACKOFF_FIRST;
            }
            // The token expired: log in again at once.
            Ok(false) => token = None,
            Err(e) => {
                let why = e.to_string();
                if down.as_deref() != Some(&why) {
                    log::warn!(
                        "CrowdSec: cannot push bans ({why}); {} waiting, retrying",
                        batch.len()
                    );
                }
                down = Some(why);
                token = None;
                // Sleep, but still end when the daemon stops (the queue's sender goes).
                let until = SystemTime::now() + backoff;
                while SystemTime::now() < until {
                    match alerts.recv_timeout(Duration::from_millis(200)) {
                        Ok(a) if batch.len() < QUEUE => batch.push(a),
                        Ok(_) => {}
                        Err(mpsc::RecvTimeoutError::Timeout) => {}
                        Err(mpsc::RecvTimeoutError::Disconnected) => return,
                    }
                }
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::{
        bans::Cause,
        model::{Ban, BlockType, JailId},
    };

    fn ban(jail: JailId, target: &str) -> Ban {
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        Ban {
            target: target.parse().unwrap(),
            jail,
            blocktype: BlockType::Tarpit,
            banned_at: at,
            expires_at: Some(at + Duration::from_secs(3600)),
            count: 1,
            scope: None,
        }
    }

    #[test]
    fn a_jail_ban_becomes_an_alert_with_its_decision_and_lines() {
        let cause = Cause {
            failures: 3,
            lines: vec![Arc::from(
                "Failed password for root from 198.18.0.7 port 22 ssh2",
            )],
            user: None,
        };
        let a = alert_of(&BanEvent::Banned {
            ban: ban("sshd".into(), "198.18.0.7"),
            cause,
        })
        .unwrap();
        assert_eq!(a["scenario"], "banner/sshd");
        assert_eq!(a["source"]["scope"], "Ip");
        assert_eq!(a["source"]["ip"], "198.18.0.7");
        assert_eq!(a["events_count"], 3);
        assert_eq!(a["start_at"], "2027-01-15T08:00:00Z");
        assert_eq!(
            a["events"][0]["meta"][0]["value"],
            "Failed password for root from 198.18.0.7 port 22 ssh2"
        );
        let d = &a["decisions"][0];
        assert_eq!(
            (
                d["type"].as_str(),
                d["value"].as_str(),
                d["duration"].as_str()
            ),
            (Some("ban"), Some("198.18.0.7"), Some("3600s"))
        );
        // An IPv6 /64 ban is a Range.
        let a = alert_of(&BanEvent::Banned {
            ban: ban("sshd".into(), "2001:db8:1:2::/64"),
            cause: Cause::default(),
        })
        .unwrap();
        assert_eq!(
            (a["source"]["scope"].as_str(), a["source"]["range"].as_str()),
            (Some("Range"), Some("2001:db8:1:2::/64"))
        );
    }

    #[test]
    fn bans_from_crowdsec_by_hand_or_lifted_are_not_pushed() {
        for jail in [JailId::crowdsec("cscli"), JailId::Manual, JailId::Restored] {
            let e = BanEvent::Banned {
                ban: ban(jail.clone(), "198.18.0.7"),
                cause: Cause::default(),
            };
            assert!(alert_of(&e).is_none(), "{jail}");
        }
        let e = BanEvent::Expired {
            ban: ban("sshd".into(), "198.18.0.7"),
        };
        assert!(alert_of(&e).is_none());
    }
}
