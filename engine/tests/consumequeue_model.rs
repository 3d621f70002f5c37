//! ConsumeQueue against a model (a plain Vec) under random sequences of appends, writes,
//! syncs, reopens, truncations and reads; and `open` on arbitrary file bytes never panics.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;
use ringmq_engine::consumequeue::{ConsumeQueue, CqEntry, ENTRY_SIZE_BYTES};

const EPF: u64 = 8;

#[derive(Debug, Clone)]
enum Op {
    Append(u8),
    WritePending,
    Sync,
    Reopen,
    /// Truncate at the physical offset of the entry this far back from the end.
    TruncateBack(u8),
    Read {
        back: u8,
        count: u8,
    },
    SetMemory(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (1_u8..12).prop_map(Op::Append),
        2 => Just(Op::WritePending),
        1 => Just(Op::Sync),
        1 => Just(Op::Reopen),
        1 => (0_u8..20).prop_map(Op::TruncateBack),
        3 => (0_u8..30, 0_u8..30).prop_map(|(back, count)| Op::Read { back, count }),
        1 => (0_u8..10).prop_map(Op::SetMemory),
    ]
}

fn entry(i: i64) -> CqEntry {
    CqEntry {
        physical_offset: 64 + i * 50,
        size: 50,
        tags_code: i * 7,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn the_queue_behaves_like_a_vec(ops in proptest::collection::vec(op(), 1..40)) {
        let tmp = tempfile::tempdir().unwrap();
        compio::runtime::Runtime::new().unwrap().block_on(async {
            let mut cq = ConsumeQueue::open(tmp.path(), EPF).await.unwrap();
            let mut model: Vec<CqEntry> = Vec::new();
            for op in ops {
                match op {
                    Op::Append(n) => {
                        for _ in 0..n {
                            let i = model.len() as i64;
                            cq.append(i, entry(i)).unwrap();
                            model.push(entry(i));
                        }
                    }
                    Op::WritePending => cq.write_pending().await.unwrap(),
                    Op::Sync => cq.sync().await.unwrap(),
                    Op::Reopen => {
                        cq.sync().await.unwrap();
                        drop(cq);
                        cq = ConsumeQueue::open(tmp.path(), EPF).await.unwrap();
                    }
                    Op::TruncateBack(back) => {
                        let keep = model.len().saturating_sub(usize::from(back));
                        cq.truncate_from_physical(entry(keep as i64).physical_offset).await.unwrap();
                        model.truncate(keep);
                    }
                    Op::Read { back, count } => {
                        let from = model.len().saturating_sub(usize::from(back));
                        let got = cq.read(from as i64, usize::from(count)).await.unwrap();
                        let end = (from + usize::from(count)).min(model.len());
                        prop_assert_eq!(&got[..], &model[from..end]);
                    }
                    Op::SetMemory(n) => cq.set_memory_entries(usize::from(n)),
                }
                prop_assert_eq!(cq.max_offset(), model.len() as i64);
                prop_assert_eq!(cq.min_offset(), 0);
            }
            Ok(())
        })?;
    }

    #[test]
    fn open_never_panics_on_arbitrary_file_bytes(
        files in proptest::collection::vec((0_u64..4, proptest::collection::vec(any::<u8>(), 0..200)), 0..4),
    ) {
        let tmp = tempfile::tempdir().unwrap();
        for (index, bytes) in &files {
            let name = format!("{:020}", index * EPF * ENTRY_SIZE_BYTES as u64);
            std::fs::write(tmp.path().join(name), bytes).unwrap();
        }
        compio::runtime::Runtime::new().unwrap().block_on(async {
            if let Ok(cq) = ConsumeQueue::open(tmp.path(), EPF).await {
                prop_assert!(cq.min_offset() <= cq.max_offset());
                let all = cq.read(cq.min_offset(), 1000).await.unwrap();
                prop_assert_eq!(all.len() as i64, cq.max_offset() - cq.min_offset());
                prop_assert!(all.iter().all(CqEntry::is_valid));
            }
            Ok(())
        })?;
    }
}
