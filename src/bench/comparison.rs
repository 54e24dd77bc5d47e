//! The result of a strategy benchmark: figures per strategy, side by side.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::model::config::ExecutorConfig;

/// One measured run of a contender.
///
/// Durations serialise as whole nanoseconds, in fields ending in `_ns`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Sample {
    /// When the run started, from the start of the benchmark's first run
    /// (warm-ups included), so samples of every contender share one clock.
    #[serde(rename = "start_ns", with = "nanos")]
    pub start: Duration,
    /// Wall time of the run.
    #[serde(rename = "wall_ns", with = "nanos")]
    pub wall: Duration,
    /// CPU time the whole process used during the run, every thread
    /// included, from the process CPU clock; `None` where the platform does
    /// not give it.
    #[serde(rename = "cpu_ns", with = "opt_nanos")]
    pub cpu: Option<Duration>,
}

impl Sample {
    /// A sample of a run that started at `start` and took `wall`.
    #[must_use]
    pub fn new(start: Duration, wall: Duration, cpu: Option<Duration>) -> Self {
        Self { start, wall, cpu }
    }
}

/// One contender's measured runs, before they are summarised.
#[derive(Debug)]
pub(crate) struct Row {
    pub(crate) name: String,
    pub(crate) config: Option<ExecutorConfig>,
    pub(crate) baseline: bool,
    pub(crate) threads: Option<usize>,
    pub(crate) samples: Vec<Sample>,
}

/// How one strategy (or a baseline) did over the measured runs.
///
/// Durations serialise as whole nanoseconds, in fields ending in `_ns`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StrategyResult {
    /// The contender's name: its config as text, `as configured` for the
    /// pipeline as the user set it up, or the baseline's name. The JSON
    /// field is `strategy`, as the CSV column is (`name` is read too).
    #[serde(rename = "strategy", alias = "name")]
    pub name: String,
    /// The config every task ran on; `None` for the pipeline as configured
    /// and for baselines.
    pub config: Option<ExecutorConfig>,
    /// Whether this row is a baseline.
    pub baseline: bool,
    /// How many threads the contender runs tasks on at once, when that is
    /// known: 1 for inline, N for `pool(N)`, rayon's count for the global
    /// pool, the machine's for thread-per-task, the registered pool's for a
    /// named one, the declared count for a baseline; `None` for custom
    /// executors and for a pipeline whose tasks do not all share one count.
    /// Overheads are computed only against a baseline of the same count.
    pub threads: Option<usize>,
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
    /// Median CPU time of the whole process per run, every thread included,
    /// from the process CPU clock (sub-microsecond resolution); `None` where
    /// the platform does not give it. Above the median wall time when
    /// several threads work, or spin while they wait for work.
    #[serde(rename = "cpu_ns", with = "opt_nanos")]
    pub cpu: Option<Duration>,
    /// The median divided by the pipeline's task count.
    #[serde(rename = "per_task_ns", with = "nanos")]
    pub per_task: Duration,
    /// The baseline this row's overheads are computed against: the first
    /// baseline with the same [`threads`](Self::threads); `None` when there
    /// is none.
    pub compared_with: Option<String>,
    /// What each task costs beyond [`compared_with`](Self::compared_with),
    /// in nanoseconds: (this median − that baseline's median) ÷ task count.
    /// Negative when the strategy beats the baseline.
    pub overhead_per_task_ns: Option<f64>,
    /// The median divided by the fastest median of the comparison, baselines
    /// included: 1.0 for the fastest.
    pub ratio_to_fastest: f64,
    /// This median ÷ the median of [`compared_with`](Self::compared_with).
    pub ratio_to_baseline: Option<f64>,
    /// Every measured run, in the order they ran.
    pub samples: Vec<Sample>,
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
    /// baselines in the order they were given.
    pub results: Vec<StrategyResult>,
}

impl Comparison {
    /// The header line of [`to_csv`](Self::to_csv), without a line end.
    ///
    /// The columns: `benchmark`; `strategy` (the row's name); `baseline`
    /// (`true` for a baseline row); `threads` (how many threads the row runs
    /// tasks on at once, empty when unknown); `tasks` and `runs`; `min_ns`,
    /// `median_ns`, `max_ns` (wall time per run); `cpu_ns` (median process
    /// CPU time per run); `per_task_ns` (median ÷ tasks); `compared_with`
    /// (the baseline with the same `threads`, empty when none);
    /// `overhead_per_task_ns` ((median − that baseline's median) ÷ tasks);
    /// `ratio_to_fastest`; `ratio_to_baseline` (median ÷ that baseline's
    /// median); `wall_samples_ns` and `cpu_samples_ns` (every measured run,
    /// in run order, separated by `;`).
    pub const CSV_HEADER: &'static str = "benchmark,strategy,baseline,threads,tasks,runs,min_ns,median_ns,max_ns,\
         cpu_ns,per_task_ns,compared_with,overhead_per_task_ns,ratio_to_fastest,ratio_to_baseline,\
         wall_samples_ns,cpu_samples_ns";

    pub(crate) fn from_rows(
        benchmark: String,
        tasks: usize,
        warmups: usize,
        runs: usize,
        rows: Vec<Row>,
    ) -> Self {
        let mut results: Vec<StrategyResult> = rows
            .into_iter()
            .map(|row| {
                let mut walls: Vec<Duration> = row.samples.iter().map(|s| s.wall).collect();
                walls.sort_unstable();
                let cpus: Option<Vec<Duration>> = row.samples.iter().map(|s| s.cpu).collect();
                let cpu = cpus.filter(|c| !c.is_empty()).map(|mut c| {
                    c.sort_unstable();
                    median(&c)
                });
                let median = median(&walls);
                StrategyResult {
                    name: row.name,
                    config: row.config,
                    baseline: row.baseline,
                    threads: row.threads,
                    runs: walls.len(),
                    min: walls.first().copied().unwrap_or_default(),
                    median,
                    max: walls.last().copied().unwrap_or_default(),
                    cpu,
                    per_task: median / u32::try_from(tasks.max(1)).unwrap_or(u32::MAX),
                    compared_with: None,
                    overhead_per_task_ns: None,
                    ratio_to_fastest: 1.0,
                    ratio_to_baseline: None,
                    samples: row.samples,
                }
            })
            .collect();
        let fastest = results.iter().map(|r| r.median).min().unwrap_or_default();
        // A serial strategy against a parallel baseline (or the reverse)
        // would mix the cost of the layer with the gain of the threads, so
        // each row is compared only with a baseline of its own parallelism.
        let bases: Vec<(String, usize, Duration)> = results
            .iter()
            .filter(|r| r.baseline)
            .filter_map(|r| Some((r.name.clone(), r.threads?, r.median)))
            .collect();
        for r in &mut results {
            r.ratio_to_fastest = ratio(r.median, fastest);
            let Some((name, _, base)) = bases.iter().find(|(_, t, _)| Some(*t) == r.threads) else {
                continue;
            };
            r.compared_with = Some(name.clone());
            r.ratio_to_baseline = Some(ratio(r.median, *base));
            let diff = r.median.as_secs_f64() - base.as_secs_f64();
            #[allow(clippy::cast_precision_loss)] // task counts are far below 2^52
            let per_task = diff * 1e9 / tasks.max(1) as f64;
            r.overhead_per_task_ns = Some(per_task);
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

    /// The first baseline's row, if the benchmark had one.
    #[must_use]
    pub fn baseline(&self) -> Option<&StrategyResult> {
        self.results.iter().find(|r| r.baseline)
    }

    /// The baseline a row's overheads are computed against: the first
    /// baseline with as many threads as the row.
    #[must_use]
    pub fn baseline_for(&self, row: &StrategyResult) -> Option<&StrategyResult> {
        let name = row.compared_with.as_deref()?;
        self.results.iter().find(|r| r.baseline && r.name == name)
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
        let join = |values: &mut dyn Iterator<Item = Option<Duration>>| -> String {
            let all: Option<Vec<String>> = values.map(|v| v.map(|d| d.as_nanos().to_string())).collect();
            all.map(|v| v.join(";")).unwrap_or_default()
        };
        for r in &self.results {
            // Writing to a String cannot fail.
            let _ = writeln!(
                out,
                "{},{},{},{},{},{},{},{},{},{},{},{},{},{:.4},{},{},{}",
                csv_field(&self.benchmark),
                csv_field(&r.name),
                r.baseline,
                opt(r.threads.map(|t| t.to_string())),
                self.tasks,
                r.runs,
                r.min.as_nanos(),
                r.median.as_nanos(),
                r.max.as_nanos(),
                opt(r.cpu.map(|c| c.as_nanos().to_string())),
                r.per_task.as_nanos(),
                r.compared_with.as_deref().map(csv_field).unwrap_or_default(),
                opt(r.overhead_per_task_ns.map(|o| format!("{o:.1}"))),
                r.ratio_to_fastest,
                opt(r.ratio_to_baseline.map(|b| format!("{b:.4}"))),
                join(&mut r.samples.iter().map(|s| Some(s.wall))),
                join(&mut r.samples.iter().map(|s| s.cpu)),
            );
        }
        out
    }
}

impl fmt::Display for Comparison {
    /// A table, one row per contender, baselines starred, then what the
    /// overhead columns mean.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{}: {} tasks, {} runs after {} warm-ups",
            self.benchmark, self.tasks, self.runs, self.warmups
        )?;
        let width = self
            .results
            .iter()
            .map(|r| r.name.len() + 2)
            .max()
            .unwrap_or(8)
            .max(8);
        writeln!(
            f,
            "  {:<width$} {:>7} {:>9} {:>9} {:>9} {:>9} {:>9} {:>10} {:>7} {:>8} {:<10}",
            "strategy",
            "threads",
            "min",
            "median",
            "max",
            "cpu/run",
            "per task",
            "+/task",
            "vs base",
            "vs best",
            "base",
        )?;
        for r in &self.results {
            let name = if r.baseline {
                format!("{}*", r.name)
            } else {
                r.name.clone()
            };
            writeln!(
                f,
                "  {:<width$} {:>7} {:>9} {:>9} {:>9} {:>9} {:>9} {:>10} {:>7} {:>7.2}x {:<10}",
                name,
                r.threads.map_or_else(|| "?".to_owned(), |t| t.to_string()),
                human(r.min),
                human(r.median),
                human(r.max),
                r.cpu.map_or_else(|| "-".to_owned(), human),
                human(r.per_task),
                r.overhead_per_task_ns
                    .map_or_else(|| "-".to_owned(), |o| format!("{}{}", sign(o), human_ns(o.abs()))),
                r.ratio_to_baseline
                    .map_or_else(|| "-".to_owned(), |b| format!("{b:.2}x")),
                r.ratio_to_fastest,
                truncate(r.compared_with.as_deref().unwrap_or("-"), 10),
            )?;
        }
        writeln!(
            f,
            "  +/task = (median - median of `base`) / tasks; vs base = median / median of `base`; \
             `base` is the baseline (*) on the same number of threads, `-` when there is none"
        )
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

    fn row(
        name: &str,
        config: Option<ExecutorConfig>,
        threads: Option<usize>,
        walls: &[u64],
        cpu: Option<u64>,
    ) -> Row {
        Row {
            name: name.into(),
            baseline: config.is_none(),
            config,
            threads,
            samples: walls
                .iter()
                .enumerate()
                .map(|(i, &w)| Sample::new(ms(100 * i as u64), ms(w), cpu.map(|c| ms(c + i as u64))))
                .collect(),
        }
    }

    fn comparison() -> Comparison {
        Comparison::from_rows(
            "w, \"quoted\"".into(),
            10,
            1,
            4,
            vec![
                row(
                    "inline",
                    Some(ExecutorConfig::Inline),
                    Some(1),
                    &[9, 7, 8, 30],
                    Some(5),
                ),
                row(
                    "pool(2)",
                    Some(ExecutorConfig::pool(2)),
                    Some(2),
                    &[4, 5, 3, 6],
                    None,
                ),
                row(
                    "custom(x)",
                    Some(ExecutorConfig::custom("x")),
                    None,
                    &[4, 5, 3, 6],
                    None,
                ),
                row("rayon", None, Some(2), &[5, 5, 5, 5], Some(10)),
                row("loop", None, Some(1), &[6, 6, 6, 6], Some(6)),
            ],
        )
    }

    #[test]
    fn figures_and_ratios_against_the_baseline_of_the_same_parallelism() {
        let c = comparison();
        let inline = c.result("inline").unwrap();
        assert_eq!(
            (inline.min, inline.median, inline.max),
            (ms(7), Duration::from_micros(8500), ms(30))
        );
        assert_eq!(
            inline.cpu,
            Some(Duration::from_micros(6500)),
            "the median of 5, 6, 7, 8 ms"
        );
        assert_eq!(inline.per_task, Duration::from_micros(850));
        assert_eq!(
            inline.compared_with.as_deref(),
            Some("loop"),
            "serial against serial"
        );
        assert!((inline.ratio_to_baseline.unwrap() - 8.5 / 6.0).abs() < 1e-9);
        assert!((inline.overhead_per_task_ns.unwrap() - 250_000.0).abs() < 1e-3);
        let pool = c.result("pool(2)").unwrap();
        assert_eq!(pool.compared_with.as_deref(), Some("rayon"));
        assert_eq!(pool.cpu, None, "no readings, no figure");
        assert_eq!(c.fastest().unwrap().name, "pool(2)");
        assert_eq!(pool.ratio_to_fastest, 1.0);
        assert!(pool.overhead_per_task_ns.unwrap() < 0.0);
        let custom = c.result("custom(x)").unwrap();
        assert_eq!(
            (
                custom.compared_with.as_ref(),
                custom.overhead_per_task_ns,
                custom.ratio_to_baseline
            ),
            (None, None, None),
            "no baseline has an unknown parallelism"
        );
        assert_eq!(c.baseline().unwrap().name, "rayon");
        assert_eq!(c.baseline().unwrap().ratio_to_baseline, Some(1.0));
        assert_eq!(c.baseline_for(inline).unwrap().name, "loop");
        assert_eq!(inline.samples.len(), 4);
        assert_eq!(inline.samples[3].wall, ms(30), "samples stay in run order");
    }

    #[test]
    fn json_round_trips_and_csv_quotes_and_keeps_samples() {
        let c = comparison();
        let back: Comparison = serde_json::from_str(&c.to_json()).unwrap();
        assert_eq!(back, c);
        let v: serde_json::Value = serde_json::from_str(&c.to_json()).unwrap();
        assert_eq!(v["results"][0]["median_ns"], 8_500_000);
        assert_eq!(v["results"][0]["samples"][1]["wall_ns"], 7_000_000);
        assert_eq!(v["results"][0]["samples"][1]["start_ns"], 100_000_000);
        assert!(v["results"][1]["cpu_ns"].is_null());
        let csv = c.to_csv();
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines[0], Comparison::CSV_HEADER);
        assert_eq!(lines.len(), 6);
        let columns = Comparison::CSV_HEADER.split(',').count();
        assert!(lines[1].starts_with("\"w, \"\"quoted\"\"\",inline,false,1,10,4,7000000,8500000,"));
        assert!(lines[1].ends_with(",loop,250000.0,1.8889,1.4167,9000000;7000000;8000000;30000000,5000000;6000000;7000000;8000000"), "{}", lines[1]);
        assert!(
            lines[2].contains(",,"),
            "missing cpu is an empty field: {}",
            lines[2]
        );
        for line in &lines[1..] {
            let rest = line.trim_start_matches("\"w, \"\"quoted\"\"\"");
            assert_eq!(rest.split(',').count(), columns, "{line}");
        }
    }

    #[test]
    fn table_names_every_row_and_defines_the_overheads() {
        let table = comparison().to_string();
        assert!(table.contains("rayon*"));
        assert!(table.contains("8.50 ms"));
        assert!(table.contains("1.42x"));
        assert!(table.contains("+/task = (median - median of `base`) / tasks"));
        assert_eq!(table.lines().count(), 8);
        assert_eq!(human(Duration::from_nanos(1234)), "1.23 µs");
        assert_eq!(human_ns(123_456.0), "123 µs");
    }
}
