//! banner: a fast intrusion blocker. Logs in, bans out, enforced at the NIC by XDP.
//!
//! The pipeline, one module per stage: `source` (log lines) -> `filter` (failures) -> `jail`
//! (failure windows, decisions) -> `bans` (the ban manager) -> `backend` (XDP maps, or
//! nftables/iptables). The ban manager's events (`bans::events`) feed the `subscribers`
//! (log, hosts.deny) and the jails fed by bans (recidive). `daemon` runs it all: its `core`
//! is the engine, its `adapter` the only reader of the control `protocol`, which the `cli`
//! speaks too. `crowdsec` is a further origin of bans: CrowdSec's Local API, pulled by a
//! thread of its own and applied by the core.

pub mod addr;
pub mod backend;
pub mod bans;
pub mod cli;
pub mod clock;
pub mod config;
pub mod crowdsec;
pub mod daemon;
pub mod duration;
pub mod filter;
pub mod import;
pub mod jail;
pub mod logging;
pub mod metrics;
pub mod model;
pub mod protocol;
pub mod scope;
pub mod source;
pub mod state;
pub mod subscribers;
pub mod sys;
