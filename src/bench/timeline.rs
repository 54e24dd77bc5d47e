//! Which task ran on which thread when, drawn as a Gantt chart.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::bench::comparison::human;
use crate::facade::run::Run;

/// One task's run on the timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Bar {
    /// The step the task belongs to.
    pub step: Arc<str>,
    /// The task's name.
    pub task: Arc<str>,
    /// The thread that ran it (see [`TaskMetrics::thread`](crate::TaskMetrics::thread)).
    pub thread: u64,
    /// When it started, from the start of the run.
    pub started: Duration,
    /// When it ended, from the start of the run.
    pub finished: Duration,
    /// Whether it ended with a value.
    pub succeeded: bool,
}

/// One step's run on the timeline: a coloured band from its start to its
/// end.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StepBand {
    /// The step's name.
    pub step: Arc<str>,
    /// When it started, from the start of the run.
    pub started: Duration,
    /// When it ended, from the start of the run.
    pub finished: Duration,
}

/// The tasks of one [`Run`] on a shared clock, one lane per thread, so that
/// idle threads and stragglers show.
///
/// ```
/// use conveyor::{ExecutorConfig, Pipeline, PipelineExecutor, Task};
/// use conveyor::bench::Timeline;
/// let p: Pipeline<u64> = Pipeline::builder("p")
///     .step([Task::from_fn("a", |c| Ok(*c.input())), Task::from_fn("b", |c| Ok(*c.input()))])
///     .build()?;
/// let run = PipelineExecutor::builder().build()?.execute(&p, 1)?;
/// let timeline = Timeline::from_run(&run).titled("two tasks on the global pool");
/// assert_eq!(timeline.bars().len(), 2);
/// assert_eq!(timeline.steps().len(), 1);
/// let svg = timeline.to_svg();
/// assert!(svg.starts_with("<svg") && svg.matches(r#"class="task""#).count() == 2);
/// assert!(svg.contains("two tasks on the global pool"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Timeline {
    #[serde(default)]
    pipeline: String,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    steps: Vec<StepBand>,
    bars: Vec<Bar>,
}

impl Timeline {
    /// The tasks of every step of `run`, in the order the steps ran and the
    /// tasks were declared. Tasks that never started are left out.
    #[must_use]
    pub fn from_run<T>(run: &Run<T>) -> Self {
        let steps = run
            .chain()
            .iter()
            .map(|context| StepBand {
                step: context.step().into(),
                started: context.metrics().started,
                finished: context.metrics().finished.max(context.metrics().started),
            })
            .collect();
        let bars = run
            .chain()
            .iter()
            .flat_map(|context| {
                let step: Arc<str> = context.step().into();
                context
                    .metrics()
                    .tasks
                    .iter()
                    .filter(|t| t.attempts > 0)
                    .map(move |t| Bar {
                        step: Arc::clone(&step),
                        task: Arc::clone(&t.task),
                        thread: t.thread,
                        started: t.started,
                        finished: t.finished.max(t.started),
                        succeeded: t.succeeded,
                    })
            })
            .collect();
        Self {
            pipeline: run.pipeline().to_owned(),
            title: None,
            steps,
            bars,
        }
    }

    /// Puts `title` at the head of the chart, before the figures it always
    /// shows (tasks, steps, span, threads), for example the workload and the
    /// strategy it ran on.
    ///
    /// Default: the pipeline's name.
    #[must_use]
    pub fn titled(mut self, title: impl Into<String>) -> Self {
        self.title = Some(title.into());
        self
    }

    /// The bars, one per task that ran.
    #[must_use]
    pub fn bars(&self) -> &[Bar] {
        &self.bars
    }

    /// The steps, in the order they ran.
    #[must_use]
    pub fn steps(&self) -> &[StepBand] {
        &self.steps
    }

    /// From the first start to the last end.
    #[must_use]
    pub fn span(&self) -> Duration {
        let first = self.bars.iter().map(|b| b.started).min().unwrap_or_default();
        let last = self.bars.iter().map(|b| b.finished).max().unwrap_or_default();
        last.saturating_sub(first)
    }

    /// Each thread that ran a task, with the time it spent in tasks, in the
    /// order of the threads' process-wide numbers.
    #[must_use]
    pub fn busy(&self) -> Vec<(u64, Duration)> {
        let mut lanes: BTreeMap<u64, Duration> = BTreeMap::new();
        for b in &self.bars {
            // A deserialised timeline may hold any times: a bar that ends
            // before it starts counts as empty, and sums saturate.
            let lane = lanes.entry(b.thread).or_default();
            *lane = lane.saturating_add(b.finished.saturating_sub(b.started));
        }
        lanes.into_iter().collect()
    }

    /// The threads that ran tasks, in the order they first started one:
    /// the chart's `thread 1`, `thread 2`, … are these, in this order.
    #[must_use]
    pub fn threads(&self) -> Vec<u64> {
        let mut first: BTreeMap<u64, Duration> = BTreeMap::new();
        for b in &self.bars {
            let at = first.entry(b.thread).or_insert(b.started);
            *at = (*at).min(b.started);
        }
        let mut order: Vec<(Duration, u64)> = first.into_iter().map(|(t, at)| (at, t)).collect();
        order.sort_unstable();
        order.into_iter().map(|(_, t)| t).collect()
    }

    /// An SVG Gantt chart that reads without hovering:
    /// - a title with the task, step and thread counts and the span;
    /// - a legend of the steps' colours;
    /// - a row of step bands, each step a coloured band from its start to
    ///   its end, shaded behind the lanes too;
    /// - one lane per thread, numbered from 1 in the order the threads
    ///   started work, labelled with the share of the span it was busy;
    /// - one `<rect class="task">` per task, coloured by step, outlined in
    ///   red when the task failed, with its name written in it where it
    ///   fits, and its name, step and times as a tooltip;
    /// - a time axis with ticks in a fitting unit (ns, µs, ms, s), counted
    ///   from the first task's start.
    #[must_use]
    pub fn to_svg(&self) -> String {
        const LABEL: f64 = 120.0;
        const PLOT: f64 = 900.0;
        const LANE: f64 = 20.0;
        const CHAR: f64 = 6.6; // width of one character at 11 px monospace
        const PALETTE: [&str; 8] = [
            "#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#76b7b2", "#edc948", "#9c755f", "#bab0ac",
        ];
        const LEGEND_MAX: usize = 12;

        let threads = self.threads();
        let lane_of: BTreeMap<u64, usize> = threads.iter().enumerate().map(|(i, t)| (*t, i)).collect();
        let busy: BTreeMap<u64, Duration> = self.busy().into_iter().collect();
        let origin = self.bars.iter().map(|b| b.started).min().unwrap_or_default();
        let span = self.span();
        let span_s = span.as_secs_f64().max(1e-9);
        let x = |d: Duration| {
            let offset = d.as_secs_f64() - origin.as_secs_f64();
            LABEL + PLOT * (offset / span_s).clamp(0.0, 1.0)
        };
        // Colours by step, in the order the steps ran; a step that ran
        // twice keeps its colour.
        let mut names: Vec<&str> = Vec::new();
        for band in &self.steps {
            if !names.contains(&&*band.step) {
                names.push(&band.step);
            }
        }
        for bar in &self.bars {
            if !names.contains(&&*bar.step) {
                names.push(&bar.step);
            }
        }
        let colour = |step: &str| {
            let i = names.iter().position(|n| *n == step).unwrap_or(0);
            PALETTE[i % PALETTE.len()]
        };

        let legend_rows = names.len().min(LEGEND_MAX + 1).div_ceil(4).max(1);
        let legend_top = 30.0;
        let bands_top = legend_top + 16.0 * legend_rows as f64 + 6.0;
        let lanes_top = bands_top + LANE + 4.0;
        let axis_y = lanes_top + LANE * threads.len() as f64 + 4.0;
        let width = LABEL + PLOT + 30.0;
        let height = axis_y + 36.0;

        let mut svg = String::with_capacity(1024 + 300 * self.bars.len());
        // Writing to a String cannot fail, so the results are ignored.
        let _ = writeln!(
            svg,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="monospace" font-size="11">"#
        );
        let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
        let title = self.title.as_deref().unwrap_or(&self.pipeline);
        let _ = writeln!(
            svg,
            r#"<text x="4" y="16" font-size="13" font-weight="bold">{}{}</text>"#,
            escape(&shorten(title)),
            escape(&format!(
                "{}{} in {}, span {}; {} ran them",
                if title.is_empty() { "" } else { ": " },
                count(self.bars.len(), "task"),
                count(names.len(), "step"),
                human(span),
                count(threads.len(), "thread"),
            )),
        );

        // The legend: four entries a row, the rest summed up.
        for (i, name) in names.iter().take(LEGEND_MAX).enumerate() {
            let lx = 4.0 + 260.0 * (i % 4) as f64;
            let ly = legend_top + 16.0 * (i / 4) as f64;
            let _ = writeln!(
                svg,
                r#"<rect class="legend" x="{lx}" y="{}" width="10" height="10" fill="{}"/><text x="{}" y="{}">{}</text>"#,
                ly - 9.0,
                colour(name),
                lx + 14.0,
                ly,
                escape(&shorten_to(name, 34)),
            );
        }
        if names.len() > LEGEND_MAX {
            let ly = legend_top + 16.0 * (LEGEND_MAX / 4) as f64;
            let _ = writeln!(
                svg,
                r#"<text x="4" y="{ly}">… and {} more steps</text>"#,
                names.len() - LEGEND_MAX
            );
        }

        // Step bands: a row of their own, and a light shade behind the
        // lanes, so each task sits visibly inside its step.
        let _ = writeln!(svg, r#"<text x="4" y="{}">steps</text>"#, bands_top + LANE * 0.7);
        for band in &self.steps {
            let (x0, x1) = (x(band.started), x(band.finished));
            let w = (x1 - x0).max(0.5);
            let fill = colour(&band.step);
            let _ = writeln!(
                svg,
                r#"<rect class="step" x="{x0:.2}" y="{lanes_top}" width="{w:.2}" height="{}" fill="{fill}" fill-opacity="0.08"/>"#,
                LANE * threads.len() as f64,
            );
            let _ = writeln!(
                svg,
                r#"<rect class="step" x="{x0:.2}" y="{bands_top}" width="{w:.2}" height="{}" fill="{fill}" fill-opacity="0.6"><title>step {} : {} to {}</title></rect>"#,
                LANE - 4.0,
                escape(&shorten(&band.step)),
                human(band.started.saturating_sub(origin)),
                human(band.finished.saturating_sub(origin)),
            );
            if let Some(label) = fit(&band.step, w, CHAR) {
                let _ = writeln!(
                    svg,
                    r#"<text x="{:.2}" y="{}">{}</text>"#,
                    x0 + 2.0,
                    bands_top + LANE * 0.6,
                    escape(&label)
                );
            }
        }

        for (i, thread) in threads.iter().enumerate() {
            let y = lanes_top + LANE * i as f64;
            let share = 100.0 * busy.get(thread).copied().unwrap_or_default().as_secs_f64() / span_s;
            let _ = writeln!(
                svg,
                r#"<text x="4" y="{}">thread {} ({share:.0}%)</text>"#,
                y + LANE * 0.7,
                i + 1
            );
            let _ = writeln!(
                svg,
                r##"<line x1="{LABEL}" y1="{y2}" x2="{}" y2="{y2}" stroke="#ddd"/>"##,
                LABEL + PLOT,
                y2 = y + LANE
            );
        }
        for b in &self.bars {
            let lane = lane_of[&b.thread];
            let y = lanes_top + LANE * lane as f64 + 2.0;
            let (x0, x1) = (x(b.started), x(b.finished));
            let w = (x1 - x0).max(0.5);
            let stroke = if b.succeeded {
                ""
            } else {
                r#" stroke="red" stroke-width="1.5""#
            };
            let _ = writeln!(
                svg,
                r#"<rect class="task" x="{x0:.2}" y="{y}" width="{w:.2}" height="{}" fill="{}"{stroke}><title>{} ({}) on thread {}: {} to {}</title></rect>"#,
                LANE - 4.0,
                colour(&b.step),
                escape(&b.task),
                escape(&shorten(&b.step)),
                lane + 1,
                human(b.started.saturating_sub(origin)),
                human(b.finished.saturating_sub(origin)),
            );
            if let Some(label) = fit(&b.task, w, CHAR) {
                let _ = writeln!(
                    svg,
                    r#"<text x="{:.2}" y="{}" fill="white">{}</text>"#,
                    x0 + 2.0,
                    y + LANE * 0.55,
                    escape(&label)
                );
            }
        }

        // The time axis: round ticks in one unit for the whole axis.
        let _ = writeln!(
            svg,
            r#"<line x1="{LABEL}" y1="{axis_y}" x2="{}" y2="{axis_y}" stroke="black"/>"#,
            LABEL + PLOT
        );
        let (tick, unit, per_unit) = ticks(span);
        let mut k = 0_u32;
        loop {
            let at = tick * f64::from(k);
            if at > span_s * (1.0 + 1e-9) {
                break;
            }
            let tx = LABEL + PLOT * at / span_s;
            let _ = writeln!(
                svg,
                r#"<line x1="{tx:.2}" y1="{axis_y}" x2="{tx:.2}" y2="{}" stroke="black"/><text x="{tx:.2}" y="{}" text-anchor="middle">{} {unit}</text>"#,
                axis_y + 4.0,
                axis_y + 16.0,
                trim_number(at / per_unit),
            );
            k += 1;
        }
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="{}" text-anchor="middle">time since the first task started ({unit})</text>"#,
            LABEL + PLOT / 2.0,
            axis_y + 30.0,
        );
        svg.push_str("</svg>\n");
        svg
    }
}

/// "1 thread", "2 threads".
fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// The name, or as much of it as fits in `width` pixels (with an
/// ellipsis), or nothing when not even a few characters fit.
fn fit(name: &str, width: f64, char_width: f64) -> Option<String> {
    let room = ((width - 4.0) / char_width).floor();
    let chars = name.chars().count();
    if room >= chars as f64 {
        Some(name.to_owned())
    } else if room >= 4.0 {
        Some(shorten_to(name, room as usize - 1).into_owned())
    } else {
        None
    }
}

/// A tick interval of 1, 2 or 5 times a power of ten that gives 4 to 10
/// ticks over `span`, in seconds, with the unit to label it in and the
/// seconds per unit.
fn ticks(span: Duration) -> (f64, &'static str, f64) {
    let span = span.as_secs_f64().max(1e-9);
    let rough = span / 6.0;
    let power = 10_f64.powf(rough.log10().floor());
    let tick = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * power)
        .find(|t| *t >= rough)
        .unwrap_or(10.0 * power);
    let (unit, per_unit) = if span < 1e-6 {
        ("ns", 1e-9)
    } else if span < 1e-3 {
        ("µs", 1e-6)
    } else if span < 1.0 {
        ("ms", 1e-3)
    } else {
        ("s", 1.0)
    };
    (tick, unit, per_unit)
}

/// A tick label without float noise: `0.30000000000000004` prints `0.3`.
fn trim_number(v: f64) -> String {
    let text = format!("{v:.3}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text.is_empty() || text == "-0" {
        "0".to_owned()
    } else {
        text.to_owned()
    }
}

/// Steps named after their tasks can be as long as thousands of names;
/// repeating that in every tooltip would make the file grow with the square
/// of the step's size.
fn shorten(s: &str) -> std::borrow::Cow<'_, str> {
    shorten_to(s, 40)
}

fn shorten_to(s: &str, keep: usize) -> std::borrow::Cow<'_, str> {
    match s.char_indices().nth(keep) {
        Some((i, _)) => format!("{}…", &s[..i]).into(),
        None => s.into(),
    }
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bar(task: &str, thread: u64, from: u64, to: u64, ok: bool) -> Bar {
        Bar {
            step: "s<1>".into(),
            task: task.into(),
            thread,
            started: Duration::from_millis(from),
            finished: Duration::from_millis(to),
            succeeded: ok,
        }
    }

    fn timeline(bars: Vec<Bar>) -> Timeline {
        Timeline {
            pipeline: "p".into(),
            title: None,
            steps: vec![StepBand {
                step: "s<1>".into(),
                started: Duration::from_millis(9),
                finished: Duration::from_millis(30),
            }],
            bars,
        }
    }

    #[test]
    fn lanes_are_numbered_from_one_in_the_order_threads_started() {
        let t = timeline(vec![
            bar("a&b", 787, 10, 20, true),
            bar("c", 3, 11, 30, false),
            bar("d", 787, 25, 30, true),
        ]);
        assert_eq!(t.span(), Duration::from_millis(20));
        assert_eq!(
            t.busy(),
            vec![(3, Duration::from_millis(19)), (787, Duration::from_millis(15))]
        );
        assert_eq!(t.threads(), [787, 3]);
        let svg = t.to_svg();
        assert!(svg.starts_with("<svg"));
        assert!(svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches(r#"class="task""#).count(), 3);
        assert_eq!(svg.matches("stroke=\"red\"").count(), 1);
        assert!(svg.contains("a&amp;b (s&lt;1&gt;) on thread 1"));
        assert!(svg.contains("thread 1 (75%)"), "{svg}");
        assert!(svg.contains("thread 2 (95%)"));
        assert!(!svg.contains("787"), "internal thread numbers stay out");
        assert!(svg.contains("p: 3 tasks in 1 step, span 20.0 ms; 2 threads ran them"));
    }

    #[test]
    fn the_chart_has_an_axis_a_legend_step_bands_and_names_where_they_fit() {
        let long = "a-name-far-too-long-for-its-bar-to-hold";
        let t = timeline(vec![bar("wide", 1, 10, 30, true), bar(long, 2, 10, 11, true)])
            .titled("fan-out on pool(2)");
        let svg = t.to_svg();
        // Axis: ticks of 5 ms over a 20 ms span, with the unit.
        for tick in ["0 ms", "5 ms", "10 ms", "15 ms", "20 ms"] {
            assert!(svg.contains(&format!(">{tick}</text>")), "{tick} missing");
        }
        assert!(svg.contains("time since the first task started (ms)"));
        // Legend and band.
        assert!(svg.contains(r#"class="legend""#));
        assert_eq!(svg.matches(r#"class="step""#).count(), 2, "a band and its shade");
        // The wide bar holds its name; the thin one only its tooltip.
        assert!(svg.contains(r#"fill="white">wide</text>"#));
        assert_eq!(svg.matches(long).count(), 1);
        assert!(svg.contains("fan-out on pool(2): 2 tasks in 1 step"));
        assert!(svg.contains("1 step") && !svg.contains("1 steps"));
    }

    #[test]
    fn ticks_are_round_and_in_one_unit() {
        assert_eq!(ticks(Duration::from_micros(82)).1, "µs");
        let (tick, unit, per) = ticks(Duration::from_millis(64));
        assert_eq!(unit, "ms");
        assert!((tick / per - 20.0).abs() < 1e-9, "{tick}");
        assert_eq!(trim_number(0.1 + 0.2), "0.3");
        assert_eq!(trim_number(20.0), "20");
    }

    #[test]
    fn long_step_names_are_cut_in_tooltips() {
        let mut b = bar("t", 1, 0, 1, true);
        b.step = "x".repeat(1000).into();
        let svg = Timeline {
            bars: vec![b],
            ..Timeline::default()
        }
        .to_svg();
        assert!(svg.contains(&format!("({}…)", "x".repeat(40))));
        assert!(svg.len() < 4000, "{}", svg.len());
    }

    #[test]
    fn an_empty_timeline_is_still_an_image() {
        let svg = Timeline::default().to_svg();
        assert!(svg.starts_with("<svg") && !svg.contains(r#"class="task""#));
    }
}
