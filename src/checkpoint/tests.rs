use std::fs;
use std::path::Path;
use std::sync::Arc;

use super::*;
use crate::error::{CheckpointError, FingerprintOf, IoOperation};
use crate::facade::executor::PipelineExecutor;
use crate::model::pipeline::Pipeline;
use crate::model::step::Step;
use crate::model::strategy::EvaluationStrategy;
use crate::model::task::{Task, TaskContext};
use proptest::prelude::*;

fn pipeline(name: &str, tasks: &[&str]) -> Pipeline<Vec<f64>> {
    let mut b = Pipeline::builder(name);
    for t in tasks {
        let t = (*t).to_owned();
        b = b.step([Task::from_fn(t.clone(), move |c: &TaskContext<'_, Vec<f64>>| {
            let mut v = c.previous().first().cloned().unwrap_or_else(|| c.input().clone());
            v.push(t.len() as f64 / 3.0);
            Ok(v)
        })]);
    }
    b.build().unwrap()
}

fn t(name: &str) -> Task<Vec<f64>> {
    Task::from_fn(name, |c: &TaskContext<'_, Vec<f64>>| Ok(c.input().clone()))
}

fn progress(p: &Pipeline<Vec<f64>>, input: &[f64]) -> Checkpoint<Vec<f64>> {
    let run = PipelineExecutor::builder()
        .build()
        .unwrap()
        .execute(p, input.to_vec())
        .unwrap();
    let mut c = Checkpoint::new(p, Some(Fingerprint::of_value(input).unwrap()), run.chain());
    c.completed = p.steps().iter().map(|s| Arc::clone(&s.name)).collect();
    c.next = Some(Arc::clone(&p.steps()[0].name));
    // A fixed id keeps the encoding, and so every length, the same.
    c.run = crate::ids::RunId::from(0x0123_4567_89ab_cdef);
    c
}

fn valid_bytes() -> Vec<u8> {
    progress(&pipeline("p", &["a", "bb", "ccc"]), &[1.0, 0.1])
        .encode()
        .unwrap()
}

#[test]
fn fnv1a_matches_the_reference_vectors() {
    assert_eq!(Fingerprint::of_bytes(b"").get(), 0xcbf2_9ce4_8422_2325);
    assert_eq!(Fingerprint::of_bytes(b"foobar").get(), 0x8594_4171_f739_67e8);
}

#[test]
fn pipeline_fingerprints_are_stable_and_shape_sensitive() {
    let p = pipeline("p", &["a", "bb"]);
    // Pinned: a change here breaks every saved checkpoint, so it must be a
    // deliberate format change.
    assert_eq!(
        Pipeline::describe(&p),
        "conveyor pipeline v1\npipeline 1:p\nstep 1:a strategy 16:all_must_succeed\ntask 1:a\nstep 2:bb strategy 16:all_must_succeed\ntask 2:bb\n"
    );
    let branched: Pipeline<Vec<f64>> = Pipeline::builder("p")
        .step(
            Step::new("a", [t("a")])
                .on_failure("c")
                .on_switch(3, "b")
                .sink("b"),
        )
        .step(Step::new("b", [t("b")]))
        .step(Step::new("c", [t("c")]))
        .build()
        .unwrap();
    assert_eq!(
        Pipeline::describe(&branched),
        "conveyor pipeline v1\npipeline 1:p\nstep 1:a strategy 16:all_must_succeed\ntask 1:a\nedge on_failure 1:c\nedge sink 1:b\nedge switch(3) 1:b\nstep 1:b strategy 16:all_must_succeed\ntask 1:b\nstep 1:c strategy 16:all_must_succeed\ntask 1:c\n"
    );
    let other_branch: Pipeline<Vec<f64>> = Pipeline::builder("p")
        .step(
            Step::new("a", [t("a")])
                .on_failure("b")
                .on_switch(3, "c")
                .sink("b"),
        )
        .step(Step::new("b", [t("b")]))
        .step(Step::new("c", [t("c")]))
        .build()
        .unwrap();
    assert_ne!(
        Fingerprint::of_pipeline(&branched),
        Fingerprint::of_pipeline(&other_branch)
    );
    assert_eq!(
        Fingerprint::of_pipeline(&p),
        Fingerprint::of_pipeline(&pipeline("p", &["a", "bb"]))
    );
    for other in [
        pipeline("p", &["a", "b"]),
        pipeline("q", &["a", "bb"]),
        pipeline("p", &["bb", "a"]),
    ] {
        assert_ne!(Fingerprint::of_pipeline(&p), Fingerprint::of_pipeline(&other));
    }
    let stricter: Pipeline<Vec<f64>> = Pipeline::builder("p")
        .step(
            Step::new(
                "a",
                [Task::from_fn("a", |c: &TaskContext<'_, Vec<f64>>| {
                    Ok(c.input().clone())
                })],
            )
            .strategy(EvaluationStrategy::AtLeast(2)),
        )
        .step(Step::new(
            "bb",
            [Task::from_fn("bb", |c: &TaskContext<'_, Vec<f64>>| {
                Ok(c.input().clone())
            })],
        ))
        .build()
        .unwrap();
    assert_ne!(Fingerprint::of_pipeline(&p), Fingerprint::of_pipeline(&stricter));
}

#[test]
fn fingerprints_serialize_as_hex_strings() {
    let f = Fingerprint::from(0x00ab_cdef_0123_4567);
    assert_eq!(serde_json::to_string(&f).unwrap(), "\"00abcdef01234567\"");
    assert_eq!(
        serde_json::from_str::<Fingerprint>("\"00abcdef01234567\"").unwrap(),
        f
    );
    assert!(serde_json::from_str::<Fingerprint>("\"abc\"").is_err());
    assert!(serde_json::from_str::<Fingerprint>("\"+0abcdef01234567\"").is_err());
}

#[test]
fn encode_then_decode_gives_the_same_checkpoint() {
    let p = pipeline("p", &["a", "bb", "ccc"]);
    let c = progress(&p, &[1.0, 0.1]);
    let bytes = c.encode().unwrap();
    let back = Checkpoint::<Vec<f64>>::decode(&bytes, None).unwrap();
    assert_eq!(back.encode().unwrap(), bytes);
    assert_eq!(back.completed.len(), 3);
    back.check(&p, Some(Fingerprint::of_value(&[1.0, 0.1]).unwrap()), None)
        .unwrap();
    let chain = back.restore_chain(&p, None).unwrap();
    assert_eq!(
        chain.tail().unwrap().state().results().get("ccc"),
        Some(&vec![1.0, 0.1, 1.0 / 3.0, 2.0 / 3.0, 1.0])
    );
}

#[test]
fn checks_refuse_other_pipelines_inputs_and_finished_runs() {
    let p = pipeline("p", &["a", "bb"]);
    let input = Fingerprint::of_value(&[1.0]).unwrap();
    let path = Path::new("/tmp/x.ckpt");
    let mut c = progress(&p, &[1.0]);
    let err = c
        .check(&pipeline("p", &["a", "b"]), Some(input), Some(path))
        .unwrap_err();
    assert!(
        matches!(&err, CheckpointError::Mismatch { what: FingerprintOf::Pipeline, expected, found, .. }
            if *found == Fingerprint::of_pipeline(&p).get() && *expected != *found),
        "{err}"
    );
    assert_eq!(err.path(), Some(path));
    let other_input = Fingerprint::of_value(&[2.0]).unwrap();
    let err = c.check(&p, Some(other_input), None).unwrap_err();
    assert!(
        matches!(
            err,
            CheckpointError::Mismatch {
                what: FingerprintOf::Input,
                ..
            }
        ),
        "{err}"
    );
    c.finished = true;
    let err = c.check(&p, Some(input), None).unwrap_err();
    assert!(matches!(err, CheckpointError::Finished { .. }), "{err}");
    assert!(err.to_string().contains("clear it"), "{err}");
}

#[test]
fn a_newer_format_is_its_own_error() {
    let mut bytes = valid_bytes();
    bytes[frame::MAGIC.len()..frame::PREAMBLE].copy_from_slice(&3_u32.to_le_bytes());
    let err = Checkpoint::<Vec<f64>>::decode(&bytes, Some(Path::new("job.ckpt"))).unwrap_err();
    assert!(
        matches!(
            err,
            CheckpointError::Version {
                expected: 2,
                found: 3,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "checkpoint `job.ckpt` has format version 3; this build reads version 2"
    );
}

/// The length of the preamble and the header record of `bytes`.
fn head_len(bytes: &[u8]) -> usize {
    let mut len = [0; 8];
    len.copy_from_slice(&bytes[frame::PREAMBLE..frame::PREAMBLE + 8]);
    frame::PREAMBLE + 13 + u64::from_le_bytes(len) as usize
}

#[test]
fn every_truncation_is_a_prefix_or_an_error() {
    let bytes = valid_bytes();
    let full = Checkpoint::<Vec<f64>>::decode(&bytes, None).unwrap();
    let head = head_len(&bytes);
    for len in 0..bytes.len() {
        match Checkpoint::<Vec<f64>>::decode(&bytes[..len], None) {
            Err(err) => {
                assert!(len < head, "{len}: {err}");
                assert!(matches!(err, CheckpointError::Corrupt { .. }), "{len}: {err}");
            }
            Ok(c) => {
                assert!(len >= head, "{len}");
                // A cut is a torn tail: what is left is an earlier state of
                // the same log.
                assert!(c.completed.len() <= full.completed.len(), "{len}");
                assert_eq!(c.completed[..], full.completed[..c.completed.len()], "{len}");
                assert_eq!(c.pipeline, full.pipeline);
            }
        }
    }
}

#[test]
fn a_flipped_byte_before_the_last_record_is_caught_by_the_checksum() {
    let bytes = valid_bytes();
    let head = head_len(&bytes);
    // A byte of the first task record's value: the codec alone would read
    // it as another number.
    let mut bad = bytes.clone();
    bad[head + 20] ^= 0x10;
    let err = Checkpoint::<Vec<f64>>::decode(&bad, None).unwrap_err();
    assert!(err.to_string().contains("checksum"), "{err}");
    assert!(err.to_string().contains("not the last"), "{err}");
    // The same damage in the last record reads as a torn tail: dropped.
    let mut torn = bytes.clone();
    let last = torn.len() - 2;
    torn[last] ^= 0x10;
    let back = Checkpoint::<Vec<f64>>::decode(&torn, None).unwrap();
    assert_eq!(back.completed.len(), 2);
}

/// A damaged length that makes a record run past the end of the log looks
/// like a torn tail, but whole records follow it: corruption, reported,
/// rather than every later record dropped. Every bit of every length but
/// the last record's is tried; the last record's own length, damaged, is
/// a torn tail, as a kill could leave it.
#[test]
fn a_damaged_length_before_the_last_record_is_corruption_not_a_torn_tail() {
    let bytes = valid_bytes();
    let full = Checkpoint::<Vec<f64>>::decode(&bytes, None).unwrap();
    let mut starts = Vec::new();
    let mut at = head_len(&bytes);
    while at < bytes.len() {
        starts.push(at);
        let mut len = [0; 8];
        len.copy_from_slice(&bytes[at..at + 8]);
        at += 13 + u64::from_le_bytes(len) as usize;
    }
    let (last, middle) = starts.split_last().unwrap();
    assert!(middle.len() >= 2, "the log has records to damage");
    for &start in std::iter::once(&frame::PREAMBLE).chain(middle) {
        for bit in 0..64 {
            let mut bad = bytes.clone();
            bad[start + bit / 8] ^= 1 << (bit % 8);
            match Checkpoint::<Vec<f64>>::decode(&bad, None) {
                Err(err) => assert!(
                    matches!(err, CheckpointError::Corrupt { .. }),
                    "{start}/{bit}: {err}"
                ),
                Ok(c) => panic!(
                    "{start}/{bit}: read back {} of {} records",
                    c.completed.len(),
                    full.completed.len()
                ),
            }
        }
    }
    // A length damaged to reach exactly the end of the log: the frame fails
    // its checksum with nothing after it, as a torn last frame would, but
    // holds the records after it whole.
    let mut bad = bytes.clone();
    let to_end = (bytes.len() - middle[0] - 13) as u64;
    bad[middle[0]..middle[0] + 8].copy_from_slice(&to_end.to_le_bytes());
    let err = Checkpoint::<Vec<f64>>::decode(&bad, None).unwrap_err();
    assert!(err.to_string().contains("length is damaged"), "{err}");
    let mut torn = bytes.clone();
    torn[last + 7] ^= 0x80;
    let back = Checkpoint::<Vec<f64>>::decode(&torn, None).unwrap();
    assert_eq!(back.completed.len(), full.completed.len() - 1);
}

#[test]
fn a_record_with_a_valid_checksum_but_a_bad_payload_reports_the_codec() {
    let mut bytes = frame::preamble().to_vec();
    let mut record = frame::open(frame::Kind::Header);
    record.extend_from_slice(b"\xff\xff\xff");
    frame::seal(&mut record);
    bytes.extend(record);
    let err = Checkpoint::<u8>::decode(&bytes, None).unwrap_err();
    assert!(err.to_string().contains("bad header record"), "{err}");
}

#[test]
fn a_type_the_codec_cannot_read_back_fails_at_its_first_save() {
    // Internally tagged enums need `deserialize_any`.
    #[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
    #[serde(tag = "kind")]
    enum Tagged {
        A { n: u32 },
    }
    let p: Pipeline<Tagged> = Pipeline::builder("tagged")
        .step([Task::from_fn("a", |_| Ok(Tagged::A { n: 1 }))])
        .build()
        .unwrap();
    let store = MemoryCheckpointStore::new();
    let err = PipelineExecutor::builder()
        .build()
        .unwrap()
        .execute_with_checkpoint(&p, Tagged::A { n: 0 }, &store)
        .unwrap_err();
    assert!(err.to_string().contains("does not read back"), "{err}");
    assert!(format!("{err:?}").contains("deserialize_any"), "{err:?}");
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        prop_assert!(Checkpoint::<Vec<f64>>::decode(&bytes, None).is_err());
    }

    #[test]
    fn arbitrary_records_behind_a_valid_preamble_never_panic(
        kind in 0_u8..5,
        body in proptest::collection::vec(any::<u8>(), 0..256),
    ) {
        let mut bytes = frame::preamble().to_vec();
        let mut record = vec![0; 13];
        record[12] = kind;
        record.extend_from_slice(&body);
        let len = (record.len() - 13) as u64;
        record[..8].copy_from_slice(&len.to_le_bytes());
        let mut h = crc32fast::Hasher::new();
        h.update(&record[..8]);
        h.update(&record[12..]);
        let crc = h.finalize();
        record[8..12].copy_from_slice(&crc.to_le_bytes());
        bytes.extend(record);
        let _ = Checkpoint::<Vec<f64>>::decode(&bytes, None);
    }

    #[test]
    fn damaged_checkpoints_never_panic(cut in any::<prop::sample::Index>(), at in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let mut bytes = valid_bytes();
        let i = at.index(bytes.len());
        let changed = bytes[i] != byte;
        bytes[i] = byte;
        bytes.truncate(cut.index(bytes.len() + 1));
        let result = Checkpoint::<Vec<f64>>::decode(&bytes, None);
        if !changed && bytes.len() == valid_bytes().len() {
            prop_assert!(result.is_ok());
        }
    }

    #[test]
    fn checkpoints_round_trip(input in proptest::collection::vec(-1e300..1e300f64, 0..8), finished in any::<bool>()) {
        let p = pipeline("p", &["a", "bb"]);
        let mut c = progress(&p, &input);
        c.finished = finished;
        let bytes = c.encode().unwrap();
        let back = Checkpoint::<Vec<f64>>::decode(&bytes, None).unwrap();
        prop_assert_eq!(back.finished, finished);
        prop_assert_eq!(back.encode().unwrap(), bytes);
        let chain = back.restore_chain(&p, None).unwrap();
        let mut expected = input.clone();
        expected.extend([1.0 / 3.0, 2.0 / 3.0]);
        prop_assert_eq!(chain.tail().unwrap().state().results().get("bb"), Some(&expected));
    }
}

fn temp_dir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

#[test]
fn file_store_creates_appends_truncates_and_clears() {
    let dir = temp_dir();
    let store = FileCheckpointStore::new(dir.path().join("job.ckpt"));
    assert_eq!(store.load().unwrap(), None);
    store.clear().unwrap();
    store.create(b"first").unwrap();
    store.append(b"+more").unwrap();
    store.create(b"second").unwrap();
    store.append(b"+more").unwrap();
    store.sync().unwrap();
    assert_eq!(store.load().unwrap().as_deref(), Some(&b"second+more"[..]));
    assert!(!store.temp_file().exists(), "the temporary file is renamed away");
    store.truncate(6).unwrap();
    store.append(b"!").unwrap();
    assert_eq!(store.load().unwrap().as_deref(), Some(&b"second!"[..]));
    store.clear().unwrap();
    assert_eq!(store.load().unwrap(), None);
    let err = store.append(b"x").unwrap_err();
    assert!(
        matches!(
            err,
            CheckpointError::Io {
                operation: IoOperation::Write,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn every_durability_keeps_what_was_appended() {
    let dir = temp_dir();
    for durability in [Durability::EveryRecord, Durability::EveryStep, Durability::Never] {
        let store =
            FileCheckpointStore::new(dir.path().join(format!("{durability:?}"))).with_durability(durability);
        assert_eq!(store.durability(), durability);
        store.create(b"a").unwrap();
        store.append(b"b").unwrap();
        store.append(b"c").unwrap();
        store.sync().unwrap();
        assert_eq!(store.load().unwrap().as_deref(), Some(&b"abc"[..]));
    }
}

#[test]
fn a_failed_create_leaves_the_previous_log_intact() {
    let dir = temp_dir();
    let store = FileCheckpointStore::new(dir.path().join("job.ckpt"));
    let good = valid_bytes();
    store.create(&good).unwrap();
    // A folder where the temporary file goes makes the write fail, even for
    // root, which read-only permissions would not stop.
    fs::create_dir(store.temp_file()).unwrap();
    let err = store.create(b"half a checkpoint").unwrap_err();
    assert!(
        matches!(&err, CheckpointError::Io { operation: IoOperation::Write, path, .. } if path == store.temp_file()),
        "{err}"
    );
    assert_eq!(store.load().unwrap().as_deref(), Some(&good[..]));
    Checkpoint::<Vec<f64>>::load(&store).unwrap().unwrap();
}

#[test]
fn a_crash_mid_create_leaves_the_previous_log_and_is_recovered() {
    let dir = temp_dir();
    let store = FileCheckpointStore::new(dir.path().join("job.ckpt"));
    let good = valid_bytes();
    store.create(&good).unwrap();
    // What a crash between write and rename leaves behind.
    fs::write(store.temp_file(), &good[..good.len() / 2]).unwrap();
    assert_eq!(store.load().unwrap().as_deref(), Some(&good[..]));
    store.create(b"next").unwrap();
    assert_eq!(store.load().unwrap().as_deref(), Some(&b"next"[..]));
}

#[test]
fn loading_from_a_store_names_the_file_in_errors() {
    let dir = temp_dir();
    let path = dir.path().join("job.ckpt");
    fs::write(&path, b"not a checkpoint\n").unwrap();
    let err = Checkpoint::<u8>::load(&FileCheckpointStore::new(&path)).unwrap_err();
    assert_eq!(err.path(), Some(path.as_path()));
    assert!(err.to_string().contains("job.ckpt"), "{err}");
}

#[test]
fn memory_store_counts_durable_writes() {
    let store = MemoryCheckpointStore::with_bytes(valid_bytes());
    assert!(Checkpoint::<Vec<f64>>::load(&store).unwrap().is_some());
    store.create(b"x").unwrap();
    store.append(b"y").unwrap();
    store.append(b"z").unwrap();
    store.sync().unwrap();
    assert_eq!(store.saves(), 2);
    store.truncate(2).unwrap();
    assert_eq!(store.load().unwrap().as_deref(), Some(&b"xy"[..]));
    store.clear().unwrap();
    assert_eq!(Checkpoint::<u8>::load(&store).unwrap().map(|c| c.format), None);
}

#[test]
fn a_format_1_checkpoint_is_a_version_error() {
    let old = b"conveyor-checkpoint v1 len=2 fnv1a64=0123456789abcdef\n{}";
    let err = Checkpoint::<u8>::decode(old, Some(Path::new("job.ckpt"))).unwrap_err();
    assert!(
        matches!(
            err,
            CheckpointError::Version {
                expected: 2,
                found: 1,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn a_memory_store_reads_in_place_and_appends_after() {
    let bytes = valid_bytes();
    let store = MemoryCheckpointStore::with_bytes(bytes.clone());
    let loaded = Checkpoint::<Vec<f64>>::load(&store).unwrap().unwrap();
    store.append(b"tail").unwrap();
    assert_eq!(store.load().unwrap().unwrap().len(), bytes.len() + 4);
    assert_eq!(loaded.completed.len(), 3);
}
