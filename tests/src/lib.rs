//! The privileged test lab: network namespaces joined to the host by veth pairs, a banner
//! daemon per test, and hand-built frames for `test_run`.
//!
//! Everything a test creates (namespace, interfaces, pinned maps, state directory, daemon
//! process) belongs to a guard that removes it on drop, so a failing (panicking) test cleans
//! up too. Addresses come only from 198.18.0.0/15 and 2001:db8::/32. Every wait is bounded.
//!
//! One module per harness: `process` (commands, waits), `lab` (namespaces and veth),
//! `daemon`, `sshd`, `xdp` (the program loaded for `test_run` or attached), `packet` (frames),
//! `authlog` (generated sshd logs for the bench), `report` (the bench report's types),
//! `crowdsec` (CrowdSec's Local API, run offline per test).

pub mod authlog;
pub mod crowdsec;
pub mod daemon;
pub mod lab;
pub mod packet;
pub mod process;
pub mod report;
pub mod sshd;
pub mod xdp;

pub use daemon::Daemon;
pub use lab::Lab;
pub use process::*;
pub use sshd::Sshd;
pub use xdp::*;
