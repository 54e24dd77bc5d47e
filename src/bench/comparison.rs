//! The result of a strategy benchmark: figures per strategy, side by side.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::model::config::ExecutorConfig;

/// The wall and CPU times of one contender's measured runs.
#[derive(Debug)]
pub(crate) struct Samples {
    walls: Vec<Duration>,
    cpu: Option<Duration>,
}

impl Samples {
    pub(crate) fn new(runs: usize) -> Self {
        Self {
            walls: Vec::with_capacity(runs),
            cpu: Some(Duration::ZERO),
        }
    }

    pub(crate) fn push(&mut self, wall: Duration, cpu: Option<Duration>) {
        self.walls.push(wall);
        self.cpu = self.cpu.zip(cpu).map(|(a, b)| a + b);
    }
}

/// How one strategy (or the baseline) did over the measured runs.
///
/// Durations serialise as whole nanoseconds, in fields ending in `_ns`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StrategyResult {
    /// The strategy's name: its config as text, or the baseline's name.
    pub name: String,
    /// The config every task ran on; `None` for the baseline.
    pub config: Option<ExecutorConfig>,
    /// Whether this row is the baseline.
    pub baseline: bool,
    /// Measured runs.
    pub runs: usize,
    /// Fastest run.
    #[serde(rename = "min_ns", with = "nanos")]
    pub min: Duration,
    /// Median run.
    #[serde(rename = "median_ns", with = "nanos")]
    pub median: Duration,
    /// Slowest run.
    #[serde(rename = "max_ns", with = "nanos")]
    pub max: Duration,
    /// Mean CPU time of the whole process per run, every thread included;
    /// `None` where the platform does not tell (only Linux does). Above the
    /// median when threads spin while waiting for work.
    #[serde(rename = "cpu_ns", with = "opt_nanos")]
    pub cpu: Option<Duration>,
    /// The median divided by the pipeline's task count.
    #[serde(rename = "per_task_ns", with = "nanos")]
    pub per_task: Duration,
    /// What each task costs beyond the baseline, in nanoseconds: the
    /// difference of the medians divided by the task count. Negative when
    /// the strategy beats the baseline; `None` without a baseline.
    pub overhead_per_task_ns: Option<f64>,
    /// The median divided by the fastest median of the comparison, baseline
    /// included: 1.0 for the fastest.
    pub ratio_to_fastest: f64,
    /// The median divided by the baseline's median; `None` without a
    /// baseline.
    pub ratio_to_baseline: Option<f64>,
}

/// Strategies compared on one pipeline; made by
/// [`StrategyBenchmark::run`](crate::bench::StrategyBenchmark::run).
///
/// `Display` prints a table; [`to_json`](Self::to_json) and
/// [`to_csv`](Self::to_csv) give the same figures for other tools.
///
/// ```
/// use conveyor::{ExecutorConfig, Pipeline, Task};
/// use conveyor::bench::StrategyBenchmark;
/// let p: Pipeline<u8> = Pipeline::builder("p").step([Task::from_fn("a", |c| Ok(*c.input()))]).build()?;
/// let c = StrategyBenchmark::new("one", &p, 1)
///     .strategies([ExecutorConfig::Inline, ExecutorConfig::Global])
///     .runs(3)
///     .run()?;
/// assert_eq!(c.fastest().unwrap().ratio_to_fastest, 1.0);
/// let json: serde_json::Value = serde_json::from_str(&c.to_json())?;
/// assert_eq!(json["results"].as_array().unwrap().len(), 2);
/// assert_eq!(c.to_csv().lines().count(), 3);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Comparison {
    /// The benchmark's name.
    pub benchmark: String,
    /// Tasks in one run of the pipeline.
    pub tasks: usize,
    /// Warm-up runs per contender, not measured.
    pub warmups: usize,
    /// Measured runs per contender.
    pub runs: usize,
    /// One row per strategy in the order they were given, then the
    /// baseline, if any.
    pub results: Vec<StrategyResult>,
}

impl Comparison {
    /// The header line of [`to_csv`](Self::to_csv), without a line end.
    pub const CSV_HEADER: &'static str = "benchmark,strategy,baseline,tasks,runs,min_ns,median_ns,max_ns,\
         cpu_ns,per_task_ns,overhead_per_task_ns,ratio_to_fastest,ratio_to_baseline";

    pub(crate) fn from_samples(
        benchmark: String,
        tasks: usize,
        warmups: usize,
        runs: usize,
        rows: Vec<(String, Option<ExecutorConfig>, Samples)>,
        has_baseline: bool,
    ) -> Self {
        let per_run = |d: Duration, n: usize| d / u32::try_from(n.max(1)).unwrap_or(u32::MAX);
        let mut results: Vec<StrategyResult> = rows
            .into_iter()
            .map(|(name, config, mut s)| {
                s.walls.sort_unstable();
                let median = median(&s.walls);
                StrategyResult {
                    baseline: config.is_none() && has_baseline,
                    name,
                    config,
                    runs: s.walls.len(),
                    min: s.walls.first().copied().unwrap_or_default(),
                    median,
                    max: s.walls.last().copied().unwrap_or_default(),
                    cpu: s.cpu.map(|c| per_run(c, s.walls.len())),
                    per_task: per_run(median, tasks),
                    overhead_per_task_ns: None,
                    ratio_to_fastest: 1.0,
                    ratio_to_baseline: None,
                }
            })
            .collect();
        let fastest = results.iter().map(|r| r.median).min().unwrap_or_default();
        let base = results.iter().find(|r| r.baseline).map(|r| r.median);
        for r in &mut results {
            r.ratio_to_fastest = ratio(r.median, fastest);
            if let Some(base) = base {
                r.ratio_to_baseline = Some(ratio(r.median, base));
                let diff = r.median.as_secs_f64() - base.as_secs_f64();
                #[allow(clippy::cast_precision_loss)] // task counts are far below 2^52
                let per_task = diff * 1e9 / tasks.max(1) as f64;
                r.overhead_per_task_ns = Some(per_task);
            }
        }
        Self {
            benchmark,
            tasks,
            warmups,
            runs,
            results,
        }
    }

    /// The row with the smallest median, baseline included.
    #[must_use]
    pub fn fastest(&self) -> Option<&StrategyResult> {
        self.results.iter().min_by_key(|r| r.median)
    }

    /// The baseline's row, if the benchmark had one.
    #[must_use]
    pub fn baseline(&self) -> Option<&StrategyResult> {
        self.results.iter().find(|r| r.baseline)
    }

    /// The row named `name` (a config as text, such as `"pool(4)"`, or the
    /// baseline's name).
    #[must_use]
    pub fn result(&self, name: &str) -> Option<&StrategyResult> {
        self.results.iter().find(|r| r.name == name)
    }

    /// The comparison as pretty-printed JSON; it deserialises back into a
    /// `Comparison`.
    ///
    /// # Panics
    /// Never: a comparison is plain data with string keys, which JSON can
    /// always hold.
    #[must_use]
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a comparison always serialises")
    }

    /// The comparison as CSV: [`CSV_HEADER`](Self::CSV_HEADER), then one
    /// line per row, durations in nanoseconds, missing figures empty.
    #[must_use]
    pub fn to_csv(&self) -> String {
        let mut out = String::with_capacity(128 * (self.results.len() + 1));
        out.push_str(Self::CSV_HEADER);
        out.push('\n');
        out.push_str(&self.csv_rows());
        out
    }

    /// The lines of [`to_csv`](Self::to_csv) without the header, so that
    /// several comparisons can share one file.
    #[must_use]
    pub fn csv_rows(&self) -> String {
        use fmt::Write as _;
        let mut out = String::new();
        let opt = |v: Option<String>| v.unwrap_or_default();
        for r in &self.results {
            // Writing to a String cannot fail.
            let _ = writeln!(
                out,
                "{},{},{},{},{},{},{},{},{},{},{},{:.4},{}",
                csv_field(&self.benchmark),
                csv_field(&r.name),
                r.baseline,
                self.tasks,
                r.runs,
                r.min.as_nanos(),
                r.median.as_nanos(),
                r.max.as_nanos(),
                opt(r.cpu.map(|c| c.as_nanos().to_string())),
                r.per_task.as_nanos(),
                opt(r.overhead_per_task_ns.map(|o| format!("{o:.1}"))),
                r.ratio_to_fastest,
                opt(r.ratio_to_baseline.map(|b| format!("{b:.4}"))),
            );
        }
        out
    }
}

impl fmt::Display for Comparison {
    /// A table, one row per strategy; the baseline's row is starred.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{}: {} tasks, {} runs after {} warm-ups",
            self.benchmark, self.tasks, self.runs, self.warmups
        )?;
        let base = self.baseline().map(|b| b.name.as_str());
        let width = self
            .results
            .iter()
            .map(|r| r.name.len() + 2)
            .max()
            .unwrap_or(8)
            .max(8);
        writeln!(
            f,
            "  {:<width$} {:>9} {:>9} {:>9} {:>9} {:>9} {:>10} {:>8} {:>9}",
            "strategy",
            "min",
            "median",
            "max",
            "cpu/run",
            "per task",
            "+/task",
            "vs best",
            format!("vs {}", truncate(base.unwrap_or("base"), 6)),
        )?;
        for r in &self.results {
            let name = if r.baseline {
                format!("{}*", r.name)
            } else {
                r.name.clone()
            };
            writeln!(
                f,
                "  {:<width$} {:>9} {:>9} {:>9} {:>9} {:>9} {:>10} {:>7.2}x {:>9}",
                name,
                human(r.min),
                human(r.median),
                human(r.max),
                r.cpu.map_or_else(|| "-".to_owned(), human),
                human(r.per_task),
                r.overhead_per_task_ns
                    .map_or_else(|| "-".to_owned(), |o| format!("{}{}", sign(o), human_ns(o.abs()))),
                r.ratio_to_fastest,
                r.ratio_to_baseline
                    .map_or_else(|| "-".to_owned(), |b| format!("{b:.2}x")),
            )?;
        }
        Ok(())
    }
}

fn median(sorted: &[Duration]) -> Duration {
    match sorted.len() {
        0 => Duration::ZERO,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2,
    }
}

fn ratio(a: Duration, b: Duration) -> f64 {
    if b.is_zero() {
        if a.is_zero() { 1.0 } else { f64::INFINITY }
    } else {
        a.as_secs_f64() / b.as_secs_f64()
    }
}

fn sign(x: f64) -> &'static str {
    if x < 0.0 { "-" } else { "+" }
}

fn truncate(s: &str, n: usize) -> &str {
    s.char_indices().nth(n).map_or(s, |(i, _)| &s[..i])
}

/// A duration with three significant digits in a fitting unit.
pub(crate) fn human(d: Duration) -> String {
    human_ns(d.as_secs_f64() * 1e9)
}

fn human_ns(ns: f64) -> String {
    let (value, unit) = if ns < 1e3 {
        (ns, "ns")
    } else if ns < 1e6 {
        (ns / 1e3, "µs")
    } else if ns < 1e9 {
        (ns / 1e6, "ms")
    } else {
        (ns / 1e9, "s")
    };
    let decimals = if value < 10.0 {
        2
    } else if value < 100.0 {
        1
    } else {
        0
    };
    format!("{value:.decimals$} {unit}")
}

/// Quotes a field that holds a separator, a quote or a line end.
fn csv_field(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\"")).into()
    } else {
        s.into()
    }
}

mod nanos {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_nanos)
    }
}

mod opt_nanos {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    #[allow(clippy::ref_option)] // serde's `with` hands over a reference
    pub(super) fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => super::nanos::serialize(d, s),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Option::<u64>::deserialize(d).map(|n| n.map(Duration::from_nanos))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn samples(walls: &[u64], cpu: Option<u64>) -> Samples {
        let mut s = Samples::new(walls.len());
        for &w in walls {
            s.push(ms(w), cpu.map(ms));
        }
        s
    }

    fn comparison() -> Comparison {
        Comparison::from_samples(
            "w, \"quoted\"".into(),
            10,
            1,
            4,
            vec![
                (
                    "inline".into(),
                    Some(ExecutorConfig::Inline),
                    samples(&[9, 7, 8, 30], Some(5)),
                ),
                (
                    "pool(2)".into(),
                    Some(ExecutorConfig::pool(2)),
                    samples(&[4, 5, 3, 6], None),
                ),
                ("rayon".into(), None, samples(&[5, 5, 5, 5], Some(10))),
            ],
            true,
        )
    }

    #[test]
    fn figures_and_ratios() {
        let c = comparison();
        let inline = c.result("inline").unwrap();
        assert_eq!(
            (inline.min, inline.median, inline.max),
            (ms(7), Duration::from_micros(8500), ms(30))
        );
        assert_eq!(inline.cpu, Some(ms(5)));
        assert_eq!(inline.per_task, Duration::from_micros(850));
        assert!((inline.ratio_to_baseline.unwrap() - 1.7).abs() < 1e-9);
        assert!((inline.overhead_per_task_ns.unwrap() - 350_000.0).abs() < 1e-3);
        let pool = c.result("pool(2)").unwrap();
        assert_eq!(pool.cpu, None, "one missing reading spoils the sum");
        assert_eq!(c.fastest().unwrap().name, "pool(2)");
        assert_eq!(pool.ratio_to_fastest, 1.0);
        assert!(pool.overhead_per_task_ns.unwrap() < 0.0);
        assert_eq!(c.baseline().unwrap().name, "rayon");
        assert_eq!(c.baseline().unwrap().ratio_to_baseline, Some(1.0));
    }

    #[test]
    fn json_round_trips_and_csv_quotes() {
        let c = comparison();
        let back: Comparison = serde_json::from_str(&c.to_json()).unwrap();
        assert_eq!(back, c);
        let v: serde_json::Value = serde_json::from_str(&c.to_json()).unwrap();
        assert_eq!(v["results"][0]["median_ns"], 8_500_000);
        assert!(v["results"][1]["cpu_ns"].is_null());
        let csv = c.to_csv();
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines[0], Comparison::CSV_HEADER);
        assert_eq!(lines.len(), 4);
        assert!(lines[1].starts_with("\"w, \"\"quoted\"\"\",inline,false,10,4,7000000,8500000,"));
        assert!(
            lines[2].contains(",,"),
            "missing cpu is an empty field: {}",
            lines[2]
        );
    }

    #[test]
    fn table_names_every_row() {
        let table = comparison().to_string();
        assert!(table.contains("rayon*"));
        assert!(table.contains("8.50 ms"));
        assert!(table.contains("1.70x"));
        assert_eq!(table.lines().count(), 5);
        assert_eq!(human(Duration::from_nanos(1234)), "1.23 µs");
        assert_eq!(human_ns(123_456.0), "123 µs");
    }
}
