//! banner's XDP program loaded for a test or the bench, and its verdicts.

use std::path::PathBuf;

use crate::require_root;

pub const XDP_DROP: u32 = 1;
pub const XDP_PASS: u32 = 2;
pub const XDP_TX: u32 = 3;

/// banner's XDP program with its own pinned maps, removed (and detached) on drop: loaded
/// alone for `test_run` on made-up frames, or attached to a lab's interfaces. The one way
/// tests and the bench load it.
pub struct Loaded {
    pub backend: banner::backend::xdp::XdpBackend,
    pub dir: PathBuf,
}

impl Loaded {
    pub fn new(tag: &str, max_exact: u32) -> Self {
        Self::attached(tag, Vec::new(), max_exact)
    }

    /// Attached to `interfaces` (none: loaded only).
    pub fn attached(tag: &str, interfaces: Vec<String>, max_exact: u32) -> Self {
        use banner::backend::xdp::{AttachMode, XdpBackend, XdpOptions};
        require_root();
        sweep_stale_pins();
        let dir = PathBuf::from(format!("/sys/fs/bpf/banner-t-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let backend = XdpBackend::open(&XdpOptions {
            interfaces,
            mode: AttachMode::Auto,
            bpffs_dir: dir.clone(),
            max_exact_bans: max_exact,
            max_prefix_bans: 64,
        })
        .unwrap_or_else(|e| {
            // No Loaded to drop: remove what the failed load pinned before saying why.
            let _ = std::fs::remove_dir_all(&dir);
            panic!("loading the XDP program: {e}")
        });
        Self { backend, dir }
    }

    /// Ban `target` (address or prefix) with `blocktype`.
    pub fn ban_as(
        &mut self,
        target: &str,
        blocktype: banner::model::BlockType,
        expires_at: Option<std::time::SystemTime>,
    ) {
        self.ban_scoped(target, blocktype, expires_at, None);
    }

    /// Ban `target` on the ports of `scope` only (`tcp:22 udp:53`; None: every port).
    pub fn ban_scoped(
        &mut self,
        target: &str,
        blocktype: banner::model::BlockType,
        expires_at: Option<std::time::SystemTime>,
        scope: Option<&str>,
    ) {
        use banner::backend::Backend as _;
        self.backend
            .block(&[banner::model::BlockSpec {
                target: target.parse().expect("test target"),
                blocktype,
                expires_at,
                scope: scope.map(|s| std::sync::Arc::new(s.parse().expect("test scope"))),
            }])
            .expect("block");
    }

    pub fn ban(&mut self, target: &str, expires_at: Option<std::time::SystemTime>) {
        self.ban_as(target, banner::model::BlockType::Drop, expires_at);
    }

    pub fn verdict(&mut self, frame: &[u8]) -> u32 {
        self.backend.test_run(frame, 1).expect("test_run").action
    }

    /// The verdict and the frame as the program left it.
    pub fn run(&mut self, frame: &[u8]) -> (u32, Vec<u8>) {
        let r = self.backend.test_run(frame, 1).expect("test_run");
        (r.action, r.frame)
    }
}

/// Removes what tests and the bench pinned (`/sys/fs/bpf/banner-t-TAG-PID`) for a process
/// that is gone. Drop removes its own, but the bench is built to abort on a panic, and a
/// killed run drops nothing: such pins outlived their run and would stay until a reboot.
pub fn sweep_stale_pins() {
    let Ok(entries) = std::fs::read_dir("/sys/fs/bpf") else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix("banner-t-")) else {
            continue;
        };
        let pid = rest.rsplit('-').next().and_then(|p| p.parse::<u32>().ok());
        if let Some(pid) = pid {
            if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
}

impl Drop for Loaded {
    fn drop(&mut self) {
        use banner::backend::Backend as _;
        let _ = self.backend.shutdown(false);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
