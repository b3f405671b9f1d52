//! Runs a filter over N lines of a log, for counting instructions per line under
//! callgrind (the deterministic figure issue 10's speed work reports; wall-clock times on
//! shared machines drift): the difference between two N, divided, is the steady cost.
//!
//! `icount N` (built-in sshd on a generated auth log), `icount N builtin LOG`,
//! `icount N FILTER.conf LOG` (a fail2ban filter file).
use banner::filter::{date::DateCache, Filter, LineMeta};
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(1).map_or(100_000, |s| s.parse().unwrap());
    let (filter, path, meta) = match args.get(2) {
        Some(b) if b == "builtin" => (
            Filter::builtin("sshd", "normal", false).unwrap(),
            std::path::PathBuf::from(&args[3]),
            LineMeta::arrived(std::time::SystemTime::now()),
        ),
        Some(conf) => (
            Filter::fail2ban_file(std::path::Path::new(conf), &Default::default(), false).unwrap(),
            std::path::PathBuf::from(&args[3]),
            LineMeta::arrived(
                std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_124_013_600),
            ),
        ),
        None => {
            let path = std::path::PathBuf::from("/tmp/icount.log");
            if !path.exists() {
                tests::authlog::generate(&path, 100_000, 0.3, 5_000, 7);
            }
            (
                Filter::builtin("sshd", "normal", false).unwrap(),
                path,
                LineMeta::arrived(std::time::SystemTime::now()),
            )
        }
    };
    let text = std::fs::read(&path).unwrap();
    let mut cache = DateCache::default();
    let mut hits = 0;
    for line in text
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .cycle()
        .take(n)
    {
        if !matches!(
            filter.examine(line, &meta, &mut cache),
            banner::filter::Examined::NoMatch
        ) {
            hits += 1;
        }
    }
    println!("{hits}");
}
