//! fail2ban's own annotated test corpus, judged by banner's reader of fail2ban filters.
//!
//! fail2ban ships a log sample per filter whose lines carry annotations (`# failJSON: {...}`:
//! must this line match, which host, which time, which user). Its test runner
//! (fail2ban/tests/samplestestcase.py) reads every filter.d file, runs each sample line
//! through it (with the `filterOptions`/`fileOptions` a sample asks for, its `constraint`s
//! and `addFILE`s) and checks each annotation; a line without one must not match. This test
//! does the same with banner's engine. Issue 10's goal was 95% of all annotations; banner
//! meets every one, so the test fails below 99%, and on any unannotated line that matches.
//!
//! The corpus comes from Debian's fail2ban package, which `cargo xtask setup` installs.

use std::{
    collections::{BTreeMap, HashMap},
    path::{Path, PathBuf},
};

use banner::filter::{f2b::Hit, Filter};
use chrono::TimeZone as _;
use serde_json::Value;

const F2B: &str = "/usr/lib/python3/dist-packages/fail2ban";
const FILTER_DIR: &str = "/etc/fail2ban/filter.d";
/// fail2ban's test "now": 2005-08-14 10:00:00 UTC.
const TEST_NOW: f64 = 1_124_013_600.0;
/// fail2ban's tests run in Central European time (their TZ string); Zurich's zone has the
/// same rules for the corpus years.
const TEST_TZ: &str = "Europe/Zurich";

#[derive(Default, Debug)]
struct Score {
    annotations: usize,
    met: usize,
    /// Lines without an annotation that matched (fail2ban's suite fails on each).
    unannotated_matches: usize,
    misses: Vec<String>,
}

/// What is judged: a fail2ban filter file, or one of banner's built-in filters.
#[derive(Clone, Debug)]
enum Under {
    File(PathBuf),
    Builtin(String),
}

struct Runner {
    filters: HashMap<String, Filter>,
}

impl Runner {
    fn filter(
        &mut self,
        key: &str,
        under: &Under,
        opts: &BTreeMap<String, String>,
    ) -> Result<&Filter, String> {
        if !self.filters.contains_key(key) {
            let f = match under {
                Under::File(path) => {
                    Filter::fail2ban_file(path, opts, false).map_err(|e| e.to_string())?
                }
                // A built-in takes the mode; the log type is how its lines reach it.
                Under::Builtin(name) => Filter::builtin(
                    name,
                    opts.get("mode").map_or("normal", String::as_str),
                    false,
                )?,
            };
            self.filters.insert(key.to_string(), f);
        }
        Ok(&self.filters[key])
    }
}

fn strings(v: &Value) -> BTreeMap<String, String> {
    v.as_object()
        .map(|o| {
            o.iter()
                .map(|(k, v)| {
                    let s = match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    (k.clone(), s)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The few Python expressions the corpus uses as conditions.
fn condition(expr: &str, name: &str, opts: &BTreeMap<String, String>) -> bool {
    let expr = expr.replace(' ', "");
    let (lhs, rhs, eq) = if let Some((l, r)) = expr.split_once("==") {
        (l.to_string(), r.to_string(), true)
    } else if let Some((l, r)) = expr.split_once("!=") {
        (l.to_string(), r.to_string(), false)
    } else {
        panic!("condition `{expr}` is not one this runner reads");
    };
    let rhs = rhs.trim_matches('\'').trim_matches('"').to_string();
    let value = if lhs == "name" {
        Some(name.to_string())
    } else if let Some(k) = lhs
        .strip_prefix("opts.get(")
        .and_then(|r| r.strip_suffix(')'))
    {
        opts.get(k.trim_matches('\'').trim_matches('"')).cloned()
    } else {
        panic!("condition `{expr}` is not one this runner reads");
    };
    (value.as_deref() == Some(rhs.as_str())) == eq
}

fn local_time(s: &str) -> f64 {
    let dt = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
        .or_else(|_| chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S"))
        .unwrap_or_else(|e| panic!("time `{s}` in the corpus: {e}"));
    let t = chrono::Local
        .from_local_datetime(&dt)
        .earliest()
        .expect("a local time");
    t.timestamp() as f64 + f64::from(t.timestamp_subsec_micros()) / 1e6
}

/// Does `hit` carry what the annotation says?
fn check(hit: &Hit, data: &BTreeMap<String, Value>) -> Result<(), String> {
    for (k, want) in data {
        if matches!(k.as_str(), "time" | "match" | "desc" | "constraint") {
            continue;
        }
        let got: Value = match k.as_str() {
            "host" => Value::from(hit.fields.get("host").unwrap_or(&hit.host)),
            "attempts" => Value::from(hit.attempts),
            "users" => Value::from(hit.users.iter().map(|u| &**u).collect::<Vec<_>>()),
            other => hit.fields.get(other).map_or(Value::Null, Value::from),
        };
        let same = match (&got, want) {
            (Value::Array(a), Value::Array(b)) => {
                let mut a: Vec<String> = a.iter().map(|v| v.to_string()).collect();
                let mut b: Vec<String> = b.iter().map(|v| v.to_string()).collect();
                a.sort();
                b.sort();
                a == b
            }
            (a, b) => a == b,
        };
        if !same {
            return Err(format!("{k}: got {got}, want {want}"));
        }
    }
    if let Some(Value::String(t)) = data.get("time") {
        let want = local_time(t);
        // banner's own reader keeps fractions of a second; the annotations have whole ones.
        match hit.time() {
            Some(got) if (got - want).abs() < 1e-3 || (got.trunc() - want).abs() < 1e-3 => {}
            got => return Err(format!("time: got {got:?}, want {want} ({t})")),
        }
    }
    Ok(())
}

fn run_filter(runner: &mut Runner, name: &str, under: &Under, logs: &Path) -> Score {
    let mut score = Score::default();
    let mut files = vec![name.to_string()];
    let mut common: BTreeMap<String, String> = BTreeMap::new();
    let mut tests: Option<Vec<(String, BTreeMap<String, String>)>> = None;
    let mut i = 0;
    while i < files.len() {
        let file = logs.join(&files[i]);
        i += 1;
        let text = std::fs::read(&file).unwrap_or_default();
        let text = String::from_utf8_lossy(&text);
        let mut lines = text.lines().enumerate();
        let mut ignore_block = false;
        while let Some((n, line)) = lines.next() {
            let annotation = line
                .trim_start_matches('#')
                .strip_prefix(' ')
                .or_else(|| Some(line.trim_start_matches('#')))
                .filter(|_| line.starts_with('#'))
                .and_then(|rest| {
                    ["failJSON", "fileOptions", "filterOptions", "addFILE"]
                        .iter()
                        .find_map(|tag| {
                            rest.strip_prefix(tag)
                                .and_then(|r| r.strip_prefix(':'))
                                .map(|r| (*tag, r))
                        })
                });
            let (data, target): (BTreeMap<String, Value>, &str) = match annotation {
                Some((tag, json)) => {
                    let v: Value = serde_json::from_str(json.trim())
                        .unwrap_or_else(|e| panic!("{}:{}: {e}", file.display(), n + 1));
                    match tag {
                        "fileOptions" => {
                            common = strings(&v);
                            continue;
                        }
                        "filterOptions" => {
                            let mut list = Vec::new();
                            ignore_block = false;
                            let items = match &v {
                                Value::Array(a) => a.clone(),
                                other => vec![other.clone()],
                            };
                            for item in items {
                                let mut opts = common.clone();
                                opts.extend(strings(&item));
                                if let Some(c) = opts.get("test.condition") {
                                    ignore_block = !condition(c, name, &opts);
                                }
                                if !ignore_block {
                                    let filter_opts: BTreeMap<String, String> = opts
                                        .iter()
                                        .filter(|(k, _)| !k.starts_with("test."))
                                        .map(|(k, v)| (k.clone(), v.clone()))
                                        .collect();
                                    list.push((format!("{name}{filter_opts:?}"), opts));
                                }
                            }
                            tests = Some(list);
                            continue;
                        }
                        "addFILE" => {
                            files.push(v.as_str().expect("addFILE names a file").to_string());
                            continue;
                        }
                        _ => {}
                    }
                    let Some((_, next)) = lines.next() else { break };
                    let map = v
                        .as_object()
                        .cloned()
                        .unwrap_or_default()
                        .into_iter()
                        .collect();
                    (map, next)
                }
                None if ignore_block || line.starts_with('#') || line.trim().is_empty() => continue,
                None => (BTreeMap::new(), line),
            };
            if ignore_block {
                continue;
            }
            let list = tests
                .get_or_insert_with(|| vec![(name.to_string(), common.clone())])
                .clone();
            let annotated = !data.is_empty();
            let want_match = data.get("match").and_then(Value::as_bool).unwrap_or(false);
            let mut all_ok = true;
            let mut evaluated = false;
            for (key, opts) in &list {
                if let Some(Value::String(c)) = data.get("constraint") {
                    if !condition(c, name, opts) {
                        continue;
                    }
                }
                evaluated = true;
                let filter_opts: BTreeMap<String, String> = opts
                    .iter()
                    .filter(|(k, _)| !k.starts_with("test."))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                let f = match runner.filter(key, under, &filter_opts) {
                    Ok(f) => f,
                    Err(e) => {
                        all_ok = false;
                        let miss = format!("{name}: cannot read the filter: {e}");
                        if !score.misses.contains(&miss) {
                            score.misses.push(miss);
                        }
                        continue;
                    }
                };
                let f = f.fail2ban_engine().expect("fail2ban engine");
                let journal = opts.get("logtype").map(String::as_str) == Some("journal");
                let hits = if journal && matches!(under, Under::Builtin(_)) {
                    // banner's journald source hands a built-in the message and the pid.
                    let (message, meta) =
                        banner::filter::journal_entry(target.as_bytes(), std::time::UNIX_EPOCH);
                    f.process_with_pid(
                        &String::from_utf8_lossy(&message),
                        Some(TEST_NOW),
                        meta.pid,
                        std::time::UNIX_EPOCH + std::time::Duration::from_secs_f64(TEST_NOW),
                    )
                    .into_iter()
                    .collect()
                } else if journal {
                    let prefixed = format!(
                        "{}{target}",
                        opts.get("test.prefix-line").map_or("", String::as_str)
                    );
                    f.process(&prefixed, Some(TEST_NOW), TEST_NOW)
                } else {
                    f.process(target, None, TEST_NOW)
                };
                let verdict = match (hits.first(), want_match) {
                    (None, false) => Ok(()),
                    (None, true) => Err("no match, want one".to_string()),
                    (Some(h), false) => Err(format!(
                        "matched {} (regex {}), want no match",
                        h.host, h.regex
                    )),
                    (Some(h), true) => check(h, &data),
                };
                if let Err(e) = verdict {
                    all_ok = false;
                    if !annotated {
                        score.unannotated_matches += 1;
                    }
                    if score.misses.len() < 200 {
                        score.misses.push(format!(
                            "{}:{} [{key}] {e}\n      {target}",
                            files[i - 1],
                            n + 2
                        ));
                    }
                }
            }
            if annotated && evaluated {
                score.annotations += 1;
                if all_ok {
                    score.met += 1;
                }
            }
        }
    }
    score
}

/// Built-ins fail2ban has no sample for (its 1.0 ships no such filter): their lines are
/// in banner's own unit tests (`filter::tests::SERVICES`).
const WITHOUT_SAMPLE: &[&str] = &["web-probes", "openvpn", "cockpit", "gitea"];

/// Annotations banner's built-ins refuse on purpose (sample, line, why): meeting them would
/// let client text choose the address a line bans. Each has a unit test with the attack.
const REFUSED: &[(&str, usize, &str)] = &[(
    "pam-generic",
    23,
    "a `user=` read across spaces lets a name in `ruser=` put its own `rhost=` last \
     (filter::tests::pam_user_names_never_choose_the_address)",
)];

fn check_builtins(builtin: &Score) {
    let refused = |m: &String| {
        REFUSED.iter().any(|(file, line, _)| {
            m.trim_start()
                .starts_with(&format!("built-in {file}:{line} "))
                && m.contains("no match, want one")
        })
    };
    if builtin.met + REFUSED.len() < builtin.annotations
        || builtin.unannotated_matches > 0
        || std::env::var_os("BANNER_CORPUS_VERBOSE").is_some()
    {
        for m in builtin.misses.iter().filter(|m| !refused(m)).take(300) {
            println!("{m}");
        }
    }
    for (file, line, why) in REFUSED {
        println!("refused on purpose: {file}:{line}: {why}");
    }
    // Each refusal is still checked: the line is read and yields no failure.
    assert_eq!(
        builtin.misses.iter().filter(|m| refused(m)).count(),
        REFUSED.len(),
        "a line refused on purpose now matches (or its sample moved)"
    );
    assert_eq!(
        (builtin.met + REFUSED.len(), builtin.unannotated_matches),
        (builtin.annotations, 0),
        "built-in filters must meet every annotation of their samples"
    );
}

#[test]
fn fail2bans_corpus_with_its_own_filters() {
    // SAFETY: set before any thread of this test binary reads the time zone (the only
    // test in this binary).
    unsafe { std::env::set_var("TZ", TEST_TZ) };
    let logs = Path::new(F2B).join("tests/files/logs");
    assert!(
        logs.is_dir() && Path::new(FILTER_DIR).is_dir(),
        "fail2ban's corpus ({}) or filters ({FILTER_DIR}) are missing: run `cargo xtask setup`",
        logs.display()
    );
    let mut filters: Vec<(String, Under)> = Vec::new();
    let scratch = tempfile::tempdir().unwrap();
    std::fs::copy(
        Path::new(FILTER_DIR).join("common.conf"),
        scratch.path().join("common.conf"),
    )
    .unwrap();
    for (dir, prefix) in [
        (PathBuf::from(FILTER_DIR), ""),
        (Path::new(F2B).join("tests/config/filter.d"), "zzz-"),
    ] {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                let n = p.file_name().unwrap_or_default().to_string_lossy();
                n.ends_with(".conf") && !n.ends_with("common.conf") && n.starts_with(prefix)
            })
            .collect();
        entries.sort();
        for p in entries {
            let name = p.file_stem().unwrap().to_string_lossy().into_owned();
            if !logs.join(&name).is_file() {
                continue;
            }
            // fail2ban's own test filters include common.conf by a path into its source
            // tree; the package installs it in /etc/fail2ban. Read them beside it.
            let p = if prefix.is_empty() {
                p
            } else {
                let text = std::fs::read_to_string(&p).unwrap();
                let text = text.replace(
                    "../../../../../../../config/filter.d/common.conf",
                    "common.conf",
                );
                let copy = scratch.path().join(p.file_name().unwrap());
                std::fs::write(&copy, text).unwrap();
                copy
            };
            filters.push((name, Under::File(p)));
        }
    }
    let mut runner = Runner {
        filters: HashMap::new(),
    };
    // banner's built-in filters, on the sample of the fail2ban filter they replace.
    let mut builtin = Score::default();
    let mut builtin_report = String::new();
    for name in banner::filter::builtin::names() {
        if WITHOUT_SAMPLE.contains(&name) {
            assert!(
                !logs.join(name).exists(),
                "fail2ban now has a sample for {name}: test the built-in on it"
            );
            continue;
        }
        assert!(
            logs.join(name).is_file(),
            "no fail2ban sample for the built-in {name}"
        );
        runner.filters.clear();
        let s = run_filter(&mut runner, name, &Under::Builtin(name.to_string()), &logs);
        builtin_report.push_str(&format!(
            "built-in {name:<19} {:>4}/{:<4}{}\n",
            s.met,
            s.annotations,
            if s.unannotated_matches > 0 {
                format!("  ({} unannotated lines matched)", s.unannotated_matches)
            } else {
                String::new()
            }
        ));
        builtin.annotations += s.annotations;
        builtin.met += s.met;
        builtin.unannotated_matches += s.unannotated_matches;
        builtin
            .misses
            .extend(s.misses.into_iter().map(|m| format!("  built-in {m}")));
    }
    println!("{builtin_report}");
    // For work on the built-ins: their samples only (the gate runs everything).
    if std::env::var_os("BANNER_CORPUS_BUILTINS_ONLY").is_some() {
        check_builtins(&builtin);
        return;
    }
    let mut total = Score::default();
    let mut report = String::new();
    for (name, under) in &filters {
        runner.filters.clear();
        let s = run_filter(&mut runner, name, under, &logs);
        report.push_str(&format!(
            "{name:<28} {:>4}/{:<4} {:>5.1}%{}\n",
            s.met,
            s.annotations,
            100.0 * s.met as f64 / s.annotations.max(1) as f64,
            if s.unannotated_matches > 0 {
                format!("  ({} unannotated lines matched)", s.unannotated_matches)
            } else {
                String::new()
            }
        ));
        total.annotations += s.annotations;
        total.met += s.met;
        total.unannotated_matches += s.unannotated_matches;
        total
            .misses
            .extend(s.misses.into_iter().map(|m| format!("  {m}")));
    }
    let pct = 100.0 * total.met as f64 / total.annotations.max(1) as f64;
    println!("{report}");
    println!(
        "all: {}/{} annotations met ({pct:.1}%) over {} filters; {} unannotated lines matched",
        total.met,
        total.annotations,
        filters.len(),
        total.unannotated_matches
    );
    if std::env::var_os("BANNER_CORPUS_VERBOSE").is_some() || pct < 95.0 {
        for m in total.misses.iter().take(300) {
            println!("{m}");
        }
    }
    check_builtins(&builtin);
    assert!(
        filters.len() >= 80,
        "only {} filters with samples found",
        filters.len()
    );
    assert!(
        total.annotations >= 1000,
        "only {} annotations read",
        total.annotations
    );
    // The goal is 95%; banner meets them all, so anything less is a regression.
    assert!(
        pct >= 99.0,
        "{pct:.1}% of fail2ban's annotations met (was 100%; the goal is 95%)"
    );
    assert_eq!(
        total.unannotated_matches, 0,
        "lines fail2ban never matches matched"
    );
}
