//! The timeline as a Gantt chart: an SVG document (built with the `svg` crate, not
//! written by hand), and a self-contained HTML page around it. Rings are bands, clusters
//! rows (labelled with their wave), steps bars coloured by kind, the time a cluster waits
//! between its steps (a maintenance window, a blackout, a soak) shaded, approvals
//! diamonds on their ring's row, and "now" a red line. Every shape has a `<title>`: a
//! browser shows it on hover, and tests read the chart back through it.

use super::{ClusterForecast, Timeline};
use chrono::{DateTime, Utc};
use svg::Document;
use svg::node::element::{Group, Line, Polygon, Rectangle, Text, Title};

const WIDTH: f64 = 1200.0;
const LABELS: f64 = 260.0;
const ROW: f64 = 20.0;
const TOP: f64 = 40.0;
const RIGHT: f64 = 20.0;

/// A bar's colour by step kind.
fn colour(kind: &str) -> &'static str {
    match kind {
        "controlPlane" => "#3b6fb6",
        "poolVersion" => "#3c9a5f",
        "nodeImage" => "#2aa0a0",
        "poolRollback" => "#d9822b",
        _ => "#888888",
    }
}

fn hm(t: DateTime<Utc>) -> String {
    t.format("%m-%d %H:%M").to_string()
}

/// Maps times onto the chart's x axis.
struct Axis {
    t0: DateTime<Utc>,
    span: f64,
}

impl Axis {
    fn x(&self, t: DateTime<Utc>) -> f64 {
        let s = (t - self.t0).num_seconds() as f64;
        LABELS + (s / self.span).clamp(0.0, 1.0) * (WIDTH - LABELS - RIGHT)
    }
}

fn bar(x0: f64, x1: f64, y: f64, fill: &str, title: String) -> Rectangle {
    Rectangle::new()
        .set("x", x0)
        .set("y", y + 3.0)
        .set("width", (x1 - x0).max(1.0))
        .set("height", ROW - 6.0)
        .set("fill", fill)
        .add(Title::new(title))
}

fn label(x: f64, y: f64, text: String, weight: &str) -> Text {
    Text::new(text)
        .set("x", x)
        .set("y", y + ROW - 6.0)
        .set("font-size", 12)
        .set("font-weight", weight)
        .set("font-family", "sans-serif")
}

/// One cluster's row: its steps, and the waits between them.
fn cluster_row(c: &ClusterForecast, axis: &Axis, y: f64) -> Group {
    let mut g =
        Group::new()
            .set("class", "cluster")
            .add(label(16.0, y, format!("{} · {}", c.wave, c.id.name), "normal"));
    let mut last_end: Option<DateTime<Utc>> = c.start;
    for s in &c.steps {
        let (Some(start), Some(finish)) = (s.start, s.finish) else {
            continue;
        };
        if let Some(prev) = last_end
            && start > prev
        {
            g = g.add(
                bar(
                    axis.x(prev),
                    axis.x(start),
                    y,
                    "#dddddd",
                    format!(
                        "{}: waits {} to {} (a window, a blackout or a soak)",
                        c.id.name,
                        hm(prev),
                        hm(start)
                    ),
                )
                .set("class", "wait"),
            );
        }
        g = g.add(
            bar(
                axis.x(start),
                axis.x(finish),
                y,
                colour(&s.kind),
                format!("{}: {} {} to {}", c.id.name, s.step, hm(start), hm(finish)),
            )
            .set("class", "step"),
        );
        last_end = Some(finish);
    }
    g
}

/// The chart; `now` is drawn when it falls inside the timeline.
pub fn svg(tl: &Timeline, now: DateTime<Utc>) -> String {
    let t0 = tl.start;
    let t1 = tl
        .finish
        .or_else(|| tl.rings.iter().flat_map(|r| &r.clusters).filter_map(|c| c.finish).max())
        .unwrap_or(t0 + chrono::Duration::hours(1));
    let axis = Axis {
        t0,
        span: ((t1 - t0).num_seconds() as f64).max(60.0),
    };
    let rows: usize = tl.rings.iter().map(|r| r.clusters.len() + 1).sum();
    let height = TOP + ROW * rows as f64 + 20.0;
    let mut doc = Document::new()
        .set("xmlns", "http://www.w3.org/2000/svg")
        .set("width", WIDTH)
        .set("height", height)
        .set("viewBox", (0, 0, WIDTH, height))
        .add(label(
            8.0,
            0.0,
            format!("{}: forecast from {} UTC", tl.policy, hm(t0)),
            "bold",
        ));
    // Time axis: a tick every few hours, about ten ticks across.
    let hours = ((t1 - t0).num_hours() / 10).max(1);
    let mut t = t0;
    while t <= t1 {
        let x = axis.x(t);
        doc = doc
            .add(
                Line::new()
                    .set("x1", x)
                    .set("y1", TOP - 4.0)
                    .set("x2", x)
                    .set("y2", height - 20.0)
                    .set("stroke", "#eeeeee"),
            )
            .add(
                Text::new(hm(t))
                    .set("x", x + 2.0)
                    .set("y", TOP - 8.0)
                    .set("font-size", 10)
                    .set("font-family", "sans-serif"),
            );
        t += chrono::Duration::hours(hours);
    }
    let mut y = TOP;
    for (i, ring) in tl.rings.iter().enumerate() {
        let band_h = ROW * (ring.clusters.len() + 1) as f64;
        let mut band = Group::new().set("class", "ring").add(
            Rectangle::new()
                .set("x", 0)
                .set("y", y)
                .set("width", WIDTH)
                .set("height", band_h)
                .set("fill", if i % 2 == 0 { "#f6f8fb" } else { "#ffffff" })
                .add(Title::new(format!(
                    "ring {}: {} to {}",
                    ring.name,
                    ring.start.map_or("-".into(), hm),
                    ring.finish.map_or("-".into(), hm)
                ))),
        );
        band = band.add(label(8.0, y, format!("ring {}", ring.name), "bold"));
        if let (Some(s), Some(f)) = (ring.start, ring.finish) {
            band = band.add(
                bar(
                    axis.x(s),
                    axis.x(f),
                    y,
                    "#c9d3e3",
                    format!("ring {} runs and soaks {} to {}", ring.name, hm(s), hm(f)),
                )
                .set("class", "ring-span"),
            );
        }
        if let Some(at) = ring.approved {
            let (x, cy) = (axis.x(at), y + ROW / 2.0);
            band = band.add(
                Polygon::new()
                    .set(
                        "points",
                        format!("{x},{} {},{cy} {x},{} {},{cy}", cy - 6.0, x + 6.0, cy + 6.0, x - 6.0),
                    )
                    .set("fill", "#7a3db8")
                    .set("class", "approval")
                    .add(Title::new(format!(
                        "ring {}: approval (assumed) at {}",
                        ring.name,
                        hm(at)
                    ))),
            );
        }
        y += ROW;
        for c in &ring.clusters {
            band = band.add(cluster_row(c, &axis, y));
            y += ROW;
        }
        doc = doc.add(band);
    }
    if now >= t0 && now <= t1 {
        let x = axis.x(now);
        doc = doc.add(
            Line::new()
                .set("x1", x)
                .set("y1", TOP - 4.0)
                .set("x2", x)
                .set("y2", height - 20.0)
                .set("stroke", "#d62728")
                .set("stroke-width", 2)
                .set("class", "now")
                .add(Title::new(format!("now: {}", hm(now)))),
        );
    }
    doc.to_string()
}

/// A page that needs nothing else: the chart, a legend, the table and the assumptions.
pub fn html(tl: &Timeline, now: DateTime<Utc>) -> String {
    let escape = |s: &str| s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
    let legend: String = [
        ("controlPlane", "control plane"),
        ("poolVersion", "pool version"),
        ("nodeImage", "node image"),
        ("poolRollback", "rollback"),
    ]
    .iter()
    .map(|(k, name)| {
        format!(
            "<span style=\"background:{}\">&nbsp;&nbsp;&nbsp;</span> {name} ",
            colour(k)
        )
    })
    .collect();
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Forecast: {policy}</title>\
         <style>body{{font-family:sans-serif;margin:1em}}pre{{font-size:12px}}</style></head><body>\n\
         <h1>Forecast: {policy}</h1>\n<p>{legend}<span style=\"background:#dddddd\">&nbsp;&nbsp;&nbsp;</span> waiting \
         <span style=\"color:#7a3db8\">&#9670;</span> approval <span style=\"color:#d62728\">|</span> now</p>\n{svg}\n<pre>{table}</pre>\n</body></html>\n",
        policy = escape(&tl.policy),
        svg = svg(tl, now),
        table = escape(&super::render::table(tl)),
    )
}
