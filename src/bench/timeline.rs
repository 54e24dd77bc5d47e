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
/// let timeline = Timeline::from_run(&run);
/// assert_eq!(timeline.bars().len(), 2);
/// let svg = timeline.to_svg();
/// assert!(svg.starts_with("<svg") && svg.matches("<rect").count() == 2);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Timeline {
    bars: Vec<Bar>,
}

impl Timeline {
    /// The tasks of every step of `run`, in the order the steps ran and the
    /// tasks were declared. Tasks that never started are left out.
    #[must_use]
    pub fn from_run<T>(run: &Run<T>) -> Self {
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
        Self { bars }
    }

    /// The bars, one per task that ran.
    #[must_use]
    pub fn bars(&self) -> &[Bar] {
        &self.bars
    }

    /// From the first start to the last end.
    #[must_use]
    pub fn span(&self) -> Duration {
        let first = self.bars.iter().map(|b| b.started).min().unwrap_or_default();
        let last = self.bars.iter().map(|b| b.finished).max().unwrap_or_default();
        last.saturating_sub(first)
    }

    /// Each thread that ran a task, with the time it spent in tasks, in the
    /// order of the threads' numbers.
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

    /// An SVG Gantt chart: one lane per thread, labelled with the share of
    /// the span it was busy; one `<rect>` per task, coloured by step, outlined
    /// in red when the task failed, with its name and times as a tooltip.
    #[must_use]
    pub fn to_svg(&self) -> String {
        const LABEL: f64 = 150.0;
        const PLOT: f64 = 900.0;
        const LANE: f64 = 18.0;
        const TOP: f64 = 24.0;
        const PALETTE: [&str; 8] = [
            "#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#76b7b2", "#edc948", "#9c755f", "#bab0ac",
        ];

        let lanes = self.busy();
        let lane_of: BTreeMap<u64, usize> = lanes.iter().enumerate().map(|(i, (t, _))| (*t, i)).collect();
        let origin = self.bars.iter().map(|b| b.started).min().unwrap_or_default();
        let span = self.span().as_secs_f64().max(1e-9);
        let x = |d: Duration| LABEL + PLOT * d.saturating_sub(origin).as_secs_f64() / span;
        let width = LABEL + PLOT + 20.0;
        let height = TOP + LANE * lanes.len() as f64 + 20.0;
        let mut steps: Vec<&str> = Vec::new();

        let mut svg = String::with_capacity(256 + 200 * self.bars.len());
        // Writing to a String cannot fail, so the results are ignored.
        let _ = writeln!(
            svg,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="monospace" font-size="11">"#
        );
        let _ = writeln!(
            svg,
            r#"<text x="{LABEL}" y="14">span {} over {} threads, {} tasks</text>"#,
            human(self.span()),
            lanes.len(),
            self.bars.len()
        );
        for (i, (thread, busy)) in lanes.iter().enumerate() {
            let y = TOP + LANE * i as f64;
            let share = 100.0 * busy.as_secs_f64() / span;
            let _ = writeln!(
                svg,
                r#"<text x="4" y="{}">thread {thread} ({share:.0}%)</text>"#,
                y + LANE * 0.7
            );
            let _ = writeln!(
                svg,
                r##"<line x1="{LABEL}" y1="{y2}" x2="{}" y2="{y2}" stroke="#ddd"/>"##,
                LABEL + PLOT,
                y2 = y + LANE
            );
        }
        for b in &self.bars {
            let colour_index = match steps.iter().position(|s| *s == &*b.step) {
                Some(i) => i,
                None => {
                    steps.push(&b.step);
                    steps.len() - 1
                }
            };
            let y = TOP + LANE * lane_of[&b.thread] as f64 + 2.0;
            let (x0, x1) = (x(b.started), x(b.finished));
            let stroke = if b.succeeded {
                String::new()
            } else {
                r#" stroke="red" stroke-width="1.5""#.to_owned()
            };
            let _ = writeln!(
                svg,
                r#"<rect x="{x0:.2}" y="{y}" width="{:.2}" height="{}" fill="{}"{stroke}><title>{} ({}) on thread {}: {} to {}</title></rect>"#,
                (x1 - x0).max(0.5),
                LANE - 4.0,
                PALETTE[colour_index % PALETTE.len()],
                escape(&b.task),
                escape(&shorten(&b.step)),
                b.thread,
                human(b.started),
                human(b.finished),
            );
        }
        svg.push_str("</svg>\n");
        svg
    }
}

/// Steps named after their tasks can be as long as thousands of names;
/// repeating that in every tooltip would make the file grow with the square
/// of the step's size.
fn shorten(s: &str) -> std::borrow::Cow<'_, str> {
    const KEEP: usize = 40;
    match s.char_indices().nth(KEEP) {
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

    #[test]
    fn lanes_busy_time_and_svg() {
        let t = Timeline {
            bars: vec![
                bar("a&b", 7, 10, 20, true),
                bar("c", 3, 10, 30, false),
                bar("d", 7, 25, 30, true),
            ],
        };
        assert_eq!(t.span(), Duration::from_millis(20));
        assert_eq!(
            t.busy(),
            vec![(3, Duration::from_millis(20)), (7, Duration::from_millis(15))]
        );
        let svg = t.to_svg();
        assert!(svg.starts_with("<svg"));
        assert!(svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<rect").count(), 3);
        assert_eq!(svg.matches("stroke=\"red\"").count(), 1);
        assert!(svg.contains("a&amp;b (s&lt;1&gt;)"));
        assert!(svg.contains("thread 3 (100%)"));
        assert!(svg.contains("thread 7 (75%)"));
    }

    #[test]
    fn long_step_names_are_cut_in_tooltips() {
        let mut b = bar("t", 1, 0, 1, true);
        b.step = "x".repeat(1000).into();
        let svg = Timeline { bars: vec![b] }.to_svg();
        assert!(svg.contains(&format!("({}…)", "x".repeat(40))));
        assert!(svg.len() < 1000);
    }

    #[test]
    fn an_empty_timeline_is_still_an_image() {
        let svg = Timeline::default().to_svg();
        assert!(svg.starts_with("<svg") && !svg.contains("<rect"));
    }
}
