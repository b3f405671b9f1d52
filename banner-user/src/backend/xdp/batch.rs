//! `BPF_MAP_UPDATE_BATCH` and `BPF_MAP_LOOKUP_BATCH`: many elements of a hash map written or
//! read in one system call, which aya does not offer. A million bans go in or come out as a
//! handful of calls instead of one or two million.

use std::{io, os::fd::BorrowedFd};

use nix::libc;

/// The kernel's command number (include/uapi/linux/bpf.h, since 5.6).
const BPF_MAP_LOOKUP_BATCH: libc::c_long = 24;
const BPF_MAP_UPDATE_BATCH: libc::c_long = 26;
/// Elements per call: the kernel copies keys and values in, so a bounded call keeps one
/// allocation of the kernel's small and the time in it short.
const CHUNK: usize = 1 << 16;

/// `union bpf_attr`'s `batch` member.
#[repr(C)]
#[derive(Default)]
struct BatchAttr {
    in_batch: u64,
    out_batch: u64,
    keys: u64,
    values: u64,
    count: u32,
    map_fd: u32,
    elem_flags: u64,
    flags: u64,
}

/// One `bpf(cmd, attr)` call.
///
/// # Safety
/// Every pointer in `attr` must be valid for what `cmd` reads and writes through it.
unsafe fn bpf(cmd: libc::c_long, attr: &mut BatchAttr) -> io::Result<()> {
    // SAFETY: attr is a live `union bpf_attr` prefix of the size given; the caller vouches
    // for the memory it points at.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut BatchAttr,
            std::mem::size_of::<BatchAttr>() as u32,
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Why a batch stopped: how many elements it wrote before `error` (on the next one).
#[derive(Debug)]
pub struct Stopped {
    pub done: usize,
    pub error: io::Error,
}

/// Write `keys[i] -> values[i]` into the hash map `map`, in order, replacing what a key held
/// (the kernel takes no BPF_NOEXIST here: only BPF_F_LOCK); on an error, the elements before
/// it are written and the rest are not.
///
/// `K` and `V` must be the map's key and value types exactly (plain `repr(C)` data, as
/// aya's `Pod` types are).
pub fn update<K, V>(map: BorrowedFd<'_>, keys: &[K], values: &[V]) -> Result<(), Stopped> {
    use std::os::fd::AsRawFd as _;
    assert_eq!(keys.len(), values.len(), "a value for each key");
    let mut done = 0;
    while done < keys.len() {
        let n = (keys.len() - done).min(CHUNK);
        let mut attr = BatchAttr {
            keys: keys[done..].as_ptr() as u64,
            values: values[done..].as_ptr() as u64,
            count: n as u32,
            map_fd: map.as_raw_fd() as u32,
            ..BatchAttr::default()
        };
        // SAFETY: attr points at `n` keys and `n` values that live across the call; the kernel
        // reads them and writes only attr.count back.
        if let Err(error) = unsafe { bpf(BPF_MAP_UPDATE_BATCH, &mut attr) } {
            // Failing on an element, the kernel counts those it wrote before it (fewer than
            // n); failing before the first (flags, memory), it leaves the count as given.
            let written = attr.count as usize;
            return Err(Stopped {
                done: done + if written < n { written } else { 0 },
                error,
            });
        }
        done += n;
    }
    Ok(())
}

/// Every element of the hash map `map`, read in calls of up to [`CHUNK`] and handed to `f`
/// as it is read (a list of a million bans keeps the few that stopped a packet). False when
/// the kernel has no batched reads (the caller iterates instead). A map changed while it is
/// read may show an element twice or not at all, as iterating it would.
///
/// `K` and `V` must be the map's key and value types exactly (plain `repr(C)` data).
pub fn for_each<K: Copy + Default, V: Copy + Default>(
    map: BorrowedFd<'_>,
    mut f: impl FnMut(K, V),
) -> io::Result<bool> {
    use std::os::fd::AsRawFd as _;
    let mut keys = vec![K::default(); CHUNK];
    let mut values = vec![V::default(); CHUNK];
    // The kernel's position between calls: a bucket number for hash maps.
    let (mut token, mut next) = (0u64, 0u64);
    let mut first = true;
    loop {
        let mut attr = BatchAttr {
            in_batch: if first {
                0
            } else {
                &mut token as *mut u64 as u64
            },
            out_batch: &mut next as *mut u64 as u64,
            keys: keys.as_mut_ptr() as u64,
            values: values.as_mut_ptr() as u64,
            count: CHUNK as u32,
            map_fd: map.as_raw_fd() as u32,
            ..BatchAttr::default()
        };
        // SAFETY: keys and values have room for `count` elements of the map's own types, the
        // tokens for the kernel's u32 position; all live across the call.
        let error = unsafe { bpf(BPF_MAP_LOOKUP_BATCH, &mut attr) }.err();
        let got = (attr.count as usize).min(CHUNK);
        match error.as_ref().and_then(io::Error::raw_os_error) {
            // The last call: what it read is in, the map has no more.
            None | Some(libc::ENOENT) => {
                for (k, v) in keys[..got].iter().zip(&values[..got]) {
                    f(*k, *v);
                }
                if error.is_some() {
                    return Ok(true);
                }
            }
            Some(libc::EINVAL | libc::ENOSYS | libc::EOPNOTSUPP | 524) if first => {
                return Ok(false)
            }
            Some(_) => return Err(error.unwrap_or_else(|| io::Error::other("batch read"))),
        }
        first = false;
        token = next;
    }
}
