//! Content-defined chunking plus SHA-256 of each chunk, in MB/s, on incompressible data and on
//! SQL-like text.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use lifeboat::repo::chunker::{ChunkerParams, FASTCDC_2020};
use lifeboat::repo::ids::ChunkId;
use rand::{RngCore, SeedableRng};

fn params() -> ChunkerParams {
    let (min, avg, max) = ChunkerParams::default_params();
    ChunkerParams {
        algorithm: FASTCDC_2020.into(),
        min,
        avg,
        max,
    }
}

fn data() -> Vec<(&'static str, Vec<u8>)> {
    let mut random = vec![0u8; 64 << 20];
    rand::rngs::StdRng::seed_from_u64(1).fill_bytes(&mut random);
    let mut sql = Vec::with_capacity(64 << 20);
    let mut i = 0u64;
    while sql.len() < 64 << 20 {
        sql.extend_from_slice(
            format!(
                "INSERT INTO accounts VALUES ({i}, {}, 'customer-{}', '2026-11-{:02}');\n",
                i * 7919 % 100_000,
                i % 977,
                i % 28 + 1
            )
            .as_bytes(),
        );
        i += 1;
    }
    vec![("random", random), ("sql", sql)]
}

fn chunking(c: &mut Criterion) {
    let p = params();
    let mut group = c.benchmark_group("chunk+hash");
    group.sample_size(10);
    for (name, d) in data() {
        group.throughput(Throughput::Bytes(d.len() as u64));
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut n = 0;
                p.chunk_stream(d.as_slice(), |chunk| {
                    std::hint::black_box(ChunkId::of(&chunk));
                    n += 1;
                    Ok(())
                })
                .unwrap();
                n
            })
        });
    }
    group.finish();
}

criterion_group!(benches, chunking);
criterion_main!(benches);
