//! PNG charts of the report: ns/packet against number of bans, lines/s per tool, packets/s
//! per backend.

use std::path::Path;

use plotters::prelude::*;
use tests::report::{BySize, PeerRun, Pps, Report, Section};

const FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";

/// Draw what the report has data for; returns the file names written.
pub fn draw(r: &Report, dir: &Path) -> Vec<String> {
    let Ok(font) = std::fs::read(FONT) else {
        eprintln!("bench: no font at {FONT} (fonts-dejavu-core): no charts");
        return Vec::new();
    };
    // plotters keeps registered fonts for the whole process.
    let font: &'static [u8] = Box::leak(font.into_boxed_slice());
    if plotters::style::register_font("sans-serif", FontStyle::Normal, font).is_err() {
        return Vec::new();
    }
    let mut out = Vec::new();
    for (name, result) in [
        (
            "ns_per_packet_vs_bans.png",
            scaling(r, &dir.join("ns_per_packet_vs_bans.png")),
        ),
        (
            "parse_lines_per_sec.png",
            parse_bars(r, &dir.join("parse_lines_per_sec.png")),
        ),
        (
            "pps_per_backend.png",
            pps_bars(r, &dir.join("pps_per_backend.png")),
        ),
    ] {
        match result {
            Ok(true) => out.push(name.to_string()),
            Ok(false) => {}
            Err(e) => eprintln!("bench: chart {name}: {e}"),
        }
    }
    out
}

type Res = Result<bool, Box<dyn std::error::Error>>;

fn bars(path: &Path, title: &str, unit: &str, items: &[(String, f64)]) -> Res {
    if items.is_empty() {
        return Ok(false);
    }
    let max = items.iter().map(|(_, v)| *v).fold(0.0, f64::max) * 1.15;
    let root = BitMapBackend::new(path, (900, 500)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 24))
        .margin(20)
        .x_label_area_size(40)
        .y_label_area_size(90)
        .build_cartesian_2d(0.0..items.len() as f64, 0.0..max.max(1.0))?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(0)
        .y_desc(unit)
        .label_style(("sans-serif", 14))
        .draw()?;
    for (i, (label, v)) in items.iter().enumerate() {
        let x = i as f64;
        let color = if i == 0 {
            BLUE.mix(0.8)
        } else {
            RGBColor(150, 150, 150).mix(0.9)
        };
        chart.draw_series(std::iter::once(Rectangle::new(
            [(x + 0.15, 0.0), (x + 0.85, *v)],
            color.filled(),
        )))?;
        chart.draw_series(std::iter::once(Text::new(
            format!("{label}: {v:.0}"),
            (x + 0.17, *v + max * 0.02),
            ("sans-serif", 14),
        )))?;
    }
    root.present()?;
    Ok(true)
}

fn parse_bars(r: &Report, path: &Path) -> Res {
    let Some(p) = r.parse.as_ref().and_then(Section::ran) else {
        return Ok(false);
    };
    let mut items = vec![("banner".to_string(), p.banner_lines_per_sec)];
    for (label, run) in [("sshguard", p.sshguard()), ("fail2ban", p.fail2ban())] {
        if let PeerRun::Ran { lines_per_sec, .. } = run {
            items.push((label.to_string(), lines_per_sec));
        }
    }
    bars(
        path,
        "sshd log parsing: lines per second (one core)",
        "lines/s",
        &items,
    )
}

fn pps_bars(r: &Report, path: &Path) -> Res {
    let Some(Pps::Ran(p)) = r.pps.as_ref().and_then(Section::ran) else {
        return Ok(false);
    };
    let labels = [
        "XDP",
        "xdp-filter",
        "nftables set",
        "ipset",
        "rule per address",
    ];
    let items: Vec<(String, f64)> = labels
        .iter()
        .zip(p.rows())
        .map(|(label, (_, dropped, _))| (label.to_string(), dropped))
        .collect();
    let title = format!(
        "UDP flood from a banned address, {} bans: packets/s dropped",
        p.bans
    );
    bars(path, &title, "packets/s", &items)
}

/// ns/packet against bans: banner's XDP (test_run, clean IPv4) and one iptables rule per
/// address (1e9 / packets per second dropped in the lab).
fn scaling(r: &Report, path: &Path) -> Res {
    let series = |figures: Option<&BySize>, f: &dyn Fn(f64) -> f64| -> Vec<(f64, f64)> {
        let mut v: Vec<(f64, f64)> = figures
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| Some((k.parse::<f64>().ok()?, f(*v))))
            .filter(|(_, y)| y.is_finite())
            .collect();
        v.sort_by(|a, b| a.0.total_cmp(&b.0));
        v
    };
    let xdp = series(
        r.xdp
            .as_ref()
            .and_then(Section::ran)
            .map(|x| &x.clean_v4_ns),
        &|v| v,
    );
    let by_count = match r.pps.as_ref().and_then(Section::ran) {
        Some(Pps::Ran(p)) => Some(&p.iptables_rules_pps_by_count),
        _ => None,
    };
    let rules = series(by_count, &|pps| {
        if pps > 0.0 {
            1e9 / pps
        } else {
            f64::NAN
        }
    });
    if xdp.is_empty() && rules.is_empty() {
        return Ok(false);
    }
    let max_y = xdp.iter().chain(&rules).map(|p| p.1).fold(0.0, f64::max) * 1.2;
    let max_x = xdp.iter().chain(&rules).map(|p| p.0).fold(10.0, f64::max) * 2.0;
    let root = BitMapBackend::new(path, (900, 500)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption("Cost per packet as bans grow", ("sans-serif", 24))
        .margin(20)
        .x_label_area_size(45)
        .y_label_area_size(80)
        .build_cartesian_2d((1.0..max_x).log_scale(), 0.0..max_y.max(1.0))?;
    chart
        .configure_mesh()
        .x_desc("bans loaded (log scale)")
        .y_desc("ns per packet")
        .label_style(("sans-serif", 14))
        .draw()?;
    if !xdp.is_empty() {
        chart
            .draw_series(LineSeries::new(xdp.clone(), BLUE.stroke_width(3)))?
            .label("banner XDP (test_run, clean IPv4)")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE.stroke_width(3)));
        chart.draw_series(xdp.iter().map(|p| Circle::new(*p, 4, BLUE.filled())))?;
    }
    if !rules.is_empty() {
        chart
            .draw_series(LineSeries::new(rules.clone(), RED.stroke_width(3)))?
            .label("one iptables rule per address (lab, 1e9/pps)")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED.stroke_width(3)));
        chart.draw_series(rules.iter().map(|p| Circle::new(*p, 4, RED.filled())))?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .label_font(("sans-serif", 14))
        .draw()?;
    root.present()?;
    Ok(true)
}
