//! Prometheus metrics: counters, gauges and histograms the daemon updates as things
//! happen, exposed in the text format (0.0.4) by `prometheus-client`.
//!
//! Call sites name a series and its labels (`inc("ringmaster_steps_total", &[("result",
//! "started")])`) instead of holding typed handles: a metric is created on first use or
//! when it is described, whichever comes first, so neither order matters. The names
//! are the exposed ones: a counter's ends in `_total` (the crate adds the suffix itself,
//! so it is registered without it), a histogram's is the base of its `_bucket`, `_sum`
//! and `_count` series.
//!
//! Label values must come from small fixed sets (a route template, a result, a ring of
//! the policy): never an id, a raw path or anything a client chooses.

use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;

/// The `Content-Type` of [`Metrics::render`]'s output.
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// Buckets of a histogram observed before it was described: Prometheus's defaults
/// (seconds, from 5 ms to 10 s).
pub const DEFAULT_BUCKETS: &[f64] = &[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// Labels of a series, sorted by name (one series whatever order a call site uses).
type Labels = Vec<(String, String)>;

/// A histogram's bucket bounds, for the family to make each new series with.
#[derive(Debug, Clone, Copy)]
struct Buckets(&'static [f64]);

impl MetricConstructor<Histogram> for Buckets {
    fn new_metric(&self) -> Histogram {
        Histogram::new(self.0.iter().copied())
    }
}

#[derive(Debug, Clone)]
enum Kind {
    Counter(Family<Labels, Counter<f64, AtomicU64>>),
    Gauge(Family<Labels, Gauge<f64, AtomicU64>>),
    Histogram(Family<Labels, Histogram, Buckets>),
}

impl Kind {
    fn of(kind: &str, buckets: &'static [f64]) -> Kind {
        match kind {
            "counter" => Kind::Counter(Family::default()),
            "histogram" => Kind::Histogram(Family::new_with_constructor(Buckets(buckets))),
            _ => Kind::Gauge(Family::default()),
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Kind::Counter(_) => "counter",
            Kind::Gauge(_) => "gauge",
            Kind::Histogram(_) => "histogram",
        }
    }
}

#[derive(Debug)]
struct Metric {
    help: &'static str,
    kind: Kind,
}

/// Every metric by its exposed name.
#[derive(Debug, Default)]
pub struct Metrics {
    all: Mutex<BTreeMap<String, Metric>>,
}

fn labels(l: &[(&str, &str)]) -> Labels {
    let mut v: Labels = l.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    v.sort();
    v
}

impl Metrics {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Metric>> {
        self.all.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` on the metric `name`, made as `kind` if it does not exist yet. A call
    /// site that uses a metric as another kind is a bug: debug builds panic, release
    /// builds drop the update rather than expose a series of the wrong type.
    fn with(&self, name: &str, kind: &'static str, f: impl FnOnce(&Kind)) {
        let mut all = self.lock();
        let m = all.entry(name.to_string()).or_insert_with(|| Metric {
            help: "",
            kind: Kind::of(kind, DEFAULT_BUCKETS),
        });
        debug_assert_eq!(m.kind.name(), kind, "metric {name} used as a {kind}");
        if m.kind.name() == kind {
            f(&m.kind);
        }
    }

    /// Declares a metric's help text and type ("counter", "gauge" or "histogram" with
    /// [`DEFAULT_BUCKETS`]). Before or after its first use.
    pub fn describe(&self, name: &str, kind: &'static str, help: &'static str) {
        self.declare(name, kind, help, DEFAULT_BUCKETS);
    }

    /// Declares a histogram with its bucket bounds. Series observed before this keep
    /// [`DEFAULT_BUCKETS`]: describe a histogram before it is observed.
    pub fn describe_histogram(&self, name: &str, help: &'static str, buckets: &'static [f64]) {
        self.declare(name, "histogram", help, buckets);
    }

    fn declare(&self, name: &str, kind: &'static str, help: &'static str, buckets: &'static [f64]) {
        debug_assert!(
            kind != "counter" || name.ends_with("_total"),
            "counter {name} must end in _total"
        );
        let mut all = self.lock();
        let m = all.entry(name.to_string()).or_insert_with(|| Metric {
            help,
            kind: Kind::of(kind, buckets),
        });
        debug_assert_eq!(m.kind.name(), kind, "metric {name} described as a {kind}");
        m.help = help;
    }

    pub fn inc(&self, name: &str, labels: &[(&str, &str)]) {
        self.add(name, labels, 1.0);
    }

    /// Adds `v` (not negative) to a counter, whose name ends in `_total`.
    pub fn add(&self, name: &str, l: &[(&str, &str)], v: f64) {
        debug_assert!(v >= 0.0, "counter {name} decreased by {v}");
        debug_assert!(name.ends_with("_total"), "counter {name} must end in _total");
        self.with(name, "counter", |k| {
            if let Kind::Counter(f) = k {
                f.get_or_create(&labels(l)).inc_by(v);
            }
        });
    }

    pub fn set(&self, name: &str, l: &[(&str, &str)], v: f64) {
        self.with(name, "gauge", |k| {
            if let Kind::Gauge(f) = k {
                f.get_or_create(&labels(l)).set(v);
            }
        });
    }

    /// Replaces every series of gauge `name` with `series`, at once: for label sets
    /// that come and go (the rings of the active rollout), so none outlives its subject.
    pub fn set_all(&self, name: &str, series: &[(Vec<(&str, &str)>, f64)]) {
        self.with(name, "gauge", |k| {
            if let Kind::Gauge(f) = k {
                f.clear();
                for (l, v) in series {
                    f.get_or_create(&labels(l)).set(*v);
                }
            }
        });
    }

    /// Records one observation of histogram `name`.
    pub fn observe(&self, name: &str, l: &[(&str, &str)], v: f64) {
        self.with(name, "histogram", |k| {
            if let Kind::Histogram(f) = k {
                f.get_or_create(&labels(l)).observe(v);
            }
        });
    }

    /// A series' value (0 when there is none): a counter's, a gauge's, or a histogram's
    /// `_sum` or `_count` asked by those names.
    pub fn get(&self, name: &str, l: &[(&str, &str)]) -> f64 {
        let all = self.lock();
        let l = labels(l);
        if let Some(m) = all.get(name) {
            return match &m.kind {
                Kind::Counter(f) => f.get(&l).map_or(0.0, |c| c.get()),
                Kind::Gauge(f) => f.get(&l).map_or(0.0, |g| g.get()),
                Kind::Histogram(_) => 0.0,
            };
        }
        let histogram = |suffix: &str| match name.strip_suffix(suffix).and_then(|n| all.get(n)) {
            Some(Metric {
                kind: Kind::Histogram(f),
                ..
            }) => f.get(&l),
            _ => None,
        };
        if let Some(h) = histogram("_sum") {
            h.sum()
        } else if let Some(h) = histogram("_count") {
            h.count() as f64
        } else {
            0.0
        }
    }

    /// The text exposition format ([`CONTENT_TYPE`]). A metric without a series yet (a
    /// failure counter before the first failure) is left out, help and type included.
    pub fn render(&self) -> String {
        let all = self.lock();
        let mut registry = Registry::default();
        for (name, m) in all.iter() {
            // The crate ends every help text with a period of its own.
            let help = m.help.strip_suffix('.').unwrap_or(m.help);
            match &m.kind {
                Kind::Counter(f) => {
                    let base = name.strip_suffix("_total").unwrap_or(name);
                    registry.register(base, help, f.clone());
                }
                Kind::Gauge(f) => registry.register(name, help, f.clone()),
                Kind::Histogram(f) => registry.register(name, help, f.clone()),
            }
        }
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_text::encode(&mut out, &registry);
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
        assert!(
            text.contains("# HELP ringmaster_steps_total Steps by result.\n"),
            "{text}"
        );
        assert!(text.contains("# TYPE ringmaster_steps_total counter"), "{text}");
        assert!(text.contains("ringmaster_steps_total{result=\"started\"} 2"), "{text}");
        assert!(text.contains("ringmaster_rollouts{state=\"running\"} 1"), "{text}");
        assert!(!text.contains("_total_total"), "{text}");
        assert_eq!(m.get("ringmaster_steps_total", &[("result", "started")]), 2.0);
    }

    /// Help given after the first use still shows; labels in any order are one series.
    #[test]
    fn describe_after_use_and_label_order() {
        let m = Metrics::default();
        m.inc("ringmaster_api_requests_total", &[("route", "/a"), ("method", "GET")]);
        m.inc("ringmaster_api_requests_total", &[("method", "GET"), ("route", "/a")]);
        m.describe("ringmaster_api_requests_total", "counter", "API requests.");
        let text = m.render();
        assert!(
            text.contains("# HELP ringmaster_api_requests_total API requests.\n"),
            "{text}"
        );
        assert!(
            text.contains("ringmaster_api_requests_total{method=\"GET\",route=\"/a\"} 2"),
            "{text}"
        );
    }

    #[test]
    fn histograms_have_buckets_and_read_back_sum_and_count() {
        let m = Metrics::default();
        m.describe_histogram("ringmaster_step_duration_seconds", "Step time.", &[60.0, 600.0]);
        m.observe("ringmaster_step_duration_seconds", &[("kind", "nodeImage")], 30.0);
        m.observe("ringmaster_step_duration_seconds", &[("kind", "nodeImage")], 300.0);
        let text = m.render();
        assert!(
            text.contains("# TYPE ringmaster_step_duration_seconds histogram"),
            "{text}"
        );
        for line in [
            "ringmaster_step_duration_seconds_bucket{kind=\"nodeImage\",le=\"60\"} 1",
            "ringmaster_step_duration_seconds_bucket{kind=\"nodeImage\",le=\"600\"} 2",
            "ringmaster_step_duration_seconds_bucket{kind=\"nodeImage\",le=\"+Inf\"} 2",
            "ringmaster_step_duration_seconds_sum{kind=\"nodeImage\"} 330",
            "ringmaster_step_duration_seconds_count{kind=\"nodeImage\"} 2",
        ] {
            assert!(text.contains(line), "{line} in\n{text}");
        }
        let k = [("kind", "nodeImage")];
        assert_eq!(m.get("ringmaster_step_duration_seconds_sum", &k), 330.0);
        assert_eq!(m.get("ringmaster_step_duration_seconds_count", &k), 2.0);
        assert_eq!(m.get("ringmaster_step_duration_seconds_count", &[]), 0.0);
    }

    #[test]
    fn set_all_replaces_every_series() {
        let m = Metrics::default();
        m.set_all("ringmaster_clusters", &[(vec![("ring", "dev")], 3.0)]);
        m.set_all("ringmaster_clusters", &[(vec![("ring", "prod")], 5.0)]);
        let text = m.render();
        assert!(text.contains("ringmaster_clusters{ring=\"prod\"} 5"), "{text}");
        assert!(!text.contains("dev"), "{text}");
    }

    /// Help text that needs escaping, and label values that do, stay one line each.
    #[test]
    fn escapes() {
        let m = Metrics::default();
        m.describe("ringmaster_x", "gauge", "a \\ b\nc.");
        m.set("ringmaster_x", &[("v", "q\"\n\\")], 1.0);
        let text = m.render();
        assert!(text.contains("# HELP ringmaster_x a \\\\ b\\nc.\n"), "{text}");
        assert!(text.contains("ringmaster_x{v=\"q\\\"\\n\\\\\"} 1"), "{text}");
    }
}
