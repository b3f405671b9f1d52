//! The bouncer's thread: asks LAPI's decision stream for news every `update_frequency` and
//! hands each answer to the core. The first answer, and the first after LAPI was unreachable,
//! is asked with `startup=true`: LAPI's whole set, so what changed while the link was down
//! is neither missed nor kept. A LAPI that is down or slow costs a log line when the link
//! changes state, never one per attempt; the core keeps enforcing what it holds.

use std::{
    sync::mpsc,
    thread,
    time::{Duration, Instant},
};

use super::{
    decisions::{parse_stream, Rules},
    CrowdSecConfig, News,
};

/// Largest answer read: 2M decisions of ~200 bytes fit; a server sending more is refused
/// before it fills memory.
pub const MAX_ANSWER_BYTES: u64 = 512 * 1024 * 1024;

/// Longest a request may take, from connecting to the last byte of its answer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Pauses after failures: they double from the first to the last.
const BACKOFF_FIRST: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(60);

/// A request to LAPI failed: the words the log and `status` show.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LapiError {
    #[error(
        "LAPI refused the bouncer key (HTTP {0}): check [crowdsec] api_key (`cscli bouncers add`)"
    )]
    Forbidden(u16),
    #[error("LAPI answered HTTP {status}: {body}")]
    Status { status: u16, body: String },
    #[error("cannot reach LAPI at {url}: {why}")]
    Unreachable { url: String, why: String },
    /// The TLS handshake failed (an untrusted certificate, a name that does not match): a
    /// mistake of the configuration that waiting does not mend.
    #[error("TLS with LAPI at {url} failed: {why}; [crowdsec] ca_cert must name the CA that signed LAPI's certificate")]
    Tls { url: String, why: String },
    #[error("{0}")]
    Refused(String),
}

/// What a failed request says: rustls reports a failed handshake as invalid data.
pub fn unreachable(base: &str, e: ureq::Error) -> LapiError {
    let url = base.to_string();
    match e {
        ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::InvalidData => LapiError::Tls {
            url,
            why: io.to_string(),
        },
        other => LapiError::Unreachable {
            url,
            why: other.to_string(),
        },
    }
}

/// The stream's URL with its query.
pub fn stream_url(base: &str, startup: bool, rules: &Rules) -> String {
    let mut url = format!("{base}/v1/decisions/stream?startup={startup}&scopes=ip,range");
    if !rules.origins.is_empty() {
        url.push_str("&origins=");
        url.push_str(&rules.origins.join(","));
    }
    url
}

/// The HTTP agent every request to LAPI goes through: `timeout` for the whole request,
/// five seconds to connect, statuses answered rather than raised as errors.
pub fn agent(timeout: Duration, tls: ureq::tls::TlsConfig) -> ureq::Agent {
    ureq::Agent::config_builder()
        .tls_config(tls)
        .timeout_global(Some(timeout))
        .timeout_connect(Some(Duration::from_secs(5)))
        .http_status_as_error(false)
        .user_agent(concat!("banner/", env!("CARGO_PKG_VERSION")))
        .build()
        .into()
}

/// An HTTP client for LAPI.
pub struct Client {
    agent: ureq::Agent,
    base: String,
    key: String,
}

impl Client {
    pub fn new(cfg: &CrowdSecConfig) -> Self {
        Self {
            // The files were read at start (`tls()` stopped it if they were bad); one gone
            // since is said, and LAPI's certificate then fails against the default roots.
            agent: agent(
                REQUEST_TIMEOUT,
                cfg.tls().unwrap_or_else(|e| {
                    log::error!("CrowdSec: {e}");
                    ureq::tls::TlsConfig::default()
                }),
            ),
            base: cfg.lapi_url.clone(),
            key: cfg.api_key.clone(),
        }
    }

    /// Whether LAPI takes the key: a bouncer's question about one address (cheap, unlike the
    /// whole stream), asked once at start so a wrong key stops it with a clear error.
    pub fn check(&self) -> Result<(), LapiError> {
        self.get(&format!("{}/v1/decisions?ip=127.0.0.1", self.base))
            .map(drop)
    }

    /// One answer of the stream, as bytes.
    pub fn pull(&self, startup: bool, rules: &Rules) -> Result<Vec<u8>, LapiError> {
        self.get(&stream_url(&self.base, startup, rules))
    }

    fn get(&self, url: &str) -> Result<Vec<u8>, LapiError> {
        let unreachable = |e: ureq::Error| unreachable(&self.base, e);
        let mut answer = self
            .agent
            .get(url)
            .header("X-Api-Key", &self.key)
            .call()
            .map_err(unreachable)?;
        let status = answer.status().as_u16();
        let body = answer
            .body_mut()
            .with_config()
            .limit(MAX_ANSWER_BYTES)
            .read_to_vec()
            .map_err(|e| match e {
                ureq::Error::BodyExceedsLimit(_) => LapiError::Refused(format!(
                    "the answer is larger than {} MiB; refused",
                    MAX_ANSWER_BYTES >> 20
                )),
                other => unreachable(other),
            })?;
        match status {
            200 => Ok(body),
            401 | 403 => Err(LapiError::Forbidden(status)),
            _ => Err(LapiError::Status {
                status,
                body: String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
            }),
        }
    }
}

/// A whole set is asked for at least this often, whatever happens.
const FULL_EVERY: Duration = Duration::from_secs(600);

/// When to ask LAPI for its whole set rather than the news. LAPI's deltas are decisions
/// created since the bouncer's last pull, and decisions that a bulk insert commits late can
/// carry a creation time before that pull: the delta stream then never sends them (seen in
/// the bench: 99,950 of 100,000 imported decisions). So once news stops coming after a burst,
/// the whole set is asked for once, and in any case every [`FULL_EVERY`].
#[derive(Debug)]
struct Schedule {
    /// News came since the last whole set.
    busy: bool,
    last_full: Instant,
}

impl Schedule {
    fn new(now: Instant) -> Self {
        Self {
            busy: false,
            last_full: now,
        }
    }

    /// What the answer just taken was; whether the next pull asks for the whole set.
    fn after(&mut self, full: bool, news: bool, now: Instant) -> bool {
        if full {
            self.busy = false;
            self.last_full = now;
            return false;
        }
        if news {
            self.busy = true;
            return false;
        }
        let due = self.busy || now.duration_since(self.last_full) >= FULL_EVERY;
        self.busy = false;
        due
    }
}

/// Run the link until `stop` is dropped or a message comes on it, or the core is gone.
/// `send` hands news to the core; false means it is gone.
pub fn run(
    cfg: CrowdSecConfig,
    stop: mpsc::Receiver<()>,
    send: impl Fn(News) -> bool + Send + 'static,
) -> std::io::Result<thread::JoinHandle<()>> {
    thread::Builder::new()
        .name("banner-crowdsec".into())
        .spawn(move || {
            let client = Client::new(&cfg);
            let mut startup = true;
            let mut schedule = Schedule::new(Instant::now());
            let mut backoff = BACKOFF_FIRST;
            loop {
                let began = Instant::now();
                let wait = match client.pull(startup, &cfg.rules).and_then(|body| {
                    parse_stream(&body, &cfg.rules).map_err(|e| LapiError::Refused(e.to_string()))
                }) {
                    Ok(stream) => {
                        let news = !stream.new.is_empty() || !stream.deleted.is_empty();
                        if !send(News::Pulled { stream, startup }) {
                            return;
                        }
                        startup = schedule.after(startup, news, Instant::now());
                        backoff = BACKOFF_FIRST;
                        cfg.update_frequency.saturating_sub(began.elapsed())
                    }
                    Err(e) => {
                        // LAPI keeps each bouncer's place in the stream; a whole set after
                        // an outage also drops what was deleted meanwhile.
                        startup = true;
                        if !send(News::Down { why: e.to_string() }) {
                            return;
                        }
                        let wait = backoff;
                        backoff = (backoff * 2).min(BACKOFF_MAX);
                        wait.max(cfg.update_frequency.min(BACKOFF_MAX))
                    }
                };
                match stop.recv_timeout(wait) {
                    Err(mpsc::RecvTimeoutError::Timeout) => {}
                    _ => return,
                }
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_whole_set_is_asked_for_once_news_settles_and_every_ten_minutes() {
        let t0 = Instant::now();
        let mut s = Schedule::new(t0);
        let at = |secs: u64| t0 + Duration::from_secs(secs);
        assert!(!s.after(true, true, at(0)), "after a whole set: news");
        assert!(!s.after(false, false, at(10)), "quiet: news");
        assert!(!s.after(false, true, at(20)), "a burst is coming in");
        assert!(!s.after(false, true, at(30)));
        assert!(
            s.after(false, false, at(40)),
            "the burst ended: the whole set once"
        );
        assert!(!s.after(true, false, at(50)));
        assert!(!s.after(false, false, at(60)));
        assert!(
            s.after(false, false, at(50 + 600)),
            "ten minutes since the last whole set"
        );
    }

    #[test]
    fn the_stream_is_asked_for_ip_and_range_and_the_origins_taken() {
        let mut rules = Rules::default();
        assert_eq!(
            stream_url("http://127.0.0.1:8080", true, &rules),
            "http://127.0.0.1:8080/v1/decisions/stream?startup=true&scopes=ip,range"
        );
        rules.origins = vec!["cscli".into(), "CAPI".into()];
        assert_eq!(
            stream_url("http://lapi:8080", false, &rules),
            "http://lapi:8080/v1/decisions/stream?startup=false&scopes=ip,range&origins=cscli,CAPI"
        );
    }
}
