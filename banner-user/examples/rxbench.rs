use banner::filter::f2b::pyre::{expand_tags, translate};
use regex_automata::{
    meta, nfa::thompson::backtrack::BoundedBacktracker, nfa::thompson::pikevm::PikeVM, Anchored,
    Input,
};
use std::time::Instant;

fn main() {
    let ascii = std::env::args().any(|a| a == "ascii");
    let pats: Vec<String> = banner::filter::sshd::patterns("normal")
        .into_iter()
        .map(|(p, _)| {
            let p = if std::env::args().any(|a| a == "host") {
                p.replace("<HOST>", r"\[?(?P<host>[0-9a-fA-F:.]+)\]?")
            } else {
                p
            };
            let t = translate(&expand_tags(&p, std::env::args().all(|a| a != "nodns")))
                .unwrap()
                .pattern;
            if ascii {
                t.replace(r"\d", "[0-9]")
                    .replace(r"\w", "[0-9A-Za-z_]")
                    .replace(r"\S", r"[^\t\n\x0B\x0C\r ]")
                    .replace(r"\s", r"[\t\n\x0B\x0C\r ]")
            } else {
                t
            }
        })
        .collect();
    let lines = [
        "Failed password for root from 198.18.3.4 port 51234 ssh2",
        "Invalid user admin42 from 2001:db8:1::ab12 port 4022",
        "Failed password for invalid user oracle from 198.18.3.4 port 51234 ssh2",
        "Connection closed by authenticating user root 198.18.9.1 port 3333 [preauth]",
        "Accepted publickey for deploy from 198.18.9.1 port 3333 ssh2: ED25519 SHA256:Hx4hq2m0dWZqQkRj1l3VtTqWj9zqk0cX8sE1Zb2yLkQ",
        "pam_unix(sshd:session): session opened for user deploy(uid=1000) by (uid=0)",
        "Received disconnect from 198.18.9.1 port 3333:11: disconnected by user",
    ];
    let n = 200_000;
    let singles: Vec<regex::Regex> = pats.iter().map(|p| regex::Regex::new(p).unwrap()).collect();
    let multi = meta::Regex::builder()
        .configure(meta::Config::new().hybrid_cache_capacity(32 << 20))
        .build_many(&pats)
        .unwrap();
    let bts: Vec<BoundedBacktracker> = pats
        .iter()
        .map(|p| BoundedBacktracker::new(p).unwrap())
        .collect();
    let pvs: Vec<PikeVM> = pats.iter().map(|p| PikeVM::new(p).unwrap()).collect();
    println!(
        "onepass: {:?}",
        pats.iter()
            .map(|p| regex_automata::dfa::onepass::DFA::new(p).is_ok())
            .collect::<Vec<_>>()
    );
    println!(
        "nfa states: {:?}",
        bts.iter()
            .map(|b| b.get_nfa().states().len())
            .collect::<Vec<_>>()
    );
    // which pattern per line
    let idx: Vec<Option<usize>> = lines
        .iter()
        .map(|l| multi.find(l).map(|m| m.pattern().as_usize()))
        .collect();
    println!("idx {:?}", idx);
    let t = Instant::now();
    let mut k = 0;
    for i in 0..n {
        let l = lines[i % lines.len()];
        if multi.find(l).is_some() {
            k += 1;
        }
    }
    println!(
        "multi find: {:.0} ns {k}",
        t.elapsed().as_nanos() as f64 / n as f64
    );
    let mut caps = multi.create_captures();
    let t = Instant::now();
    for i in 0..n {
        let l = lines[i % lines.len()];
        multi.search_captures(&Input::new(l), &mut caps);
    }
    println!(
        "multi captures: {:.0} ns",
        t.elapsed().as_nanos() as f64 / n as f64
    );
    let t = Instant::now();
    for i in 0..n {
        let l = lines[i % lines.len()];
        if let Some(j) = idx[i % lines.len()] {
            singles[j].captures(l);
        }
    }
    println!(
        "single regex captures: {:.0} ns",
        t.elapsed().as_nanos() as f64 / n as f64
    );
    let mut locs: Vec<_> = singles.iter().map(|r| r.capture_locations()).collect();
    let t = Instant::now();
    for i in 0..n {
        let l = lines[i % lines.len()];
        if let Some(j) = idx[i % lines.len()] {
            singles[j].captures_read(&mut locs[j], l);
        }
    }
    println!(
        "single regex captures_read: {:.0} ns",
        t.elapsed().as_nanos() as f64 / n as f64
    );
    let mut btc: Vec<_> = bts
        .iter()
        .map(|b| (b.create_cache(), b.create_captures()))
        .collect();
    let t = Instant::now();
    for i in 0..n {
        let l = lines[i % lines.len()];
        if let Some(j) = idx[i % lines.len()] {
            let (c, cp) = &mut btc[j];
            bts[j]
                .try_search(c, &Input::new(l).anchored(Anchored::Yes), cp)
                .unwrap();
            assert!(cp.is_match());
        }
    }
    println!(
        "backtracker anchored: {:.0} ns",
        t.elapsed().as_nanos() as f64 / n as f64
    );
    let mut pvc: Vec<_> = pvs
        .iter()
        .map(|b| (b.create_cache(), b.create_captures()))
        .collect();
    let t = Instant::now();
    for i in 0..n {
        let l = lines[i % lines.len()];
        if let Some(j) = idx[i % lines.len()] {
            let (c, cp) = &mut pvc[j];
            pvs[j].search(c, &Input::new(l).anchored(Anchored::Yes), cp);
        }
    }
    println!(
        "pikevm anchored: {:.0} ns",
        t.elapsed().as_nanos() as f64 / n as f64
    );
}
