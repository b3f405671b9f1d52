//! Project automation: `cargo xtask setup | run | test | bench | demo`.
//!
//! On a fresh Debian machine with only rustup, `cargo xtask run` and `cargo xtask test` do
//! everything: they call `setup` first, which installs what is missing and is silent when
//! nothing is.

mod bench;
mod fuzz;
mod package;
mod setup;
mod tasks;
mod util;

use anyhow::{bail, Result};

const USAGE: &str = "\
usage: cargo xtask <task> [args]

tasks:
  setup            install what building and testing banner needs (idempotent, quiet when done)
  run [-- ARGS]    build and run `banner daemon ARGS` (or `banner ARGS` for a CLI subcommand)
  test             run every test: lints, unit tests, privileged kernel and lab tests (as root)
  package          a Debian package (target/debian/banner_VERSION_ARCH.deb), lintian-checked
  demo             a narrated tour: an ssh attacker in a lab namespace, banned at the NIC
  bench [SECTION]... [--quick]
                   banner beside its peers; writes target/bench/report.{json,md}
  fuzz [TARGET]... [--time S]
                   run the fuzz targets (cargo-fuzz, nightly), S seconds each (default 60)
";

fn main() {
    if let Err(e) = real_main() {
        eprintln!("xtask: {e:#}");
        std::process::exit(1);
    }
}

fn real_main() -> Result<()> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    if args.is_empty() {
        eprint!("{USAGE}");
        std::process::exit(2);
    }
    let task = args.remove(0);
    if args.first().map(String::as_str) == Some("--") {
        args.remove(0);
    }
    match task.as_str() {
        "setup" => setup::run(setup::Verbosity::Normal),
        "run" => tasks::run(&args),
        "test" => tasks::test(&args),
        "bench" => bench::bench(&args),
        "demo" => bench::demo(),
        "package" => package::package(&args),
        "fuzz" => {
            setup::run(setup::Verbosity::Quiet)?;
            fuzz::fuzz(&args)
        }
        "-h" | "--help" | "help" => {
            print!("{USAGE}");
            Ok(())
        }
        other => bail!("unknown task `{other}`\n{USAGE}"),
    }
}
