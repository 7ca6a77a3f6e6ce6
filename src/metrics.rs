//! Prometheus metrics, rendered in the text exposition format without a dependency:
//! counters and a few gauges the daemon updates as things happen.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

/// Labels of a series, sorted.
type Labels = Vec<(String, String)>;
/// A series: metric name and its labels.
type Series = (String, Labels);

/// Counters by (name, sorted labels).
#[derive(Debug, Default)]
pub struct Metrics {
    counters: Mutex<BTreeMap<Series, f64>>,
    gauges: Mutex<BTreeMap<Series, f64>>,
    help: Mutex<BTreeMap<String, (&'static str, &'static str)>>,
}

fn key(name: &str, labels: &[(&str, &str)]) -> Series {
    let mut l: Vec<(String, String)> = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    l.sort();
    (name.to_string(), l)
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

impl Metrics {
    /// Declares a metric's help text and type ("counter" or "gauge").
    pub fn describe(&self, name: &str, kind: &'static str, help: &'static str) {
        self.help
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.to_string(), (kind, help));
    }

    pub fn inc(&self, name: &str, labels: &[(&str, &str)]) {
        self.add(name, labels, 1.0);
    }

    pub fn add(&self, name: &str, labels: &[(&str, &str)], v: f64) {
        *self
            .counters
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(key(name, labels))
            .or_default() += v;
    }

    pub fn set(&self, name: &str, labels: &[(&str, &str)], v: f64) {
        self.gauges
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key(name, labels), v);
    }

    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let k = key(name, labels);
        let c = self.counters.lock().unwrap_or_else(|e| e.into_inner()).get(&k).copied();
        c.or_else(|| self.gauges.lock().unwrap_or_else(|e| e.into_inner()).get(&k).copied())
            .unwrap_or(0.0)
    }

    /// The text exposition format (`text/plain; version=0.0.4`).
    pub fn render(&self) -> String {
        let mut out = String::new();
        let help = self.help.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let mut all: BTreeMap<String, Vec<(Labels, f64)>> = BTreeMap::new();
        for map in [&self.counters, &self.gauges] {
            for ((name, labels), v) in map.lock().unwrap_or_else(|e| e.into_inner()).iter() {
                all.entry(name.clone()).or_default().push((labels.clone(), *v));
            }
        }
        for (name, series) in all {
            if let Some((kind, h)) = help.get(&name) {
                let _ = writeln!(out, "# HELP {name} {h}");
                let _ = writeln!(out, "# TYPE {name} {kind}");
            }
            for (labels, v) in series {
                let l: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{}\"", escape(v))).collect();
                let l = if l.is_empty() {
                    String::new()
                } else {
                    format!("{{{}}}", l.join(","))
                };
                let _ = writeln!(out, "{name}{l} {v}");
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::default();
        m.describe("ringmaster_steps_total", "counter", "Steps by result.");
        m.inc("ringmaster_steps_total", &[("result", "started")]);
        m.inc("ringmaster_steps_total", &[("result", "started")]);
        m.set("ringmaster_rollouts", &[("state", "running")], 1.0);
        let text = m.render();
        assert!(text.contains("# TYPE ringmaster_steps_total counter"));
        assert!(text.contains("ringmaster_steps_total{result=\"started\"} 2"));
        assert!(text.contains("ringmaster_rollouts{state=\"running\"} 1"));
        assert_eq!(m.get("ringmaster_steps_total", &[("result", "started")]), 2.0);
    }
}
