//! The canonical text of a pipeline's shape, which checkpoints fingerprint.

use super::pipeline::Pipeline;
use super::strategy::EvaluationStrategy;

/// The canonical text a pipeline's fingerprint is taken over. Every name is
/// length-prefixed, so no choice of names can make two shapes read alike.
/// The flow is each step's declared edges, which together with the step
/// order decide every path; it is written out here rather than taken from
/// any `Debug` output, which no Rust release promises to keep.
pub(super) fn describe<T>(pipeline: &Pipeline<T>) -> String {
    use std::fmt::Write as _;
    fn name(out: &mut String, s: &str) {
        let _ = write!(out, "{}:{s}", s.len());
    }
    let mut out = String::from("conveyor pipeline v1\npipeline ");
    name(&mut out, pipeline.name());
    for step in pipeline.steps() {
        out.push_str("\nstep ");
        name(&mut out, step.name());
        out.push_str(" strategy ");
        name(&mut out, &strategy(step.evaluation_strategy()));
        for task in step.tasks() {
            out.push_str("\ntask ");
            name(&mut out, task.name());
        }
        let edges = &step.edges;
        for (edge, to) in [
            ("then", &edges.then),
            ("on_success", &edges.on_success),
            ("on_failure", &edges.on_failure),
            ("sink", &edges.sink),
        ] {
            if let Some(to) = to {
                let _ = write!(out, "\nedge {edge} ");
                name(&mut out, to);
            }
        }
        for (n, to) in (2..).zip(&edges.switch) {
            if let Some(to) = to {
                let _ = write!(out, "\nedge switch({n}) ");
                name(&mut out, to);
            }
        }
    }
    out.push('\n');
    out
}

/// A strategy with its parameters: a changed threshold changes which steps
/// pass, so it is a different pipeline.
fn strategy(s: &EvaluationStrategy) -> String {
    match s {
        EvaluationStrategy::MajorityMustSucceed { tie_breaker } => format!("majority({tie_breaker})"),
        EvaluationStrategy::AtLeast(n) => format!("at_least({n})"),
        // Bits, not a decimal rendering, so formatting changes cannot move it.
        EvaluationStrategy::AtLeastPercent(p) => format!("at_least_percent({:016x})", p.to_bits()),
        EvaluationStrategy::Custom(rule) => format!("custom({})", rule.name()),
        other => other.name().to_owned(),
    }
}
