//! How long pointy takes over a text of 10,000 steps with branches: parsing
//! and building the pipeline (the target is under 10 ms), the same with
//! dropping the pipeline counted in, checking the text alone, and printing
//! the pipeline back.

use std::fmt::Write as _;
use std::hint::black_box;

use conveyor::pointy;
use conveyor::{Pipeline, Task};
use criterion::{Criterion, criterion_group, criterion_main};

/// Groups of four steps: a retried stage that branches, a failure branch
/// on an executor, a parallel success branch with its own follower, and
/// the group's next stage as the sink.
const GROUPS: usize = 2_500;

fn text() -> String {
    let mut text = String::from("# generated for the bench\n@mode: CFG\n");
    for i in 0..GROUPS {
        if i > 0 {
            text.push_str(" ->\n");
        }
        let _ = write!(
            text,
            "Check{i} * 2 (\n  0 -> Fix{i}[executor=\"io\"],\n  1 |-> Left{i} || Right{i}[retry_attempts=3] -> Join{i}\n)"
        );
    }
    text.push('\n');
    text
}

fn bench(c: &mut Criterion) {
    let text = text();
    let template: Task<u64> = Task::from_fn("template", |c| Ok(*c.input()));
    // The parser names each task; a source can hand out one template.
    let tasks = |_: &str| Some(template.clone());
    let pipeline = Pipeline::parse(&text, &tasks).unwrap();
    assert_eq!(pipeline.steps().len(), 4 * GROUPS);

    let mut group = c.benchmark_group(format!("pointy/{}_steps", 4 * GROUPS));
    group.sample_size(20);
    group.bench_function("parse_and_build", |b| {
        // Dropping 10,000 steps is not parsing: criterion drops them
        // outside the timed loop.
        b.iter_with_large_drop(|| Pipeline::parse(black_box(&text), &tasks).unwrap());
    });
    group.bench_function("parse_build_and_drop", |b| {
        b.iter(|| black_box(Pipeline::parse(black_box(&text), &tasks).unwrap()));
    });
    group.bench_function("check_only", |b| {
        b.iter(|| pointy::check(black_box(&text)).unwrap());
    });
    group.bench_function("to_text", |b| {
        b.iter(|| black_box(pointy::to_text(black_box(&pipeline)).unwrap()));
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
